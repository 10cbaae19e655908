//! Thin async wrappers over the zero-copy readers (feature `tokio`): each waits on the reader's
//! fd with [`AsyncFd`] and then drains it with the same callback as the blocking API.
//!
//! `AsyncFd` is edge-triggered. That is safe here because readiness is cleared only after a
//! drain that leaves no record behind without a wakeup to come, and tokio keeps a wakeup that
//! arrives during the drain:
//! - a perf drain reads up to the head it loaded, and any record written after it raises its
//!   own wakeup (per the [`Wakeup`](crate::Wakeup) policy: records below an N-records or
//!   watermark threshold wait for more, so use a timeout around the future with such a policy);
//! - a ring buffer drain reads the records that were there when it started, publishes its
//!   consumer position and issues a full fence; readiness is then cleared only if
//!   [`RingBuf::needs_drain`] finds no committed record left, so the kernel wakes the reader for
//!   the next one.

use std::io;
use std::ops::ControlFlow;
use std::os::fd::{AsFd, AsRawFd, RawFd};

use bpf_sys::SysError;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use crate::error::EventsError;
use crate::perf_reader::PerfReader;
use crate::record::{DrainStats, PerfRecord};
use crate::ringbuf::RingBuf;

/// `AsyncFd` wants `AsRawFd`; the readers expose only `AsFd`, so this adapter stays private.
///
/// It upholds what `AsyncFd::register` asks of its callers (tokio made the safe constructors
/// deprecated because a type could break it): the fd is owned by the reader, stays open and
/// names the same file for the reader's whole life, and `as_raw_fd` always returns it. The
/// wrappers never hand out `&mut` to the reader, so it cannot be swapped for another.
#[derive(Debug)]
struct Raw<T>(T);

/// Registers `reader` for readability with the current runtime.
fn register<T: AsFd>(reader: T) -> Result<AsyncFd<Raw<T>>, EventsError> {
    #[expect(
        deprecated,
        reason = "the safe constructor; `Raw` keeps the I/O-safety contract (see its docs), and \
                  this crate forbids the `unsafe` of `register_with_interest`"
    )]
    AsyncFd::with_interest(Raw(reader), Interest::READABLE).map_err(io_err)
}

impl<T: AsFd> AsRawFd for Raw<T> {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

fn io_err(e: io::Error) -> EventsError {
    EventsError::sys(SysError::new("epoll (tokio AsyncFd)", e))
}

fn found_any(s: &DrainStats) -> bool {
    s.samples + s.lost + s.skipped > 0
}

/// A [`PerfReader`] registered with the tokio reactor.
#[derive(Debug)]
pub struct AsyncPerfReader {
    inner: AsyncFd<Raw<PerfReader>>,
}

impl AsyncPerfReader {
    /// Registers the reader with the current tokio runtime (call from within one).
    pub fn new(reader: PerfReader) -> Result<Self, EventsError> {
        let inner = register(reader)?;
        Ok(AsyncPerfReader { inner })
    }

    /// The reader.
    pub fn get_ref(&self) -> &PerfReader {
        &self.inner.get_ref().0
    }

    /// The reader, deregistered.
    pub fn into_inner(self) -> PerfReader {
        self.inner.into_inner().0
    }

    /// Waits until the ring holds at least one record, then drains it like
    /// [`PerfReader::try_for_each`].
    pub async fn try_for_each<F>(&mut self, mut f: F) -> Result<DrainStats, EventsError>
    where
        F: FnMut(PerfRecord<'_>) -> ControlFlow<()>,
    {
        loop {
            let mut guard = self.inner.readable_mut().await.map_err(io_err)?;
            let stats = guard.get_inner_mut().0.try_for_each(&mut f)?;
            guard.clear_ready();
            if found_any(&stats) {
                return Ok(stats);
            }
        }
    }

    /// Waits until the ring holds at least one record, then drains it like
    /// [`PerfReader::for_each`].
    pub async fn for_each<F>(&mut self, mut f: F) -> Result<DrainStats, EventsError>
    where
        F: FnMut(PerfRecord<'_>),
    {
        self.try_for_each(|r| {
            f(r);
            ControlFlow::Continue(())
        })
        .await
    }
}

/// A [`RingBuf`] registered with the tokio reactor.
#[derive(Debug)]
pub struct AsyncRingBuf {
    inner: AsyncFd<Raw<RingBuf>>,
}

impl AsyncRingBuf {
    /// Registers the reader with the current tokio runtime (call from within one).
    pub fn new(reader: RingBuf) -> Result<Self, EventsError> {
        let inner = register(reader)?;
        Ok(AsyncRingBuf { inner })
    }

    /// The reader.
    pub fn get_ref(&self) -> &RingBuf {
        &self.inner.get_ref().0
    }

    /// The reader, deregistered.
    pub fn into_inner(self) -> RingBuf {
        self.inner.into_inner().0
    }

    /// Waits until the ring holds at least one record, then drains it like
    /// [`RingBuf::try_for_each`]. After a break, call again before waiting elsewhere: the
    /// records left behind raise no new wakeup.
    pub async fn try_for_each<F>(&mut self, mut f: F) -> Result<DrainStats, EventsError>
    where
        F: FnMut(&[u8]) -> ControlFlow<()>,
    {
        loop {
            let mut guard = self.inner.readable_mut().await.map_err(io_err)?;
            let mut broke = false;
            let reader = &mut guard.get_inner_mut().0;
            let stats = reader.try_for_each(|d| {
                let flow = f(d);
                broke |= flow.is_break();
                flow
            })?;
            // Records committed during the drain, after its batch, may raise no wakeup:
            // readiness stays set for them (the next call drains without waiting).
            if !broke && !reader.needs_drain() {
                guard.clear_ready();
            }
            if found_any(&stats) || broke {
                return Ok(stats);
            }
        }
    }

    /// Waits until the ring holds at least one record, then drains it like
    /// [`RingBuf::for_each`].
    pub async fn for_each<F>(&mut self, mut f: F) -> Result<DrainStats, EventsError>
    where
        F: FnMut(&[u8]),
    {
        self.try_for_each(|d| {
            f(d);
            ControlFlow::Continue(())
        })
        .await
    }
}
