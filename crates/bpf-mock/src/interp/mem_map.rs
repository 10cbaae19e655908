//! [`MemMap`]: a small in-memory [`Map`] for the interpreter's own tests, examples and benchmark.

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};

use bpf_elf::MapSpec;
use bpf_maps::{Map, MapError, MapType};

const ENOENT: i32 = 2;
const E2BIG: i32 = 7;
const EEXIST: i32 = 17;
const EINVAL: i32 = 22;

/// A minimal in-memory map with the kernel's element semantics for the common types: arrays
/// (always present, zeroed), per-CPU arrays and hashes (one 8-byte aligned slot per CPU), fd
/// arrays (program arrays, maps of maps, devmaps: slots present once set), hashes (capacity
/// `max_entries`), LPM tries (longest-prefix lookup), queues and stacks.
///
/// It exists so the interpreter can be tested and measured on its own; the mock maps of this
/// crate are the fuller stand-in for kernel maps. Not thread-safe (a `RefCell` inside).
#[derive(Debug)]
pub struct MemMap {
    name: String,
    map_type: MapType,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    flags: u32,
    cpus: usize,
    inner: RefCell<Store>,
}

#[derive(Debug)]
enum Store {
    Array(Vec<u8>),
    Keyed(BTreeMap<Vec<u8>, Vec<u8>>),
    Queue(VecDeque<Vec<u8>>),
}

impl MemMap {
    /// A map of `spec`'s type and sizes with `cpus` possible CPUs; global data maps start with
    /// the spec's initial bytes.
    pub fn from_spec(spec: &MapSpec, cpus: usize) -> Self {
        let m = MemMap::new(
            &spec.name,
            spec.map_type,
            spec.key_size,
            spec.value_size,
            spec.max_entries,
            spec.flags,
            cpus,
        );
        if let (Some(data), Store::Array(values)) = (&spec.data, &mut *m.inner.borrow_mut()) {
            let n = data.len().min(values.len());
            values[..n].copy_from_slice(&data[..n]);
        }
        m
    }

    /// An empty map (arrays: zeroed elements).
    pub fn new(
        name: &str,
        map_type: MapType,
        key_size: u32,
        value_size: u32,
        max_entries: u32,
        flags: u32,
        cpus: usize,
    ) -> Self {
        let mut m = MemMap {
            name: name.to_string(),
            map_type,
            key_size,
            value_size,
            max_entries,
            flags,
            cpus: cpus.max(1),
            inner: RefCell::new(Store::Queue(VecDeque::new())),
        };
        let store = match map_type {
            MapType::Array | MapType::PerCpuArray => {
                Store::Array(vec![0u8; m.value_len() * max_entries as usize])
            }
            MapType::Queue | MapType::Stack => Store::Queue(VecDeque::new()),
            _ => Store::Keyed(BTreeMap::new()),
        };
        m.inner = RefCell::new(store);
        m
    }

    fn err(&self, errno: i32) -> MapError {
        MapError::from_errno("lookup", &self.name, errno)
    }

    fn check(&self, key: &[u8], value: usize) -> Result<(), MapError> {
        if key.len() != self.key_size as usize || value != self.value_len() {
            return Err(self.err(EINVAL));
        }
        Ok(())
    }

    fn index(&self, key: &[u8]) -> Option<usize> {
        let i = u32::from_le_bytes(key.try_into().ok()?) as usize;
        (i < self.max_entries as usize).then_some(i)
    }

    fn is_fd_array(&self) -> bool {
        matches!(
            self.map_type,
            MapType::ProgArray
                | MapType::PerfEventArray
                | MapType::ArrayOfMaps
                | MapType::DevMap
                | MapType::CpuMap
                | MapType::XskMap
                | MapType::CgroupArray
        )
    }

    fn lpm_find<'a>(
        &self,
        store: &'a BTreeMap<Vec<u8>, Vec<u8>>,
        key: &[u8],
    ) -> Option<&'a Vec<u8>> {
        let want = u32::from_le_bytes(key.get(..4)?.try_into().ok()?);
        let data = &key[4..];
        store
            .iter()
            .filter(|(k, _)| {
                let plen = u32::from_le_bytes([k[0], k[1], k[2], k[3]]);
                plen <= want && prefix_eq(&k[4..], data, plen as usize)
            })
            .max_by_key(|(k, _)| u32::from_le_bytes([k[0], k[1], k[2], k[3]]))
            .map(|(_, v)| v)
    }
}

fn prefix_eq(a: &[u8], b: &[u8], bits: usize) -> bool {
    let full = bits / 8;
    if a.len() < full || b.len() < full || a[..full] != b[..full] {
        return false;
    }
    let rest = bits % 8;
    rest == 0 || {
        let mask = 0xffu8 << (8 - rest);
        a.get(full).map(|x| x & mask) == b.get(full).map(|x| x & mask)
    }
}

impl Map for MemMap {
    fn name(&self) -> &str {
        &self.name
    }
    fn map_type(&self) -> MapType {
        self.map_type
    }
    fn key_size(&self) -> u32 {
        self.key_size
    }
    fn value_size(&self) -> u32 {
        self.value_size
    }
    fn max_entries(&self) -> u32 {
        self.max_entries
    }
    fn flags(&self) -> u32 {
        self.flags
    }
    fn value_len(&self) -> usize {
        if self.is_per_cpu() {
            bpf_maps::per_cpu_stride(self.value_size) * self.cpus
        } else {
            self.value_size as usize
        }
    }

