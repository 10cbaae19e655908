//! [`MockMap`]: an in-memory map that answers as the kernel does.
//!
//! One type for every map type; the behaviour of each family lives in its own module:
//! [`hash`] (hash, per-CPU hash, LRU, hash of maps), [`array`] (arrays, per-CPU arrays and the
//! fd arrays: program arrays, arrays of maps), [`lpm`] (longest-prefix-match tries) and
//! [`queue`] (queues, stacks, bloom filters).
//!
//! The stores answer with a bare errno; this module turns it into the [`MapError`] the
//! kernel's map would give ([`MapError::from_errno`]), after the same size checks
//! [`KernelMap`](bpf_maps::KernelMap) makes before its system call.

mod array;
mod hash;
mod lpm;
mod queue;

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use bpf_maps::{per_cpu_stride, Map, MapError, MapSpec, MapType, Part, F_LOCK};

use crate::errno::{EBADF, EINVAL, ENOTSUPP, EPERM};
use crate::error_injection::{map_error, Faults, MapOp, Times};
use crate::registry::{self, Entry};

/// The number of possible CPUs a mock map assumes unless told otherwise
/// ([`MockMap::with_cpus`], [`MockSystemBuilder::cpus`](crate::MockSystemBuilder::cpus)).
pub const DEFAULT_CPUS: usize = 4;

/// `BPF_F_RDONLY`: user space may not write.
const F_RDONLY: u32 = 1 << 3;
/// `BPF_F_WRONLY`: user space may not read.
const F_WRONLY: u32 = 1 << 4;
/// `BPF_F_INNER_MAP`: inner maps may differ in `max_entries`.
const F_INNER_MAP: u32 = 1 << 12;

/// What an fd-holding slot keeps alive, as the kernel holds a reference.
#[derive(Debug, Clone)]
pub(crate) enum Held {
    Map(Arc<Inner>),
    Program,
}

/// The per-type contents.
#[derive(Debug)]
pub(crate) enum Store {
    Hash(hash::HashStore),
    Array(array::ArrayStore),
    FdArray(array::FdArray),
    Lpm(lpm::LpmStore),
    Fifo(queue::Fifo),
    Bloom(queue::Bloom),
    /// Ring buffers, stack traces and other types whose elements user space does not reach
    /// with the element commands: every operation answers `ENOTSUPP`.
    Opaque,
}

#[derive(Debug)]
pub(crate) struct State {
    store: Store,
    frozen: bool,
}

/// The shared part of a [`MockMap`]: clones share it, as fds of one kernel map do.
pub(crate) struct Inner {
    spec: MapSpec,
    cpus: usize,
    value_len: usize,
    fd: i32,
    id: u32,
    state: Mutex<State>,
    faults: Faults<MapOp>,
}

impl fmt::Debug for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockMap")
            .field("name", &self.spec.name)
            .field("map_type", &self.spec.map_type)
            .field("key_size", &self.spec.key_size)
            .field("value_size", &self.spec.value_size)
            .field("max_entries", &self.spec.max_entries)
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        registry::unregister(self.fd);
    }
}

/// An in-memory map with the kernel's semantics, implementing [`Map`] (so [`MapExt`] and the
/// typed views of `bpf-maps` work over it).
///
/// Cloning gives another handle on the same map (as duplicating an fd does). It is `Send` and
/// `Sync`: share it between threads with `&`, `Arc` or clones; each operation is atomic.
///
/// ```
/// use bpf_maps::{errno, MapExt, MapSpec, MapType};
/// use bpf_mock::MockMap;
///
/// let map = MockMap::new(&MapSpec::new("counts", MapType::Hash, 4, 8, 2))?;
/// map.insert(&1u32, &10u64)?;
/// assert!(map.insert(&1u32, &11u64).unwrap_err().is_exists());       // BPF_NOEXIST
/// assert!(map.update(&2u32, &20u64).unwrap_err().is_not_found());    // BPF_EXIST
/// map.upsert(&2u32, &20u64)?;
/// let full = map.upsert(&3u32, &30u64).unwrap_err();                 // max_entries reached
/// assert_eq!(full.errno(), Some(errno::E2BIG));
/// # Ok::<(), bpf_maps::MapError>(())
/// ```
///
/// [`MapExt`]: bpf_maps::MapExt
#[derive(Clone)]
pub struct MockMap {
    inner: Arc<Inner>,
}

