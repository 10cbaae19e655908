//! Perf event array and BPF ring buffer readers.
//!
//! The readers land with the event-streaming issue; the mmap'd regions they read live in
//! `bpf_sys::mmap`, since every `unsafe` stays in `bpf-sys`.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

#[doc(no_inline)]
pub use bpf_maps::MapType;
