//! Kprobes and kretprobes: a program of type `BPF_PROG_TYPE_KPROBE` run on entry to (or return
//! from) a kernel function.
//!
//! Two ways to make the probe, chosen by [`ProbeMechanism`]:
//!
//! - the perf `kprobe` PMU (Linux 4.17): `perf_event_open` on the PMU's dynamic type with the
//!   symbol, nothing written to tracefs, nothing left behind by a crash; chosen where
//!   `/sys/bus/event_source/devices/kprobe/type` exists;
//! - tracefs `kprobe_events` (tracefs, or debugfs's `tracing` on old systems): an event
//!   `ebpf/ebpf_<pid>_<n>_<symbol>` is defined ([`crate::probe_events`]), a perf event is
//!   opened on its id, and the event is removed on detach. Kretprobes can set `maxactive` this
//!   way only.
//!
//! The program is then attached through a perf event `bpf_link` where the kernel has one,
//! else `PERF_EVENT_IOC_SET_BPF` ([`crate::perf_link`]).
//!
//! goebpf's `guess_` prefix (`kprobe/guess_execve`) names a system call: [`resolve_symbol`]
//! looks up the kernel's wrapper for it in `/proc/kallsyms` (`__x64_sys_execve`,
//! `__se_sys_execve`, `sys_execve`, ...). A kernel built without `CONFIG_KPROBES` has neither
//! mechanism: attaching gives [`AttachError::Unsupported`] naming it.
//!
//! ```no_run
//! # fn f(prog: &bpf_attach::KernelProgram) -> Result<(), bpf_attach::AttachError> {
//! use bpf_attach::kprobe::{self, KprobeOptions};
//! let link = kprobe::attach(prog.fd().unwrap(), "guess_getpid", &KprobeOptions::default())?;
//! // ... the program runs on every getpid() ...
//! link.detach()?;
//! # Ok(()) }
//! ```

use std::os::fd::{AsFd, BorrowedFd};

use bpf_sys::perf::{self, PerfError, ProbeKind, ProbeSpec};
use bpf_sys::{ProgramType, SysError};

use crate::attach_error::AttachError;
use crate::perf_link::{self, PerfLink, PerfMechanism};
use crate::probe_events::{self, ProbeFile, TracefsEvent};
use crate::xdp::prog_id_and_type;

/// How a kprobe or uprobe is made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum ProbeMechanism {
    /// The perf PMU where the kernel has it, else tracefs; tracefs when a kretprobe
    /// `maxactive` is asked for (the PMU cannot set it).
    #[default]
    Auto,
    /// The perf `kprobe`/`uprobe` PMU (Linux 4.17).
    Pmu,
    /// tracefs `kprobe_events`/`uprobe_events`, as goebpf.
    Tracefs,
}

/// Options of [`attach`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct KprobeOptions {
    /// A kretprobe: run when the function returns.
    pub retprobe: bool,
    /// An offset into the function (kprobes only).
    pub offset: u64,
    /// A kretprobe's `maxactive`: how many calls of the function can be pending at once
    /// (tracefs only; the kernel's default when `None`). goebpf always asked for 4096.
    pub maxactive: Option<u32>,
    /// How the probe is made.
    pub mechanism: ProbeMechanism,
    /// How the program is attached to the probe's perf event.
    pub perf: PerfMechanism,
    /// A cookie the program reads with `bpf_get_attach_cookie` (needs a perf `bpf_link`).
    pub cookie: u64,
}

impl KprobeOptions {
    /// A kprobe (on entry) with the defaults.
    pub fn entry() -> Self {
        Self::default()
    }

    /// A kretprobe (on return) with the defaults.
    pub fn retprobe() -> Self {
        KprobeOptions {
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

    /// With this kretprobe `maxactive` (tracefs).
    pub fn maxactive(mut self, n: u32) -> Self {
        self.maxactive = Some(n);
        self
    }
}

/// The prefix goebpf's section names use for "this system call, whatever the kernel calls its
/// entry point".
pub const GUESS_PREFIX: &str = "guess_";

/// The prefixes a system call's entry point may have, most specific first: the architecture's
/// `pt_regs` wrapper (Linux 4.17), the sign-extending wrapper, the plain name, the old `SyS_`.
pub fn syscall_prefixes() -> &'static [&'static str] {
    #[cfg(target_arch = "x86_64")]
    const P: &[&str] = &["__x64_sys_", "__se_sys_", "sys_", "SyS_"];
    #[cfg(target_arch = "aarch64")]
    const P: &[&str] = &["__arm64_sys_", "__se_sys_", "sys_", "SyS_"];
    #[cfg(target_arch = "s390x")]
    const P: &[&str] = &["__s390x_sys_", "__se_sys_", "sys_", "SyS_"];
    #[cfg(target_arch = "riscv64")]
    const P: &[&str] = &["__riscv_sys_", "__se_sys_", "sys_", "SyS_"];
    #[cfg(not(any(
        target_arch = "x86_64",
        target_arch = "aarch64",
        target_arch = "s390x",
        target_arch = "riscv64"
    )))]
    const P: &[&str] = &["__se_sys_", "sys_", "SyS_"];
    P
}