impl fmt::Debug for MockMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

fn create_error(map: &str, errno: i32, reason: impl Into<String>) -> MapError {
    match MapError::from_errno("create", map, errno) {
        MapError::Op { map, source, .. } => MapError::Create { map, source },
        _ => MapError::InvalidSpec {
            map: map.to_string(),
            reason: reason.into(),
        },
    }
}

impl MockMap {
    /// A mock map of `spec`, normalised as [`KernelMap::create`](bpf_maps::KernelMap::create)
    /// does, with [`DEFAULT_CPUS`] possible CPUs. A spec the kernel refuses (a zero size, an
    /// array key that is not 4 bytes, an LPM key out of range) is a [`MapError::Create`] with
    /// `EINVAL`; `data` fills key 0 and `freeze` freezes the map, as for global data.
    pub fn new(spec: &MapSpec) -> Result<Self, MapError> {
        Self::with_cpus(spec, DEFAULT_CPUS)
    }

    /// As [`MockMap::new`], with `cpus` possible CPUs (the per-CPU slots of each value).
    pub fn with_cpus(spec: &MapSpec, cpus: usize) -> Result<Self, MapError> {
        let cpus = cpus.max(1);
        let spec = bpf_maps::create::normalize_with(spec, cpus)?;
        let store =
            Self::store_for(&spec).map_err(|reason| create_error(&spec.name, EINVAL, reason))?;
        let value_len = if is_per_cpu(spec.map_type) {
            per_cpu_stride(spec.value_size) * cpus
        } else {
            spec.value_size as usize
        };
        let fd = registry::next_fd();
        let inner = Arc::new(Inner {
            cpus,
            value_len,
            fd,
            id: registry::next_map_id(),
            state: Mutex::new(State {
                store,
                frozen: false,
            }),
            faults: Faults::default(),
            spec,
        });
        registry::register(fd, Entry::Map(Arc::downgrade(&inner)));
        let map = MockMap { inner };
        if let Some(data) = map.inner.spec.data.clone() {
            let mut value = vec![0u8; map.inner.value_len];
            let n = data.len().min(value.len());
            value[..n].copy_from_slice(&data[..n]);
            map.update_elem(&0u32.to_ne_bytes(), &value, bpf_maps::ANY)?;
        }
        if map.inner.spec.freeze {
            map.freeze();
        }
        Ok(map)
    }

    fn store_for(spec: &MapSpec) -> Result<Store, String> {
        let (k, v, max) = (spec.key_size, spec.value_size, spec.max_entries);
        let need = |ok: bool, what: &str| if ok { Ok(()) } else { Err(what.to_string()) };
        need(
            max > 0 || spec.map_type == MapType::RingBuf,
            "max_entries is 0",
        )?;
        Ok(match spec.map_type {
            MapType::Hash
            | MapType::PerCpuHash
            | MapType::LruHash
            | MapType::LruPerCpuHash
            | MapType::DevMapHash
            | MapType::SockHash => {
                need(k > 0 && v > 0, "key and value sizes must not be 0")?;
                let lru = matches!(spec.map_type, MapType::LruHash | MapType::LruPerCpuHash);
                Store::Hash(hash::HashStore::new(lru, None))
            }
            MapType::HashOfMaps => {
                need(k > 0 && v == 4, "a hash of maps has 4-byte values")?;
                Store::Hash(hash::HashStore::new(false, Some(spec.inner_map.clone())))
            }
            MapType::Array | MapType::PerCpuArray => {
                need(k == 4 && v > 0, "an array has 4-byte keys and a value")?;
                Store::Array(array::ArrayStore::new(max))
            }
            MapType::ProgArray => {
                need(
                    k == 4 && v == 4,
                    "a program array has 4-byte keys and values",
                )?;
                Store::FdArray(array::FdArray::new(max, array::FdKind::Program))
            }
            MapType::ArrayOfMaps => {
                need(
                    k == 4 && v == 4,
                    "an array of maps has 4-byte keys and values",
                )?;
                let template = spec.inner_map.clone();
                Store::FdArray(array::FdArray::new(max, array::FdKind::Map(template)))
            }
            MapType::PerfEventArray
            | MapType::CgroupArray
            | MapType::DevMap
            | MapType::CpuMap
            | MapType::XskMap
            | MapType::SockMap => {
                need(k == 4 && v > 0, "this array has 4-byte keys")?;
                Store::FdArray(array::FdArray::new(max, array::FdKind::Raw))
            }
            MapType::LpmTrie => {
                need(
                    (5..=260).contains(&k) && v > 0,
                    "an LPM trie key is 5 to 260 bytes",
                )?;
                Store::Lpm(lpm::LpmStore::new(k - 4))
            }
            MapType::Queue | MapType::Stack => {
                need(k == 0 && v > 0, "a queue or stack has no key and a value")?;
                Store::Fifo(queue::Fifo::new(spec.map_type == MapType::Stack))
            }
            MapType::BloomFilter => {
                need(k == 0 && v > 0, "a bloom filter has no key and a value")?;
                Store::Bloom(queue::Bloom::default())
            }
            _ => Store::Opaque,
        })
    }

