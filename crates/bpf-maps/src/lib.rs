//! BPF maps in the kernel: byte-level and typed access, pinning, info.
//!
//! Built on `bpf-sys` (the syscalls) and `bpf-elf` (the map specs an object declares). The map
//! API lands with the loader issue; this crate exists now so that the layer table holds from the
//! first commit.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub use bpf_elf::MapType;
