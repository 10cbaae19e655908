//! Per-CPU maps: [`PerCpuValues`], [`PerCpuHashMap`] (`PERCPU_HASH`, `LRU_PERCPU_HASH`) and
//! [`PerCpuArray`] (`PERCPU_ARRAY`).
//!
//! The kernel copies one slot per **possible** CPU (not online), each slot the value size
//! rounded up to 8 bytes. [`PerCpuValues`] holds one `V` per possible CPU, in CPU order; the
//! views convert to and from the padded layout through a scratch buffer they keep, so
//! [`PerCpuHashMap::get_into`] and the setters allocate nothing; when `V`'s size is a multiple
//! of 8 (no padding: `u64`, most structs) the kernel's layout is [`PerCpuValues`]' own and the
//! value goes straight to or from it, without the scratch buffer or its lock.

use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::sync::Mutex;

use bytemuck::Pod;

use crate::error::{MapError, Part};
use crate::iter::{TypedEntries, TypedKeys};
use crate::map::per_cpu_stride;
use crate::typed::{check, found, view_common};
use crate::{Map, MapType};

/// One value per possible CPU, in CPU order.
///
/// ```
/// use bpf_maps::PerCpuValues;
///
/// let v = PerCpuValues::from(vec![1u64, 2, 3]);
/// assert_eq!(v.iter().sum::<u64>(), 6);
/// assert_eq!(v[1], 2);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PerCpuValues<V> {
    values: Vec<V>,
}

impl<V: Pod> PerCpuValues<V> {
    /// `value` on each of `cpus` CPUs.
    pub fn filled(cpus: usize, value: V) -> Self {
        PerCpuValues {
            values: vec![value; cpus],
        }
    }

    /// Zero on each of `cpus` CPUs.
    pub fn zeroed(cpus: usize) -> Self {
        Self::filled(cpus, V::zeroed())
    }

    /// The values.
    pub fn into_vec(self) -> Vec<V> {
        self.values
    }

    /// Reads the kernel's padded layout (`stride` bytes per CPU) into `self`, resized to the
    /// number of slots.
    pub fn read_padded(&mut self, buf: &[u8], stride: usize) {
        let n = size_of::<V>();
        let slots = buf.len() / stride.max(1);
        self.values.resize(slots, V::zeroed());
        for (v, slot) in self.values.iter_mut().zip(buf.chunks(stride.max(1))) {
            bytemuck::bytes_of_mut(v).copy_from_slice(&slot[..n]);
        }
    }

    /// Writes the kernel's padded layout; `buf` holds exactly `len() * stride` bytes.
    pub fn write_padded(&self, buf: &mut [u8], stride: usize) {
        let n = size_of::<V>();
        buf.fill(0);
        for (v, slot) in self.values.iter().zip(buf.chunks_mut(stride.max(1))) {
            slot[..n].copy_from_slice(bytemuck::bytes_of(v));
        }
    }
}

impl<V> From<Vec<V>> for PerCpuValues<V> {
    fn from(values: Vec<V>) -> Self {
        PerCpuValues { values }
    }
}

impl<V> Deref for PerCpuValues<V> {
    type Target = [V];
    fn deref(&self) -> &[V] {
        &self.values
    }
}

impl<V> DerefMut for PerCpuValues<V> {
    fn deref_mut(&mut self) -> &mut [V] {
        &mut self.values
    }
}

/// The padded buffer shared by the per-CPU views.
#[derive(Debug)]
struct Scratch {
    buf: Mutex<Vec<u8>>,
    stride: usize,
    slots: usize,
}

impl Scratch {
    fn new<M: Map>(map: &M) -> Self {
        let stride = per_cpu_stride(map.value_size());
        Scratch {
            buf: Mutex::new(vec![0; map.value_len()]),
            stride,
            slots: map.value_len() / stride.max(1),
        }
    }

