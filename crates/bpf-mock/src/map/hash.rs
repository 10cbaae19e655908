//! Hash maps: `HASH`, `PERCPU_HASH`, `LRU_HASH`, `LRU_PERCPU_HASH`, `HASH_OF_MAPS` (and, as
//! plain hashes, `DEVMAP_HASH` and `SOCKHASH`, whose values are stored as given).
//!
//! Kernel behaviour kept: `BPF_NOEXIST` on a present key is `EEXIST`, `BPF_EXIST` on a missing
//! key `ENOENT` (checked before fullness), a new key in a full map `E2BIG` (an LRU map evicts
//! its least recently updated element instead), replacing a key in a full map succeeds, next
//! key after a key that is not in the map starts over at the first key. Not kept: the kernel's
//! bucket order (keys come in byte order here) and the LRU's approximations (the kernel evicts
//! per-CPU batches from its inactive list and may evict before the map is full; user-space
//! lookups do not count as uses in either).

use std::collections::BTreeMap;

use bpf_maps::{MapSpec, EXIST, NOEXIST};

use super::array::FdKind;
use super::{resolve_fd, Ctx, Held};
use crate::errno::{E2BIG, EEXIST, EINVAL, ENOENT};

#[derive(Debug)]
struct Entry {
    value: Vec<u8>,
    stamp: u64,
    held: Option<Held>,
}

#[derive(Debug)]
pub(crate) struct HashStore {
    entries: BTreeMap<Vec<u8>, Entry>,
    lru: bool,
    /// For a hash of maps: what its values must be (`Some(None)`: any map).
    fd_kind: Option<FdKind>,
    clock: u64,
}

impl HashStore {
    pub(crate) fn new(lru: bool, of_maps: Option<Option<Box<MapSpec>>>) -> Self {
        HashStore {
            entries: BTreeMap::new(),
            lru,
            fd_kind: of_maps.map(FdKind::Map),
            clock: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn held(&self, key: &[u8]) -> Option<Held> {
        self.entries.get(key).and_then(|e| e.held.clone())
    }

    pub(crate) fn lookup(&self, key: &[u8], value: &mut [u8]) -> Result<(), i32> {
        let e = self.entries.get(key).ok_or(ENOENT)?;
        value.copy_from_slice(&e.value);
        Ok(())
    }

    pub(crate) fn update(
        &mut self,
        ctx: Ctx,
        key: &[u8],
        value: &[u8],
        flags: u64,
    ) -> Result<(), i32> {
        let (value, held) = match &self.fd_kind {
            Some(kind) => resolve_fd(value, kind)?,
            None => (value.to_vec(), None),
        };
        if flags > EXIST {
            return Err(EINVAL);
        }
        let exists = self.entries.contains_key(key);
        if flags == NOEXIST && exists {
            return Err(EEXIST);
        }
        if flags == EXIST && !exists {
            return Err(ENOENT);
        }
        if !exists && self.entries.len() >= ctx.max_entries as usize {
            if !self.lru {
                return Err(E2BIG);
            }
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, e)| e.stamp)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                self.entries.remove(&k);
            }
        }
        self.clock += 1;
        let entry = Entry {
            value,
            stamp: self.clock,
            held,
        };
        self.entries.insert(key.to_vec(), entry);
        Ok(())
    }

    pub(crate) fn delete(&mut self, key: &[u8]) -> Result<(), i32> {
        self.entries.remove(key).map(|_| ()).ok_or(ENOENT)
    }

    /// The key after `key`; a key not in the map (or none) gives the first key.
    pub(crate) fn next_key(&self, key: Option<&[u8]>) -> Option<Vec<u8>> {
        let after = key.filter(|k| self.entries.contains_key(*k));
        match after {
            None => self.entries.keys().next().cloned(),
            Some(k) => {
                use std::ops::Bound::{Excluded, Unbounded};
                self.entries
                    .range::<[u8], _>((Excluded(k), Unbounded))
                    .next()
                    .map(|(k, _)| k.clone())
            }
        }
    }
}
