//! Batch operations: many elements per system call (Linux 5.6), with a per-element fallback.
//!
//! [`Map::lookup_batch`] and [`Map::lookup_and_delete_batch`] fill packed key and value buffers
//! (`n` keys of [`Map::key_size`] bytes, `n` values of [`Map::value_len`] bytes, per-CPU values
//! included) and move a [`BatchCursor`] along the map; call them until
//! [`BatchCursor::is_done`]. [`Map::update_batch`] and [`Map::delete_batch`] apply packed
//! buffers and, on failure, say how many elements were applied ([`MapError::Batch`]).
//!
//! [`KernelMap`] uses the kernel's batch commands for hashes (all four) and arrays (lookup and
//! update) when `bpf_sys::probe::batch_ops_supported()`; elsewhere, and on kernels without
//! them, each operation walks the map element by element (next key, lookup, delete) with the
//! same results. A hash bucket larger than the buffers makes the kernel answer `ENOSPC`:
//! [`lookup_all`] grows its buffers and goes on until the walk is done.
//!
//! ```no_run
//! use bpf_maps::{BatchCursor, KernelMap, Map};
//!
//! let map = KernelMap::from_pin("/sys/fs/bpf/counts")?;
//! let (ks, vs) = (map.key_size() as usize, map.value_len());
//! let (mut keys, mut values) = (vec![0u8; 64 * ks], vec![0u8; 64 * vs]);
//! let mut cursor = BatchCursor::new();
//! while !cursor.is_done() {
//!     let n = map.lookup_batch(&mut cursor, &mut keys, &mut values)?;
//!     for i in 0..n {
//!         println!("{:?} = {:?}", &keys[i * ks..][..ks], &values[i * vs..][..vs]);
//!     }
//! }
//! # Ok::<(), bpf_maps::MapError>(())
//! ```

use bpf_sys::error::BatchError;
use bpf_sys::map_batch::BatchFlags;
use bpf_sys::MapType;

use crate::error::{MapError, Part, EINVAL, ENOSPC};
use crate::{KernelMap, Map};

/// One element as bytes: the key and the value.
pub type Entry = (Vec<u8>, Vec<u8>);

/// `ENOTSUPP`, the kernel's answer for a command a map type lacks.
const ENOTSUPP: i32 = 524;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
enum State {
    #[default]
    Start,
    /// The kernel's cursor is in `token`.
    Kernel,
    /// Walking element by element; the last key returned is in `token`.
    Walk,
    Done,
}

/// Where a batch walk is: at the start, in the middle, or done.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchCursor {
    state: State,
    token: Vec<u8>,
}

impl BatchCursor {
    /// A cursor at the start of the map.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the walk reached the end of the map.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Back to the start.
    pub fn reset(&mut self) {
        self.state = State::Start;
        self.token.clear();
    }
}

fn batch_err(map: &str, op: &'static str, count: usize, e: MapError) -> MapError {
    match e {
        MapError::Op { source, .. } => MapError::Batch {
            op,
            map: map.to_string(),
            count,
            source,
        },
        other => other,
    }
}

fn capacity<M: Map + ?Sized>(map: &M, keys: usize, values: usize) -> usize {
    let ks = map.key_size() as usize;
    let vl = map.value_len().max(1);
    let by_values = values / vl;
    match keys.checked_div(ks) {
        Some(by_keys) => by_values.min(by_keys),
        None => by_values,
    }
}

/// The per-element lookup batch every [`Map`] gets by default.
pub(crate) fn fallback_lookup<M: Map + ?Sized>(
    map: &M,
    cursor: &mut BatchCursor,
    keys: &mut [u8],
    values: &mut [u8],
    delete: bool,
) -> Result<usize, MapError> {
    let op = if delete {
        "lookup and delete batch"
    } else {
        "lookup batch"
    };
    if cursor.state == State::Done {
        return Ok(0);
    }
    let (ks, vl) = (map.key_size() as usize, map.value_len());
    let cap = capacity(map, keys.len(), values.len());
    let mut key = vec![0u8; ks];
    let mut n = 0;
    while n < cap {
        // Deleting each element as we go: the next element is always the first.
        let prev = (cursor.state == State::Walk && !delete).then_some(&cursor.token[..]);
        if !map
            .get_next_key(prev, &mut key)
            .map_err(|e| batch_err(map.name(), op, n, e))?
        {
            cursor.state = State::Done;
            break;
        }
        cursor.state = State::Walk;
        cursor.token.clone_from(&key);
        let value = &mut values[n * vl..(n + 1) * vl];
        let res = map.lookup_elem(&key, value, 0).and_then(|()| {
            if delete {
                match map.delete_elem(&key) {
                    Err(e) if e.is_not_found() => Ok(()),
                    other => other,
                }
            } else {
                Ok(())
            }
        });
        match res {
            Ok(()) => {
                keys[n * ks..(n + 1) * ks].copy_from_slice(&key);
                n += 1;
            }
            // Deleted since the walk found it.
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(batch_err(map.name(), op, n, e)),
        }
    }
    Ok(n)
}

fn packed_count<M: Map + ?Sized>(
    map: &M,
    keys: &[u8],
    values: Option<&[u8]>,
) -> Result<usize, MapError> {
    let ks = map.key_size() as usize;
    if ks == 0 || keys.len() % ks != 0 {
        return Err(MapError::size(map.name(), Part::Key, keys.len(), ks));
    }
    let n = keys.len() / ks;
    if let Some(values) = values {
        if values.len() != n * map.value_len() {
            return Err(MapError::size(
                map.name(),
                Part::Value,
                values.len(),
                n * map.value_len(),
            ));
        }
    }
    Ok(n)
}

