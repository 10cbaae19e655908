//! Iteration over keys and entries with `BPF_MAP_GET_NEXT_KEY`.
//!
//! The walk looks one key ahead: when it yields a key it has already asked the kernel for the
//! next one, so the caller may delete the key it was given (the common "drain" loop) without
//! the walk restarting. A key deleted by someone else while it is the look-ahead makes a hash
//! walk restart at the first key (kernel semantics), so keys may repeat when the map changes
//! concurrently; the walk stops with [`MapError::IterationAborted`] after more keys than the
//! map can hold rather than loop. Entries whose key vanished before its value was read are
//! skipped.
//!
//! [`Entries`] yields each entry as two new vectors; [`EntryWalk`] walks the same way but lends
//! each key and value from buffers it reuses, allocating nothing per entry.

use bytemuck::Pod;

use crate::error::MapError;
use crate::Map;

/// A key buffer the walk can fill: bytes (`Vec<u8>`) or a plain-data key.
pub(crate) trait KeyBuf: Sized {
    fn blank(size: usize) -> Self;
    fn bytes(&self) -> &[u8];
    fn bytes_mut(&mut self) -> &mut [u8];
}

/// `len` zero bytes on the heap, allocated and then filled rather than allocated zeroed: the
/// walks allocate and the caller frees one key and one value per entry, and glibc's `calloc`
/// (which `vec![0; len]` calls) takes its slow path each time where `malloc` takes the
/// per-thread cache (measured with glibc 2.36: about 220 fewer instructions per entry of
/// [`Entries`]).
#[inline]
#[allow(
    clippy::slow_vector_initialization,
    reason = "`vec![0; len]` is the calloc this avoids"
)]
pub(crate) fn zeroed_vec(len: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(len);
    v.resize(len, 0);
    v
}

impl KeyBuf for Vec<u8> {
    #[inline]
    fn blank(size: usize) -> Self {
        zeroed_vec(size)
    }
    fn bytes(&self) -> &[u8] {
        self
    }
    fn bytes_mut(&mut self) -> &mut [u8] {
        self
    }
}

/// A plain-data key as a key buffer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PodKey<K>(pub K);

impl<K: Pod> KeyBuf for PodKey<K> {
    fn blank(_: usize) -> Self {
        PodKey(K::zeroed())
    }
    fn bytes(&self) -> &[u8] {
        bytemuck::bytes_of(&self.0)
    }
    fn bytes_mut(&mut self) -> &mut [u8] {
        bytemuck::bytes_of_mut(&mut self.0)
    }
}

/// The state of a key walk with one key of look-ahead.
#[derive(Debug)]
pub(crate) struct Walk<B> {
    /// The look-ahead key: `Some` while the walk is under way (the fast path of [`Walk::next`]).
    ahead: Option<B>,
    /// A buffer to fetch the next look-ahead into (a lending walk gives its last key back).
    spare: Option<B>,
    /// An error of the look-ahead fetch, reported by the call after the key it followed.
    pending: Option<MapError>,
    started: bool,
    done: bool,
    count: usize,
}

impl<B: KeyBuf> Walk<B> {
    pub(crate) fn new() -> Self {
        Walk {
            ahead: None,
            spare: None,
            pending: None,
            started: false,
            done: false,
            count: 0,
        }
    }

    /// Gives a yielded key's buffer back, to fetch a later key into.
    #[inline]
    pub(crate) fn recycle(&mut self, buf: B) {
        self.spare = Some(buf);
    }

    /// A buffer of the key size (the spare one, or a new one).
    #[inline]
    fn buffer<M: Map + ?Sized>(&mut self, map: &M) -> B {
        match self.spare.take() {
            Some(b) => b,
            None => B::blank(map.key_size() as usize),
        }
    }

    #[inline]
    pub(crate) fn next<M: Map + ?Sized>(&mut self, map: &M) -> Option<Result<B, MapError>> {
        let current = match self.ahead.take() {
            Some(k) => k,
            None => match self.first(map)? {
                Ok(k) => k,
                Err(e) => return Some(Err(e)),
            },
        };
        self.count += 1;
        if self.count > (map.max_entries() as usize).max(1) {
            return Some(Err(self.abort(map)));
        }
        let mut next = self.buffer(map);
        match map.get_next_key(Some(current.bytes()), next.bytes_mut()) {
            Ok(true) => self.ahead = Some(next),
            Ok(false) => self.spare = Some(next),
            Err(e) => self.pending = Some(e),
        }
        Some(Ok(current))
    }

