//! In-memory maps, programs and systems for unit tests that run without root.
//!
//! What it is for: testing a control plane (the user-space code that fills maps, reads
//! counters, loads and attaches programs) with plain `cargo test`, no kernel, no privilege.
//! Write that code against the traits of the real objects — [`bpf_maps::Map`] (or `&dyn Map`,
//! with [`MapExt`](bpf_maps::MapExt) and the typed views of `bpf-maps`),
//! [`bpf_attach::Program`], [`bpf_attach::System`] — and give it
//! [`MockMap`], [`MockProgram`] and [`MockSystem`] in tests:
//!
//! - [`MockMap`] answers as the kernel does, with the same [`MapError`](bpf_maps::MapError)s
//!   and errnos: insert/update/upsert flags, `E2BIG` when full (LRU: eviction), arrays that
//!   hold every index and refuse delete, next key that restarts after an unknown key,
//!   longest-prefix match, the per-CPU layout, queues and stacks, fd-holding maps that take
//!   mock maps and programs, size checks; it is `Send + Sync`. A differential property test
//!   (`tests/kernel/mock_diff.rs`) runs the same operations on kernel maps and on mocks.
//! - [`MockProgram`] records load, pin, attach (with its target), detach and close.
//! - [`MockSystem`] parses a real object with `bpf-elf` ([`MockSystem::load_elf`]) or is built
//!   by hand ([`MockSystemBuilder`]).
//! - Error injection ([`error_injection`]): any map operation, program load, pin, attach or
//!   detach, or the whole load, fails on request with the errno asked for.
//!
//! When not to use it: to test the BPF programs themselves (run them with
//! `KernelProgram::test_run` in the kernel); to measure anything; to check what the kernel
//! accepts at load time (the verifier is not mocked: a mock program always loads unless told to
//! fail).
//!
//! Why it is shaped so: goebpf's mocks differed from the kernel in many ways (flags ignored,
//! no `max_entries`, arrays deletable, no per-CPU layout, no LPM), so tests passed against the
//! mock and failed in production; here every documented behaviour is checked against the
//! kernel. `bpf-mock` never makes a system call: it depends on the specs and traits of
//! `bpf-elf`, `bpf-maps` and `bpf-attach`, never on `bpf-sys` (a tidy test checks it), so the
//! mock's number of possible CPUs is a setting ([`DEFAULT_CPUS`]) and its "fds" are numbers in a
//! process-wide table, not descriptors. See `docs/mocks.md`.
//!
//! ```
//! use bpf_maps::{HashMap, Map, MapExt, MapSpec, MapType, ANY};
//! use bpf_mock::MockMap;
//!
//! // Code under test, written against the trait.
//! fn block(map: &dyn Map, port: u16) -> Result<(), bpf_maps::MapError> {
//!     map.upsert(&port, &1u8)
//! }
//!
//! let map = MockMap::new(&MapSpec::new("ports", MapType::Hash, 2, 1, 64))?;
//! block(&map, 22)?;
//! let ports: HashMap<_, u16, u8> = HashMap::new(&map)?; // typed views work over mocks
//! assert_eq!(ports.get(&22)?, Some(1));
//! # Ok::<(), bpf_maps::MapError>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod error_injection;
mod map;
mod program;
mod registry;
mod system;

#[cfg(test)]
mod tests;

pub use error_injection::{MapOp, ProgramOp, Times};
pub use map::{MockMap, DEFAULT_CPUS};
pub use program::{MockLink, MockProgram, ProgramEvent};
pub use registry::FIRST_MOCK_FD;
pub use system::{MockSystem, MockSystemBuilder};

#[doc(no_inline)]
pub use bpf_attach::ProgramType;

/// The errnos mock maps answer with (Linux values), for tests and for
/// [`MockMap::fail`](crate::MockMap::fail).
pub mod errno {
    pub use bpf_maps::errno::{E2BIG, EEXIST, EINVAL, ENOENT, ENOSPC, EPERM};
    /// `EBADF`: a value of an fd-holding map is not a mock fd.
    pub const EBADF: i32 = 9;
    /// `ENOMEM`.
    pub const ENOMEM: i32 = 12;
    /// `EBUSY`.
    pub const EBUSY: i32 = 16;
    /// `EOPNOTSUPP`.
    pub const EOPNOTSUPP: i32 = 95;
    /// `ENOTSUPP` (524, kernel-internal): the element command does not apply to the map type.
    pub const ENOTSUPP: i32 = 524;
}

/// The examples of `docs/mocks.md`, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/mocks.md")]
struct MocksDoc;
pub mod interp;
