//! goebpf-style attachment: [`KernelProgram::attach`] and [`KernelProgram::detach`], the
//! program holding its one link.
//!
//! goebpf's `Program.Attach(data)` took an `interface{}` whose meaning depended on the program
//! type; here the target is an [`AttachTarget`], and [`AttachTarget::Section`] reads it from
//! the section name (`kprobe/guess_execve`, `tracepoint/syscalls/sys_enter_getpid`,
//! `raw_tracepoint/sys_enter`, `uprobe//bin/bash:readline`), as goebpf's kprobes did. XDP
//! goes over netlink as goebpf's did ([`XdpMechanism::Netlink`]): the attachment then
//! survives the process unless detached.
//!
//! For more than one attachment of a program, or to own the link, use
//! [`KernelProgram::attach_link`] or the attach function of each module.

use std::os::fd::BorrowedFd;
use std::path::PathBuf;

use bpf_sys::ProgramType;

use crate::attach_error::{AttachError, Iface};
use crate::kprobe::{self, KprobeOptions};
use crate::link::Link;
use crate::program::KernelProgram;
use crate::socket::{self, SocketAttach};
use crate::tc::{self, TcDirection, TcOptions};
use crate::tracepoint::{self, TracepointOptions};
use crate::uprobe::{self, UprobeOptions};
use crate::xdp::{self, XdpMechanism, XdpMode, XdpOptions};

/// Where to attach a program.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum AttachTarget<'a> {
    /// What the section name says (kprobes, kretprobes, `ksyscall`, tracepoints, raw
    /// tracepoints, uprobes with `PATH:FUNCTION`).
    Section,
    /// XDP on an interface, over netlink (goebpf's `XdpAttachParams`).
    Xdp {
        /// The interface.
        iface: Iface,
        /// The mode.
        mode: XdpMode,
    },
    /// A TC classifier (goebpf's `TcAttachParams`).
    Tc {
        /// The interface.
        iface: Iface,
        /// Direction, direct action, priority, handle, mechanism.
        options: TcOptions,
    },
    /// A socket (goebpf's `SocketFilterAttachParams`).
    Socket {
        /// The socket.
        fd: BorrowedFd<'a>,
        /// Filter or reuseport program.
        how: SocketAttach,
    },
    /// A kernel function (a `guess_` name is a system call). A program from a `kretprobe`
    /// section is always attached as a return probe.
    Kprobe {
        /// The symbol.
        symbol: String,
        /// Return probe, mechanism, `maxactive`...
        options: KprobeOptions,
    },
    /// A tracepoint (`syscalls`, `sys_enter_getpid`).
    Tracepoint {
        /// The category (tracefs `events/` directory).
        category: String,
        /// The tracepoint.
        name: String,
    },
    /// A raw tracepoint (`sys_enter`).
    RawTracepoint {
        /// The tracepoint.
        name: String,
    },
    /// A function of an executable or library. A program from a `uretprobe` section is always
    /// attached as a return probe.
    Uprobe {
        /// A path, or a library name (`libc.so.6`).
        binary: PathBuf,
        /// The function; `None` to probe at `options.offset`.
        symbol: Option<String>,
        /// Return probe, pid, mechanism...
        options: UprobeOptions,
    },
}

impl<'a> AttachTarget<'a> {
    /// XDP on `iface` in the kernel's choice of mode.
    pub fn xdp(iface: impl Into<Iface>) -> Self {
        AttachTarget::Xdp {
            iface: iface.into(),
            mode: XdpMode::None,
        }
    }

    /// A TC classifier on `iface` with the defaults of [`TcOptions::new`].
    pub fn tc(iface: impl Into<Iface>, direction: TcDirection) -> Self {
        AttachTarget::Tc {
            iface: iface.into(),
            options: TcOptions::new(direction),
        }
    }

    /// A socket filter on `fd`.
    pub fn socket(fd: BorrowedFd<'a>) -> Self {
        AttachTarget::Socket {
            fd,
            how: SocketAttach::Filter,
        }
    }

    /// A kprobe on `symbol`.
    pub fn kprobe(symbol: impl Into<String>) -> Self {
        AttachTarget::Kprobe {
            symbol: symbol.into(),
            options: KprobeOptions::default(),
        }
    }

    /// A kretprobe on `symbol`.
    pub fn kretprobe(symbol: impl Into<String>) -> Self {
        AttachTarget::Kprobe {
            symbol: symbol.into(),
            options: KprobeOptions::retprobe(),
        }
    }

    /// The tracepoint `category/name`.
    pub fn tracepoint(category: impl Into<String>, name: impl Into<String>) -> Self {
        AttachTarget::Tracepoint {
            category: category.into(),
            name: name.into(),
        }
    }

