//! The BPF ring buffer (`BPF_MAP_TYPE_RINGBUF`, kernel 5.8): a zero-copy reader, and several
//! ring buffers behind one poll thread with the same channel API as perf.

use std::ops::ControlFlow;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

use bpf_sys::mmap::{RingBufEntry, RingBufRegion};
use bpf_sys::{MapType, SysError};
use crossbeam_channel::Receiver;

use crate::error::EventsError;
use crate::perf_reader::check_map_type;
use crate::poller::{
    self, Counters, Event, Running, Source, DEFAULT_CHANNEL_CAPACITY, DEFAULT_POLL_TIMEOUT,
};
use crate::record::DrainStats;

/// How many times a drain re-reads a busy record (reserved, not yet committed) before it leaves
/// it for the wakeup that its commit sends.
const BUSY_SPINS: u32 = 256;

fn dup(map: BorrowedFd<'_>) -> Result<OwnedFd, EventsError> {
    map.try_clone_to_owned()
        .map_err(|e| EventsError::sys(SysError::new("fcntl(F_DUPFD_CLOEXEC)", e)))
}

/// The zero-copy reader of one BPF ring buffer.
///
/// [`for_each`](Self::for_each) hands every committed sample of the batch in the ring when it
/// starts to a callback as a `&[u8]` borrowed from the ring (the kernel maps the data pages
/// twice, so even a record that wraps is contiguous: nothing is copied), skips discarded records,
/// waits briefly for a busy record (one the program has reserved but not yet committed), and
/// publishes the consumer position once per drain. The reader never blocks: wait on its fd
/// ([`AsFd`], the map's) with epoll, `poll` or an async runtime; an edge-triggered wait must
/// first drain until [`needs_drain`](Self::needs_drain) is false.
///
/// Unlike perf, nothing is ever "lost" on this side: when the ring is full, the program's
/// `bpf_ringbuf_reserve`/`bpf_ringbuf_output` fails, and only the program can count that.
///
/// Minimum kernel: 5.8.
///
/// ```no_run
/// # fn demo(map: std::os::fd::BorrowedFd<'_>) -> Result<(), bpf_perf::EventsError> {
/// let mut rb = bpf_perf::RingBuf::new(map)?;
/// let stats = rb.for_each(|sample| println!("{} bytes", sample.len()))?;
/// println!("{} samples", stats.samples);
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[doc(alias = "BPF_MAP_TYPE_RINGBUF")]
pub struct RingBuf {
    // Field order: unmapped before the fd is closed.
    region: RingBufRegion,
    map: OwnedFd,
    totals: DrainStats,
}

impl RingBuf {
    /// Maps a ring buffer map (anything that has its fd; the fd is duplicated). Other map types
    /// are refused with [`EventsError::WrongMapType`].
    pub fn new(map: impl AsFd) -> Result<Self, EventsError> {
        let map = map.as_fd();
        let size = check_map_type(map, MapType::RingBuf)?;
        let map = dup(map)?;
        Self::with_fd(map, size, 0)
    }

    fn with_fd(map: OwnedFd, size: u32, id: u32) -> Result<Self, EventsError> {
        let region = RingBufRegion::new(map.as_fd(), size as usize)
            .map_err(|source| EventsError::Ring { id, source })?;
        Ok(RingBuf {
            region,
            map,
            totals: DrainStats::default(),
        })
    }

    /// The size of the data area in bytes (the map's `max_entries`).
    pub fn ring_size(&self) -> usize {
        self.region.data_size()
    }

    /// Bytes between the consumer and the producer position (records committed, discarded or
    /// still busy).
    pub fn pending_bytes(&self) -> u64 {
        self.region.available()
    }

    /// What every drain so far found, added up (`skipped` counts discarded records).
    pub fn totals(&self) -> DrainStats {
        self.totals
    }

    /// Calls `f` on every committed sample that was in the ring when the drain started, oldest
    /// first, skipping discarded records; waits briefly for a busy record (reserved, not yet
    /// committed) and stops at one that stays busy. Hands the space back to the kernel once, at
    /// the end. Returns what this drain found (`skipped`: discarded records).
    ///
    /// Records committed while it runs are left for the next drain: a reader that chased the
    /// producer would catch up with it more often, and the kernel wakes the reader (an
    /// interrupt and a wakeup, paid by the program) for every record committed while the reader
    /// is caught up. Stopping at the batch carried about twice the records per second with a
    /// producer on another CPU (`docs/benchmarks.md`).
    ///
    /// Waiting with a level-triggered `epoll` (its default) or `poll` needs nothing more: the fd
    /// stays readable while any record is pending. An edge-triggered waiter (`EPOLLET`, tokio's
    /// `AsyncFd`) must drain again while [`needs_drain`](Self::needs_drain) says so before it
    /// sleeps.
    #[inline]
    pub fn for_each<F>(&mut self, mut f: F) -> Result<DrainStats, EventsError>
    where
        F: FnMut(&[u8]),
    {
        self.try_for_each(|d| {
            f(d);
            ControlFlow::Continue(())
        })
    }

