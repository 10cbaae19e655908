//! The byte-level map trait [`Map`], its goebpf-style extension [`MapExt`], and the kernel map
//! handle [`KernelMap`].

use std::fmt;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use bpf_elf::{MapSpec, ObjectSpec};
use bpf_sys::map::{MapFd, MapLayout};
use bpf_sys::{uapi, MapType, SysError};

use crate::batch::BatchCursor;
use crate::convert::{ne_to_u64, KeyValue};
use crate::error::{ConvertError, MapError, Part};
use crate::iter::{Entries, EntryWalk, Keys};

/// `BPF_ANY`: create or replace.
pub const ANY: u64 = uapi::BPF_ANY as u64;
/// `BPF_NOEXIST`: create only (`EEXIST` if the key is there).
pub const NOEXIST: u64 = uapi::BPF_NOEXIST as u64;
/// `BPF_EXIST`: replace only (`ENOENT` if the key is missing).
pub const EXIST: u64 = uapi::BPF_EXIST as u64;
/// `BPF_F_LOCK`: copy the value under its `bpf_spin_lock`.
pub const F_LOCK: u64 = uapi::BPF_F_LOCK as u64;

/// A map, byte-level: its metadata and the element operations on byte slices.
///
/// Object-safe, so a `&dyn Map` can stand for any map. [`KernelMap`] implements it for maps in
/// the kernel; `bpf-mock` implements it in memory with the same typed errors and errnos. Keys
/// are exactly [`Map::key_size`] bytes and values exactly [`Map::value_len`] bytes (per-CPU maps:
/// one 8-byte-aligned slot per possible CPU); other lengths are a [`MapError::Size`].
///
/// The goebpf conversions (`insert`, `lookup_int`, ...) are the provided methods of [`MapExt`],
/// implemented for every `Map`; the typed views ([`HashMap`](crate::HashMap), ...) take any
/// `M: Map`, `&M` included.
pub trait Map: fmt::Debug {
    /// The map's name (the kernel keeps at most 15 bytes of it).
    fn name(&self) -> &str;
    /// The map type.
    fn map_type(&self) -> MapType;
    /// Key size in bytes.
    fn key_size(&self) -> u32;
    /// Value size in bytes, as created (per CPU, for per-CPU maps).
    fn value_size(&self) -> u32;
    /// Capacity.
    fn max_entries(&self) -> u32;
    /// `BPF_F_*` flags.
    fn flags(&self) -> u32;
    /// Bytes of one value as the element operations copy it: [`Map::value_size`], or for
    /// per-CPU maps `round_up(value_size, 8) * possible CPUs`.
    fn value_len(&self) -> usize;

    /// `BPF_MAP_LOOKUP_ELEM`: copies the value of `key` into `value` (`ENOENT` if missing).
    fn lookup_elem(&self, key: &[u8], value: &mut [u8], flags: u64) -> Result<(), MapError>;
    /// `BPF_MAP_UPDATE_ELEM` with [`ANY`], [`NOEXIST`] or [`EXIST`] (and [`F_LOCK`]).
    fn update_elem(&self, key: &[u8], value: &[u8], flags: u64) -> Result<(), MapError>;
    /// `BPF_MAP_DELETE_ELEM` (`ENOENT` if missing; arrays answer `EINVAL`).
    fn delete_elem(&self, key: &[u8]) -> Result<(), MapError>;
    /// `BPF_MAP_GET_NEXT_KEY`: writes the key after `key` (`None`: the first) into `next`;
    /// `Ok(false)` at the end.
    fn get_next_key(&self, key: Option<&[u8]>, next: &mut [u8]) -> Result<bool, MapError>;
    /// `BPF_MAP_LOOKUP_AND_DELETE_ELEM` (queues and stacks with an empty key: pop; hashes since
    /// Linux 5.14).
    fn lookup_and_delete_elem(
        &self,
        key: &[u8],
        value: &mut [u8],
        flags: u64,
    ) -> Result<(), MapError>;

    /// Whether values hold one slot per possible CPU.
    fn is_per_cpu(&self) -> bool {
        bpf_sys::map::is_per_cpu(self.map_type().as_u32())
    }

    /// The per-CPU slots in one value (1 for other maps).
    fn value_slots(&self) -> usize {
        if self.is_per_cpu() {
            self.value_len() / per_cpu_stride(self.value_size()).max(1)
        } else {
            1
        }
    }

    /// Queue or stack: pushes `value` (`flags`: [`ANY`], or `BPF_EXIST` to overwrite the
    /// oldest element when full).
    fn push_elem(&self, value: &[u8], flags: u64) -> Result<(), MapError> {
        self.update_elem(&[], value, flags)
    }

    /// Queue or stack: removes the next element into `value` (`ENOENT` when empty).
    fn pop_elem(&self, value: &mut [u8]) -> Result<(), MapError> {
        self.lookup_and_delete_elem(&[], value, 0)
    }

    /// Queue or stack: copies the next element into `value` without removing it.
    fn peek_elem(&self, value: &mut [u8]) -> Result<(), MapError> {
        self.lookup_elem(&[], value, 0)
    }

    /// Batch lookup: copies up to `min(keys.len() / key_len, values.len() / value_len)`
    /// elements after `cursor` into the packed buffers and returns how many; 0 with
    /// [`BatchCursor::is_done`] at the end. See [`crate::batch`].
    ///
    /// The provided method walks with next key and lookup; [`KernelMap`] uses
    /// `BPF_MAP_LOOKUP_BATCH` where the kernel has it.
    fn lookup_batch(
        &self,
        cursor: &mut BatchCursor,
        keys: &mut [u8],
        values: &mut [u8],
    ) -> Result<usize, MapError> {
        crate::batch::fallback_lookup(self, cursor, keys, values, false)
    }

    /// As [`Map::lookup_batch`], removing the elements it returns.
    fn lookup_and_delete_batch(
        &self,
        cursor: &mut BatchCursor,
        keys: &mut [u8],
        values: &mut [u8],
    ) -> Result<usize, MapError> {
        crate::batch::fallback_lookup(self, cursor, keys, values, true)
    }

