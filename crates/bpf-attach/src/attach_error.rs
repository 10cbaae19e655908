//! [`AttachError`]: why an attachment could not be made or removed.

use std::fmt;
use std::io;

use bpf_sys::probe::NotSupported;
use bpf_sys::{ProgramType, SysError};

/// A network interface, by name or by index (in the network namespace of the calling thread).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Iface {
    /// By name (`eth0`, `veth1`).
    Name(String),
    /// By index (`ip link` shows it first).
    Index(u32),
}

impl fmt::Display for Iface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Iface::Name(name) => write!(f, "interface {name}"),
            Iface::Index(index) => write!(f, "interface with index {index}"),
        }
    }
}

impl From<&str> for Iface {
    fn from(name: &str) -> Self {
        Iface::Name(name.to_owned())
    }
}

impl From<&String> for Iface {
    fn from(name: &String) -> Self {
        Iface::Name(name.clone())
    }
}

impl From<String> for Iface {
    fn from(name: String) -> Self {
        Iface::Name(name)
    }
}

impl From<u32> for Iface {
    fn from(index: u32) -> Self {
        Iface::Index(index)
    }
}

/// Attaching or detaching a program failed.
///
/// Interfaces appear by name when it is known (`veth0`), else as `ifindex N`. The kernel's
/// own explanation (netlink extended ack) is kept in `extack` where it gave one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AttachError {
    /// No interface with this name or index in the calling thread's network namespace.
    #[error("no {iface} in this network namespace")]
    InterfaceNotFound {
        /// The interface asked for.
        iface: Iface,
    },
    /// An XDP program is already attached and the caller asked to fail in that case
    /// (`XDP_FLAGS_UPDATE_IF_NOEXIST`), or it is held by a `bpf_link`, which nothing replaces.
    #[error("{iface} already has an xdp program{}", prog_id.map(|id| format!(" (id {id})")).unwrap_or_default())]
    XdpAlreadyAttached {
        /// The interface.
        iface: String,
        /// The id of the program in the way, when the query could tell.
        prog_id: Option<u32>,
        /// The kernel's explanation.
        extack: Option<String>,
    },
    /// A replacement (`XDP_FLAGS_REPLACE`) found another program than the expected one, or an
    /// attach in one mode met a program attached in the other (native and generic XDP cannot
    /// be active at once).
    #[error(
        "the xdp program on {iface} is not the expected one{}",
        extack_suffix(extack)
    )]
    XdpNotExpected {
        /// The interface.
        iface: String,
        /// The kernel's explanation.
        extack: Option<String>,
    },
    /// The interface has an ingress qdisc that is not `clsact`; replacing it would remove its
    /// filters, so it is refused unless the caller allows it (goebpf's `ClobberIngress`).
    #[error("{iface} has a {kind} qdisc where clsact goes; set clobber_ingress to replace it")]
    IngressQdiscInTheWay {
        /// The interface.
        iface: String,
        /// The kind of the qdisc in the way (`ingress`).
        kind: String,
    },
    /// Every filter handle from the start value up is taken.
    #[error("no free tc filter handle on {iface} from {start:#x}")]
    NoFreeHandle {
        /// The interface.
        iface: String,
        /// The first handle tried.
        start: u32,
    },
    /// A netlink request failed.
    #[error("{op} on {iface} failed{}", extack_suffix(extack))]
    Netlink {
        /// What was asked (`attach xdp`, `add tc filter`, `list qdiscs`).
        op: &'static str,
        /// The interface.
        iface: String,
        /// The kernel's explanation.
        extack: Option<String>,
        /// The errno (or the decoding failure).
        #[source]
        source: io::Error,
    },
    /// A system call failed (`BPF_LINK_CREATE`, `BPF_OBJ_PIN`, `setsockopt`).
    #[error("{op} on {target} failed")]
    Syscall {
        /// What was being done (`attach xdp link`, `pin link`).
        op: &'static str,
        /// What it was done to (an interface, a path, a socket).
        target: String,
        /// The call and its errno.
        #[source]
        source: SysError,
    },
    /// The running kernel lacks the mechanism (probed).
    #[error(transparent)]
    KernelLacks(#[from] NotSupported),
    /// The attachment is not supported, by this library or by the kernel.
    #[error("{feature} is not supported: {reason}")]
    Unsupported {
        /// What was asked for.
        feature: &'static str,
        /// Why not.
        reason: String,
    },
    /// The program's type does not fit the attachment.
    #[error("a {got:?} program cannot be attached as {expected}")]
    WrongProgramType {
        /// The attachment (`xdp`, `tc classifier`, `socket filter`).
        expected: &'static str,
        /// The program's type.
        got: ProgramType,
    },
}

impl AttachError {
    /// The raw errno behind the error, if the kernel gave one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            AttachError::Netlink { source, .. } => source.raw_os_error(),
            AttachError::Syscall { source, .. } => source.errno(),
            _ => None,
        }
    }

    pub(crate) fn syscall(op: &'static str, target: impl fmt::Display, source: SysError) -> Self {
        AttachError::Syscall {
            op,
            target: target.to_string(),
            source,
        }
    }
}

fn extack_suffix(extack: &Option<String>) -> String {
    match extack {
        Some(m) => format!(": {m}"),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_interface_and_the_kernels_reason() {
        let e = AttachError::InterfaceNotFound {
            iface: Iface::Name("veth9".into()),
        };
        assert_eq!(
            e.to_string(),
            "no interface veth9 in this network namespace"
        );
        let e = AttachError::InterfaceNotFound {
            iface: Iface::Index(77),
        };
        assert_eq!(
            e.to_string(),
            "no interface with index 77 in this network namespace"
        );
        let e = AttachError::Netlink {
            op: "add tc filter",
            iface: "veth0".into(),
            extack: Some("Exclusivity flag on, cannot modify".into()),
            source: io::Error::from_raw_os_error(17),
        };
        assert_eq!(
            e.to_string(),
            "add tc filter on veth0 failed: Exclusivity flag on, cannot modify"
        );
        assert_eq!(e.errno(), Some(17));
        let e = AttachError::XdpAlreadyAttached {
            iface: "veth0".into(),
            prog_id: Some(12),
            extack: None,
        };
        assert_eq!(e.to_string(), "veth0 already has an xdp program (id 12)");
    }
}
