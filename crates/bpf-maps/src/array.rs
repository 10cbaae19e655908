//! Typed arrays: [`Array`] over `BPF_MAP_TYPE_ARRAY`.

use std::marker::PhantomData;

use bytemuck::Pod;

use crate::error::MapError;
use crate::typed::{check, view_common};
use crate::{Map, MapType};

/// An array of plain-data values indexed by `u32` (`BPF_MAP_TYPE_ARRAY`, Linux 3.19). Every
/// index below [`Array::len`] has a value (zero until set); elements cannot be deleted.
///
/// ```no_run
/// use bpf_maps::{Array, KernelMap, ANY};
///
/// let map = KernelMap::from_pin("/sys/fs/bpf/config")?;
/// let config: Array<_, u32> = Array::new(&map)?;
/// config.set(0, &42, ANY)?;
/// assert_eq!(config.get(0)?, 42);
/// # Ok::<(), bpf_maps::MapError>(())
/// ```
#[doc(alias = "BPF_MAP_TYPE_ARRAY")]
#[derive(Debug)]
pub struct Array<M, V> {
    map: M,
    _types: PhantomData<fn() -> V>,
}

view_common!(Array<M, V>);

impl<M: Map, V: Pod> Array<M, V> {
    /// A typed view of an array with values of `V`.
    pub fn new(map: M) -> Result<Self, MapError> {
        check(
            &map,
            "Array",
            &[MapType::Array],
            Some(4),
            Some(size_of::<V>()),
        )?;
        Ok(Array {
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

    /// The value at `index` (past the end: an error with [`MapError::is_not_found`]).
    #[inline]
    pub fn get(&self, index: u32) -> Result<V, MapError> {
        let mut v = V::zeroed();
        self.map
            .lookup_elem(&index.to_ne_bytes(), bytemuck::bytes_of_mut(&mut v), 0)?;
        Ok(v)
    }

    /// Sets the value at `index` ([`ANY`](crate::ANY) or [`EXIST`](crate::EXIST); `NOEXIST`
    /// always fails on arrays).
    #[inline]
    pub fn set(&self, index: u32, value: &V, flags: u64) -> Result<(), MapError> {
        self.map
            .update_elem(&index.to_ne_bytes(), bytemuck::bytes_of(value), flags)
    }

    /// Every value, in index order.
    pub fn iter(&self) -> impl Iterator<Item = Result<V, MapError>> + '_ {
        (0..self.len()).map(move |i| self.get(i))
    }
}