    /// [`Walk::next`] with no look-ahead key: the first key, the end, or the error that ended
    /// the walk.
    #[inline(never)]
    fn first<M: Map + ?Sized>(&mut self, map: &M) -> Option<Result<B, MapError>> {
        if self.done {
            return None;
        }
        if let Some(e) = self.pending.take() {
            self.done = true;
            return Some(Err(e));
        }
        if self.started {
            self.done = true;
            return None;
        }
        self.started = true;
        let mut k = self.buffer(map);
        match map.get_next_key(None, k.bytes_mut()) {
            Ok(true) => Some(Ok(k)),
            Ok(false) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }

    /// Ends a walk that saw more keys than the map can hold.
    #[cold]
    #[inline(never)]
    fn abort<M: Map + ?Sized>(&mut self, map: &M) -> MapError {
        self.done = true;
        MapError::IterationAborted {
            map: map.name().to_string(),
            count: self.count - 1,
        }
    }
}

/// The keys of a map, as bytes ([`MapExt::keys`](crate::MapExt::keys)).
#[derive(Debug)]
pub struct Keys<M> {
    map: M,
    walk: Walk<Vec<u8>>,
}

impl<M: Map> Keys<M> {
    /// A walk over the keys of `map`.
    pub fn new(map: M) -> Self {
        Keys {
            map,
            walk: Walk::new(),
        }
    }
}

impl<M: Map> Iterator for Keys<M> {
    type Item = Result<Vec<u8>, MapError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        self.walk.next(&self.map)
    }
}

/// The entries of a map, as bytes ([`MapExt::entries`](crate::MapExt::entries)).
///
/// Each entry is two new vectors (the key is the walk's look-ahead buffer, handed over; the
/// value is read into a new one). [`EntryWalk`] lends one key and one value buffer instead,
/// allocating nothing per entry.
#[derive(Debug)]
pub struct Entries<M> {
    keys: Keys<M>,
}

impl<M: Map> Entries<M> {
    /// A walk over the entries of `map`.
    pub fn new(map: M) -> Self {
        Entries {
            keys: Keys::new(map),
        }
    }
}

impl<M: Map> Iterator for Entries<M> {
    type Item = Result<(Vec<u8>, Vec<u8>), MapError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let key = match self.keys.next()? {
                Ok(k) => k,
                Err(e) => return Some(Err(e)),
            };
            let mut value = zeroed_vec(self.keys.map.value_len());
            match self.keys.map.lookup_elem(&key, &mut value, 0) {
                Ok(()) => return Some(Ok((key, value))),
                Err(e) if e.is_not_found() => continue,
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

/// The entries of a map, as bytes lent one at a time
/// ([`MapExt::entry_walk`](crate::MapExt::entry_walk)): the walk of [`Entries`], with the same
/// look-ahead, restart, bound and skipping of vanished keys, but each key and value is
/// borrowed from buffers the walk reuses, so it allocates nothing per entry.
///
/// Not an [`Iterator`] (an entry borrows the walk until the next call):
///
/// ```no_run
/// use bpf_maps::{KernelMap, MapExt};
///
/// let map = KernelMap::from_pin("/sys/fs/bpf/counts")?;
/// let mut walk = map.entry_walk();
/// while let Some(entry) = walk.next_entry() {
///     let (key, value) = entry?;
///     println!("{key:?}: {value:?}");
/// }
/// # Ok::<(), bpf_maps::MapError>(())
/// ```
#[derive(Debug)]
pub struct EntryWalk<M> {
    map: M,
    walk: Walk<Vec<u8>>,
    /// The key last lent (given back to the walk on the next call).
    key: Option<Vec<u8>>,
    value: Vec<u8>,
}

impl<M: Map> EntryWalk<M> {
    /// A walk over the entries of `map`.
    pub fn new(map: M) -> Self {
        let value = zeroed_vec(map.value_len());
        EntryWalk {
            map,
            walk: Walk::new(),
            key: None,
            value,
        }
    }

    /// The next entry: its key ([`Map::key_size`] bytes) and value ([`Map::value_len`] bytes),
    /// or an error, as [`Entries`] would yield them; `None` at the end.
    #[inline]
    #[allow(clippy::type_complexity, reason = "a key and a value, borrowed")]
    pub fn next_entry(&mut self) -> Option<Result<(&[u8], &[u8]), MapError>> {
        loop {
            if let Some(k) = self.key.take() {
                self.walk.recycle(k);
            }
            let key = match self.walk.next(&self.map)? {
                Ok(k) => k,
                Err(e) => return Some(Err(e)),
            };
            match self.map.lookup_elem(&key, &mut self.value, 0) {
                Ok(()) => {
                    let key = self.key.insert(key);
                    return Some(Ok((key, &self.value)));
                }
                Err(e) => {
                    self.key = Some(key);
                    if !e.is_not_found() {
                        return Some(Err(e));
                    }
                }
            }
        }
    }
}

/// The keys of a typed map.
#[derive(Debug)]
pub struct TypedKeys<'a, M, K> {
    map: &'a M,
    walk: Walk<PodKey<K>>,
}

impl<'a, M: Map, K: Pod> TypedKeys<'a, M, K> {
    pub(crate) fn new(map: &'a M) -> Self {
        TypedKeys {
            map,
            walk: Walk::new(),
        }
    }
}

impl<M: Map, K: Pod> Iterator for TypedKeys<'_, M, K> {
    type Item = Result<K, MapError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.walk.next(self.map).map(|r| r.map(|k| k.0))
    }
}