    /// Batch update of the packed `keys` and `values` (as many elements as `keys` holds);
    /// returns the count. On failure, [`MapError::Batch`] says how many were applied.
    fn update_batch(&self, keys: &[u8], values: &[u8], flags: u64) -> Result<usize, MapError> {
        crate::batch::fallback_update(self, keys, values, flags)
    }

    /// Batch delete of the packed `keys`; returns the count.
    fn delete_batch(&self, keys: &[u8]) -> Result<usize, MapError> {
        crate::batch::fallback_delete(self, keys)
    }
}

/// Bytes of a key or value [`MapExt`] converts or reads on the stack (a per-CPU `u64` for up to
/// 8 possible CPUs); larger ones go to the heap.
const STACK_BYTES: usize = 64;

// How `MapExt` stays as fast as the typed views: a key or value whose own bytes are already
// the map's bytes (`KeyValue::exact_bytes`: an integer of the key's width, a byte string of
// its length) is passed borrowed, as the typed views pass theirs, and the element command is
// inlined into the operation. Anything else (widening, padding, addresses, CIDRs) is
// converted out of line into a `Scratch` buffer in the converting function's frame, built in
// place and lent, never moved through a `Result`.

/// Room for one key or value being converted: a stack array, and a heap buffer used only past
/// [`STACK_BYTES`].
struct Scratch {
    stack: [u8; STACK_BYTES],
    heap: Vec<u8>,
}

impl Scratch {
    #[inline(always)]
    fn new() -> Self {
        Scratch {
            stack: [0; STACK_BYTES],
            heap: Vec::new(),
        }
    }

    /// `len` zero bytes.
    #[inline(always)]
    fn zeroed(&mut self, len: usize) -> &mut [u8] {
        if len <= STACK_BYTES {
            &mut self.stack[..len]
        } else {
            self.heap = heap_zeroed(len);
            &mut self.heap
        }
    }
}

#[cold]
#[inline(never)]
fn heap_zeroed(len: usize) -> Vec<u8> {
    vec![0; len]
}

/// `value` written into `buf` (zero-filled, of the map's key or value size); a value that does
/// not convert is the map's [`MapError::TooLong`] or [`MapError::Convert`] for `part`.
#[inline(always)]
fn convert_into<'b, M: Map + ?Sized, T: KeyValue + ?Sized>(
    map: &M,
    part: Part,
    value: &T,
    buf: &'b mut [u8],
) -> Result<&'b [u8], MapError> {
    match value.write_bytes(buf) {
        Ok(()) => Ok(buf),
        Err(e) => Err(convert_error(map, part, e)),
    }
}

/// The error of a key or value that does not convert (out of line: the hot paths only branch).
#[cold]
#[inline(never)]
fn convert_error<M: Map + ?Sized>(map: &M, part: Part, e: ConvertError) -> MapError {
    MapError::convert(map.name(), part, e)
}

/// Runs `f` on `value` converted into `len` bytes: the path of values that are not already
/// their bytes ([`KeyValue::exact_bytes`]), out of line.
#[inline(never)]
fn with_converted<M: Map + ?Sized, T: KeyValue + ?Sized, R>(
    map: &M,
    part: Part,
    value: &T,
    len: usize,
    f: impl FnOnce(&[u8]) -> Result<R, MapError>,
) -> Result<R, MapError> {
    let mut scratch = Scratch::new();
    f(convert_into(map, part, value, scratch.zeroed(len))?)
}

/// `$body` with `$k` bound to `$key` as the map's key bytes: borrowed when they are the key's
/// own ([`KeyValue::exact_bytes`]), with the body inlined there; converted otherwise, out of
/// line ([`with_converted`]). A macro rather than a function taking a closure, so the fast
/// path's body is inlined for certain.
macro_rules! with_key {
    ($map:expr, $key:expr, |$k:ident| $body:expr) => {{
        let size = $map.key_size() as usize;
        match $key.exact_bytes(size) {
            Some($k) => $body,
            None => with_converted($map, Part::Key, $key, size, |$k| $body),
        }
    }};
}

/// [`MapExt::lookup_u64`] of the key bytes `key`, for a value of `size` <= 8 bytes.
#[inline(always)]
fn read_u64<M: Map + ?Sized>(map: &M, key: &[u8], size: usize) -> Result<u64, MapError> {
    let len = map.value_len();
    if len != size {
        return read_u64_slots(map, key, size, len);
    }
    // One slot (every map but a per-CPU one with padding or more than one CPU): a word on
    // the stack.
    let mut v = [0u8; 8];
    let v = &mut v[..len];
    map.lookup_elem(key, v, 0)?;
    Ok(ne_to_u64(v).unwrap_or(0))
}

/// [`read_u64`] of a value of several slots: per-CPU, the sum over the CPUs.
#[inline(never)]
fn read_u64_slots<M: Map + ?Sized>(
    map: &M,
    key: &[u8],
    size: usize,
    len: usize,
) -> Result<u64, MapError> {
    let mut scratch = Scratch::new();
    let v = scratch.zeroed(len);
    map.lookup_elem(key, v, 0)?;
    if !map.is_per_cpu() {
        return Ok(ne_to_u64(&v[..size.min(v.len())]).unwrap_or(0));
    }
    let stride = per_cpu_stride(map.value_size());
    let mut sum = 0u64;
    for slot in v.chunks(stride.max(1)) {
        sum = sum.wrapping_add(ne_to_u64(&slot[..size.min(slot.len())]).unwrap_or(0));
    }
    Ok(sum)
}

/// [`MapExt::put`] of a key or value that needs converting.
#[inline(never)]
fn put_converted<M: Map + ?Sized, K: KeyValue + ?Sized, V: KeyValue + ?Sized>(
    map: &M,
    key: &K,
    value: &V,
    flags: u64,
) -> Result<(), MapError> {
    let (mut ks, mut vs) = (Scratch::new(), Scratch::new());
    let k = convert_into(map, Part::Key, key, ks.zeroed(map.key_size() as usize))?;
    let v = convert_into(map, Part::Value, value, vs.zeroed(map.value_len()))?;
    map.update_elem(k, v, flags)
}

