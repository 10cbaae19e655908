//! Queues, stacks and bloom filters: maps without keys.

use std::marker::PhantomData;

use bytemuck::Pod;

use crate::error::MapError;
use crate::typed::{check, found, view_common};
use crate::{Map, MapType, ANY};

macro_rules! fifo {
    ($name:ident, $ty:expr, $alias:literal, $doc:literal, $example:literal) => {
        #[doc = $doc]
        ///
        /// ```no_run
        #[doc = $example]
        /// # Ok::<(), bpf_maps::MapError>(())
        /// ```
        #[doc(alias = $alias)]
        #[derive(Debug)]
        pub struct $name<M, V> {
            map: M,
            _types: PhantomData<fn() -> V>,
        }

        view_common!($name<M, V>);

        impl<M: Map, V: Pod> $name<M, V> {
            /// A typed view with values of `V`.
            pub fn new(map: M) -> Result<Self, MapError> {
                check(&map, stringify!($name), &[$ty], Some(0), Some(size_of::<V>()))?;
                Ok($name {
                    map,
                    _types: PhantomData,
                })
            }

            /// Adds `value` ([`ANY`](crate::ANY); `BPF_EXIST` replaces the oldest element
            /// when full, else a full map answers `E2BIG`).
            pub fn push(&self, value: &V, flags: u64) -> Result<(), MapError> {
                self.map.push_elem(bytemuck::bytes_of(value), flags)
            }

            /// Removes and returns the next element, `None` when empty.
            pub fn pop(&self) -> Result<Option<V>, MapError> {
                let mut v = V::zeroed();
                found(self.map.pop_elem(bytemuck::bytes_of_mut(&mut v))).map(|o| o.map(|()| v))
            }

            /// The next element without removing it, `None` when empty.
            pub fn peek(&self) -> Result<Option<V>, MapError> {
                let mut v = V::zeroed();
                found(self.map.peek_elem(bytemuck::bytes_of_mut(&mut v))).map(|o| o.map(|()| v))
            }
        }
    };
}

fifo!(
    Queue,
    MapType::Queue,
    "BPF_MAP_TYPE_QUEUE",
    "A FIFO queue (`BPF_MAP_TYPE_QUEUE`, Linux 4.20).",
    "let q: bpf_maps::Queue<_, u32> = bpf_maps::Queue::new(bpf_maps::KernelMap::from_pin(\"/sys/fs/bpf/q\")?)?;\nq.push(&1, bpf_maps::ANY)?;\nassert_eq!(q.pop()?, Some(1));"
);
fifo!(
    Stack,
    MapType::Stack,
    "BPF_MAP_TYPE_STACK",
    "A LIFO stack (`BPF_MAP_TYPE_STACK`, Linux 4.20).",
    "let s: bpf_maps::Stack<_, u32> = bpf_maps::Stack::new(bpf_maps::KernelMap::from_pin(\"/sys/fs/bpf/s\")?)?;\ns.push(&1, bpf_maps::ANY)?;\ns.push(&2, bpf_maps::ANY)?;\nassert_eq!(s.pop()?, Some(2));"
);

/// A bloom filter (`BPF_MAP_TYPE_BLOOM_FILTER`, Linux 5.16): `contains` may answer `true` for
/// a value never inserted, never `false` for one that was. `map_extra` sets the number of hash
/// functions.
///
/// ```no_run
/// use bpf_maps::{BloomFilter, KernelMap};
///
/// let seen: BloomFilter<_, u64> = BloomFilter::new(KernelMap::from_pin("/sys/fs/bpf/seen")?)?;
/// seen.insert(&42)?;
/// assert!(seen.contains(&42)?);
/// # Ok::<(), bpf_maps::MapError>(())
/// ```
#[doc(alias = "BPF_MAP_TYPE_BLOOM_FILTER")]
#[derive(Debug)]
pub struct BloomFilter<M, V> {
    map: M,
    _types: PhantomData<fn() -> V>,
}

view_common!(BloomFilter<M, V>);

impl<M: Map, V: Pod> BloomFilter<M, V> {
    /// A typed view with values of `V`.
    pub fn new(map: M) -> Result<Self, MapError> {
        check(
            &map,
            "BloomFilter",
            &[MapType::BloomFilter],
            Some(0),
            Some(size_of::<V>()),
        )?;
        Ok(BloomFilter {
            map,
            _types: PhantomData,
        })
    }

    /// Adds `value`.
    pub fn insert(&self, value: &V) -> Result<(), MapError> {
        self.map.push_elem(bytemuck::bytes_of(value), ANY)
    }

    /// Whether `value` may have been inserted.
    pub fn contains(&self, value: &V) -> Result<bool, MapError> {
        let mut v = *value;
        found(self.map.peek_elem(bytemuck::bytes_of_mut(&mut v))).map(|o| o.is_some())
    }
}