    /// The raw tracepoint `name`.
    pub fn raw_tracepoint(name: impl Into<String>) -> Self {
        AttachTarget::RawTracepoint { name: name.into() }
    }

    /// A uprobe on `symbol` of `binary`.
    pub fn uprobe(binary: impl Into<PathBuf>, symbol: impl Into<String>) -> Self {
        AttachTarget::Uprobe {
            binary: binary.into(),
            symbol: Some(symbol.into()),
            options: UprobeOptions::default(),
        }
    }
}

/// The goebpf-style attach or detach of a program failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProgramAttachError {
    /// The program must be loaded first.
    #[error("program {program} is not loaded")]
    NotLoaded {
        /// The program.
        program: String,
    },
    /// The program already holds an attachment (goebpf remembered one).
    #[error("program {program} is already attached ({link}): detach it first, or use attach_link")]
    AlreadyAttached {
        /// The program.
        program: String,
        /// The attachment it holds.
        link: String,
    },
    /// Detach without an attachment (goebpf's "Program isn't attached").
    #[error("program {program} is not attached")]
    NotAttached {
        /// The program.
        program: String,
    },
    /// The section name says nothing to attach to, or not in a form this library reads.
    #[error("the section {section:?} of program {program} names no attach target: {reason}")]
    NoTarget {
        /// The program.
        program: String,
        /// Its section.
        section: String,
        /// Why.
        reason: String,
    },
    /// This implementation of the `Program` trait cannot attach (a mock).
    #[error("program {program} cannot be attached: {reason}")]
    Unsupported {
        /// The program.
        program: String,
        /// Why.
        reason: String,
    },
    /// The attachment failed.
    #[error("attaching program {program} failed")]
    Attach {
        /// The program.
        program: String,
        /// Why.
        #[source]
        source: AttachError,
    },
    /// Detaching failed (the link is gone all the same).
    #[error("detaching program {program} failed")]
    Detach {
        /// The program.
        program: String,
        /// Why.
        #[source]
        source: AttachError,
    },
}

impl ProgramAttachError {
    /// The [`AttachError`] behind an attach or detach failure.
    pub fn attach_error(&self) -> Option<&AttachError> {
        match self {
            ProgramAttachError::Attach { source, .. }
            | ProgramAttachError::Detach { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// The target a section name gives: `Err(reason)` when it gives none.
pub fn section_target(
    program_type: ProgramType,
    section: &str,
    attach_to: Option<&str>,
    return_probe: bool,
) -> Result<AttachTarget<'static>, String> {
    let prefix = section.split('/').next().unwrap_or("").to_ascii_lowercase();
    let to = attach_to.filter(|t| !t.is_empty());
    let need = |what: &str| format!("a {what} section needs a target after '/'");
    match program_type {
        ProgramType::Kprobe if prefix.starts_with("uprobe") || prefix.starts_with("uretprobe") => {
            let to = to.ok_or_else(|| need("uprobe"))?;
            let (binary, func) = to
                .rsplit_once(':')
                .ok_or_else(|| format!("a uprobe target is PATH:FUNCTION, not {to:?}"))?;
            let mut options = UprobeOptions {
                retprobe: return_probe,
                ..UprobeOptions::default()
            };
            let (func, off) = split_offset(func)?;
            options.offset = off;
            let symbol = match parse_number(func) {
                Some(n) => {
                    options.offset += n;
                    None
                }
                None => Some(func.to_string()),
            };
            Ok(AttachTarget::Uprobe {
                binary: PathBuf::from(binary),
                symbol,
                options,
            })
        }
        ProgramType::Kprobe if prefix.contains("syscall") => {
            let to = to.ok_or_else(|| need("ksyscall"))?;
            Ok(AttachTarget::Kprobe {
                symbol: format!("{}{to}", kprobe::GUESS_PREFIX),
                options: KprobeOptions {
                    retprobe: return_probe,
                    ..KprobeOptions::default()
                },
            })
        }
        ProgramType::Kprobe if prefix.contains("multi") || prefix.contains("session") => {
            Err("kprobe.multi and uprobe.multi programs are not attached by this library".into())
        }
        ProgramType::Kprobe => {
            let to = to.ok_or_else(|| need("kprobe"))?;
            let (symbol, offset) = split_offset(to)?;
            Ok(AttachTarget::Kprobe {
                symbol: symbol.to_string(),
                options: KprobeOptions {
                    retprobe: return_probe,
                    offset,
                    ..KprobeOptions::default()
                },
            })
        }
        ProgramType::Tracepoint => {
            let to = to.ok_or_else(|| need("tracepoint"))?;
            let (category, name) = to
                .split_once('/')
                .ok_or_else(|| format!("a tracepoint target is CATEGORY/NAME, not {to:?}"))?;
            Ok(AttachTarget::tracepoint(category, name))
        }
        ProgramType::RawTracepoint | ProgramType::RawTracepointWritable => {
            let to = to.ok_or_else(|| need("raw_tracepoint"))?;
            Ok(AttachTarget::raw_tracepoint(to))
        }
        other => Err(format!(
            "a {other:?} program is attached to an interface or socket given at attach time"
        )),
    }
}

/// `SYM+OFF` into (`SYM`, OFF); `SYM` into (`SYM`, 0).
fn split_offset(s: &str) -> Result<(&str, u64), String> {
    match s.split_once('+') {
        None => Ok((s, 0)),
        Some((sym, off)) => parse_number(off)
            .map(|o| (sym, o))
            .ok_or_else(|| format!("{off:?} is not an offset")),
    }
}

fn parse_number(s: &str) -> Option<u64> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => s.parse().ok(),
        None => None,
    }
}

impl KernelProgram {
    /// The target the program's section names ([`AttachTarget::Section`] made explicit).
    pub fn section_target(&self) -> Result<AttachTarget<'static>, ProgramAttachError> {
        section_target(
            self.program_type(),
            self.section(),
            self.attach_to(),
            self.is_return_probe(),
        )
        .map_err(|reason| ProgramAttachError::NoTarget {
            program: self.name().to_string(),
            section: self.section().to_string(),
            reason,
        })
    }