/// The stride of one per-CPU slot: the value size rounded up to 8.
pub fn per_cpu_stride(value_size: u32) -> usize {
    (value_size as usize).div_ceil(8) * 8
}

macro_rules! forward_map {
    ($($ty:ty),*) => {$(
        impl<M: Map + ?Sized> Map for $ty {
            #[inline] fn name(&self) -> &str { (**self).name() }
            #[inline] fn map_type(&self) -> MapType { (**self).map_type() }
            #[inline] fn key_size(&self) -> u32 { (**self).key_size() }
            #[inline] fn value_size(&self) -> u32 { (**self).value_size() }
            #[inline] fn max_entries(&self) -> u32 { (**self).max_entries() }
            #[inline] fn flags(&self) -> u32 { (**self).flags() }
            #[inline] fn value_len(&self) -> usize { (**self).value_len() }
            #[inline] fn lookup_elem(&self, k: &[u8], v: &mut [u8], f: u64) -> Result<(), MapError> {
                (**self).lookup_elem(k, v, f)
            }
            #[inline] fn update_elem(&self, k: &[u8], v: &[u8], f: u64) -> Result<(), MapError> {
                (**self).update_elem(k, v, f)
            }
            #[inline] fn delete_elem(&self, k: &[u8]) -> Result<(), MapError> { (**self).delete_elem(k) }
            #[inline] fn get_next_key(&self, k: Option<&[u8]>, n: &mut [u8]) -> Result<bool, MapError> {
                (**self).get_next_key(k, n)
            }
            #[inline] fn lookup_and_delete_elem(&self, k: &[u8], v: &mut [u8], f: u64) -> Result<(), MapError> {
                (**self).lookup_and_delete_elem(k, v, f)
            }
            #[inline] fn is_per_cpu(&self) -> bool { (**self).is_per_cpu() }
            #[inline] fn value_slots(&self) -> usize { (**self).value_slots() }
            #[inline] fn push_elem(&self, v: &[u8], f: u64) -> Result<(), MapError> { (**self).push_elem(v, f) }
            #[inline] fn pop_elem(&self, v: &mut [u8]) -> Result<(), MapError> { (**self).pop_elem(v) }
            #[inline] fn peek_elem(&self, v: &mut [u8]) -> Result<(), MapError> { (**self).peek_elem(v) }
            #[inline] fn lookup_batch(&self, c: &mut BatchCursor, k: &mut [u8], v: &mut [u8]) -> Result<usize, MapError> {
                (**self).lookup_batch(c, k, v)
            }
            #[inline] fn lookup_and_delete_batch(&self, c: &mut BatchCursor, k: &mut [u8], v: &mut [u8]) -> Result<usize, MapError> {
                (**self).lookup_and_delete_batch(c, k, v)
            }
            #[inline] fn update_batch(&self, k: &[u8], v: &[u8], f: u64) -> Result<usize, MapError> {
                (**self).update_batch(k, v, f)
            }
            #[inline] fn delete_batch(&self, k: &[u8]) -> Result<usize, MapError> { (**self).delete_batch(k) }
        }
    )*};
}
forward_map!(&M, &mut M, Box<M>, std::sync::Arc<M>, std::rc::Rc<M>);

/// Whether goebpf forces `BPF_ANY` on updates of this type (fd arrays: program arrays, perf
/// event arrays, arrays of maps).
pub fn forces_any(t: MapType) -> bool {
    matches!(
        t,
        MapType::ProgArray | MapType::PerfEventArray | MapType::ArrayOfMaps
    )
}

/// goebpf's map surface on any [`Map`]: keys and values from Rust values ([`KeyValue`]),
/// lookups as bytes, integers and strings, insert/update/upsert, next key, iteration.
///
/// ```no_run
/// use bpf_maps::{KernelMap, MapExt, MapSpec, MapType};
///
/// let map = KernelMap::create(&MapSpec::new("counts", MapType::Hash, 4, 8, 16), &Default::default())?;
/// map.insert(&7u32, &100u64)?;            // BPF_NOEXIST
/// assert!(map.insert(&7u32, &1u64).unwrap_err().is_exists());
/// map.update(&7u32, &101u64)?;            // BPF_EXIST
/// map.upsert(&8u32, &5u64)?;              // BPF_ANY
/// assert_eq!(map.lookup_int(&7u32)?, 101);
/// assert_eq!(map.next_key(None)?.unwrap().len(), 4);
/// # Ok::<(), bpf_maps::MapError>(())
/// ```
pub trait MapExt: Map {
    /// `key` as exactly [`Map::key_size`] bytes.
    fn key_bytes<K: KeyValue + ?Sized>(&self, key: &K) -> Result<Vec<u8>, MapError> {
        crate::convert::to_bytes(key, self.key_size() as usize)
            .map_err(|e| MapError::convert(self.name(), Part::Key, e))
    }

    /// `value` as exactly [`Map::value_len`] bytes (for per-CPU maps the whole buffer: a scalar
    /// lands in CPU 0's slot and every other CPU's slot is zero, as in goebpf).
    fn value_bytes<V: KeyValue + ?Sized>(&self, value: &V) -> Result<Vec<u8>, MapError> {
        crate::convert::to_bytes(value, self.value_len())
            .map_err(|e| MapError::convert(self.name(), Part::Value, e))
    }

    /// The value of `key` as raw bytes: [`Map::value_len`] of them (per-CPU: one 8-byte-aligned
    /// slot per possible CPU). A missing key is an error with [`MapError::is_not_found`].
    fn lookup<K: KeyValue + ?Sized>(&self, key: &K) -> Result<Vec<u8>, MapError> {
        let mut v = vec![0u8; self.value_len()];
        with_key!(self, key, |k| self.lookup_elem(k, &mut v, 0))?;
        Ok(v)
    }

