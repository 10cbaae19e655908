//! Socket attachments: `setsockopt` with `SO_ATTACH_BPF`, `SO_ATTACH_REUSEPORT_EBPF` and their
//! detach options.
//!
//! Each attachment has its own detach option: a socket filter is removed with `SO_DETACH_BPF`
//! (the same number as `SO_DETACH_FILTER`), a reuseport selection program with
//! `SO_DETACH_REUSEPORT_BPF` (Linux 5.3). goebpf used `SO_DETACH_FILTER` for both, which leaves
//! a reuseport program in place.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use crate::SysError;

/// `SO_ATTACH_BPF`: attach an eBPF socket filter program (Linux 3.19).
pub const SO_ATTACH_BPF: i32 = 50;
/// `SO_DETACH_BPF`: detach the socket filter (same value as `SO_DETACH_FILTER`).
pub const SO_DETACH_BPF: i32 = 27;
/// `SO_ATTACH_REUSEPORT_EBPF`: attach an eBPF program selecting the socket of a reuseport
/// group (Linux 4.5).
pub const SO_ATTACH_REUSEPORT_EBPF: i32 = 52;
/// `SO_DETACH_REUSEPORT_BPF`: detach the reuseport selection program (Linux 5.3).
pub const SO_DETACH_REUSEPORT_BPF: i32 = 68;

/// `setsockopt(sock, SOL_SOCKET, option, &value, sizeof(int))`.
fn set_int(
    call: &'static str,
    sock: BorrowedFd<'_>,
    option: i32,
    value: libc::c_int,
) -> Result<(), SysError> {
    // SAFETY: `value` is a live `c_int` and the length passed is its size; setsockopt only
    // reads it. `sock` is a valid fd for the call (borrowed).
    let ret = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            option,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if ret == 0 {
        Ok(())
    } else {
        Err(SysError::last(call))
    }
}

/// `SO_ATTACH_BPF`: runs `prog` (a socket filter) on every packet `sock` receives; its return
/// value is how many bytes to keep (0 drops the packet). Replaces any filter already there.
#[doc(alias = "SO_ATTACH_BPF")]
pub fn attach_filter(sock: impl AsFd, prog: impl AsFd) -> Result<(), SysError> {
    set_int(
        "setsockopt(SO_ATTACH_BPF)",
        sock.as_fd(),
        SO_ATTACH_BPF,
        prog.as_fd().as_raw_fd(),
    )
}

/// `SO_DETACH_BPF`: removes the socket filter; `ENOENT` when there is none.
#[doc(alias = "SO_DETACH_BPF")]
#[doc(alias = "SO_DETACH_FILTER")]
pub fn detach_filter(sock: impl AsFd) -> Result<(), SysError> {
    set_int("setsockopt(SO_DETACH_BPF)", sock.as_fd(), SO_DETACH_BPF, 0)
}

/// `SO_ATTACH_REUSEPORT_EBPF`: `prog` (a socket filter or `sk_reuseport` program) chooses the
/// socket of `sock`'s `SO_REUSEPORT` group that receives each packet or connection.
#[doc(alias = "SO_ATTACH_REUSEPORT_EBPF")]
pub fn attach_reuseport(sock: impl AsFd, prog: impl AsFd) -> Result<(), SysError> {
    set_int(
        "setsockopt(SO_ATTACH_REUSEPORT_EBPF)",
        sock.as_fd(),
        SO_ATTACH_REUSEPORT_EBPF,
        prog.as_fd().as_raw_fd(),
    )
}

/// `SO_DETACH_REUSEPORT_BPF` (Linux 5.3): removes the reuseport selection program; `ENOENT`
/// when there is none, `EINVAL` when the socket has no `SO_REUSEPORT`.
#[doc(alias = "SO_DETACH_REUSEPORT_BPF")]
pub fn detach_reuseport(sock: impl AsFd) -> Result<(), SysError> {
    set_int(
        "setsockopt(SO_DETACH_REUSEPORT_BPF)",
        sock.as_fd(),
        SO_DETACH_REUSEPORT_BPF,
        0,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_on_a_non_socket_fail_with_enotsock() {
        let stdin = std::io::stdin();
        let e = detach_filter(stdin.as_fd()).unwrap_err();
        assert_eq!(e.call, "setsockopt(SO_DETACH_BPF)");
        assert!(e.is_errno(libc::ENOTSOCK), "{e:?}");
    }

    #[test]
    fn detaching_without_a_filter_is_enoent() {
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        assert!(detach_filter(&sock).unwrap_err().is_errno(libc::ENOENT));
        let e = detach_reuseport(&sock).unwrap_err();
        assert_eq!(e.call, "setsockopt(SO_DETACH_REUSEPORT_BPF)");
        // Without SO_REUSEPORT the socket has no group: EINVAL.
        assert!(e.is_errno(libc::EINVAL), "{e:?}");
    }
}
