//! Arrays: `ARRAY` and `PERCPU_ARRAY` (every index exists, zero-initialised), and the fd
//! arrays: `PROG_ARRAY` and `ARRAY_OF_MAPS` (slots hold mock programs and maps, named by their
//! mock fd; lookups answer the object's id, as the kernel does), plus `PERF_EVENT_ARRAY`,
//! `CGROUP_ARRAY`, `DEVMAP`, `CPUMAP`, `XSKMAP` and `SOCKMAP`, whose values are stored as
//! given (no fd behind them is checked).
//!
//! Kernel behaviour kept: an index past the end is `E2BIG` for an update and `ENOENT` for a
//! lookup; `BPF_NOEXIST` is `EEXIST` (every index exists); delete is `EINVAL` for arrays; fd
//! arrays take only `BPF_ANY`, answer `ENOENT` for an empty slot and `E2BIG` for a delete past
//! the end; next key after an index past the end (or none) is 0, after the last index the end.

use std::collections::BTreeMap;

use bpf_maps::{MapSpec, ANY, EXIST, NOEXIST};

use super::{resolve_fd, Ctx, Held};
use crate::errno::{E2BIG, EEXIST, EINVAL, ENOENT};

fn index(key: &[u8]) -> u32 {
    key.get(..4)
        .and_then(|k| k.try_into().ok())
        .map(u32::from_ne_bytes)
        .unwrap_or(u32::MAX)
}

/// A plain or per-CPU array, sparse: an index never written reads as zeroes.
#[derive(Debug)]
pub(crate) struct ArrayStore {
    max: u32,
    values: BTreeMap<u32, Vec<u8>>,
}

impl ArrayStore {
    pub(crate) fn new(max: u32) -> Self {
        ArrayStore {
            max,
            values: BTreeMap::new(),
        }
    }

    pub(crate) fn lookup(&self, key: &[u8], value: &mut [u8]) -> Result<(), i32> {
        let i = index(key);
        if i >= self.max {
            return Err(ENOENT);
        }
        match self.values.get(&i) {
            Some(v) => value.copy_from_slice(v),
            None => value.fill(0),
        }
        Ok(())
    }

    pub(crate) fn update(
        &mut self,
        _ctx: Ctx,
        key: &[u8],
        value: &[u8],
        flags: u64,
    ) -> Result<(), i32> {
        if flags > EXIST {
            return Err(EINVAL);
        }
        let i = index(key);
        if i >= self.max {
            return Err(E2BIG);
        }
        if flags == NOEXIST {
            return Err(EEXIST);
        }
        if value.iter().all(|&b| b == 0) {
            self.values.remove(&i);
        } else {
            self.values.insert(i, value.to_vec());
        }
        Ok(())
    }
}

/// What an fd array's slots hold.
#[derive(Debug, Clone)]
pub(crate) enum FdKind {
    /// Loaded mock programs.
    Program,
    /// Mock maps, of the template's shape when there is one.
    Map(Option<Box<MapSpec>>),
    /// Values stored as given.
    Raw,
}

#[derive(Debug)]
pub(crate) struct FdArray {
    max: u32,
    kind: FdKind,
    slots: BTreeMap<u32, (Vec<u8>, Option<Held>)>,
}

impl FdArray {
    pub(crate) fn new(max: u32, kind: FdKind) -> Self {
        FdArray {
            max,
            kind,
            slots: BTreeMap::new(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    pub(crate) fn held(&self, key: &[u8]) -> Option<Held> {
        self.slots.get(&index(key)).and_then(|(_, h)| h.clone())
    }

    pub(crate) fn lookup(&self, key: &[u8], value: &mut [u8]) -> Result<(), i32> {
        let (v, _) = self.slots.get(&index(key)).ok_or(ENOENT)?;
        let n = v.len().min(value.len());
        value.fill(0);
        value[..n].copy_from_slice(&v[..n]);
        Ok(())
    }

    pub(crate) fn update(
        &mut self,
        _ctx: Ctx,
        key: &[u8],
        value: &[u8],
        flags: u64,
    ) -> Result<(), i32> {
        if flags != ANY {
            return Err(EINVAL);
        }
        let i = index(key);
        if i >= self.max {
            return Err(E2BIG);
        }
        let slot = resolve_fd(value, &self.kind)?;
        self.slots.insert(i, slot);
        Ok(())
    }

    pub(crate) fn delete(&mut self, _ctx: Ctx, key: &[u8]) -> Result<(), i32> {
        let i = index(key);
        if i >= self.max {
            return Err(E2BIG);
        }
        self.slots.remove(&i).map(|_| ()).ok_or(ENOENT)
    }
}

/// Next key of any array: 0 after none or an index past the end, the end after the last.
pub(crate) fn next_index(ctx: Ctx, key: Option<&[u8]>) -> Option<Vec<u8>> {
    let next = match key.map(index) {
        Some(i) if i < ctx.max_entries => i.checked_add(1).filter(|&n| n < ctx.max_entries)?,
        _ if ctx.max_entries == 0 => return None,
        _ => 0,
    };
    Some(next.to_ne_bytes().to_vec())
}