    /// Attaches the loaded program to `target` and returns the link, which the caller owns
    /// (dropping it detaches). [`AttachTarget::Section`] reads the target from the section.
    pub fn attach_link(&self, target: AttachTarget<'_>) -> Result<Link, ProgramAttachError> {
        let prog = self.fd().ok_or_else(|| ProgramAttachError::NotLoaded {
            program: self.name().to_string(),
        })?;
        let target = match target {
            AttachTarget::Section => self.section_target()?,
            t => t,
        };
        let ret = self.is_return_probe();
        let link: Result<Link, AttachError> = match target {
            AttachTarget::Section => {
                return Err(ProgramAttachError::NoTarget {
                    program: self.name().to_string(),
                    section: self.section().to_string(),
                    reason: "the section target cannot be the section itself".into(),
                })
            }
            AttachTarget::Xdp { iface, mode } => {
                let mut o = XdpOptions::new();
                o.mode = mode;
                o.mechanism = XdpMechanism::Netlink;
                xdp::attach(prog, iface, &o).map(Link::from)
            }
            AttachTarget::Tc { iface, options } => {
                tc::attach(prog, iface, &options).map(Link::from)
            }
            AttachTarget::Socket { fd, how } => socket::attach(prog, fd, how).map(Link::from),
            AttachTarget::Kprobe {
                symbol,
                mut options,
            } => {
                options.retprobe |= ret;
                kprobe::attach(prog, &symbol, &options).map(Link::from)
            }
            AttachTarget::Tracepoint { category, name } => {
                tracepoint::attach(prog, &category, &name, &TracepointOptions::default())
                    .map(Link::from)
            }
            AttachTarget::RawTracepoint { name } => {
                tracepoint::attach_raw(prog, &name).map(Link::from)
            }
            AttachTarget::Uprobe {
                binary,
                symbol,
                mut options,
            } => {
                options.retprobe |= ret;
                uprobe::attach(prog, &binary, symbol.as_deref(), &options).map(Link::from)
            }
        };
        link.map_err(|source| ProgramAttachError::Attach {
            program: self.name().to_string(),
            source,
        })
    }

    /// Attaches the loaded program to `target` and keeps the link in the program (goebpf's
    /// `Attach`): [`KernelProgram::detach`] removes it, and so does dropping the program.
    /// A program holds one attachment: a second attach gives
    /// [`ProgramAttachError::AlreadyAttached`].
    pub fn attach(&mut self, target: AttachTarget<'_>) -> Result<(), ProgramAttachError> {
        if let Some(l) = self.link() {
            return Err(ProgramAttachError::AlreadyAttached {
                program: self.name().to_string(),
                link: l.to_string(),
            });
        }
        let link = self.attach_link(target)?;
        *self.link_slot() = Some(link);
        Ok(())
    }

    /// Detaches the attachment made by [`KernelProgram::attach`] and reports a failure
    /// (goebpf's `Detach`).
    pub fn detach(&mut self) -> Result<(), ProgramAttachError> {
        let link = self
            .link_slot()
            .take()
            .ok_or_else(|| ProgramAttachError::NotAttached {
                program: self.name().to_string(),
            })?;
        link.detach().map_err(|source| ProgramAttachError::Detach {
            program: self.name().to_string(),
            source,
        })
    }

