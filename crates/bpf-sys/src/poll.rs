//! Waiting for perf rings and BPF ring buffers: a level-triggered epoll instance and an eventfd.
//!
//! The readers in `bpf-perf` put every ring's fd in one [`Epoll`] and wake their poll thread
//! with an [`EventFd`] when asked to stop. Both are thin, safe wrappers over `rustix` that own
//! their fd (`O_CLOEXEC`) and implement `AsFd`.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use rustix::event::epoll::{self, CreateFlags, Event, EventData, EventFlags};
use rustix::event::{EventfdFlags, Timespec};
use rustix::io::Errno;

use crate::error::SysError;

/// How many ready fds one [`Epoll::wait`] reports at most.
pub const MAX_EVENTS: usize = 64;

fn sys(call: &'static str, e: Errno) -> SysError {
    SysError::new(call, e.into())
}

/// An epoll instance whose registrations are level-triggered `EPOLLIN`, each tagged with a
/// caller-chosen token.
#[derive(Debug)]
pub struct Epoll {
    fd: OwnedFd,
}

impl Epoll {
    /// `epoll_create1(EPOLL_CLOEXEC)`.
    pub fn new() -> Result<Self, SysError> {
        let fd = epoll::create(CreateFlags::CLOEXEC).map_err(|e| sys("epoll_create1", e))?;
        Ok(Epoll { fd })
    }

    /// Registers `fd` for `EPOLLIN` (level-triggered): [`wait`](Self::wait) reports `token`
    /// while it is readable. The epoll instance does not keep `fd` open: close it only after
    /// [`delete`](Self::delete), or after dropping the epoll.
    pub fn add(&self, fd: BorrowedFd<'_>, token: u64) -> Result<(), SysError> {
        epoll::add(&self.fd, fd, EventData::new_u64(token), EventFlags::IN)
            .map_err(|e| sys("epoll_ctl(EPOLL_CTL_ADD)", e))
    }

    /// Removes `fd`.
    pub fn delete(&self, fd: BorrowedFd<'_>) -> Result<(), SysError> {
        epoll::delete(&self.fd, fd).map_err(|e| sys("epoll_ctl(EPOLL_CTL_DEL)", e))
    }

    /// Waits until a registered fd is ready or `timeout` passes (`None`: forever), and pushes
    /// the tokens of the ready fds (at most [`MAX_EVENTS`]) to `tokens`, which it clears first.
    /// An interrupted wait (`EINTR`) reports nothing. Returns how many tokens it pushed.
    pub fn wait(
        &self,
        tokens: &mut Vec<u64>,
        timeout: Option<Duration>,
    ) -> Result<usize, SysError> {
        tokens.clear();
        let empty = Event {
            flags: EventFlags::empty(),
            data: EventData::new_u64(0),
        };
        let mut buf = [empty; MAX_EVENTS];
        let ts = timeout.map(|d| Timespec {
            tv_sec: d.as_secs().min(i32::MAX as u64) as _,
            tv_nsec: d.subsec_nanos() as _,
        });
        let n = match epoll::wait(&self.fd, &mut buf[..], ts.as_ref()) {
            Ok(n) => n,
            Err(Errno::INTR) => return Ok(0),
            Err(e) => return Err(sys("epoll_wait", e)),
        };
        tokens.extend(buf[..n].iter().map(|ev| ev.data.u64()));
        Ok(n)
    }
}

impl AsFd for Epoll {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl From<Epoll> for OwnedFd {
    fn from(e: Epoll) -> OwnedFd {
        e.fd
    }
}

/// A non-blocking eventfd (`EFD_NONBLOCK | EFD_CLOEXEC`): a counter that one thread raises
/// ([`signal`](Self::signal)) to wake another that polls it.
#[derive(Debug)]
pub struct EventFd {
    fd: OwnedFd,
}

impl EventFd {
    /// `eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)`.
    pub fn new() -> Result<Self, SysError> {
        let fd = rustix::event::eventfd(0, EventfdFlags::NONBLOCK | EventfdFlags::CLOEXEC)
            .map_err(|e| sys("eventfd", e))?;
        Ok(EventFd { fd })
    }

    /// Adds 1 to the counter, making the fd readable. A counter at its maximum stays readable,
    /// so `EAGAIN` is not an error.
    pub fn signal(&self) -> Result<(), SysError> {
        match rustix::io::write(&self.fd, &1u64.to_ne_bytes()) {
            Ok(_) | Err(Errno::AGAIN) => Ok(()),
            Err(e) => Err(sys("write(eventfd)", e)),
        }
    }

    /// Reads and resets the counter; 0 when it was not signalled.
    pub fn take(&self) -> Result<u64, SysError> {
        let mut buf = [0u8; 8];
        match rustix::io::read(&self.fd, &mut buf) {
            Ok(8) => Ok(u64::from_ne_bytes(buf)),
            Ok(_) => Err(SysError::new(
                "read(eventfd)",
                std::io::Error::other("short read"),
            )),
            Err(Errno::AGAIN) => Ok(0),
            Err(e) => Err(sys("read(eventfd)", e)),
        }
    }
}

impl AsFd for EventFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoll_reports_a_signalled_eventfd_until_it_is_read() {
        let ep = Epoll::new().unwrap();
        let ev = EventFd::new().unwrap();
        ep.add(ev.as_fd(), 7).unwrap();
        let mut tokens = Vec::new();
        assert_eq!(
            ep.wait(&mut tokens, Some(Duration::from_millis(1)))
                .unwrap(),
            0
        );
        ev.signal().unwrap();
        ev.signal().unwrap();
        assert_eq!(ep.wait(&mut tokens, Some(Duration::ZERO)).unwrap(), 1);
        assert_eq!(tokens, [7]);
        // Level-triggered: still ready until read.
        assert_eq!(ep.wait(&mut tokens, Some(Duration::ZERO)).unwrap(), 1);
        assert_eq!(ev.take().unwrap(), 2);
        assert_eq!(ev.take().unwrap(), 0);
        assert_eq!(ep.wait(&mut tokens, Some(Duration::ZERO)).unwrap(), 0);
        assert!(tokens.is_empty());
        ep.delete(ev.as_fd()).unwrap();
        ev.signal().unwrap();
        assert_eq!(ep.wait(&mut tokens, Some(Duration::ZERO)).unwrap(), 0);
    }
}