type Getter<'a, K, V> = Box<dyn FnMut(&K) -> Result<Option<V>, MapError> + 'a>;

/// The entries of a typed map: each key with its value, read by `get`; keys whose value
/// vanished before it was read are skipped.
pub struct TypedEntries<'a, M, K, V> {
    keys: TypedKeys<'a, M, K>,
    get: Getter<'a, K, V>,
}

impl<M: std::fmt::Debug, K: std::fmt::Debug, V> std::fmt::Debug for TypedEntries<'_, M, K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypedEntries")
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

impl<'a, M: Map, K: Pod, V> TypedEntries<'a, M, K, V> {
    pub(crate) fn new(map: &'a M, get: impl FnMut(&K) -> Result<Option<V>, MapError> + 'a) -> Self {
        TypedEntries {
            keys: TypedKeys::new(map),
            get: Box::new(get),
        }
    }
}

impl<M: Map, K: Pod, V> Iterator for TypedEntries<'_, M, K, V> {
    type Item = Result<(K, V), MapError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let key = match self.keys.next()? {
                Ok(k) => k,
                Err(e) => return Some(Err(e)),
            };
            match (self.get)(&key) {
                Ok(Some(v)) => return Some(Ok((key, v))),
                Ok(None) => continue,
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

/// An in-memory hash-like map for the unit tests of this crate: sorted keys, the kernel's
/// walk (an unknown key restarts at the first), and switches to make a walk misbehave.
#[cfg(test)]
pub(crate) mod fake {
    use std::cell::{Cell, RefCell};
    use std::collections::BTreeMap;
    use std::io;
    use std::ops::Bound;

    use bpf_sys::{MapType, SysError};

    use crate::error::{MapError, Part, EINVAL, ENOENT, EPERM};
    use crate::Map;

    #[derive(Debug)]
    pub(crate) struct FakeMap {
        pub(crate) map_type: MapType,
        pub(crate) key_size: u32,
        pub(crate) value_size: u32,
        pub(crate) value_len: usize,
        pub(crate) max_entries: u32,
        pub(crate) elems: RefCell<BTreeMap<Vec<u8>, Vec<u8>>>,
        /// The flags of the last update.
        pub(crate) last_flags: Cell<Option<u64>>,
        /// Next key after a known key answers the first key (a map that keeps changing).
        pub(crate) restart_always: Cell<bool>,
        /// The next-key call (counting from 1) that fails with `EPERM`.
        pub(crate) fail_next_key_call: Cell<Option<usize>>,
        next_key_calls: Cell<usize>,
    }

    fn errno(op: &'static str, e: i32) -> MapError {
        MapError::op(
            op,
            "fake",
            SysError::new("bpf", io::Error::from_raw_os_error(e)),
        )
    }

    impl FakeMap {
        /// A map of `map_type` with `value_len` bytes per value (per-CPU: all slots).
        pub(crate) fn new(
            map_type: MapType,
            key_size: u32,
            value_size: u32,
            value_len: usize,
        ) -> Self {
            FakeMap {
                map_type,
                key_size,
                value_size,
                value_len,
                max_entries: 1024,
                elems: RefCell::default(),
                last_flags: Cell::new(None),
                restart_always: Cell::new(false),
                fail_next_key_call: Cell::new(None),
                next_key_calls: Cell::new(0),
            }
        }

        /// A hash of `u32` keys and `u64` values `k * 10` for each of `keys`.
        pub(crate) fn with_u32_keys(keys: impl IntoIterator<Item = u32>) -> Self {
            let m = FakeMap::new(MapType::Hash, 4, 8, 8);
            for k in keys {
                m.elems.borrow_mut().insert(
                    k.to_ne_bytes().to_vec(),
                    (u64::from(k) * 10).to_ne_bytes().to_vec(),
                );
            }
            m
        }

        fn check(&self, part: Part, got: usize) -> Result<(), MapError> {
            let expected = match part {
                Part::Key => self.key_size as usize,
                Part::Value => self.value_len,
            };
            if got == expected {
                Ok(())
            } else {
                Err(MapError::size("fake", part, got, expected))
            }
        }
    }

    impl Map for FakeMap {
        fn name(&self) -> &str {
            "fake"
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
            0
        }
        fn value_len(&self) -> usize {
            self.value_len
        }
        fn lookup_elem(&self, key: &[u8], value: &mut [u8], _: u64) -> Result<(), MapError> {
            self.check(Part::Key, key.len())?;
            self.check(Part::Value, value.len())?;
            let elems = self.elems.borrow();
            let v = elems.get(key).ok_or_else(|| errno("lookup", ENOENT))?;
            value.copy_from_slice(v);
            Ok(())
        }
        fn update_elem(&self, key: &[u8], value: &[u8], flags: u64) -> Result<(), MapError> {
            self.check(Part::Key, key.len())?;
            self.check(Part::Value, value.len())?;
            self.last_flags.set(Some(flags));
            self.elems.borrow_mut().insert(key.to_vec(), value.to_vec());
            Ok(())
        }
        fn delete_elem(&self, key: &[u8]) -> Result<(), MapError> {
            self.check(Part::Key, key.len())?;
            match self.elems.borrow_mut().remove(key) {
                Some(_) => Ok(()),
                None => Err(errno("delete", ENOENT)),
            }
        }
        fn get_next_key(&self, key: Option<&[u8]>, next: &mut [u8]) -> Result<bool, MapError> {
            let call = self.next_key_calls.get() + 1;
            self.next_key_calls.set(call);
            if self.fail_next_key_call.get() == Some(call) {
                return Err(errno("next key", EPERM));
            }
            if let Some(k) = key {
                self.check(Part::Key, k.len())?;
            }
            self.check(Part::Key, next.len())?;
            let elems = self.elems.borrow();
            let found = match key {
                Some(k) if elems.contains_key(k) && !self.restart_always.get() => elems
                    .range::<[u8], _>((Bound::Excluded(k), Bound::Unbounded))
                    .next(),
                _ => elems.iter().next(),
            };
            match found {
                Some((k, _)) => {
                    next.copy_from_slice(k);
                    Ok(true)
                }
                None => Ok(false),
            }
        }
        fn lookup_and_delete_elem(&self, _: &[u8], _: &mut [u8], _: u64) -> Result<(), MapError> {
            Err(errno("lookup and delete", EINVAL))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fake::FakeMap;
    use super::*;
    use crate::error::EPERM;
    use crate::MapExt;

    type Entry = Result<(Vec<u8>, Vec<u8>), MapError>;

    /// Every item of the lending walk, copied out.
    fn lent(map: &FakeMap) -> Vec<Entry> {
        let mut walk = map.entry_walk();
        let mut out = Vec::new();
        while let Some(e) = walk.next_entry() {
            out.push(e.map(|(k, v)| (k.to_vec(), v.to_vec())));
        }
        out
    }

    /// The keys of walk items as `u32`s, errors as `None`.
    fn keys_of(items: &[Entry]) -> Vec<Option<u32>> {
        items
            .iter()
            .map(|e| {
                e.as_ref()
                    .ok()
                    .map(|(k, _)| u32::from_ne_bytes(k[..].try_into().unwrap()))
            })
            .collect()
    }

    #[test]
    fn both_entry_walks_yield_every_entry_once() {
        let map = FakeMap::with_u32_keys(0..100);
        let owned: Vec<Entry> = map.entries().collect();
        let keys = keys_of(&owned);
        assert_eq!(keys, (0..100).map(Some).collect::<Vec<_>>());
        for e in &owned {
            let (k, v) = e.as_ref().unwrap();
            let k = u32::from_ne_bytes(k[..].try_into().unwrap());
            assert_eq!(v, &(u64::from(k) * 10).to_ne_bytes());
        }
        let lent = lent(&map);
        assert_eq!(keys_of(&lent), keys);
        assert!(owned
            .iter()
            .zip(&lent)
            .all(|(a, b)| a.as_ref().ok() == b.as_ref().ok()));
        assert_eq!(map.keys().count(), 100);
        assert!(lent_of_empty_is_empty());
    }

    fn lent_of_empty_is_empty() -> bool {
        let map = FakeMap::with_u32_keys([]);
        map.entry_walk().next_entry().is_none() && map.entries().next().is_none()
    }

    #[test]
    fn the_caller_may_delete_each_key_it_is_given() {
        let map = FakeMap::with_u32_keys(0..10);
        let mut seen = 0;
        for k in map.keys() {
            map.delete_elem(&k.unwrap()).unwrap();
            seen += 1;
        }
        assert_eq!((seen, map.elems.borrow().len()), (10, 0));

        let map = FakeMap::with_u32_keys(0..10);
        let mut walk = map.entry_walk();
        let mut seen = 0;
        while let Some(e) = walk.next_entry() {
            let (k, _) = e.unwrap();
            map.delete_elem(k).unwrap();
            seen += 1;
        }
        assert_eq!((seen, map.elems.borrow().len()), (10, 0));
    }

    #[test]
    fn a_vanished_look_ahead_key_restarts_the_walk_and_is_skipped() {
        // After key 0 is yielded, the look-ahead key 1 is deleted by someone else: its lookup
        // fails (skipped) and the walk after it restarts at the first key, so 0 repeats.
        let expected = vec![Some(0), Some(0), Some(2), Some(3)];
        let map = FakeMap::with_u32_keys(0..4);
        let mut owned = Vec::new();
        for e in map.entries() {
            if owned.is_empty() {
                map.delete_elem(&1u32.to_ne_bytes()).unwrap();
            }
            owned.push(e);
        }
        assert_eq!(keys_of(&owned), expected);

        let map = FakeMap::with_u32_keys(0..4);
        let mut walk = map.entry_walk();
        let mut lent = Vec::new();
        while let Some(e) = walk.next_entry() {
            if lent.is_empty() {
                map.delete_elem(&1u32.to_ne_bytes()).unwrap();
            }
            lent.push(e.map(|(k, v)| (k.to_vec(), v.to_vec())));
        }
        assert_eq!(keys_of(&lent), expected);
    }

    #[test]
    fn a_walk_that_never_ends_is_aborted_after_max_entries() {
        let mut map = FakeMap::with_u32_keys(0..2);
        map.max_entries = 3;
        map.restart_always.set(true);
        for items in [map.entries().collect::<Vec<_>>(), lent(&map)] {
            assert_eq!(keys_of(&items), [Some(0), Some(0), Some(0), None]);
            assert!(matches!(
                items[3],
                Err(MapError::IterationAborted { count: 3, .. })
            ));
        }
    }

    #[test]
    fn a_failing_next_key_is_reported_after_the_key_it_followed_and_ends_the_walk() {
        for lending in [false, true] {
            let map = FakeMap::with_u32_keys(0..5);
            // Call 1 finds key 0, call 2 key 1, call 3 (the look-ahead after 1) fails.
            map.fail_next_key_call.set(Some(3));
            let items = if lending {
                lent(&map)
            } else {
                map.entries().collect()
            };
            assert_eq!(keys_of(&items), [Some(0), Some(1), None]);
            assert_eq!(items[2].as_ref().unwrap_err().errno(), Some(EPERM));

            let map = FakeMap::with_u32_keys(0..5);
            map.fail_next_key_call.set(Some(1));
            let mut keys = map.keys();
            assert_eq!(keys.next().unwrap().unwrap_err().errno(), Some(EPERM));
            assert!(keys.next().is_none());
        }
    }
}