/// The per-element update batch.
pub(crate) fn fallback_update<M: Map + ?Sized>(
    map: &M,
    keys: &[u8],
    values: &[u8],
    flags: u64,
) -> Result<usize, MapError> {
    let n = packed_count(map, keys, Some(values))?;
    let (ks, vl) = (map.key_size() as usize, map.value_len());
    for i in 0..n {
        map.update_elem(&keys[i * ks..][..ks], &values[i * vl..][..vl], flags)
            .map_err(|e| batch_err(map.name(), "update batch", i, e))?;
    }
    Ok(n)
}

/// The per-element delete batch.
pub(crate) fn fallback_delete<M: Map + ?Sized>(map: &M, keys: &[u8]) -> Result<usize, MapError> {
    let n = packed_count(map, keys, None)?;
    let ks = map.key_size() as usize;
    for (i, key) in keys.chunks(ks).enumerate() {
        map.delete_elem(key)
            .map_err(|e| batch_err(map.name(), "delete batch", i, e))?;
    }
    Ok(n)
}

fn is_hash(t: MapType) -> bool {
    matches!(
        t,
        MapType::Hash | MapType::PerCpuHash | MapType::LruHash | MapType::LruPerCpuHash
    )
}

/// Whether the kernel's batch command for `op` applies to maps of type `t`.
fn kernel_batch(t: MapType, hash_only: bool) -> bool {
    let typed = is_hash(t) || (!hash_only && matches!(t, MapType::Array | MapType::PerCpuArray));
    typed && bpf_sys::probe::batch_ops_supported()
}

fn from_batch(map: &KernelMap, op: &'static str, e: BatchError) -> MapError {
    MapError::Batch {
        op,
        map: map.template.name.to_string(),
        count: e.count as usize,
        source: e.source,
    }
}

pub(crate) fn kernel_lookup(
    map: &KernelMap,
    cursor: &mut BatchCursor,
    keys: &mut [u8],
    values: &mut [u8],
    delete: bool,
) -> Result<usize, MapError> {
    if !kernel_batch(map.map_type, delete) || matches!(cursor.state, State::Walk) {
        return fallback_lookup(map, cursor, keys, values, delete);
    }
    if cursor.state == State::Done {
        return Ok(0);
    }
    let count = capacity(map, keys.len(), values.len());
    let count = u32::try_from(count).unwrap_or(u32::MAX);
    let mut out = vec![0u8; map.layout().batch_token_size()];
    let in_batch = (cursor.state == State::Kernel).then_some(&cursor.token[..]);
    let (op, res) = if delete {
        let r = map.fd.lookup_and_delete_batch(
            in_batch,
            &mut out,
            keys,
            values,
            count,
            BatchFlags::default(),
        );
        ("lookup and delete batch", r)
    } else {
        let r = map.fd.lookup_batch(
            in_batch,
            &mut out,
            keys,
            values,
            count,
            BatchFlags::default(),
        );
        ("lookup batch", r)
    };
    match res {
        Ok(b) => {
            if b.done {
                cursor.state = State::Done;
            } else {
                cursor.state = State::Kernel;
                cursor.token = out;
            }
            Ok(b.count as usize)
        }
        Err(e)
            if cursor.state == State::Start
                && matches!(e.errno(), Some(EINVAL) | Some(ENOTSUPP))
                && e.count == 0 =>
        {
            fallback_lookup(map, cursor, keys, values, delete)
        }
        Err(e) => Err(from_batch(map, op, e)),
    }
}

pub(crate) fn kernel_update(
    map: &KernelMap,
    keys: &[u8],
    values: &[u8],
    flags: u64,
) -> Result<usize, MapError> {
    if !kernel_batch(map.map_type, false) {
        return fallback_update(map, keys, values, flags);
    }
    let n = packed_count(map, keys, Some(values))?;
    let f = BatchFlags {
        elem_flags: flags,
        flags: 0,
    };
    map.fd
        .update_batch(keys, values, n as u32, f)
        .map(|c| c as usize)
        .map_err(|e| from_batch(map, "update batch", e))
}

pub(crate) fn kernel_delete(map: &KernelMap, keys: &[u8]) -> Result<usize, MapError> {
    if !kernel_batch(map.map_type, true) {
        return fallback_delete(map, keys);
    }
    let n = packed_count(map, keys, None)?;
    map.fd
        .delete_batch(keys, n as u32, BatchFlags::default())
        .map(|c| c as usize)
        .map_err(|e| from_batch(map, "delete batch", e))
}

/// Every element of `map`, read with [`Map::lookup_batch`] until the walk is done; buffers
/// start at 256 elements (or the map's capacity) and double when the kernel answers `ENOSPC`.
pub fn lookup_all<M: Map + ?Sized>(map: &M) -> Result<Vec<Entry>, MapError> {
    let (ks, vl) = (map.key_size() as usize, map.value_len());
    let mut chunk = (map.max_entries() as usize).clamp(1, 256);
    let mut keys = vec![0u8; chunk * ks];
    let mut values = vec![0u8; chunk * vl];
    let mut cursor = BatchCursor::new();
    let mut out = Vec::new();
    while !cursor.is_done() {
        match map.lookup_batch(&mut cursor, &mut keys, &mut values) {
            Ok(n) => out.extend((0..n).map(|i| {
                (
                    keys[i * ks..][..ks].to_vec(),
                    values[i * vl..][..vl].to_vec(),
                )
            })),
            Err(e) if e.errno() == Some(ENOSPC) && chunk < (1 << 20) => {
                chunk *= 2;
                keys.resize(chunk * ks, 0);
                values.resize(chunk * vl, 0);
            }
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}