    /// The value of `key` as a native-endian (little-endian) unsigned integer; for per-CPU maps
    /// the sum over every CPU, stepping by the padded slot (goebpf stepped by the unpadded
    /// size). Values wider than 8 bytes are [`MapError::Unsupported`].
    fn lookup_u64<K: KeyValue + ?Sized>(&self, key: &K) -> Result<u64, MapError> {
        let size = self.value_size() as usize;
        if size > 8 {
            return Err(self.unsupported("lookup as integer (value wider than 8 bytes)"));
        }
        with_key!(self, key, |k| read_u64(self, k, size))
    }

    /// [`MapExt::lookup_u64`] cast to `i64`, as goebpf's `LookupInt` (no sign extension of
    /// narrower values: a 4-byte `-1` reads as `4294967295`).
    fn lookup_int<K: KeyValue + ?Sized>(&self, key: &K) -> Result<i64, MapError> {
        self.lookup_u64(key).map(|v| v as i64)
    }

    /// The value of `key` up to its first NUL, as a string (invalid UTF-8 replaced). Per-CPU
    /// maps are [`MapError::Unsupported`], as in goebpf.
    fn lookup_string<K: KeyValue + ?Sized>(&self, key: &K) -> Result<String, MapError> {
        if self.is_per_cpu() {
            return Err(self.unsupported("lookup as string"));
        }
        let v = self.lookup(key)?;
        Ok(bpf_sys::util::nul_terminated_string_lossy(&v).into_owned())
    }

    /// Adds `key` (`BPF_NOEXIST`: [`MapError::is_exists`] if it is there; `BPF_ANY` for fd
    /// arrays, as goebpf forces).
    fn insert<K: KeyValue + ?Sized, V: KeyValue + ?Sized>(
        &self,
        key: &K,
        value: &V,
    ) -> Result<(), MapError> {
        self.put(key, value, NOEXIST)
    }

    /// Replaces the value of `key` (`BPF_EXIST`: [`MapError::is_not_found`] if it is missing;
    /// `BPF_ANY` for fd arrays).
    fn update<K: KeyValue + ?Sized, V: KeyValue + ?Sized>(
        &self,
        key: &K,
        value: &V,
    ) -> Result<(), MapError> {
        self.put(key, value, EXIST)
    }

    /// Sets `key` to `value` whether or not it exists (`BPF_ANY`).
    fn upsert<K: KeyValue + ?Sized, V: KeyValue + ?Sized>(
        &self,
        key: &K,
        value: &V,
    ) -> Result<(), MapError> {
        self.put(key, value, ANY)
    }

    /// Update with explicit flags ([`ANY`], [`NOEXIST`], [`EXIST`]); fd arrays force [`ANY`].
    fn put<K: KeyValue + ?Sized, V: KeyValue + ?Sized>(
        &self,
        key: &K,
        value: &V,
        flags: u64,
    ) -> Result<(), MapError> {
        let flags = if forces_any(self.map_type()) {
            ANY
        } else {
            flags
        };
        let (ks, vl) = (self.key_size() as usize, self.value_len());
        match (key.exact_bytes(ks), value.exact_bytes(vl)) {
            (Some(k), Some(v)) => self.update_elem(k, v, flags),
            _ => put_converted(self, key, value, flags),
        }
    }

    /// Removes `key` ([`MapError::is_not_found`] if it is missing).
    fn delete<K: KeyValue + ?Sized>(&self, key: &K) -> Result<(), MapError> {
        with_key!(self, key, |k| self.delete_elem(k))
    }

    /// The key after `key` (`None`: the first key, Linux 4.12), `None` at the end. A key that
    /// is not in a hash map restarts the walk at the first key (kernel semantics).
    fn next_key(&self, key: Option<&dyn KeyValue>) -> Result<Option<Vec<u8>>, MapError> {
        let mut next = vec![0u8; self.key_size() as usize];
        let found = match key {
            Some(key) => with_key!(self, key, |k| self.get_next_key(Some(k), &mut next))?,
            None => self.get_next_key(None, &mut next)?,
        };
        Ok(found.then_some(next))
    }

    /// [`MapExt::next_key`] up to its first NUL, as a string.
    fn next_key_string(&self, key: Option<&dyn KeyValue>) -> Result<Option<String>, MapError> {
        Ok(self
            .next_key(key)?
            .map(|k| bpf_sys::util::nul_terminated_string_lossy(&k).into_owned()))
    }

    /// [`MapExt::next_key`] as a native-endian unsigned integer, parsed with the key size
    /// (goebpf parsed it with the value size). Keys wider than 8 bytes are
    /// [`MapError::Unsupported`].
    fn next_key_u64(&self, key: Option<&dyn KeyValue>) -> Result<Option<u64>, MapError> {
        if self.key_size() > 8 {
            return Err(self.unsupported("next key as integer (key wider than 8 bytes)"));
        }
        Ok(self.next_key(key)?.and_then(|k| ne_to_u64(&k)))
    }

    /// [`MapExt::next_key_u64`] cast to `i64`.
    fn next_key_int(&self, key: Option<&dyn KeyValue>) -> Result<Option<i64>, MapError> {
        Ok(self.next_key_u64(key)?.map(|k| k as i64))
    }

    /// Every key, as bytes (see [`Keys`] for how changes during the walk are handled).
    fn keys(&self) -> Keys<&Self> {
        Keys::new(self)
    }

    /// Every key with its value, as bytes; keys deleted between the walk and the lookup are
    /// skipped.
    fn entries(&self) -> Entries<&Self> {
        Entries::new(self)
    }

    /// The walk of [`MapExt::entries`], lending each key and value from buffers it reuses
    /// instead of allocating two vectors per entry (see [`EntryWalk`]).
    fn entry_walk(&self) -> EntryWalk<&Self> {
        EntryWalk::new(self)
    }

    /// Every element, read with batch lookups until the walk is done (see
    /// [`crate::batch::lookup_all`]).
    fn lookup_batch_all(&self) -> Result<Vec<crate::batch::Entry>, MapError> {
        crate::batch::lookup_all(self)
    }

