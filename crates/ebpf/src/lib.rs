//! `ebpf`: a simple, safe and fast interface to Linux eBPF.
//!
//! This facade only re-exports the layer crates; depend on a single layer when that is all you
//! need (`bpf-elf` to inspect objects without a kernel, `bpf-mock` in unit tests, ...).
//!
//! | crate | role |
//! | --- | --- |
//! | [`sys`] | the `bpf(2)` chokepoint, UAPI types, perf events, mmap'd rings, CPU lists, bpffs/tracefs |
//! | [`elf`] | pure ELF parser and relocator |
//! | [`maps`] | maps in the kernel |
//! | [`attach`] | programs and their attachments |
//! | [`perf`] | perf and ring buffer readers |
//! | [`mock`] | in-memory stand-ins for unit tests |
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub use bpf_attach as attach;
pub use bpf_elf as elf;
pub use bpf_maps as maps;
pub use bpf_mock as mock;
pub use bpf_perf as perf;
pub use bpf_sys as sys;

/// The names most programs need.
pub mod prelude {
    pub use bpf_attach::{KernelProgram, KernelSystem, Link, Program, System};
    pub use bpf_maps::{KernelMap, Map, MapExt};
    pub use bpf_sys::{AttachType, MapType, ProgramType};
}

/// The README's examples, compiled as doctests so that they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
