//! Maps of maps: [`ArrayOfMaps`] and [`HashOfMaps`]. Values are written as map fds and read
//! back as the inner maps' kernel ids.

use std::marker::PhantomData;
use std::os::fd::{AsFd, AsRawFd};

use bytemuck::Pod;

use crate::error::MapError;
use crate::iter::TypedKeys;
use crate::typed::{check, found, view_common};
use crate::{KernelMap, Map, MapType, ANY};

fn fd_bytes(map: &impl AsFd) -> [u8; 4] {
    map.as_fd().as_raw_fd().to_ne_bytes()
}

fn read_id<M: Map>(map: &M, key: &[u8]) -> Result<Option<u32>, MapError> {
    let mut id = [0u8; 4];
    found(map.lookup_elem(key, &mut id, 0)).map(|o| o.map(|()| u32::from_ne_bytes(id)))
}

fn open_id(id: Option<u32>) -> Result<Option<KernelMap>, MapError> {
    id.map(KernelMap::from_id).transpose()
}

/// An array of maps (`BPF_MAP_TYPE_ARRAY_OF_MAPS`, Linux 4.12): slot `i` holds a map of the
/// inner template's shape.
///
/// ```no_run
/// use bpf_maps::{ArrayOfMaps, KernelMap};
///
/// let outer = KernelMap::from_pin("/sys/fs/bpf/outer")?;
/// let inner = KernelMap::from_pin("/sys/fs/bpf/inner")?;
/// let slots = ArrayOfMaps::new(&outer)?;
/// slots.set(0, &inner)?;
/// assert_eq!(slots.get(0)?, Some(inner.id()));
/// # Ok::<(), bpf_maps::MapError>(())
/// ```
#[doc(alias = "BPF_MAP_TYPE_ARRAY_OF_MAPS")]
#[derive(Debug)]
pub struct ArrayOfMaps<M> {
    map: M,
}

view_common!(ArrayOfMaps<M>);

impl<M: Map> ArrayOfMaps<M> {
    /// A typed view of an array of maps.
    pub fn new(map: M) -> Result<Self, MapError> {
        check(
            &map,
            "ArrayOfMaps",
            &[MapType::ArrayOfMaps],
            Some(4),
            Some(4),
        )?;
        Ok(ArrayOfMaps { map })
    }

    /// Stores `inner` at `index`.
    pub fn set(&self, index: u32, inner: &impl AsFd) -> Result<(), MapError> {
        self.map
            .update_elem(&index.to_ne_bytes(), &fd_bytes(inner), ANY)
    }

    /// The kernel id of the map at `index`, `None` for an empty slot.
    pub fn get(&self, index: u32) -> Result<Option<u32>, MapError> {
        read_id(&self.map, &index.to_ne_bytes())
    }

    /// The map at `index`, opened by id (needs CAP_SYS_ADMIN).
    pub fn get_map(&self, index: u32) -> Result<Option<KernelMap>, MapError> {
        open_id(self.get(index)?)
    }

    /// Empties the slot at `index`.
    pub fn clear(&self, index: u32) -> Result<(), MapError> {
        self.map.delete_elem(&index.to_ne_bytes())
    }
}

/// A hash of maps (`BPF_MAP_TYPE_HASH_OF_MAPS`, Linux 4.12) with keys of `K`.
///
/// ```no_run
/// use bpf_maps::{HashOfMaps, KernelMap};
///
/// let outer = KernelMap::from_pin("/sys/fs/bpf/per_tenant")?;
/// let tenants: HashOfMaps<_, u32> = HashOfMaps::new(&outer)?;
/// let template = KernelMap::from_pin("/sys/fs/bpf/tenant_template")?;
/// tenants.insert(&7, &template.new_inner()?)?;
/// # Ok::<(), bpf_maps::MapError>(())
/// ```
#[doc(alias = "BPF_MAP_TYPE_HASH_OF_MAPS")]
#[derive(Debug)]
pub struct HashOfMaps<M, K> {
    map: M,
    _types: PhantomData<fn() -> K>,
}

view_common!(HashOfMaps<M, K>);

impl<M: Map, K: Pod> HashOfMaps<M, K> {
    /// A typed view of a hash of maps with keys of `K`.
    pub fn new(map: M) -> Result<Self, MapError> {
        check(
            &map,
            "HashOfMaps",
            &[MapType::HashOfMaps],
            Some(size_of::<K>()),
            Some(4),
        )?;
        Ok(HashOfMaps {
            map,
            _types: PhantomData,
        })
    }

    /// Stores `inner` at `key` ([`ANY`](crate::ANY)).
    pub fn insert(&self, key: &K, inner: &impl AsFd) -> Result<(), MapError> {
        self.map
            .update_elem(bytemuck::bytes_of(key), &fd_bytes(inner), ANY)
    }

    /// The kernel id of the map at `key`, `None` when missing.
    pub fn get(&self, key: &K) -> Result<Option<u32>, MapError> {
        read_id(&self.map, bytemuck::bytes_of(key))
    }

    /// The map at `key`, opened by id (needs CAP_SYS_ADMIN).
    pub fn get_map(&self, key: &K) -> Result<Option<KernelMap>, MapError> {
        open_id(self.get(key)?)
    }

    /// Removes `key`.
    pub fn remove(&self, key: &K) -> Result<(), MapError> {
        self.map.delete_elem(bytemuck::bytes_of(key))
    }

    /// The keys.
    pub fn keys(&self) -> TypedKeys<'_, M, K> {
        TypedKeys::new(&self.map)
    }
}