    #[doc(hidden)]
    fn unsupported(&self, op: &'static str) -> MapError {
        MapError::Unsupported {
            op,
            map: self.name().to_string(),
            map_type: self.map_type(),
        }
    }
}

impl<M: Map + ?Sized> MapExt for M {}

/// A map in the kernel: an owned fd with the map's name, type, sizes and id.
///
/// Create one from a spec ([`KernelMap::create`]) or open an existing map by fd
/// ([`KernelMap::from_fd`]), id ([`KernelMap::from_id`]) or pin ([`KernelMap::from_pin`]). The
/// map is closed when dropped; a pinned map stays in the kernel until its pin is removed.
/// Maps need Linux 3.19 (each type its own version: see [`KernelMap::create`]).
///
/// ```no_run
/// use bpf_maps::{KernelMap, Map, MapExt};
///
/// let map = KernelMap::from_pin("/sys/fs/bpf/txcnt")?;
/// println!("{} id {} {:?} {}/{}", map.name(), map.id(), map.map_type(), map.key_size(), map.value_size());
/// let total = map.lookup_u64(&0u32)?; // per-CPU: summed over every possible CPU
/// # Ok::<(), bpf_maps::MapError>(())
/// ```
#[derive(Debug)]
pub struct KernelMap {
    pub(crate) fd: MapFd<OwnedFd>,
    pub(crate) map_type: MapType,
    /// Known when the map was opened; read on first use for a map this handle created.
    pub(crate) id: std::sync::OnceLock<u32>,
    pub(crate) pinned: Option<PathBuf>,
    /// The spec the map was created from, or its shape as the kernel reports it; its `name`
    /// is the map's name ([`Map::name`]).
    pub(crate) template: Template,
}

/// What holds a parsed object that the maps created from it share
/// ([`KernelMap::create_in_shared`]): the object itself, or a loader's record of a loaded
/// object that holds it along with other things (so that the object and the record are one
/// allocation).
pub trait SharedObject: fmt::Debug + Send + Sync {
    /// The object.
    fn object(&self) -> &ObjectSpec;
}

impl SharedObject for ObjectSpec {
    fn object(&self) -> &ObjectSpec {
        self
    }
}

/// A [`KernelMap`]'s spec: its own copy, or a map of a parsed object the map shares with the
/// loader ([`KernelMap::create_in_object`]), when normalisation left that spec as it was. A
/// loaded object's maps then cost no copy of their spec (names, BTF ids, initial data) and
/// no freeing of one.
#[derive(Clone)]
pub(crate) enum Template {
    /// Its own spec (boxed: a map handle stays small, and cheap to move, either way).
    Own(Box<MapSpec>),
    /// `object.maps[index]`. The object cannot change behind the `Arc`, and the index was
    /// checked when the map was made, so it stays valid.
    Object {
        /// What holds the object.
        object: std::sync::Arc<dyn SharedObject>,
        /// The map's index in [`ObjectSpec::maps`].
        index: usize,
    },
}

impl Template {
    /// The spec.
    pub(crate) fn get(&self) -> &MapSpec {
        match self {
            Template::Own(spec) => spec,
            Template::Object { object, index } => &object.object().maps[*index],
        }
    }
}

impl std::ops::Deref for Template {
    type Target = MapSpec;

    fn deref(&self) -> &MapSpec {
        self.get()
    }
}

/// The spec, as a `MapSpec` field printed (not the whole object a shared one lives in).
impl fmt::Debug for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.get().fmt(f)
    }
}

impl KernelMap {
    /// Wraps a map fd, reading the map's metadata from the kernel (goebpf's
    /// `NewMapFromExistingMapByFd`).
    pub fn from_fd(fd: OwnedFd) -> Result<Self, MapError> {
        let what = format!("fd {}", fd.as_raw_fd());
        let (fd, info) = MapFd::with_info(fd).map_err(|source| MapError::Open { what, source })?;
        Self::from_map_fd(fd, &info, None)
    }

    /// Opens the map with kernel id `id` (`BPF_MAP_GET_FD_BY_ID`, needs CAP_SYS_ADMIN).
    pub fn from_id(id: u32) -> Result<Self, MapError> {
        let what = format!("id {id}");
        let fd = bpf_sys::obj::map_fd_by_id(id, 0).map_err(|source| MapError::Open {
            what: what.clone(),
            source,
        })?;
        let (fd, info) = MapFd::with_info(fd).map_err(|source| MapError::Open { what, source })?;
        Self::from_map_fd(fd, &info, None)
    }

    /// Opens the map pinned at `path` (`BPF_OBJ_GET`).
    pub fn from_pin(path: impl AsRef<Path>) -> Result<Self, MapError> {
        let path = path.as_ref();
        let what = format!("path {path:?}");
        let fd = bpf_sys::obj::get(path, 0).map_err(|source| MapError::Open {
            what: what.clone(),
            source,
        })?;
        let (fd, info) = MapFd::with_info(fd).map_err(|source| MapError::Open { what, source })?;
        let mut map = Self::from_map_fd(fd, &info, Some(path.to_path_buf()))?;
        // `from_map_fd` made the template: it is the map's own.
        if let Template::Own(spec) = &mut map.template {
            spec.pinning = bpf_elf::Pinning::Path(path.to_string_lossy().into_owned());
        }
        Ok(map)
    }

    /// The handle of `fd`, from the info [`MapFd::with_info`] read with it (no second
    /// `BPF_OBJ_GET_INFO_BY_FD`).
    pub(crate) fn from_map_fd(
        fd: MapFd<OwnedFd>,
        info: &uapi::bpf_map_info,
        pinned: Option<PathBuf>,
    ) -> Result<Self, MapError> {
        let info = MapInfo::from_raw(info);
        let map_type = MapType::try_from(info.type_raw).map_err(|raw| MapError::UnknownType {
            map: info.name.clone(),
            raw,
        })?;
        let mut template = MapSpec::new(
            "",
            map_type,
            info.key_size,
            info.value_size,
            info.max_entries,
        );
        template.name = info.name.into();
        template.flags = info.flags;
        template.map_extra = info.map_extra;
        Ok(KernelMap {
            fd,
            map_type,
            id: info.id.into(),
            pinned,
            template: Template::Own(Box::new(template)),
        })
    }