    /// [`for_each`](Self::for_each) that stops when `f` breaks: the sample it broke on and the
    /// records after it stay in the ring for the next drain (a way to apply back-pressure). After
    /// a break, [`needs_drain`](Self::needs_drain) is true: no wakeup is guaranteed for records
    /// already committed.
    #[inline]
    pub fn try_for_each<F>(&mut self, mut f: F) -> Result<DrainStats, EventsError>
    where
        F: FnMut(&[u8]) -> ControlFlow<()>,
    {
        // Memory ordering, against `kernel/bpf/ringbuf.c`:
        // - `cursor()` loads `producer_pos` with Acquire, once per drain (pairs with
        //   `smp_store_release` in `__bpf_ringbuf_reserve`: we see at least the BUSY header, with
        //   its final length, of every record before it); the cursor loads each header's length
        //   word with Acquire (pairs with the `xchg` that clears BUSY in `bpf_ringbuf_commit`: a
        //   committed record's bytes are visible). That per-record load is the protocol's: a
        //   record behind the producer position may be committed at any time.
        // - `set_consumer_pos()` stores `consumer_pos` with Release once per drain (pairs with the
        //   reserve's `smp_load_acquire(&rb->consumer_pos)`: our reads of the batch happen before
        //   the kernel reuses its space).
        // - `full_fence()` (SeqCst) after that store, before anything looks at the ring again (our
        //   `needs_drain`, or the kernel's poll in the caller's next wait): the commit does `xchg`
        //   (a full barrier) and then reads `consumer_pos` to decide whether to wake us (only if
        //   it equals the record's position). With both full barriers, either the next look sees
        //   the commit or the kernel sees our position and wakes us; without ours, the store could
        //   sit in the store buffer while we read an old header, and both sides would wait (the
        //   missed wakeup that hangs edge-triggered waiters).
        let mut stats = DrainStats::default();
        let ring_err = |source| EventsError::Ring { id: 0, source };
        let start = self.region.consumer_pos();
        let end = {
            let mut cur = self.region.cursor().map_err(ring_err)?;
            let mut spins = 0;
            loop {
                let at = cur.pos();
                match cur.next_in_batch().map_err(ring_err)? {
                    RingBufEntry::Empty => break cur.pos(),
                    RingBufEntry::Busy => {
                        if spins == BUSY_SPINS {
                            break cur.pos();
                        }
                        spins += 1;
                        std::hint::spin_loop();
                    }
                    RingBufEntry::Discarded { .. } => stats.skipped += 1,
                    RingBufEntry::Sample { data, .. } => {
                        if f(data).is_break() {
                            // The sample stays for the next drain.
                            break at;
                        }
                        stats.samples += 1;
                    }
                }
            }
        };
        if end.get() != start {
            stats.bytes = end.get().wrapping_sub(start);
            self.region.set_consumer_pos(end).map_err(ring_err)?;
            self.region.full_fence();
        }
        self.totals.add(stats);
        Ok(stats)
    }

    /// Whether a committed record waits that no wakeup may announce: one committed while the
    /// last drain ran (after the batch it read), or left behind by a break. An edge-triggered
    /// waiter drains again while this is true; when it is false, the ring is empty or its next
    /// record is still being written, and the kernel wakes the reader when that record is
    /// committed (the consumer position was published, and a full fence issued, before this
    /// look). An error reading the ring answers `true`: the next drain reports it.
    pub fn needs_drain(&self) -> bool {
        self.region.full_fence();
        match self.region.cursor().and_then(|mut c| c.next_in_batch()) {
            Ok(RingBufEntry::Empty | RingBufEntry::Busy) => false,
            Ok(RingBufEntry::Discarded { .. } | RingBufEntry::Sample { .. }) | Err(_) => true,
        }
    }
}

impl AsFd for RingBuf {
    /// The map's fd (a duplicate owned by the reader): readable while records are pending.
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.map.as_fd()
    }
}

