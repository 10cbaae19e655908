//! Parse and relocate clang-built BPF ELF objects.
//!
//! `bpf-elf` is pure: bytes in, specs (`ObjectSpec`, `MapSpec`, `ProgramSpec`) out. It makes no
//! system call and gives the same answer on any kernel, which is why it only takes types and
//! constants from `bpf-sys`. Use it directly when you only need to inspect an object; use the
//! `ebpf` facade to load one.
//!
//! The parser itself lands with the bpf-elf issue; until then this crate re-exports the UAPI
//! vocabulary it will speak.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub use bpf_sys::{AttachType, MapType, ProgramType};
