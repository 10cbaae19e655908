//! The poll thread shared by [`PerfEvents`](crate::PerfEvents) and
//! [`RingBufEvents`](crate::RingBufEvents): one epoll over every ring, an eventfd to stop it, a
//! bounded channel of copied events.
//!
//! goebpf's poller overwrote its fd list with the ready fds, so after one event on one CPU the
//! other CPUs were never polled again. Here the rings never move: each is registered once in the
//! epoll with its index as the token, and the epoll instance is the only list.

use std::ops::ControlFlow;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use bpf_sys::poll::{Epoll, EventFd};
use crossbeam_channel::{Receiver, Sender, TrySendError};

use crate::error::EventsError;
use crate::record::DrainStats;

/// The default poll timeout (goebpf's `PollTimeoutMs`): how long the thread sleeps before it
/// drains every ring anyway, which catches records that have not reached the wakeup policy.
pub const DEFAULT_POLL_TIMEOUT: Duration = Duration::from_millis(100);

/// The default capacity of the event channel.
pub const DEFAULT_CHANNEL_CAPACITY: usize = 4096;

/// One sample, copied out of its ring onto the channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Where it came from: the CPU for a perf event array, the ring buffer's index (in the order
    /// they were added) for ring buffers.
    pub source: u32,
    /// The sample's bytes (for perf, followed by the kernel's 0 to 7 bytes of padding, of unspecified content: see [`PerfRecord::Sample`](crate::PerfRecord::Sample)).
    pub data: Vec<u8>,
}

/// The figures of a running reader, readable from any thread.
///
/// Each counter is a Relaxed atomic: they are statistics, independent of each other and of the
/// channel, added to after each drain of a ring. While the reader runs they may lag the events
/// already on the channel by one drain; once `stop()` has returned (it joins the poll thread,
/// which orders every update before it) they are final.
#[derive(Debug, Default)]
pub struct Counters {
    received: AtomicU64,
    lost: AtomicU64,
    skipped: AtomicU64,
    errors: AtomicU64,
}

impl Counters {
    /// Samples put on the channel (goebpf's `EventsReceived`).
    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    /// Samples the kernel dropped because a perf ring was full (goebpf's `EventsLost`). Always 0
    /// for ring buffers, whose losses are the BPF program's failed reservations.
    pub fn lost(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }

    /// Perf records of unknown type (goebpf's `EventsUnknowType`), or discarded ring buffer
    /// records.
    pub fn unknown(&self) -> u64 {
        self.skipped.load(Ordering::Relaxed)
    }

    /// Drains that failed (a corrupt ring); each is also logged.
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    fn add(&self, received: u64, stats: &DrainStats) {
        if received > 0 {
            self.received.fetch_add(received, Ordering::Relaxed);
        }
        if stats.lost > 0 {
            self.lost.fetch_add(stats.lost, Ordering::Relaxed);
        }
        if stats.skipped > 0 {
            self.skipped.fetch_add(stats.skipped, Ordering::Relaxed);
        }
    }
}

/// A ring the poll thread drains.
pub(crate) trait Source: Send + 'static {
    /// The [`Event::source`] of its samples.
    fn id(&self) -> u32;
    /// The fd to wait on.
    fn fd(&self) -> BorrowedFd<'_>;
    /// Hands every sample to `sink` until it breaks; returns the figures (samples counted even
    /// when the sink refused them: the poller counts deliveries itself).
    fn drain(
        &mut self,
        sink: &mut dyn FnMut(&[u8]) -> ControlFlow<()>,
    ) -> Result<DrainStats, EventsError>;
    /// Called once when the thread ends, before the source is dropped.
    fn close(&mut self) {}
}

/// The token of the stop eventfd in the epoll.
const STOP_TOKEN: u64 = u64::MAX;

/// A running poll thread.
#[derive(Debug)]
pub(crate) struct Running {
    thread: Option<JoinHandle<Result<(), EventsError>>>,
    stop: Arc<AtomicBool>,
    /// Dropped to wake a send blocked on a full channel.
    stop_tx: Option<Sender<()>>,
    wake: Arc<EventFd>,
}

/// Everything the thread owns.
struct Loop {
    sources: Vec<Box<dyn Source>>,
    epoll: Epoll,
    stop: Arc<AtomicBool>,
    stop_rx: Receiver<()>,
    tx: Sender<Event>,
    counters: Arc<Counters>,
    timeout: Duration,
}

