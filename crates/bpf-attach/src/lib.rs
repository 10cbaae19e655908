//! BPF programs in the kernel and their attachments.
//!
//! Loading, verifier errors, test runs, and links for XDP, TC, socket filters, kprobes,
//! tracepoints and uprobes land with the loader and attach issues; this crate exists now so that
//! the layer table holds from the first commit.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub use bpf_elf::{AttachType, ProgramType};
#[doc(no_inline)]
pub use bpf_maps::MapType;
