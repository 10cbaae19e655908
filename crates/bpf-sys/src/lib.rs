//! The raw Linux BPF system interface, and the only crate of the workspace with `unsafe` code.
//!
//! What lives here: the one chokepoint for `bpf(2)` ([`bpf`]) and safe wrappers that return
//! `OwnedFd` or typed values; the UAPI types and constants generated from the kernel headers
//! ([`uapi`], [`MapType`], [`ProgramType`], [`AttachType`]); `perf_event_open` and its ioctls
//! ([`perf`]); mmap'd regions for perf and ring buffers ([`mmap`]); and the small facts about the
//! running system that every layer needs (CPU lists, kernel version, bpffs and tracefs, feature
//! probes).
//!
//! When not to use it: almost always. The typed crates above (`bpf-maps`, `bpf-attach`,
//! `bpf-perf`) give the same operations with types that carry the invariants. Reach for
//! `bpf-sys` to build a new abstraction or to do something the upper layers do not cover.
//!
//! Why it is shaped so: keeping every `unsafe` block in one crate, behind one syscall function,
//! makes the whole workspace auditable; the crates above it carry `#![forbid(unsafe_code)]`.
#![deny(missing_docs)]

mod enums;
#[cfg(test)]
mod enums_tests;
pub mod uapi;

// The bpf(2) chokepoint and its command wrappers.
pub mod bpf;
pub mod btf;
pub mod error;
pub mod link;
pub mod map;
pub mod map_batch;
pub mod obj;
pub mod probe;
pub mod prog;
pub mod sock;

// perf_event_open, mmap'd regions.
pub mod mmap;
pub mod perf;
pub mod poll;

// Facts about the running system.
pub mod cpu;
pub mod fs;
pub mod kernel;
pub mod time;
pub mod util;

pub use enums::{AttachType, MapType, ProgramType};
pub use error::SysError;
#[cfg(feature = "floor")]
#[doc(hidden)]
pub mod floor;