/// Several BPF ring buffers read by one poll thread (one epoll) onto one bounded channel: the
/// same API as [`PerfEvents`](crate::PerfEvents), with the ring's index (in the order of
/// [`add`](Self::add)) as each [`Event::source`].
///
/// What happens to undelivered events at [`stop`](Self::stop): the samples already on the
/// channel stay there for the receiver; the sample being sent and the records still in the rings
/// stay in the rings (the consumer position is published per drain), where a later
/// [`start`](Self::start) or any other reader of the maps finds them.
///
/// ```no_run
/// # fn demo(a: std::os::fd::BorrowedFd<'_>, b: std::os::fd::BorrowedFd<'_>) -> Result<(), bpf_perf::EventsError> {
/// let mut events = bpf_perf::RingBufEvents::new();
/// events.add(a)?;
/// events.add(b)?;
/// let rx = events.start()?;
/// if let Ok(ev) = rx.recv_timeout(std::time::Duration::from_secs(1)) {
///     println!("ring {}: {:?}", ev.source, ev.data);
/// }
/// events.stop()?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct RingBufEvents {
    maps: Vec<(Arc<OwnedFd>, u32)>,
    poll_timeout: Duration,
    capacity: usize,
    counters: Arc<Counters>,
    running: Option<Running>,
}

impl Default for RingBufEvents {
    fn default() -> Self {
        Self::new()
    }
}

impl RingBufEvents {
    /// A reader with no ring buffer yet.
    pub fn new() -> Self {
        RingBufEvents {
            maps: Vec::new(),
            poll_timeout: DEFAULT_POLL_TIMEOUT,
            capacity: DEFAULT_CHANNEL_CAPACITY,
            counters: Arc::default(),
            running: None,
        }
    }

    /// Adds a ring buffer map (the fd is duplicated); returns its index, the
    /// [`Event::source`] of its samples. Other map types are refused. Not while running.
    pub fn add(&mut self, map: impl AsFd) -> Result<u32, EventsError> {
        if self.running.is_some() {
            return Err(EventsError::AlreadyRunning);
        }
        let map = map.as_fd();
        let size = check_map_type(map, MapType::RingBuf)?;
        self.maps.push((Arc::new(dup(map)?), size));
        Ok(self.maps.len() as u32 - 1)
    }

    /// How long the poll thread waits for a wakeup before it drains every ring anyway (100 ms by
    /// default), which covers records committed with `BPF_RB_NO_WAKEUP`.
    pub fn set_poll_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.poll_timeout = timeout;
        self
    }

    /// The capacity of the event channel (4096 by default). A full channel stalls the poll
    /// thread; the program's reservations then fail once the ring fills.
    pub fn set_channel_capacity(&mut self, capacity: usize) -> &mut Self {
        self.capacity = capacity;
        self
    }

    /// The counters (`unknown` counts discarded records), shareable with other threads; they
    /// add up over every run.
    pub fn counters(&self) -> Arc<Counters> {
        Arc::clone(&self.counters)
    }

    /// Whether the poll thread runs.
    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// Maps every ring buffer added and starts the poll thread.
    pub fn start(&mut self) -> Result<Receiver<Event>, EventsError> {
        if self.running.is_some() {
            return Err(EventsError::AlreadyRunning);
        }
        if self.maps.is_empty() {
            return Err(EventsError::NoRings);
        }
        let mut sources: Vec<Box<dyn Source>> = Vec::with_capacity(self.maps.len());
        for (i, (map, size)) in self.maps.iter().enumerate() {
            let fd = dup(map.as_fd())?;
            sources.push(Box::new(Ring {
                id: i as u32,
                reader: RingBuf::with_fd(fd, *size, i as u32)?,
            }));
        }
        let (running, rx) = poller::spawn(
            sources,
            self.poll_timeout,
            self.capacity,
            Arc::clone(&self.counters),
        )?;
        self.running = Some(running);
        Ok(rx)
    }

    /// Stops the poll thread and waits for it; returns promptly whatever the consumer does. A
    /// no-op when not running; the reader can be started again.
    pub fn stop(&mut self) -> Result<(), EventsError> {
        match self.running.take() {
            Some(mut r) => r.stop(),
            None => Ok(()),
        }
    }
}

#[derive(Debug)]
struct Ring {
    id: u32,
    reader: RingBuf,
}

impl Source for Ring {
    fn id(&self) -> u32 {
        self.id
    }

    fn fd(&self) -> BorrowedFd<'_> {
        self.reader.as_fd()
    }

    fn drain(
        &mut self,
        sink: &mut dyn FnMut(&[u8]) -> ControlFlow<()>,
    ) -> Result<DrainStats, EventsError> {
        self.reader.try_for_each(sink).map_err(|e| match e {
            EventsError::Ring { source, .. } => EventsError::Ring {
                id: self.id,
                source,
            },
            other => other,
        })
    }
}