    /// The kernel's id of the map (for a map this handle created, asked of the kernel on the
    /// first call: creating a map needs no `BPF_OBJ_GET_INFO_BY_FD`). 0 if the kernel cannot
    /// say, which does not happen for a valid map fd.
    pub fn id(&self) -> u32 {
        *self
            .id
            .get_or_init(|| bpf_sys::obj::map_info(self.fd.fd()).map_or(0, |info| info.id))
    }

    /// The map's info as the kernel reports it now.
    pub fn info(&self) -> Result<MapInfo, MapError> {
        map_info(self)
    }

    /// The sizes the element commands use.
    pub fn layout(&self) -> &MapLayout {
        self.fd.layout()
    }

    /// Where this handle pinned the map, or opened it from.
    pub fn pin_path(&self) -> Option<&Path> {
        self.pinned.as_deref()
    }

    /// `BPF_OBJ_PIN`: pins the map at `path`, which must be on a bpffs
    /// ([`MapError::NotBpffs`] otherwise); missing directories below the bpffs are created.
    pub fn pin(&mut self, path: impl AsRef<Path>) -> Result<(), MapError> {
        let path = path.as_ref();
        crate::create::pin_fd(&self.template.name, self.fd.fd(), path)?;
        self.pinned = Some(path.to_path_buf());
        Ok(())
    }

    /// Removes the pin this handle made or was opened from (the map lives on while fds or
    /// programs hold it). A no-op when not pinned.
    pub fn unpin(&mut self) -> Result<(), MapError> {
        if let Some(path) = self.pinned.take() {
            std::fs::remove_file(&path).map_err(|source| MapError::Io {
                op: "unpin",
                path,
                source,
            })?;
        }
        Ok(())
    }

    /// `BPF_MAP_FREEZE`: user space may no longer write the map (Linux 5.2).
    pub fn freeze(&self) -> Result<(), MapError> {
        self.fd
            .freeze()
            .map_err(|e| MapError::op("freeze", &self.template.name, e))
    }

    /// The spec this map was created from (for an opened map: its shape from the kernel).
    pub fn template(&self) -> &MapSpec {
        self.template.get()
    }

    /// A copy of the map's spec to create another map of the same shape (goebpf's
    /// `CloneTemplate`, typically for new inner maps of a map of maps). Creating it with a pin
    /// and [`PinPolicy::Reuse`](crate::PinPolicy::Reuse) reopens the pinned map, as in goebpf;
    /// [`KernelMap::new_inner`] makes a fresh, unpinned map.
    pub fn clone_template(&self) -> MapSpec {
        self.template.get().clone()
    }

    /// A new, unpinned map of this map's shape (for storing in a map of maps).
    pub fn new_inner(&self) -> Result<KernelMap, MapError> {
        let mut spec = self.template.get().clone();
        spec.pinning = bpf_elf::Pinning::None;
        spec.data = None;
        spec.freeze = false;
        KernelMap::create(&spec, &Default::default())
    }

    /// Another handle on the same map (a duplicated fd).
    pub fn try_clone(&self) -> Result<KernelMap, MapError> {
        let fd = self.fd.try_clone_owned().map_err(|source| MapError::Io {
            op: "dup map fd",
            path: PathBuf::new(),
            source,
        })?;
        Ok(KernelMap {
            fd,
            map_type: self.map_type,
            id: self.id.clone(),
            pinned: self.pinned.clone(),
            template: self.template.clone(),
        })
    }

    /// Gives the fd back.
    pub fn into_fd(self) -> OwnedFd {
        self.fd.into_inner()
    }

    /// The error of an element command. The slices' sizes are checked once, by `MapFd` (the
    /// check that keeps the call sound), before the call; a refusal there (an error with no
    /// errno) is reported as the [`MapError::Size`] of the first slice of the wrong length,
    /// `parts` in the order they are checked, as this handle always reported it.
    #[cold]
    #[inline(never)]
    fn elem_error(&self, op: &'static str, e: SysError, parts: &[(Part, usize)]) -> MapError {
        if e.errno().is_none() {
            for &(part, got) in parts {
                if let Err(size) = self.check(part, got) {
                    return size;
                }
            }
        }
        MapError::op(op, &self.template.name, e)
    }

    pub(crate) fn check(&self, part: Part, got: usize) -> Result<(), MapError> {
        let expected = match part {
            Part::Key => self.fd.layout().key_size as usize,
            Part::Value => self.fd.layout().value_len,
        };
        if got == expected {
            Ok(())
        } else {
            Err(MapError::size(&self.template.name, part, got, expected))
        }
    }
}

impl AsFd for KernelMap {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.fd()
    }
}

/// The fd number (goebpf's `GetFd`), for values of fd arrays written through [`MapExt`].
impl AsRawFd for KernelMap {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.fd.fd().as_raw_fd()
    }
}

impl Map for KernelMap {
    fn name(&self) -> &str {
        &self.template.name
    }
    fn map_type(&self) -> MapType {
        self.map_type
    }
    fn key_size(&self) -> u32 {
        self.fd.layout().key_size
    }
    fn value_size(&self) -> u32 {
        self.fd.layout().value_size
    }
    fn max_entries(&self) -> u32 {
        self.fd.layout().max_entries
    }
    fn flags(&self) -> u32 {
        self.fd.layout().map_flags
    }
    fn value_len(&self) -> usize {
        self.fd.layout().value_len
    }

    #[inline(always)]
    fn lookup_elem(&self, key: &[u8], value: &mut [u8], flags: u64) -> Result<(), MapError> {
        let (k, v) = (key.len(), value.len());
        self.fd
            .lookup(key, value, flags)
            .map_err(|e| self.elem_error("lookup", e, &[(Part::Key, k), (Part::Value, v)]))
    }