    /// Whether the program holds an attachment.
    pub fn is_attached(&self) -> bool {
        self.link().is_some()
    }

    /// Takes the attachment out of the program: the caller owns it from then on.
    pub fn take_link(&mut self) -> Option<Link> {
        self.link_slot().take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(
        pt: ProgramType,
        section: &str,
        to: Option<&str>,
        ret: bool,
    ) -> Result<AttachTarget<'static>, String> {
        section_target(pt, section, to, ret)
    }

    #[test]
    fn sections_give_their_targets() {
        match t(
            ProgramType::Kprobe,
            "kprobe/guess_execve",
            Some("guess_execve"),
            false,
        )
        .unwrap()
        {
            AttachTarget::Kprobe { symbol, options } => {
                assert_eq!(symbol, "guess_execve");
                assert!(!options.retprobe);
            }
            o => panic!("{o:?}"),
        }
        match t(
            ProgramType::Kprobe,
            "kretprobe/do_exit+8",
            Some("do_exit+8"),
            true,
        )
        .unwrap()
        {
            AttachTarget::Kprobe { symbol, options } => {
                assert_eq!(symbol, "do_exit");
                assert_eq!(options.offset, 8);
                assert!(options.retprobe);
            }
            o => panic!("{o:?}"),
        }
        match t(
            ProgramType::Kprobe,
            "ksyscall/execve",
            Some("execve"),
            false,
        )
        .unwrap()
        {
            AttachTarget::Kprobe { symbol, .. } => assert_eq!(symbol, "guess_execve"),
            o => panic!("{o:?}"),
        }
        match t(
            ProgramType::Tracepoint,
            "tracepoint/syscalls/sys_enter_getpid",
            Some("syscalls/sys_enter_getpid"),
            false,
        )
        .unwrap()
        {
            AttachTarget::Tracepoint { category, name } => {
                assert_eq!(
                    (category.as_str(), name.as_str()),
                    ("syscalls", "sys_enter_getpid")
                );
            }
            o => panic!("{o:?}"),
        }
        match t(
            ProgramType::RawTracepoint,
            "raw_tracepoint/sys_enter",
            Some("sys_enter"),
            false,
        )
        .unwrap()
        {
            AttachTarget::RawTracepoint { name } => assert_eq!(name, "sys_enter"),
            o => panic!("{o:?}"),
        }
        match t(
            ProgramType::Kprobe,
            "uretprobe//bin/bash:readline",
            Some("/bin/bash:readline"),
            true,
        )
        .unwrap()
        {
            AttachTarget::Uprobe {
                binary,
                symbol,
                options,
            } => {
                assert_eq!(binary, PathBuf::from("/bin/bash"));
                assert_eq!(symbol.as_deref(), Some("readline"));
                assert!(options.retprobe);
            }
            o => panic!("{o:?}"),
        }
        match t(
            ProgramType::Kprobe,
            "uprobe//lib/x.so:0x1130",
            Some("/lib/x.so:0x1130"),
            false,
        )
        .unwrap()
        {
            AttachTarget::Uprobe {
                symbol, options, ..
            } => {
                assert_eq!(symbol, None);
                assert_eq!(options.offset, 0x1130);
            }
            o => panic!("{o:?}"),
        }
    }

    #[test]
    fn sections_without_a_target_say_why() {
        for (pt, s, to) in [
            (ProgramType::Kprobe, "uprobe", None),
            (ProgramType::Kprobe, "uprobe/nocolon", Some("nocolon")),
            (ProgramType::Kprobe, "kprobe", None),
            (ProgramType::Kprobe, "kprobe/x+zz", Some("x+zz")),
            (
                ProgramType::Tracepoint,
                "tracepoint/onlyone",
                Some("onlyone"),
            ),
            (ProgramType::Xdp, "xdp", None),
            (ProgramType::Kprobe, "kprobe.multi/x*", Some("x*")),
        ] {
            assert!(t(pt, s, to, false).is_err(), "{s}");
        }
    }

    #[test]
    fn goebpf_style_errors_name_the_program() {
        let exit = bpf_elf::Instruction {
            code: 0x95,
            ..Default::default()
        };
        let mut p = KernelProgram::new("kp", ProgramType::Kprobe, &[exit], "GPL");
        assert!(matches!(
            p.attach(AttachTarget::kprobe("x")),
            Err(ProgramAttachError::NotLoaded { .. })
        ));
        let e = p.detach().unwrap_err();
        assert_eq!(e.to_string(), "program kp is not attached");
        assert!(matches!(
            p.section_target(),
            Err(ProgramAttachError::NoTarget { .. })
        ));
        assert!(!p.is_attached());
    }
}