/// The kernel symbol of system call `name` in the text of `/proc/kallsyms`: the first of
/// [`syscall_prefixes`] + `name` that the table lists as a text symbol.
pub fn guess_syscall(name: &str, kallsyms: &str) -> Option<String> {
    let candidates: Vec<String> = syscall_prefixes()
        .iter()
        .map(|p| format!("{p}{name}"))
        .collect();
    let mut found = vec![false; candidates.len()];
    for line in kallsyms.lines() {
        let mut f = line.split_ascii_whitespace();
        let (Some(_addr), Some(kind), Some(sym)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        if !matches!(kind, "T" | "t" | "W" | "w") {
            continue;
        }
        if let Some(i) = candidates.iter().position(|c| c == sym) {
            found[i] = true;
            if i == 0 {
                break;
            }
        }
    }
    found.iter().position(|f| *f).map(|i| candidates[i].clone())
}

/// The kernel symbol a kprobe target names: `guess_NAME` becomes the system call's entry point
/// as `/proc/kallsyms` lists it (the architecture's wrapper when `kallsyms` cannot be read);
/// any other symbol is itself.
pub fn resolve_symbol(symbol: &str) -> String {
    let Some(name) = symbol.strip_prefix(GUESS_PREFIX) else {
        return symbol.to_string();
    };
    let text = std::fs::read_to_string("/proc/kallsyms").unwrap_or_default();
    guess_syscall(name, &text).unwrap_or_else(|| format!("{}{name}", syscall_prefixes()[0]))
}

/// Which kprobe mechanisms the running kernel has: (the PMU, tracefs `kprobe_events`).
/// Looking for `kprobe_events` mounts tracefs when it is not mounted.
pub fn available_mechanisms() -> (bool, bool) {
    let pmu = ProbeKind::Kprobe.pmu_type().is_ok();
    let tracefs = probe_events::tracefs()
        .map(|t| t.join(ProbeFile::Kprobe.file_name()).exists())
        .unwrap_or(false);
    (pmu, tracefs)
}

fn running_kernel() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| format!("Linux {}", s.trim()))
        .unwrap_or_else(|_| "the running kernel".into())
}

/// The error for a kernel without kprobes, or without the forced mechanism.
pub(crate) fn kprobes_unsupported(mechanism: ProbeMechanism) -> AttachError {
    let kernel = running_kernel();
    match mechanism {
        ProbeMechanism::Auto => AttachError::Unsupported {
            feature: "kprobes",
            reason: format!(
                "{kernel} has neither the kprobe perf PMU nor tracefs kprobe_events: \
                 it was built without CONFIG_KPROBES (or CONFIG_KPROBE_EVENTS)"
            ),
        },
        ProbeMechanism::Pmu => AttachError::Unsupported {
            feature: "the kprobe perf PMU",
            reason: format!(
                "{kernel} has no /sys/bus/event_source/devices/kprobe (Linux 4.17, \
                 CONFIG_KPROBES and CONFIG_KPROBE_EVENTS)"
            ),
        },
        ProbeMechanism::Tracefs => AttachError::Unsupported {
            feature: "tracefs kprobe_events",
            reason: format!(
                "{kernel} has no kprobe_events in tracefs (CONFIG_KPROBES, CONFIG_KPROBE_EVENTS)"
            ),
        },
    }
}

/// Maps a perf PMU failure to an attach error.
pub(crate) fn perf_error(op: &'static str, target: &str, e: PerfError) -> AttachError {
    match e {
        PerfError::Sys(e) => AttachError::syscall(op, target, e),
        PerfError::PmuUnavailable { pmu, .. } => AttachError::Unsupported {
            feature: if pmu == "kprobe" {
                "the kprobe perf PMU"
            } else {
                "the uprobe perf PMU"
            },
            reason: e.to_string(),
        },
        other => AttachError::syscall(
            op,
            target,
            SysError::new(
                "perf_event_open",
                std::io::Error::new(std::io::ErrorKind::InvalidInput, other.to_string()),
            ),
        ),
    }
}

/// Checks that `prog` is a kprobe-type program (uprobes and kprobes share the type).
pub(crate) fn check_kprobe_type(
    prog: BorrowedFd<'_>,
    expected: &'static str,
) -> Result<(), AttachError> {
    let (_, t) = prog_id_and_type(prog)?;
    match t {
        None | Some(ProgramType::Kprobe) => Ok(()),
        Some(got) => Err(AttachError::WrongProgramType { expected, got }),
    }
}

