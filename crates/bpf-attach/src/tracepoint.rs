//! Tracepoints and raw tracepoints.
//!
//! A tracepoint program (`BPF_PROG_TYPE_TRACEPOINT`, section `tracepoint/CATEGORY/NAME`) is
//! attached to a perf event opened on the tracepoint's tracefs id
//! (`events/CATEGORY/NAME/id`), through a perf `bpf_link` or `PERF_EVENT_IOC_SET_BPF`
//! ([`crate::perf_link`]). A raw tracepoint program (`BPF_PROG_TYPE_RAW_TRACEPOINT`, section
//! `raw_tracepoint/NAME`, Linux 4.17) gets the tracepoint's raw arguments and is attached by
//! name with `BPF_RAW_TRACEPOINT_OPEN`, which returns a link fd ([`FdLink`]); it needs no
//! tracefs.
//!
//! ```no_run
//! # fn f(prog: &bpf_attach::KernelProgram) -> Result<(), bpf_attach::AttachError> {
//! use bpf_attach::tracepoint::{self, TracepointOptions};
//! let link = tracepoint::attach(prog.fd().unwrap(), "syscalls", "sys_enter_getpid",
//!                               &TracepointOptions::default())?;
//! # drop(link); Ok(()) }
//! ```

use std::os::fd::AsFd;
use std::path::PathBuf;

use bpf_sys::ProgramType;

use crate::attach_error::AttachError;
use crate::link::FdLink;
use crate::perf_link::{self, PerfLink, PerfMechanism};
use crate::probe_events;
use crate::xdp::prog_id_and_type;

/// Options of [`attach`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TracepointOptions {
    /// How the program is attached to the perf event.
    pub perf: PerfMechanism,
    /// A cookie the program reads with `bpf_get_attach_cookie` (needs a perf `bpf_link`).
    pub cookie: u64,
}

impl TracepointOptions {
    /// With this perf attach mechanism.
    pub fn perf(mut self, m: PerfMechanism) -> Self {
        self.perf = m;
        self
    }
}

/// The tracefs id file of a tracepoint (mounting tracefs if needed).
pub fn id_path(category: &str, name: &str) -> Result<PathBuf, AttachError> {
    if [category, name]
        .iter()
        .any(|s| s.is_empty() || s.contains('/') || s.contains(".."))
    {
        return Err(AttachError::Unsupported {
            feature: "a tracepoint name with '/' or '..'",
            reason: format!("{category:?}/{name:?} is not CATEGORY/NAME"),
        });
    }
    Ok(probe_events::tracefs()?
        .join("events")
        .join(category)
        .join(name)
        .join("id"))
}

/// The tracepoint's id (`events/CATEGORY/NAME/id` in tracefs). A tracepoint the kernel does not
/// have is an [`AttachError::Syscall`] with `ENOENT`.
pub fn id(category: &str, name: &str) -> Result<u64, AttachError> {
    probe_events::read_id(&id_path(category, name)?)
}

/// Attaches the tracepoint program `prog` to `category/name` (`syscalls`, `sys_enter_getpid`).
pub fn attach(
    prog: impl AsFd,
    category: &str,
    name: &str,
    opts: &TracepointOptions,
) -> Result<PerfLink, AttachError> {
    let prog = prog.as_fd();
    let (_, t) = prog_id_and_type(prog)?;
    if let Some(got) = t.filter(|t| *t != ProgramType::Tracepoint) {
        return Err(AttachError::WrongProgramType {
            expected: "tracepoint",
            got,
        });
    }
    let id = id(category, name)?;
    let what = format!("tracepoint {category}/{name}");
    // One event for every process, on CPU 0: the program runs wherever the tracepoint fires.
    let fd = bpf_sys::perf::open_tracepoint(id)
        .map_err(|e| AttachError::syscall("open tracepoint", &what, e))?;
    perf_link::attach(prog, fd, None, what, opts.perf, opts.cookie)
}

/// Attaches the raw tracepoint program `prog` to the tracepoint `name` (`sys_enter`,
/// `sched_switch`), returning the link. An unknown name is an [`AttachError::Syscall`] with
/// `ENOENT`.
#[doc(alias = "BPF_RAW_TRACEPOINT_OPEN")]
pub fn attach_raw(prog: impl AsFd, name: &str) -> Result<FdLink, AttachError> {
    let prog = prog.as_fd();
    let (_, t) = prog_id_and_type(prog)?;
    if let Some(got) = t.filter(|t| {
        !matches!(
            t,
            ProgramType::RawTracepoint | ProgramType::RawTracepointWritable
        )
    }) {
        return Err(AttachError::WrongProgramType {
            expected: "raw tracepoint",
            got,
        });
    }
    let what = format!("raw tracepoint {name}");
    let fd = bpf_sys::link::raw_tracepoint_open(Some(name), prog)
        .map_err(|e| AttachError::syscall("open raw tracepoint", &what, e))?;
    Ok(FdLink::from_fd(fd, what))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_escape_the_events_directory_are_refused() {
        for (c, n) in [
            ("..", "x"),
            ("a/b", "c"),
            ("a", ""),
            ("", "b"),
            ("a", "../../x"),
        ] {
            assert!(
                matches!(id_path(c, n), Err(AttachError::Unsupported { .. })),
                "{c}/{n}"
            );
        }
    }
}