    #[inline(always)]
    fn update_elem(&self, key: &[u8], value: &[u8], flags: u64) -> Result<(), MapError> {
        self.fd.update(key, value, flags).map_err(|e| {
            self.elem_error(
                "update",
                e,
                &[(Part::Key, key.len()), (Part::Value, value.len())],
            )
        })
    }

    #[inline(always)]
    fn delete_elem(&self, key: &[u8]) -> Result<(), MapError> {
        self.fd
            .delete(key)
            .map_err(|e| self.elem_error("delete", e, &[(Part::Key, key.len())]))
    }

    #[inline(always)]
    fn get_next_key(&self, key: Option<&[u8]>, next: &mut [u8]) -> Result<bool, MapError> {
        let n = next.len();
        self.fd.next_key(key, next).map_err(|e| {
            let k = key.map_or(n, <[u8]>::len);
            self.elem_error("next key", e, &[(Part::Key, k), (Part::Key, n)])
        })
    }

    #[inline]
    fn lookup_and_delete_elem(
        &self,
        key: &[u8],
        value: &mut [u8],
        flags: u64,
    ) -> Result<(), MapError> {
        let (k, v) = (key.len(), value.len());
        self.fd.lookup_and_delete(key, value, flags).map_err(|e| {
            self.elem_error("lookup and delete", e, &[(Part::Key, k), (Part::Value, v)])
        })
    }

    fn lookup_batch(
        &self,
        cursor: &mut BatchCursor,
        keys: &mut [u8],
        values: &mut [u8],
    ) -> Result<usize, MapError> {
        crate::batch::kernel_lookup(self, cursor, keys, values, false)
    }

    fn lookup_and_delete_batch(
        &self,
        cursor: &mut BatchCursor,
        keys: &mut [u8],
        values: &mut [u8],
    ) -> Result<usize, MapError> {
        crate::batch::kernel_lookup(self, cursor, keys, values, true)
    }

    fn update_batch(&self, keys: &[u8], values: &[u8], flags: u64) -> Result<usize, MapError> {
        crate::batch::kernel_update(self, keys, values, flags)
    }

    fn delete_batch(&self, keys: &[u8]) -> Result<usize, MapError> {
        crate::batch::kernel_delete(self, keys)
    }
}

/// A map's `bpf_map_info`, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MapInfo {
    /// The type's number (see [`MapInfo::map_type`]).
    pub type_raw: u32,
    /// The kernel id.
    pub id: u32,
    /// Key size.
    pub key_size: u32,
    /// Value size.
    pub value_size: u32,
    /// Capacity.
    pub max_entries: u32,
    /// `BPF_F_*` flags.
    pub flags: u32,
    /// The name (at most 15 bytes).
    pub name: String,
    /// The interface it is offloaded to (0: none).
    pub ifindex: u32,
    /// The BTF object describing it (0: none).
    pub btf_id: u32,
    /// BTF type of the key.
    pub btf_key_type_id: u32,
    /// BTF type of the value.
    pub btf_value_type_id: u32,
    /// `map_extra`.
    pub map_extra: u64,
}

impl MapInfo {
    /// Decodes the kernel's struct (pure).
    pub fn from_raw(info: &uapi::bpf_map_info) -> Self {
        let name: Vec<u8> = info
            .name
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        MapInfo {
            type_raw: info.type_,
            id: info.id,
            key_size: info.key_size,
            value_size: info.value_size,
            max_entries: info.max_entries,
            flags: info.map_flags,
            name: String::from_utf8_lossy(&name).into_owned(),
            ifindex: info.ifindex,
            btf_id: info.btf_id,
            btf_key_type_id: info.btf_key_type_id,
            btf_value_type_id: info.btf_value_type_id,
            map_extra: info.map_extra,
        }
    }

    /// The map type, if this build knows it.
    pub fn map_type(&self) -> Option<MapType> {
        MapType::try_from(self.type_raw).ok()
    }
}

/// The info of any map fd (`BPF_OBJ_GET_INFO_BY_FD`).
pub fn map_info(map: impl AsFd) -> Result<MapInfo, MapError> {
    let fd = map.as_fd();
    bpf_sys::obj::map_info(fd)
        .map(|i| MapInfo::from_raw(&i))
        .map_err(|source| MapError::Open {
            what: format!("fd {}", fd.as_raw_fd()),
            source,
        })
}

