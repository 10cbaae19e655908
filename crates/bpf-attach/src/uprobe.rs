//! Uprobes and uretprobes: a kprobe-type program run on entry to (or return from) a function
//! of an executable or shared library, in every process that maps the file or in one.
//!
//! The function is named by symbol and resolved to its file offset ([`crate::elf_sym`]); a
//! library may be named without a path (`libc.so.6`, `c`). The probe is made through the perf
//! `uprobe` PMU (Linux 4.17) where the kernel has it, else through tracefs `uprobe_events`
//! (an event `ebpf/ebpf_<pid>_<n>_<symbol>`, removed on detach), as for kprobes
//! ([`crate::kprobe::ProbeMechanism`]).
//!
//! ```no_run
//! # fn f(prog: &bpf_attach::KernelProgram) -> Result<(), bpf_attach::AttachError> {
//! use bpf_attach::uprobe::{self, UprobeOptions};
//! let link = uprobe::attach(prog.fd().unwrap(), "libc.so.6", Some("malloc"),
//!                           &UprobeOptions::default())?;
//! # drop(link); Ok(()) }
//! ```

use std::io;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use bpf_sys::perf::{self, ProbeKind, ProbeSpec};
use bpf_sys::SysError;

use crate::attach_error::AttachError;
use crate::elf_sym::{self, SymbolError};
use crate::kprobe::{check_kprobe_type, perf_error, ProbeMechanism};
use crate::perf_link::{self, PerfLink, PerfMechanism};
use crate::probe_events::{self, ProbeFile, TracefsEvent};

/// Options of [`attach`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct UprobeOptions {
    /// A uretprobe: run when the function returns.
    pub retprobe: bool,
    /// Added to the symbol's offset (or the offset itself when no symbol is given).
    pub offset: u64,
    /// Only in this process (`None`: every process that runs the file).
    pub pid: Option<u32>,
    /// How the probe is made.
    pub mechanism: ProbeMechanism,
    /// How the program is attached to the probe's perf event.
    pub perf: PerfMechanism,
    /// A cookie the program reads with `bpf_get_attach_cookie` (needs a perf `bpf_link`).
    pub cookie: u64,
}

impl UprobeOptions {
    /// A uretprobe with the defaults.
    pub fn retprobe() -> Self {
        UprobeOptions {
            retprobe: true,
            ..Self::default()
        }
    }

    /// With this mechanism.
    pub fn mechanism(mut self, m: ProbeMechanism) -> Self {
        self.mechanism = m;
        self
    }

    /// With this perf attach mechanism.
    pub fn perf(mut self, m: PerfMechanism) -> Self {
        self.perf = m;
        self
    }

    /// Only in process `pid`.
    pub fn pid(mut self, pid: u32) -> Self {
        self.pid = Some(pid);
        self
    }
}

fn symbol_error(e: SymbolError) -> AttachError {
    let kind = match &e {
        SymbolError::Read { source, .. } => source.kind(),
        SymbolError::NotFound { .. } | SymbolError::LibraryNotFound { .. } => {
            io::ErrorKind::NotFound
        }
        _ => io::ErrorKind::InvalidData,
    };
    let target = match &e {
        SymbolError::NotFound { symbol, path } | SymbolError::NotMapped { symbol, path, .. } => {
            format!("{symbol} in {}", path.display())
        }
        SymbolError::Read { path, .. } | SymbolError::Parse { path, .. } => {
            path.display().to_string()
        }
        SymbolError::LibraryNotFound { name } => name.clone(),
    };
    // The typed error stays reachable as the source of the io::Error.
    AttachError::syscall(
        "resolve uprobe target",
        target,
        SysError::new("elf symbol lookup", io::Error::new(kind, e)),
    )
}

/// The file a uprobe target names: a path (made absolute), or a library name looked up with
/// [`elf_sym::find_library`].
pub fn resolve_binary(binary: &Path) -> Result<PathBuf, AttachError> {
    let text = binary.to_string_lossy();
    let path = if text.contains('/') {
        binary.to_owned()
    } else {
        elf_sym::find_library(&text).map_err(symbol_error)?
    };
    std::fs::canonicalize(&path).map_err(|e| {
        symbol_error(SymbolError::Read {
            path: path.clone(),
            source: e,
        })
    })
}

