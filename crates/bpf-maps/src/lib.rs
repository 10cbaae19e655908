//! BPF maps in the kernel: byte-level and typed access, batch operations, pinning, info.
//!
//! Two levels, on one object-safe trait:
//!
//! - **byte-level**, goebpf's surface: [`Map`] (metadata and element operations on byte
//!   slices) and its extension [`MapExt`] (keys and values from Rust values through
//!   [`KeyValue`]: integers, strings, bytes, IP addresses, [`Cidr`]s; `insert` = `BPF_NOEXIST`,
//!   `update` = `BPF_EXIST`, `upsert` = `BPF_ANY`; lookups as bytes, integers, strings);
//! - **typed**: [`HashMap`], [`PerCpuHashMap`], [`Array`], [`PerCpuArray`], [`LpmTrie`],
//!   [`Queue`], [`Stack`], [`BloomFilter`], [`ProgramArray`], [`ArrayOfMaps`],
//!   [`HashOfMaps`], [`DevMap`], [`DevMapHash`], [`CpuMap`], [`XskMap`], [`SockMap`],
//!   [`SockHash`], [`StackTraceMap`], [`DataMap`]: plain-data keys and values
//!   (`bytemuck::Pod`), sizes checked once when the view is built, no allocation per
//!   operation.
//!
//! [`KernelMap`] is the map in the kernel: created from a [`MapSpec`] ([`KernelMap::create`],
//! with goebpf's normalisation and a [`PinPolicy`]) or opened by fd, id or pin.
//!
//! When not to use it: to load a whole object (maps and programs together) use the loader of
//! `bpf-attach` (or the `ebpf` facade), which calls [`KernelMap::create`] for each map. In unit
//! tests without a kernel, use `bpf-mock`'s in-memory maps, which implement [`Map`].
//!
//! Why it is shaped so: goebpf's byte-level API stays for familiarity and as an escape hatch;
//! the typed views are generic over any `M: Map` (owned, borrowed, mocked) so the same code
//! runs against the kernel and in memory; every kernel answer is a [`MapError`] whose errno can
//! be tested ([`MapError::is_not_found`], [`MapError::is_exists`]). See `docs/maps.md`.
//!
//! ```no_run
//! use bpf_maps::{HashMap, KernelMap, MapExt, MapSpec, MapType, ANY};
//!
//! let map = KernelMap::create(&MapSpec::new("counts", MapType::Hash, 4, 8, 1024), &Default::default())?;
//! map.upsert(&1u32, &10u64)?;                 // goebpf style
//! let counts: HashMap<_, u32, u64> = HashMap::new(&map)?;
//! counts.insert(&2, &20, ANY)?;               // typed
//! assert_eq!(counts.get(&1)?, Some(10));
//! # Ok::<(), bpf_maps::MapError>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod array;
pub mod batch;
pub mod convert;
pub mod create;
mod data;
mod dev;
mod error;
mod hash;
pub mod iter;
mod lpm;
mod map;
mod of_maps;
mod per_cpu;
mod prog_array;
mod queue;
mod sock;
mod stack_trace;
mod typed;

pub use array::Array;
pub use batch::BatchCursor;
pub use bpf_elf::{MapSpec, Pinning};
pub use bpf_sys::MapType;
pub use bytemuck::{self, Pod, Zeroable};
pub use convert::{lpm_key, to_bytes, Cidr, KeyValue, Plain};
pub use create::{CreateOptions, PinPolicy, DEFAULT_PIN_ROOT};
pub use data::{set_variable, DataMap};
pub use dev::{CpuMap, DevMap, DevMapHash, TargetValue, XskMap};
pub use error::{ConvertError, FieldDiff, MapError, Part};
pub use hash::{HashMap, LruHashMap};
pub use lpm::{LpmKey, LpmTrie};
pub use map::{
    forces_any, loaded_maps, map_info, per_cpu_stride, KernelMap, Map, MapExt, MapInfo,
    SharedObject, ANY, EXIST, F_LOCK, NOEXIST,
};
pub use of_maps::{ArrayOfMaps, HashOfMaps};
pub use per_cpu::{LruPerCpuHashMap, PerCpuArray, PerCpuHashMap, PerCpuValues};
pub use prog_array::ProgramArray;
pub use queue::{BloomFilter, Queue, Stack};
pub use sock::{SockHash, SockMap};
pub use stack_trace::StackTraceMap;

/// The errnos callers test map errors against (Linux values).
pub mod errno {
    pub use crate::error::{E2BIG, EEXIST, EINVAL, ENOENT, ENOSPC, EPERM};
}

/// The examples of `docs/maps.md`, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/maps.md")]
struct MapsDoc;
