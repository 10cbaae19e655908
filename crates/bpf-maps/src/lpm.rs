//! Longest-prefix-match tries: [`LpmTrie`] over `BPF_MAP_TYPE_LPM_TRIE`.

use std::marker::PhantomData;

use bytemuck::Pod;

use crate::error::{MapError, Part};
use crate::typed::{check, found, view_common};
use crate::{Map, MapType};

/// The kernel's largest LPM data (`LPM_DATA_SIZE_MAX`).
const MAX_DATA: usize = 256;

/// An LPM trie key: a prefix length in bits and the data it applies to (for IP addresses,
/// the bytes in network order: `[u8; 4]`, `[u8; 16]`). As bytes: the prefix length as a native
/// `u32`, then the data (`struct bpf_lpm_trie_key`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LpmKey<K> {
    /// The prefix length in bits.
    pub prefix_len: u32,
    /// The data.
    pub data: K,
}

impl<K> LpmKey<K> {
    /// A key of `prefix_len` bits of `data`.
    pub fn new(prefix_len: u32, data: K) -> Self {
        LpmKey { prefix_len, data }
    }
}

/// A longest-prefix-match trie (`BPF_MAP_TYPE_LPM_TRIE`, Linux 4.11; key iteration 4.16).
/// Created with `BPF_F_NO_PREALLOC` (the create path adds it).
///
/// ```no_run
/// use bpf_maps::{KernelMap, LpmKey, LpmTrie, ANY};
///
/// let map = KernelMap::from_pin("/sys/fs/bpf/routes")?;
/// let routes: LpmTrie<_, [u8; 4], u32> = LpmTrie::new(&map)?;
/// routes.insert(&LpmKey::new(8, [10, 0, 0, 0]), &1, ANY)?;
/// routes.insert(&LpmKey::new(16, [10, 1, 0, 0]), &2, ANY)?;
/// assert_eq!(routes.get(&LpmKey::new(32, [10, 1, 2, 3]))?, Some(2));
/// # Ok::<(), bpf_maps::MapError>(())
/// ```
#[doc(alias = "BPF_MAP_TYPE_LPM_TRIE")]
#[derive(Debug)]
pub struct LpmTrie<M, K, V> {
    map: M,
    _types: PhantomData<fn() -> (K, V)>,
}

view_common!(LpmTrie<M, K, V>);

impl<M: Map, K: Pod, V: Pod> LpmTrie<M, K, V> {
    /// A typed view of an LPM trie whose keys are 4 + `size_of::<K>()` bytes.
    pub fn new(map: M) -> Result<Self, MapError> {
        if size_of::<K>() > MAX_DATA {
            return Err(MapError::size(
                map.name(),
                Part::Key,
                4 + size_of::<K>(),
                4 + MAX_DATA,
            ));
        }
        check(
            &map,
            "LpmTrie",
            &[MapType::LpmTrie],
            Some(4 + size_of::<K>()),
            Some(size_of::<V>()),
        )?;
        Ok(LpmTrie {
            map,
            _types: PhantomData,
        })
    }

    fn with_key<T>(key: &LpmKey<K>, f: impl FnOnce(&[u8]) -> T) -> T {
        let mut buf = [0u8; 4 + MAX_DATA];
        let n = 4 + size_of::<K>();
        buf[..4].copy_from_slice(&key.prefix_len.to_ne_bytes());
        buf[4..n].copy_from_slice(bytemuck::bytes_of(&key.data));
        f(&buf[..n])
    }

    /// The value of the longest prefix that matches `key`, `None` when none does.
    pub fn get(&self, key: &LpmKey<K>) -> Result<Option<V>, MapError> {
        let mut v = V::zeroed();
        Self::with_key(key, |k| {
            found(self.map.lookup_elem(k, bytemuck::bytes_of_mut(&mut v), 0))
        })
        .map(|o| o.map(|()| v))
    }

    /// Sets the prefix `key` to `value`.
    pub fn insert(&self, key: &LpmKey<K>, value: &V, flags: u64) -> Result<(), MapError> {
        Self::with_key(key, |k| {
            self.map.update_elem(k, bytemuck::bytes_of(value), flags)
        })
    }

    /// Removes the exact prefix `key`.
    pub fn remove(&self, key: &LpmKey<K>) -> Result<(), MapError> {
        Self::with_key(key, |k| self.map.delete_elem(k))
    }

    /// The prefixes in the trie.
    pub fn keys(&self) -> impl Iterator<Item = Result<LpmKey<K>, MapError>> + '_ {
        crate::iter::Keys::new(&self.map).map(|k| {
            k.map(|k| LpmKey {
                prefix_len: u32::from_ne_bytes([k[0], k[1], k[2], k[3]]),
                data: bytemuck::pod_read_unaligned(&k[4..]),
            })
        })
    }
}
