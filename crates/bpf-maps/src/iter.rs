//! Iteration over keys and entries with `BPF_MAP_GET_NEXT_KEY`.
//!
//! The walk looks one key ahead: when it yields a key it has already asked the kernel for the
//! next one, so the caller may delete the key it was given (the common "drain" loop) without
//! the walk restarting. A key deleted by someone else while it is the look-ahead makes a hash
//! walk restart at the first key (kernel semantics), so keys may repeat when the map changes
//! concurrently; the walk stops with [`MapError::IterationAborted`] after more keys than the
//! map can hold rather than loop. Entries whose key vanished before its value was read are
//! skipped.

use bytemuck::Pod;

use crate::error::MapError;
use crate::Map;

/// A key buffer the walk can fill: bytes (`Vec<u8>`) or a plain-data key.
pub(crate) trait KeyBuf: Sized {
    fn blank(size: usize) -> Self;
    fn bytes(&self) -> &[u8];
    fn bytes_mut(&mut self) -> &mut [u8];
}

impl KeyBuf for Vec<u8> {
    fn blank(size: usize) -> Self {
        vec![0; size]
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
    ahead: Option<B>,
    pending: Option<MapError>,
    started: bool,
    done: bool,
    count: usize,
}

impl<B: KeyBuf> Walk<B> {
    pub(crate) fn new() -> Self {
        Walk {
            ahead: None,
            pending: None,
            started: false,
            done: false,
            count: 0,
        }
    }

    fn fetch<M: Map + ?Sized>(map: &M, prev: Option<&B>) -> Result<Option<B>, MapError> {
        let mut k = B::blank(map.key_size() as usize);
        let found = map.get_next_key(prev.map(|p| p.bytes()), k.bytes_mut())?;
        Ok(found.then_some(k))
    }

    pub(crate) fn next<M: Map + ?Sized>(&mut self, map: &M) -> Option<Result<B, MapError>> {
        if self.done {
            return None;
        }
        if let Some(e) = self.pending.take() {
            self.done = true;
            return Some(Err(e));
        }
        if !self.started {
            self.started = true;
            match Self::fetch(map, None) {
                Ok(k) => self.ahead = k,
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
        let Some(current) = self.ahead.take() else {
            self.done = true;
            return None;
        };
        self.count += 1;
        if self.count > (map.max_entries() as usize).max(1) {
            self.done = true;
            return Some(Err(MapError::IterationAborted {
                map: map.name().to_string(),
                count: self.count - 1,
            }));
        }
        match Self::fetch(map, Some(&current)) {
            Ok(k) => self.ahead = k,
            Err(e) => self.pending = Some(e),
        }
        Some(Ok(current))
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

    fn next(&mut self) -> Option<Self::Item> {
        self.walk.next(&self.map)
    }
}

/// The entries of a map, as bytes ([`MapExt::entries`](crate::MapExt::entries)).
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

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let key = match self.keys.next()? {
                Ok(k) => k,
                Err(e) => return Some(Err(e)),
            };
            let mut value = vec![0u8; self.keys.map.value_len()];
            match self.keys.map.lookup_elem(&key, &mut value, 0) {
                Ok(()) => return Some(Ok((key, value))),
                Err(e) if e.is_not_found() => continue,
                Err(e) => return Some(Err(e)),
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