/// The info of every map loaded in the system (`BPF_MAP_GET_NEXT_ID`, then each by id; maps
/// freed during the walk are skipped). Needs CAP_SYS_ADMIN.
pub fn loaded_maps() -> impl Iterator<Item = Result<MapInfo, MapError>> {
    bpf_sys::obj::ids(bpf_sys::obj::ObjKind::Map).filter_map(|id| {
        let id = match id {
            Ok(id) => id,
            Err(source) => {
                return Some(Err(MapError::Open {
                    what: "next id".into(),
                    source,
                }))
            }
        };
        match bpf_sys::obj::map_fd_by_id(id, 0) {
            Ok(fd) => Some(map_info(&fd)),
            Err(e) if e.is_errno(crate::error::ENOENT) => None,
            Err(source) => Some(Err(MapError::Open {
                what: format!("id {id}"),
                source,
            })),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iter::fake::FakeMap;

    fn hash(key_size: u32, value_size: u32) -> FakeMap {
        FakeMap::new(MapType::Hash, key_size, value_size, value_size as usize)
    }

    fn stored(map: &FakeMap, key: &[u8]) -> Option<Vec<u8>> {
        map.elems.borrow().get(key).cloned()
    }

    #[test]
    fn own_width_and_converted_keys_and_values_reach_the_same_element() {
        let m = hash(4, 8);
        // Own width: the exact-bytes path.
        m.upsert(&7u32, &1u64).unwrap();
        assert_eq!(
            stored(&m, &7u32.to_ne_bytes()),
            Some(1u64.to_ne_bytes().to_vec())
        );
        // Widened and narrowed keys, read back through the converted path.
        assert_eq!(m.lookup_u64(&7u8).unwrap(), 1);
        assert_eq!(m.lookup_int(&7i64).unwrap(), 1);
        assert_eq!(m.lookup(&[7u8, 0, 0, 0]).unwrap(), 1u64.to_ne_bytes());
        // A converted key and a converted value.
        m.upsert(&7u16, &-2i8).unwrap();
        assert_eq!(
            stored(&m, &7u32.to_ne_bytes()),
            Some((-2i64).to_ne_bytes().to_vec())
        );
        m.insert(&8u64, &3u64).unwrap();
        assert_eq!(
            m.next_key(Some(&7u8)).unwrap(),
            Some(8u32.to_ne_bytes().to_vec())
        );
        assert_eq!(m.next_key_u64(Some(&7u32)).unwrap(), Some(8));
        m.delete(&7u64).unwrap();
        m.delete(&8u32).unwrap();
        assert!(m.lookup_u64(&7u32).unwrap_err().is_not_found());
        assert!(m.delete(&8u8).unwrap_err().is_not_found());
        assert!(m.elems.borrow().is_empty());
    }

    #[test]
    fn keys_and_values_that_do_not_fit_name_their_part() {
        let m = hash(2, 8);
        let too_long = |e: MapError| match e {
            MapError::TooLong {
                part,
                got,
                expected,
                ..
            } => Some((part, got, expected)),
            _ => None,
        };
        let e = m.upsert(&70000u32, &0u64).unwrap_err();
        assert_eq!(too_long(e), Some((Part::Key, 3, 2)));
        let e = m.upsert(&1u16, &u128::MAX).unwrap_err();
        assert_eq!(too_long(e), Some((Part::Value, 16, 8)));
        // Both wrong: the key is reported.
        let e = m.upsert("abc", &u128::MAX).unwrap_err();
        assert_eq!(too_long(e), Some((Part::Key, 3, 2)));
        for e in [
            m.lookup_u64(&70000u32).unwrap_err(),
            m.lookup(&70000u32).unwrap_err(),
            m.delete(&70000u32).unwrap_err(),
            m.next_key(Some(&70000u32)).unwrap_err(),
        ] {
            assert_eq!(too_long(e), Some((Part::Key, 3, 2)));
        }
        assert!(m.elems.borrow().is_empty());
    }

    #[test]
    fn lookup_u64_reads_narrow_values_and_sums_per_cpu_slots() {
        let m = hash(4, 2);
        m.upsert(&1u32, &0xfffeu16).unwrap();
        assert_eq!(m.lookup_u64(&1u32).unwrap(), 0xfffe);
        assert_eq!(m.lookup_int(&1u8).unwrap(), 0xfffe);

        // 3 CPUs, 4-byte values in 8-byte slots.
        let pc = FakeMap::new(MapType::PerCpuHash, 4, 4, 24);
        let mut raw = vec![0u8; 24];
        for (cpu, slot) in raw.chunks_mut(8).enumerate() {
            slot[..4].copy_from_slice(&(cpu as u32 + 1).to_ne_bytes());
            slot[4..].fill(0xff); // padding is not read
        }
        pc.update_elem(&5u32.to_ne_bytes(), &raw, ANY).unwrap();
        assert_eq!(pc.lookup_u64(&5u32).unwrap(), 6);
        assert_eq!(pc.lookup_u64(&5u16).unwrap(), 6);
        // A scalar value lands in CPU 0's slot.
        pc.upsert(&6u32, &9u32).unwrap();
        assert_eq!(pc.lookup_u64(&6u32).unwrap(), 9);
        assert!(matches!(
            pc.lookup_string(&6u32),
            Err(MapError::Unsupported { .. })
        ));

        // One CPU with 8-byte values: one slot, the whole value.
        let one = FakeMap::new(MapType::PerCpuArray, 4, 8, 8);
        one.upsert(&0u32, &u64::MAX).unwrap();
        assert_eq!(one.lookup_u64(&0u32).unwrap(), u64::MAX);

        assert!(matches!(
            hash(4, 16).lookup_u64(&0u32),
            Err(MapError::Unsupported { .. })
        ));
    }

    #[test]
    fn fd_arrays_force_any_and_others_keep_their_flags() {
        let m = hash(4, 4);
        let flags = |r: Result<(), MapError>| {
            r.unwrap();
            m.last_flags.get()
        };
        assert_eq!(flags(m.insert(&1u32, &1u32)), Some(NOEXIST));
        assert_eq!(flags(m.update(&1u8, &1u8)), Some(EXIST));
        assert_eq!(flags(m.put(&1u32, &2u32, F_LOCK)), Some(F_LOCK));
        for t in [
            MapType::ProgArray,
            MapType::PerfEventArray,
            MapType::ArrayOfMaps,
        ] {
            let fd = FakeMap::new(t, 4, 4, 4);
            fd.insert(&0u32, &5u32).unwrap();
            assert_eq!(fd.last_flags.get(), Some(ANY), "{t:?}");
            fd.update(&0u8, &5u16).unwrap();
            assert_eq!(fd.last_flags.get(), Some(ANY), "{t:?}");
        }
    }

    #[test]
    fn keys_and_values_past_the_stack_buffer_convert_on_the_heap() {
        let m = hash(100, 80);
        let mut key = vec![0u8; 100];
        key[..3].copy_from_slice(b"abc");
        // Converted (padded) key and value, then the same key given whole.
        m.upsert("abc", "value").unwrap();
        let v = m.lookup(&key).unwrap();
        assert_eq!((v.len(), &v[..5]), (80, &b"value"[..]));
        assert!(v[5..].iter().all(|&b| b == 0));
        assert_eq!(m.lookup_string("abc").unwrap(), "value");
        assert_eq!(m.next_key(None).unwrap(), Some(key.clone()));
        assert_eq!(m.next_key_string(Some(&key)).unwrap(), None);
        m.delete("abc").unwrap();
        assert!(m.elems.borrow().is_empty());
    }
}