/// Registers every source in a new epoll and starts the thread. Errors come back here, before
/// any thread runs; the sources are dropped on error.
pub(crate) fn spawn(
    sources: Vec<Box<dyn Source>>,
    timeout: Duration,
    capacity: usize,
    counters: Arc<Counters>,
) -> Result<(Running, Receiver<Event>), EventsError> {
    let epoll = Epoll::new().map_err(EventsError::sys)?;
    let wake = Arc::new(EventFd::new().map_err(EventsError::sys)?);
    epoll
        .add(wake.as_fd(), STOP_TOKEN)
        .map_err(EventsError::sys)?;
    for (i, s) in sources.iter().enumerate() {
        epoll.add(s.fd(), i as u64).map_err(EventsError::sys)?;
    }
    let (tx, rx) = crossbeam_channel::bounded(capacity);
    let (stop_tx, stop_rx) = crossbeam_channel::bounded(0);
    let stop = Arc::new(AtomicBool::new(false));
    let lp = Loop {
        sources,
        epoll,
        stop: Arc::clone(&stop),
        stop_rx,
        tx,
        counters,
        timeout,
    };
    let thread = std::thread::Builder::new()
        .name("bpf-perf-poll".into())
        .spawn(move || lp.run())
        .map_err(EventsError::Spawn)?;
    Ok((
        Running {
            thread: Some(thread),
            stop,
            stop_tx: Some(stop_tx),
            wake,
        },
        rx,
    ))
}

impl Running {
    /// Stops the thread and waits for it. Returns at once whatever the thread is doing: a send
    /// blocked on a full channel is abandoned (the stop channel disconnects), an `epoll_wait`
    /// is woken (the eventfd), a drain stops at the next record (the flag).
    pub(crate) fn stop(&mut self) -> Result<(), EventsError> {
        // Relaxed: the flag is a hint checked per record; the eventfd write and the channel
        // disconnect are the synchronising wakeups, and `join` orders everything after.
        self.stop.store(true, Ordering::Relaxed);
        drop(self.stop_tx.take());
        let signalled = self.wake.signal();
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        let joined = thread.join().map_err(|_| EventsError::PollThreadPanicked)?;
        signalled.map_err(EventsError::sys)?;
        joined
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            log::warn!("stopping the poll thread: {e}");
        }
    }
}

impl Loop {
    fn run(mut self) -> Result<(), EventsError> {
        let result = self.poll();
        for s in &mut self.sources {
            s.close();
        }
        // Dropping `self` drops the sender: the receiver gets what is still queued, then
        // `Disconnected`.
        result
    }

    fn poll(&mut self) -> Result<(), EventsError> {
        let mut tokens = Vec::with_capacity(bpf_sys::poll::MAX_EVENTS);
        loop {
            if self.stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            let n = self
                .epoll
                .wait(&mut tokens, Some(self.timeout))
                .map_err(EventsError::sys)?;
            let go_on = if n == 0 {
                // Timeout (or EINTR): drain everything, for records below the wakeup policy.
                (0..self.sources.len()).try_for_each(|i| self.drain(i))
            } else {
                tokens.iter().try_for_each(|&t| {
                    if t == STOP_TOKEN {
                        ControlFlow::Break(())
                    } else {
                        self.drain(t as usize)
                    }
                })
            };
            if go_on.is_break() {
                return Ok(());
            }
        }
    }

    /// Drains one source onto the channel. Breaks when the reader stops or the receiver is gone.
    fn drain(&mut self, i: usize) -> ControlFlow<()> {
        let Some(source) = self.sources.get_mut(i) else {
            return ControlFlow::Continue(());
        };
        let id = source.id();
        let (tx, stop, stop_rx) = (&self.tx, &*self.stop, &self.stop_rx);
        let mut delivered = 0u64;
        let mut end = ControlFlow::Continue(());
        let mut sink = |data: &[u8]| {
            if stop.load(Ordering::Relaxed) {
                end = ControlFlow::Break(());
                return end;
            }
            let ev = Event {
                source: id,
                data: data.to_vec(),
            };
            let sent = match tx.try_send(ev) {
                Ok(()) => Ok(()),
                Err(TrySendError::Disconnected(_)) => Err(()),
                Err(TrySendError::Full(ev)) => {
                    // Block until the consumer makes room, or stop() disconnects `stop_rx`.
                    crossbeam_channel::select! {
                        send(tx, ev) -> r => r.map_err(|_| ()),
                        recv(stop_rx) -> _ => Err(()),
                    }
                }
            };
            match sent {
                Ok(()) => {
                    delivered += 1;
                    ControlFlow::Continue(())
                }
                Err(()) => {
                    end = ControlFlow::Break(());
                    end
                }
            }
        };
        let result = source.drain(&mut sink);
        match result {
            Ok(stats) => self.counters.add(delivered, &stats),
            Err(e) => {
                self.counters.add(delivered, &DrainStats::default());
                self.counters.errors.fetch_add(1, Ordering::Relaxed);
                log::warn!("draining ring {id}: {e}");
            }
        }
        end
    }
}