    fn read<V: Pod>(
        &self,
        out: &mut PerCpuValues<V>,
        f: impl FnOnce(&mut [u8]) -> Result<(), MapError>,
    ) -> Result<(), MapError> {
        if size_of::<V>() != 0 && self.stride == size_of::<V>() && out.values.len() == self.slots {
            // No padding between slots: the kernel's layout is `out`'s own, so the value is
            // read straight into it (no scratch, no lock, no copy).
            return f(bytemuck::cast_slice_mut(&mut out.values));
        }
        let mut buf = self.buf.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut buf)?;
        out.read_padded(&buf, self.stride);
        Ok(())
    }

    fn write<V: Pod, M: Map>(
        &self,
        map: &M,
        values: &PerCpuValues<V>,
        f: impl FnOnce(&[u8]) -> Result<(), MapError>,
    ) -> Result<(), MapError> {
        if values.len() != self.slots {
            return Err(MapError::size(
                map.name(),
                Part::Value,
                values.len() * self.stride,
                self.slots * self.stride,
            ));
        }
        if size_of::<V>() != 0 && self.stride == size_of::<V>() {
            // No padding: `values` is already the kernel's layout.
            return f(bytemuck::cast_slice(&values.values));
        }
        let mut buf = self.buf.lock().unwrap_or_else(|e| e.into_inner());
        values.write_padded(&mut buf, self.stride);
        f(&buf)
    }
}

/// A per-CPU hash map (`BPF_MAP_TYPE_PERCPU_HASH`, Linux 4.6; `BPF_MAP_TYPE_LRU_PERCPU_HASH`,
/// Linux 4.10).
///
/// ```no_run
/// use bpf_maps::{KernelMap, PerCpuHashMap, PerCpuValues, ANY};
///
/// let map = KernelMap::from_pin("/sys/fs/bpf/per_cpu_counts")?;
/// let counts: PerCpuHashMap<_, u32, u64> = PerCpuHashMap::new(&map)?;
/// counts.insert(&1, &PerCpuValues::filled(counts.cpus(), 0), ANY)?;
/// let total: u64 = counts.get(&1)?.unwrap().iter().sum();
/// # Ok::<(), bpf_maps::MapError>(())
/// ```
#[doc(alias = "BPF_MAP_TYPE_PERCPU_HASH")]
#[doc(alias = "BPF_MAP_TYPE_LRU_PERCPU_HASH")]
#[derive(Debug)]
pub struct PerCpuHashMap<M, K, V> {
    map: M,
    scratch: Scratch,
    _types: PhantomData<fn() -> (K, V)>,
}

/// An LRU per-CPU hash map: the same view as [`PerCpuHashMap`].
pub type LruPerCpuHashMap<M, K, V> = PerCpuHashMap<M, K, V>;

view_common!(PerCpuHashMap<M, K, V>);

impl<M: Map, K: Pod, V: Pod> PerCpuHashMap<M, K, V> {
    /// A typed view of a per-CPU (or LRU per-CPU) hash with keys of `K` and per-CPU values of
    /// `V`.
    pub fn new(map: M) -> Result<Self, MapError> {
        check(
            &map,
            "PerCpuHashMap",
            &[MapType::PerCpuHash, MapType::LruPerCpuHash],
            Some(size_of::<K>()),
            Some(size_of::<V>()),
        )?;
        Ok(PerCpuHashMap {
            scratch: Scratch::new(&map),
            map,
            _types: PhantomData,
        })
    }

    /// The number of per-CPU slots (possible CPUs).
    pub fn cpus(&self) -> usize {
        self.scratch.slots
    }

    /// The values of `key` on every CPU, `None` when missing (allocates the result; see
    /// [`PerCpuHashMap::get_into`]).
    pub fn get(&self, key: &K) -> Result<Option<PerCpuValues<V>>, MapError> {
        let mut out = PerCpuValues::zeroed(self.cpus());
        Ok(self.get_into(key, &mut out)?.then_some(out))
    }

    /// Reads the values of `key` into `out`; `false` when the key is missing.
    pub fn get_into(&self, key: &K, out: &mut PerCpuValues<V>) -> Result<bool, MapError> {
        let k = bytemuck::bytes_of(key);
        found(
            self.scratch
                .read(out, |buf| self.map.lookup_elem(k, buf, 0)),
        )
        .map(|o| o.is_some())
    }