/// Attaches the kprobe-type program `prog` as a uprobe on `symbol` of `binary` (an executable
/// or library path, or a library name), or at [`UprobeOptions::offset`] in it when `symbol` is
/// `None`.
///
/// Errors: [`AttachError::Syscall`] for a file or symbol that cannot be resolved (the source
/// chain holds the [`SymbolError`]) or a probe the kernel refuses; [`AttachError::Unsupported`]
/// for a kernel without uprobes (or without the forced mechanism);
/// [`AttachError::WrongProgramType`].
#[doc(alias = "uprobe_events")]
pub fn attach(
    prog: impl AsFd,
    binary: impl AsRef<Path>,
    symbol: Option<&str>,
    opts: &UprobeOptions,
) -> Result<PerfLink, AttachError> {
    let prog = prog.as_fd();
    check_kprobe_type(prog, "uprobe")?;
    let path = resolve_binary(binary.as_ref())?;
    let base = match symbol {
        Some(s) => {
            elf_sym::resolve(&path, s)
                .map_err(symbol_error)?
                .file_offset
        }
        None => 0,
    };
    let offset = base + opts.offset;
    let path_str = path.to_str().ok_or_else(|| AttachError::Unsupported {
        feature: "a uprobe on a non-UTF-8 path",
        reason: format!("{}", path.display()),
    })?;
    let kind = if opts.retprobe { "uretprobe" } else { "uprobe" };
    let what = match symbol {
        Some(s) if opts.offset == 0 => format!("{kind} {path_str}:{s}"),
        Some(s) => format!("{kind} {path_str}:{s}+{:#x}", opts.offset),
        None => format!("{kind} {path_str}:{offset:#x}"),
    };
    let pmu = ProbeKind::Uprobe.pmu_type().is_ok();
    let events = || {
        probe_events::tracefs()
            .map(|t| t.join(ProbeFile::Uprobe.file_name()).exists())
            .unwrap_or(false)
    };
    let use_pmu = match opts.mechanism {
        ProbeMechanism::Pmu | ProbeMechanism::Auto if pmu => true,
        ProbeMechanism::Tracefs | ProbeMechanism::Auto if events() => false,
        m => {
            return Err(AttachError::Unsupported {
                feature: match m {
                    ProbeMechanism::Pmu => "the uprobe perf PMU",
                    ProbeMechanism::Tracefs => "tracefs uprobe_events",
                    ProbeMechanism::Auto => "uprobes",
                },
                reason: "the kernel has no uprobe perf PMU or uprobe_events \
                         (CONFIG_UPROBES, CONFIG_UPROBE_EVENTS)"
                    .into(),
            })
        }
    };
    let pid = opts.pid.map_or(-1, |p| p as i32);
    if use_pmu {
        let spec = ProbeSpec {
            kind: ProbeKind::Uprobe,
            target: path_str,
            offset,
            retprobe: opts.retprobe,
            pid,
        };
        let fd = perf::open_probe(&spec).map_err(|e| perf_error("open uprobe", &what, e))?;
        perf_link::attach(prog, fd, None, what, opts.perf, opts.cookie)
    } else {
        if path_str.contains(char::is_whitespace) {
            return Err(AttachError::Unsupported {
                feature: "a uprobe_events path with white space",
                reason: path_str.to_string(),
            });
        }
        let target = format!("{path_str}:{offset:#x}");
        let hint = symbol.unwrap_or("offset");
        let (event, id) = TracefsEvent::add(ProbeFile::Uprobe, opts.retprobe, None, &target, hint)?;
        let attr = perf::tracepoint_attr(id);
        let cpu = if pid == -1 { 0 } else { -1 };
        let fd = perf::perf_event_open(&attr, pid, cpu, None, 0)
            .map_err(|e| AttachError::syscall("open uprobe event", &what, e))?;
        perf_link::attach(prog, fd, Some(event), what, opts.perf, opts.cookie)
    }
}