/// Attaches the kprobe program `prog` to the kernel function `symbol` (a `guess_` name is
/// resolved first, see [`resolve_symbol`]).
///
/// Errors: [`AttachError::Unsupported`] on a kernel without kprobes (naming `CONFIG_KPROBES`)
/// or without the forced mechanism; [`AttachError::Syscall`] when the kernel refuses the probe
/// (`ENOENT` or `EINVAL` for a symbol it cannot probe, with the call that failed);
/// [`AttachError::WrongProgramType`]; [`AttachError::KernelLacks`] for a forced perf link or
/// a cookie on a kernel without perf links.
#[doc(alias = "kprobe_events")]
#[doc(alias = "PERF_EVENT_IOC_SET_BPF")]
pub fn attach(
    prog: impl AsFd,
    symbol: &str,
    opts: &KprobeOptions,
) -> Result<PerfLink, AttachError> {
    let prog = prog.as_fd();
    check_kprobe_type(prog, "kprobe")?;
    let symbol = resolve_symbol(symbol);
    let kind = if opts.retprobe { "kretprobe" } else { "kprobe" };
    let what = if opts.offset == 0 {
        format!("{kind} {symbol}")
    } else {
        format!("{kind} {symbol}+{:#x}", opts.offset)
    };
    let (pmu, tracefs) = available_mechanisms();
    let use_pmu = match opts.mechanism {
        ProbeMechanism::Pmu if !pmu => return Err(kprobes_unsupported(ProbeMechanism::Pmu)),
        ProbeMechanism::Tracefs if !tracefs => {
            return Err(kprobes_unsupported(ProbeMechanism::Tracefs))
        }
        ProbeMechanism::Pmu => true,
        ProbeMechanism::Tracefs => false,
        ProbeMechanism::Auto if !pmu && !tracefs => {
            return Err(kprobes_unsupported(ProbeMechanism::Auto))
        }
        ProbeMechanism::Auto => pmu && !(opts.retprobe && opts.maxactive.is_some()),
    };
    if use_pmu {
        let spec = ProbeSpec {
            kind: ProbeKind::Kprobe,
            target: &symbol,
            offset: opts.offset,
            retprobe: opts.retprobe,
            pid: -1,
        };
        let fd = perf::open_probe(&spec).map_err(|e| perf_error("open kprobe", &what, e))?;
        perf_link::attach(prog, fd, None, what, opts.perf, opts.cookie)
    } else {
        let target = if opts.offset == 0 {
            symbol.clone()
        } else {
            format!("{symbol}+{}", opts.offset)
        };
        let maxactive = if opts.retprobe { opts.maxactive } else { None };
        let (event, id) = TracefsEvent::add(
            ProbeFile::Kprobe,
            opts.retprobe,
            maxactive,
            &target,
            &symbol,
        )?;
        let fd = perf::open_tracepoint(id)
            .map_err(|e| AttachError::syscall("open kprobe event", &what, e))?;
        perf_link::attach(prog, fd, Some(event), what, opts.perf, opts.cookie)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn guess_prefers_the_arch_wrapper_then_older_names() {
        let table = "ffffffff81000000 T sys_getpid\n\
                     ffffffff81000010 T __x64_sys_getpid\n\
                     ffffffff81000020 t __se_sys_read\n\
                     ffffffff81000030 T SyS_write\n\
                     ffffffff81000040 D __x64_sys_data [mod]\n";
        assert_eq!(
            guess_syscall("getpid", table).as_deref(),
            Some("__x64_sys_getpid")
        );
        assert_eq!(
            guess_syscall("read", table).as_deref(),
            Some("__se_sys_read")
        );
        assert_eq!(guess_syscall("write", table).as_deref(), Some("SyS_write"));
        // Data symbols are not functions.
        assert_eq!(guess_syscall("data", table), None);
        assert_eq!(guess_syscall("nothing", table), None);
    }

    #[test]
    fn plain_symbols_are_themselves() {
        assert_eq!(resolve_symbol("do_sys_open"), "do_sys_open");
    }

    #[test]
    fn options_builders() {
        let o = KprobeOptions::retprobe()
            .mechanism(ProbeMechanism::Tracefs)
            .maxactive(64)
            .perf(PerfMechanism::Ioctl);
        assert!(o.retprobe);
        assert_eq!(o.maxactive, Some(64));
        assert_eq!(o.mechanism, ProbeMechanism::Tracefs);
        assert_eq!(o.perf, PerfMechanism::Ioctl);
        assert!(!KprobeOptions::entry().retprobe);
    }

    #[test]
    fn unsupported_names_the_config() {
        let e = kprobes_unsupported(ProbeMechanism::Auto).to_string();
        assert!(e.contains("CONFIG_KPROBES"), "{e}");
        assert!(e.starts_with("kprobes is not supported"), "{e}");
    }
}