    fn lookup_elem(&self, key: &[u8], value: &mut [u8], _flags: u64) -> Result<(), MapError> {
        let inner = self.inner.borrow();
        match &*inner {
            Store::Queue(q) => {
                let v = match self.map_type {
                    MapType::Stack => q.back(),
                    _ => q.front(),
                };
                let v = v.ok_or_else(|| self.err(ENOENT))?;
                value
                    .get_mut(..v.len())
                    .ok_or_else(|| self.err(EINVAL))?
                    .copy_from_slice(v);
                Ok(())
            }
            Store::Array(values) => {
                self.check(key, value.len())?;
                let i = self.index(key).ok_or_else(|| self.err(ENOENT))?;
                value.copy_from_slice(&values[i * value.len()..(i + 1) * value.len()]);
                Ok(())
            }
            Store::Keyed(store) => {
                self.check(key, value.len())?;
                let v = if self.map_type == MapType::LpmTrie {
                    self.lpm_find(store, key)
                } else {
                    store.get(key)
                };
                value.copy_from_slice(v.ok_or_else(|| self.err(ENOENT))?);
                Ok(())
            }
        }
    }

    fn update_elem(&self, key: &[u8], value: &[u8], flags: u64) -> Result<(), MapError> {
        let mut inner = self.inner.borrow_mut();
        match &mut *inner {
            Store::Queue(q) => {
                if value.len() != self.value_size as usize {
                    return Err(self.err(EINVAL));
                }
                if q.len() >= self.max_entries as usize {
                    if flags & bpf_maps::EXIST == 0 {
                        return Err(self.err(E2BIG));
                    }
                    q.pop_front();
                }
                q.push_back(value.to_vec());
                Ok(())
            }
            Store::Array(values) => {
                self.check(key, value.len())?;
                let i = self.index(key).ok_or_else(|| self.err(E2BIG))?;
                if flags & 3 == bpf_maps::NOEXIST {
                    return Err(self.err(EEXIST));
                }
                values[i * value.len()..(i + 1) * value.len()].copy_from_slice(value);
                Ok(())
            }
            Store::Keyed(store) => {
                self.check(key, value.len())?;
                if self.is_fd_array() && self.index(key).is_none() {
                    return Err(self.err(E2BIG));
                }
                let present = store.contains_key(key);
                match flags & 3 {
                    f if f == bpf_maps::NOEXIST && present => return Err(self.err(EEXIST)),
                    f if f == bpf_maps::EXIST && !present => return Err(self.err(ENOENT)),
                    _ => {}
                }
                if !present && store.len() >= self.max_entries as usize {
                    return Err(self.err(E2BIG));
                }
                store.insert(key.to_vec(), value.to_vec());
                Ok(())
            }
        }
    }

    fn delete_elem(&self, key: &[u8]) -> Result<(), MapError> {
        match &mut *self.inner.borrow_mut() {
            Store::Keyed(store) => store.remove(key).map(drop).ok_or_else(|| self.err(ENOENT)),
            _ => Err(self.err(EINVAL)),
        }
    }

    fn get_next_key(&self, key: Option<&[u8]>, next: &mut [u8]) -> Result<bool, MapError> {
        let inner = self.inner.borrow();
        let found: Option<Vec<u8>> = match &*inner {
            Store::Queue(_) => return Err(self.err(EINVAL)),
            Store::Array(_) => {
                let i = match key.and_then(|k| self.index(k)) {
                    Some(i) => i + 1,
                    None => 0,
                };
                (i < self.max_entries as usize).then(|| (i as u32).to_le_bytes().to_vec())
            }
            Store::Keyed(store) => match key {
                None => store.keys().next().cloned(),
                Some(k) => store
                    .range::<[u8], _>((std::ops::Bound::Excluded(k), std::ops::Bound::Unbounded))
                    .next()
                    .map(|(k, _)| k.clone()),
            },
        };
        match found {
            Some(k) if k.len() == next.len() => {
                next.copy_from_slice(&k);
                Ok(true)
            }
            Some(_) => Err(self.err(EINVAL)),
            None => Ok(false),
        }
    }

    fn lookup_and_delete_elem(
        &self,
        key: &[u8],
        value: &mut [u8],
        _flags: u64,
    ) -> Result<(), MapError> {
        match &mut *self.inner.borrow_mut() {
            Store::Queue(q) => {
                let v = match self.map_type {
                    MapType::Stack => q.pop_back(),
                    _ => q.pop_front(),
                };
                let v = v.ok_or_else(|| self.err(ENOENT))?;
                value
                    .get_mut(..v.len())
                    .ok_or_else(|| self.err(EINVAL))?
                    .copy_from_slice(&v);
                Ok(())
            }
            Store::Keyed(store) => {
                let v = store.remove(key).ok_or_else(|| self.err(ENOENT))?;
                value
                    .get_mut(..v.len())
                    .ok_or_else(|| self.err(EINVAL))?
                    .copy_from_slice(&v);
                Ok(())
            }
            Store::Array(_) => Err(self.err(EINVAL)),
        }
    }
}