    /// The spec the map was made from, normalised.
    pub fn spec(&self) -> &MapSpec {
        &self.inner.spec
    }

    /// The number of possible CPUs this map assumes.
    pub fn cpus(&self) -> usize {
        self.inner.cpus
    }

    /// The map's id, what program arrays and maps of maps answer for a lookup of a slot that
    /// holds it (as the kernel answers the map's id).
    pub fn id(&self) -> u32 {
        self.inner.id
    }

    /// The number standing for this map's fd: write it (as an `i32`) into an array or hash of
    /// maps, as a real map's fd would be. No real fd exists.
    pub fn mock_fd(&self) -> i32 {
        self.inner.fd
    }

    /// The elements held (for arrays: `max_entries`, every index exists).
    pub fn len(&self) -> usize {
        match &self.state().store {
            Store::Hash(h) => h.len(),
            Store::Array(_) => self.inner.spec.max_entries as usize,
            Store::FdArray(a) => a.len(),
            Store::Lpm(l) => l.len(),
            Store::Fifo(q) => q.len(),
            Store::Bloom(b) => b.len(),
            Store::Opaque => 0,
        }
    }

    /// Whether [`MockMap::len`] is 0.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `BPF_MAP_FREEZE`: from now on updates and deletes answer `EPERM`.
    pub fn freeze(&self) {
        self.state().frozen = true;
    }

    /// Whether the map is frozen.
    pub fn is_frozen(&self) -> bool {
        self.state().frozen
    }

    /// Empties the map (arrays: every value back to zero), keeping faults and the frozen state.
    pub fn clear(&self) {
        let fresh = Self::store_for(&self.inner.spec).unwrap_or(Store::Opaque);
        self.state().store = fresh;
    }

    /// Makes every `op` fail with `errno` until [`MockMap::clear_faults`]
    /// ([`MapOp::Any`]: every element operation).
    pub fn fail(&self, op: MapOp, errno: i32) {
        self.inner.faults.inject(op, errno, Times::Always);
    }

    /// Makes the next `times` of `op` fail with `errno`.
    pub fn fail_times(&self, op: MapOp, errno: i32, times: u32) {
        self.inner.faults.inject(op, errno, Times::Count(times));
    }

    /// Drops every injected failure.
    pub fn clear_faults(&self) {
        self.inner.faults.clear();
    }

    /// For a map of maps: the mock map held at `key` (4 bytes for an array of maps).
    pub fn inner_map(&self, key: &[u8]) -> Option<MockMap> {
        let state = self.state();
        let held = match &state.store {
            Store::FdArray(a) => a.held(key),
            Store::Hash(h) => h.held(key),
            _ => None,
        }?;
        match held {
            Held::Map(inner) => Some(MockMap { inner }),
            Held::Program => None,
        }
    }

