//! Socket programs: a socket filter (`SO_ATTACH_BPF`) or a reuseport selection program
//! (`SO_ATTACH_REUSEPORT_EBPF`), each detached with its own option (goebpf detached both with
//! `SO_DETACH_FILTER`, which leaves a reuseport program in place).
//!
//! ```no_run
//! use bpf_attach::socket::{self, SocketAttach};
//! # fn prog() -> std::os::fd::OwnedFd { unimplemented!() }
//! let sock = std::net::UdpSocket::bind("127.0.0.1:0")?;
//! let link = socket::attach(&prog(), &sock, SocketAttach::Filter)?;
//! // ... the filter sees every packet `sock` receives ...
//! link.detach()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use bpf_sys::ProgramType;

use crate::attach_error::AttachError;
use crate::link::log_drop_failure;
use crate::xdp::{dup, prog_id_and_type};

/// How a program attaches to a socket: goebpf's `SocketFilterAttachType`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum SocketAttach {
    /// `SO_ATTACH_BPF`: a socket filter sees every packet the socket receives and returns how
    /// many bytes to keep (0 drops it).
    #[default]
    #[doc(alias = "SO_ATTACH_BPF")]
    Filter,
    /// `SO_ATTACH_REUSEPORT_EBPF`: the program picks the socket of the `SO_REUSEPORT` group
    /// that receives each packet.
    #[doc(alias = "SO_ATTACH_REUSEPORT_EBPF")]
    ReusePort,
}

impl fmt::Display for SocketAttach {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SocketAttach::Filter => "socket filter",
            SocketAttach::ReusePort => "reuseport program",
        })
    }
}

/// Attaches `prog` to `sock`. The link holds a duplicate of the socket's fd (to detach from
/// it later), so the socket stays open until the link goes too.
pub fn attach(
    prog: impl AsFd,
    sock: impl AsFd,
    how: SocketAttach,
) -> Result<SocketLink, AttachError> {
    let prog = prog.as_fd();
    let sock = sock.as_fd();
    let (prog_id, prog_type) = prog_id_and_type(prog)?;
    let fits = matches!(
        (how, prog_type),
        (_, None | Some(ProgramType::SocketFilter))
            | (SocketAttach::ReusePort, Some(ProgramType::SkReuseport))
    );
    if !fits {
        return Err(AttachError::WrongProgramType {
            expected: match how {
                SocketAttach::Filter => "socket filter",
                SocketAttach::ReusePort => "reuseport program",
            },
            got: prog_type.unwrap_or(ProgramType::Unspec),
        });
    }
    let target = format!("socket fd {}", sock.as_raw_fd());
    let r = match how {
        SocketAttach::Filter => bpf_sys::sock::attach_filter(sock, prog),
        SocketAttach::ReusePort => bpf_sys::sock::attach_reuseport(sock, prog),
    };
    r.map_err(|e| AttachError::syscall("attach to socket", &target, e))?;
    Ok(SocketLink {
        sock: Some(dup(sock, &target)?),
        how,
        prog_id,
    })
}

/// A program attached to a socket; dropping it detaches the program (best effort, a failure
/// is logged) with the option matching the attach.
#[must_use = "dropping a link detaches it"]
#[derive(Debug)]
pub struct SocketLink {
    sock: Option<OwnedFd>,
    how: SocketAttach,
    prog_id: u32,
}

impl fmt::Display for SocketLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (program {})", self.how, self.prog_id)
    }
}

impl SocketLink {
    /// Filter or reuseport.
    pub fn how(&self) -> SocketAttach {
        self.how
    }

    /// The attached program's id.
    pub fn prog_id(&self) -> u32 {
        self.prog_id
    }

    /// Detaches now (`SO_DETACH_BPF` or `SO_DETACH_REUSEPORT_BPF`) and reports a failure.
    pub fn detach(mut self) -> Result<(), AttachError> {
        match self.sock.take() {
            Some(sock) => detach(&sock, self.how),
            None => Ok(()),
        }
    }

    /// Leaves the program attached: it stays with the socket for the socket's life.
    pub fn keep(mut self) {
        self.sock = None;
    }
}

fn detach(sock: &OwnedFd, how: SocketAttach) -> Result<(), AttachError> {
    let r = match how {
        SocketAttach::Filter => bpf_sys::sock::detach_filter(sock),
        SocketAttach::ReusePort => bpf_sys::sock::detach_reuseport(sock),
    };
    r.map_err(|e| {
        AttachError::syscall(
            "detach from socket",
            format!("socket fd {}", sock.as_raw_fd()),
            e,
        )
    })
}

impl Drop for SocketLink {
    fn drop(&mut self) {
        if let Some(sock) = self.sock.take() {
            if let Err(e) = detach(&sock, self.how) {
                log_drop_failure(self, &e);
            }
        }
    }
}
