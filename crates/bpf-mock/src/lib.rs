//! In-memory maps, programs and systems for unit tests that run without root.
//!
//! Lands with the mock issue. `bpf-mock` never makes a system call: it depends on the specs and
//! traits of `bpf-elf`, `bpf-maps` and `bpf-attach`, never on `bpf-sys`.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

#[doc(no_inline)]
pub use bpf_attach::ProgramType;