    /// For a map of maps: a new, empty mock map of the inner template's shape, to store in it.
    pub fn new_inner(&self) -> Result<MockMap, MapError> {
        let Some(template) = &self.inner.spec.inner_map else {
            return Err(MapError::InvalidSpec {
                map: self.inner.spec.name.to_string(),
                reason: "no inner map template".into(),
            });
        };
        let mut spec = (**template).clone();
        spec.pinning = bpf_maps::Pinning::None;
        spec.data = None;
        spec.freeze = false;
        MockMap::with_cpus(&spec, self.inner.cpus)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn check(&self, part: Part, got: usize) -> Result<(), MapError> {
        let expected = match part {
            Part::Key => self.inner.spec.key_size as usize,
            Part::Value => self.inner.value_len,
        };
        if got == expected {
            Ok(())
        } else {
            Err(MapError::Size {
                map: self.inner.spec.name.to_string(),
                part,
                got,
                expected,
            })
        }
    }

    fn err(&self, op: MapOp, errno: i32) -> MapError {
        map_error(op, &self.inner.spec.name, errno)
    }

    /// The injected fault, then the kernel's permission check, for `op`.
    fn gate(&self, op: MapOp, state: &State) -> Result<(), MapError> {
        if let Some(errno) = self.inner.faults.take(op) {
            return Err(self.err(op, errno));
        }
        let flags = self.inner.spec.flags;
        let writes = matches!(op, MapOp::Update | MapOp::Delete | MapOp::LookupAndDelete);
        let reads = matches!(op, MapOp::Lookup | MapOp::NextKey | MapOp::LookupAndDelete);
        if writes && (state.frozen || flags & F_RDONLY != 0) || reads && flags & F_WRONLY != 0 {
            return Err(self.err(op, EPERM));
        }
        Ok(())
    }

    fn ctx(&self) -> Ctx {
        Ctx {
            max_entries: self.inner.spec.max_entries,
        }
    }
}

/// What the stores need to know about their map.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ctx {
    pub max_entries: u32,
}

fn is_per_cpu(t: MapType) -> bool {
    matches!(
        t,
        MapType::PerCpuHash | MapType::PerCpuArray | MapType::LruPerCpuHash
    )
}

/// The object a 4-byte fd value names, checked against what the slot may hold: `EBADF` for
/// a number that is no mock fd, `EINVAL` for the wrong kind of object or an inner map of
/// another shape than the template.
pub(crate) fn resolve_fd(
    value: &[u8],
    want: &array::FdKind,
) -> Result<(Vec<u8>, Option<Held>), i32> {
    let raw: [u8; 4] = value
        .get(..4)
        .and_then(|v| v.try_into().ok())
        .ok_or(EINVAL)?;
    let entry = match want {
        array::FdKind::Raw => return Ok((value.to_vec(), None)),
        _ => registry::resolve(i32::from_ne_bytes(raw)).ok_or(EBADF)?,
    };
    match (want, entry) {
        (array::FdKind::Program, Entry::Program { id, .. }) => {
            Ok((id.to_ne_bytes().to_vec(), Some(Held::Program)))
        }
        (array::FdKind::Map(template), Entry::Map(weak)) => {
            let inner = weak.upgrade().ok_or(EBADF)?;
            let s = &inner.spec;
            if matches!(s.map_type, MapType::ArrayOfMaps | MapType::HashOfMaps) {
                return Err(EINVAL);
            }
            if let Some(t) = template {
                let t = bpf_maps::create::normalize_with(t, inner.cpus).map_err(|_| EINVAL)?;
                let same = t.map_type == s.map_type
                    && t.key_size == s.key_size
                    && t.value_size == s.value_size
                    && (t.flags & !F_INNER_MAP) == (s.flags & !F_INNER_MAP)
                    && (t.flags & F_INNER_MAP != 0 || t.max_entries == s.max_entries);
                if !same {
                    return Err(EINVAL);
                }
            }
            Ok((inner.id.to_ne_bytes().to_vec(), Some(Held::Map(inner))))
        }
        _ => Err(EINVAL),
    }
}

impl Map for MockMap {
    fn name(&self) -> &str {
        &self.inner.spec.name
    }
    fn map_type(&self) -> MapType {
        self.inner.spec.map_type
    }
    fn key_size(&self) -> u32 {
        self.inner.spec.key_size
    }
    fn value_size(&self) -> u32 {
        self.inner.spec.value_size
    }
    fn max_entries(&self) -> u32 {
        self.inner.spec.max_entries
    }
    fn flags(&self) -> u32 {
        self.inner.spec.flags
    }
    fn value_len(&self) -> usize {
        self.inner.value_len
    }
    fn is_per_cpu(&self) -> bool {
        is_per_cpu(self.inner.spec.map_type)
    }