    /// Sets `key` to one value per CPU (exactly [`PerCpuHashMap::cpus`] of them).
    pub fn insert(&self, key: &K, values: &PerCpuValues<V>, flags: u64) -> Result<(), MapError> {
        let k = bytemuck::bytes_of(key);
        self.scratch
            .write(&self.map, values, |buf| self.map.update_elem(k, buf, flags))
    }

    /// Removes `key`.
    pub fn remove(&self, key: &K) -> Result<(), MapError> {
        self.map.delete_elem(bytemuck::bytes_of(key))
    }

    /// The keys.
    pub fn keys(&self) -> TypedKeys<'_, M, K> {
        TypedKeys::new(&self.map)
    }

    /// The keys with their per-CPU values.
    pub fn iter(&self) -> TypedEntries<'_, M, K, PerCpuValues<V>> {
        TypedEntries::new(&self.map, move |k| self.get(k))
    }
}

/// A per-CPU array (`BPF_MAP_TYPE_PERCPU_ARRAY`, Linux 4.6).
///
/// ```no_run
/// use bpf_maps::{KernelMap, PerCpuArray};
///
/// let map = KernelMap::from_pin("/sys/fs/bpf/packets")?;
/// let packets: PerCpuArray<_, u64> = PerCpuArray::new(&map)?;
/// let total: u64 = packets.get(0)?.iter().sum();
/// # Ok::<(), bpf_maps::MapError>(())
/// ```
#[doc(alias = "BPF_MAP_TYPE_PERCPU_ARRAY")]
#[derive(Debug)]
pub struct PerCpuArray<M, V> {
    map: M,
    scratch: Scratch,
    _types: PhantomData<fn() -> V>,
}

view_common!(PerCpuArray<M, V>);

impl<M: Map, V: Pod> PerCpuArray<M, V> {
    /// A typed view of a per-CPU array with per-CPU values of `V`.
    pub fn new(map: M) -> Result<Self, MapError> {
        check(
            &map,
            "PerCpuArray",
            &[MapType::PerCpuArray],
            Some(4),
            Some(size_of::<V>()),
        )?;
        Ok(PerCpuArray {
            scratch: Scratch::new(&map),
            map,
            _types: PhantomData,
        })
    }

    /// The number of elements.
    pub fn len(&self) -> u32 {
        self.map.max_entries()
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The number of per-CPU slots (possible CPUs).
    pub fn cpus(&self) -> usize {
        self.scratch.slots
    }

    /// The values at `index` on every CPU (an index past the end is an error with
    /// [`MapError::is_not_found`]).
    pub fn get(&self, index: u32) -> Result<PerCpuValues<V>, MapError> {
        let mut out = PerCpuValues::zeroed(self.cpus());
        self.get_into(index, &mut out)?;
        Ok(out)
    }

    /// Reads the values at `index` into `out`.
    pub fn get_into(&self, index: u32, out: &mut PerCpuValues<V>) -> Result<(), MapError> {
        let k = index.to_ne_bytes();
        self.scratch
            .read(out, |buf| self.map.lookup_elem(&k, buf, 0))
    }

    /// Sets the values at `index`, one per CPU.
    pub fn set(&self, index: u32, values: &PerCpuValues<V>, flags: u64) -> Result<(), MapError> {
        let k = index.to_ne_bytes();
        self.scratch.write(&self.map, values, |buf| {
            self.map.update_elem(&k, buf, flags)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padded_layout_round_trips_for_odd_sizes() {
        let v: PerCpuValues<[u8; 3]> = vec![[1, 2, 3], [4, 5, 6]].into();
        let mut buf = vec![0xaa; 16];
        v.write_padded(&mut buf, 8);
        assert_eq!(buf, [1, 2, 3, 0, 0, 0, 0, 0, 4, 5, 6, 0, 0, 0, 0, 0]);
        let mut back = PerCpuValues::<[u8; 3]>::default();
        back.read_padded(&buf, 8);
        assert_eq!(back, v);
    }
}
