//! BPF programs in the kernel, and the loader that brings an object's maps and programs in.
//!
//! What lives here:
//!
//! - [`KernelSystem`] (goebpf's `System`): loads an ELF object, creating its maps at once
//!   (through `bpf-maps`), relocating its programs and keeping them ready to load; maps and
//!   programs by name and as iterators; global variables by name ([`globals`]);
//! - [`KernelProgram`] (goebpf's `Program`): load with a bounded verifier log, pin, close,
//!   info, test run; a verifier rejection is a [`VerifierError`] value with the whole log;
//! - [`ProgramInfo`] and the enumeration of loaded programs and maps ([`loaded_programs`],
//!   [`loaded_maps`]);
//! - the object-safe traits [`System`] and [`Program`], which `bpf-mock` implements in memory;
//! - attachments as owned links that detach on drop: [`xdp`], [`tc`] (and TCX), [`socket`],
//!   [`kprobe`], [`tracepoint`], [`uprobe`]; goebpf-style [`KernelProgram::attach`];
//! - the kernel side of CO-RE: [`kernel_btf`] (vmlinux and module BTF, read once) and
//!   [`kernel_config`] (`.kconfig` and kallsyms).
//!
//! When not to use it: to inspect an object without a kernel, `bpf-elf` is enough; to use a
//! single map, `bpf-maps`.
//!
//! Why it is shaped so: the loader is the one place that knows both maps and programs, so it
//! sits above `bpf-maps` in the layer table; verifier failures are values, not strings, so a
//! caller can print the relevant lines, keep the whole log, or point at the source line; and
//! the log grows in a pure state machine ([`LogGrowth`]) so its bounds are unit-tested without
//! a kernel. See `docs/loading.md` for the object lifecycle.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod error;
pub mod globals;
mod info;
mod program;
mod system;
mod test_run;
mod traits;
pub mod verifier;

pub use bpf_elf::{AttachType, ProgramType};
#[doc(no_inline)]
pub use bpf_maps::MapType;

pub use error::{GlobalError, LoadError, ProgramError};
pub use globals::GlobalVariable;
pub use info::{loaded_maps, loaded_programs, map_ids, program_ids, MapSummary, ProgramInfo};
pub use program::{retry_without_attach_type, retry_without_btf, KernelProgram};
pub use system::{KernelSystem, LoadOptions};
pub use test_run::{TestRun, TestRunOutput};
pub use traits::{Program, System};
pub use verifier::{LogGrowth, LogLimits, SourceLocation, VerifierError};

// Attachments: owned links for XDP, TC/TCX and socket filters (netlink where needed).
mod attach_error;
mod clsact;
pub mod link;
pub mod netlink;
pub mod socket;
pub mod tc;
pub mod xdp;

pub use attach_error::{AttachError, Iface};
pub use link::{FdLink, Link};

// Attachments: kprobes, tracepoints, uprobes through perf events; goebpf-style attach.
pub mod elf_sym;
pub mod kprobe;
pub mod perf_link;
pub mod probe_events;
mod program_attach;
pub mod tracepoint;
pub mod uprobe;

pub use perf_link::PerfLink;
pub use probe_events::{cleanup_probes, list_probes};
pub use program_attach::{AttachTarget, ProgramAttachError};

// CO-RE: the kernel's BTF (and modules'), BTF feature probes and sanitising, kernel config.
pub mod kernel_btf;
pub mod kernel_config;