    fn lookup_elem(&self, key: &[u8], value: &mut [u8], flags: u64) -> Result<(), MapError> {
        self.check(Part::Key, key.len())?;
        self.check(Part::Value, value.len())?;
        let op = MapOp::Lookup;
        let state = self.state();
        self.gate(op, &state)?;
        // Only BPF_F_LOCK is allowed, and only for values with a spin lock (mocks have none).
        if flags != 0 {
            return Err(self.err(op, EINVAL));
        }
        let r = match &state.store {
            Store::Hash(h) => h.lookup(key, value),
            Store::Array(a) => a.lookup(key, value),
            Store::FdArray(a) => a.lookup(key, value),
            Store::Lpm(l) => l.lookup(key, value),
            Store::Fifo(q) => q.peek(value),
            Store::Bloom(b) => b.peek(value),
            Store::Opaque => Err(ENOTSUPP),
        };
        r.map_err(|e| self.err(op, e))
    }

    fn update_elem(&self, key: &[u8], value: &[u8], flags: u64) -> Result<(), MapError> {
        self.check(Part::Key, key.len())?;
        self.check(Part::Value, value.len())?;
        let op = MapOp::Update;
        let ctx = self.ctx();
        let mut state = self.state();
        self.gate(op, &state)?;
        if flags & F_LOCK != 0 {
            return Err(self.err(op, EINVAL));
        }
        let r = match &mut state.store {
            Store::Hash(h) => h.update(ctx, key, value, flags),
            Store::Array(a) => a.update(ctx, key, value, flags),
            Store::FdArray(a) => a.update(ctx, key, value, flags),
            Store::Lpm(l) => l.update(ctx, key, value, flags),
            Store::Fifo(q) => q.push(ctx, value, flags),
            Store::Bloom(b) => b.push(value, flags),
            Store::Opaque => Err(ENOTSUPP),
        };
        r.map_err(|e| self.err(op, e))
    }

    fn delete_elem(&self, key: &[u8]) -> Result<(), MapError> {
        self.check(Part::Key, key.len())?;
        let op = MapOp::Delete;
        let ctx = self.ctx();
        let mut state = self.state();
        self.gate(op, &state)?;
        let r = match &mut state.store {
            Store::Hash(h) => h.delete(key),
            // Every index of an array exists for ever.
            Store::Array(_) | Store::Fifo(_) => Err(EINVAL),
            Store::FdArray(a) => a.delete(ctx, key),
            Store::Lpm(l) => l.delete(key),
            Store::Bloom(_) => Err(crate::errno::EOPNOTSUPP),
            Store::Opaque => Err(ENOTSUPP),
        };
        r.map_err(|e| self.err(op, e))
    }

    fn get_next_key(&self, key: Option<&[u8]>, next: &mut [u8]) -> Result<bool, MapError> {
        if let Some(k) = key {
            self.check(Part::Key, k.len())?;
        }
        self.check(Part::Key, next.len())?;
        let op = MapOp::NextKey;
        let ctx = self.ctx();
        let state = self.state();
        self.gate(op, &state)?;
        let r = match &state.store {
            Store::Hash(h) => Ok(h.next_key(key)),
            Store::Array(_) | Store::FdArray(_) => Ok(array::next_index(ctx, key)),
            Store::Lpm(l) => Ok(l.next_key(key)),
            Store::Fifo(_) => Err(EINVAL),
            Store::Bloom(_) => Err(crate::errno::EOPNOTSUPP),
            Store::Opaque => Err(ENOTSUPP),
        };
        match r.map_err(|e| self.err(op, e))? {
            Some(k) => {
                next.copy_from_slice(&k);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn lookup_and_delete_elem(
        &self,
        key: &[u8],
        value: &mut [u8],
        flags: u64,
    ) -> Result<(), MapError> {
        self.check(Part::Key, key.len())?;
        self.check(Part::Value, value.len())?;
        let op = MapOp::LookupAndDelete;
        let mut state = self.state();
        self.gate(op, &state)?;
        if flags != 0 {
            return Err(self.err(op, EINVAL));
        }
        let r = match &mut state.store {
            Store::Fifo(q) => q.pop(value),
            Store::Hash(h)
                if !matches!(
                    self.inner.spec.map_type,
                    MapType::HashOfMaps | MapType::DevMapHash | MapType::SockHash
                ) =>
            {
                h.lookup(key, value).and_then(|()| h.delete(key))
            }
            _ => Err(ENOTSUPP),
        };
        r.map_err(|e| self.err(op, e))
    }
}
