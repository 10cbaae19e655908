//! goebpf's `PerfEvents`: every CPU's ring of a perf event array, one poll thread, a channel.

use std::ops::ControlFlow;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

use bpf_sys::cpu;
use bpf_sys::perf::Wakeup;
use bpf_sys::MapType;
use crossbeam_channel::Receiver;

use crate::error::EventsError;
use crate::perf_reader::{check_map_type, PerfReader};
use crate::poller::{
    self, Counters, Event, Running, Source, DEFAULT_CHANNEL_CAPACITY, DEFAULT_POLL_TIMEOUT,
};
use crate::record::{DrainStats, PerfRecord};

/// Reads every CPU's ring of a `BPF_MAP_TYPE_PERF_EVENT_ARRAY` on a thread of its own and sends
/// the samples on a bounded channel: goebpf's `PerfEvents`, without its bugs.
///
/// - Built from a perf event array only ([`new`](Self::new) refuses other map types).
/// - [`start`](Self::start) opens a ring on every *online* CPU and stores its fd at the index of
///   that CPU, so holes in the online or possible sets (CPUs 0, 2, 3 online) are handled; a CPU
///   that comes online later gets no ring. The map needs `max_entries` above the highest online
///   CPU (a map with `max_entries` = the number of possible CPUs always fits).
/// - Any buffer size is accepted and rounded up to a power of two of pages.
/// - One epoll over every ring: a wakeup on one CPU never hides another.
/// - Counters ([`counters`](Self::counters)) are atomics, readable from any thread.
/// - [`stop`](Self::stop) returns promptly, even right after `start` and even when the consumer
///   has stopped reading a full channel; dropping the reader stops it too.
///
/// What happens to undelivered events at `stop`: the samples already on the channel stay there,
/// and the receiver gets them before it sees the channel disconnected; the sample being sent when
/// `stop` came, and every record still in the rings, are dropped with the rings (they are
/// counted nowhere: `received` counts samples put on the channel).
///
/// ```no_run
/// # fn demo(map: std::os::fd::BorrowedFd<'_>) -> Result<(), bpf_perf::EventsError> {
/// use bpf_perf::PerfEvents;
/// let mut events = PerfEvents::new(map)?;
/// let rx = events.start(4096)?;
/// for event in rx.iter().take(10) {
///     println!("cpu {}: {} bytes", event.source, event.data.len());
/// }
/// events.stop()?;
/// println!("lost {}", events.counters().lost());
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[doc(alias = "BPF_MAP_TYPE_PERF_EVENT_ARRAY")]
pub struct PerfEvents {
    map: Arc<OwnedFd>,
    max_entries: u32,
    wakeup: Wakeup,
    poll_timeout: Duration,
    capacity: usize,
    counters: Arc<Counters>,
    running: Option<Running>,
}

impl PerfEvents {
    /// Wraps a perf event array (anything that has its fd: a map handle, an `OwnedFd`, a
    /// `BorrowedFd`; the fd is duplicated). Other map types are refused with
    /// [`EventsError::WrongMapType`].
    pub fn new(map: impl AsFd) -> Result<Self, EventsError> {
        let map = map.as_fd();
        let max_entries = check_map_type(map, MapType::PerfEventArray)?;
        let map = map
            .try_clone_to_owned()
            .map_err(|e| EventsError::sys(bpf_sys::SysError::new("fcntl(F_DUPFD_CLOEXEC)", e)))?;
        Ok(PerfEvents {
            map: Arc::new(map),
            max_entries,
            wakeup: Wakeup::Events(1),
            poll_timeout: DEFAULT_POLL_TIMEOUT,
            capacity: DEFAULT_CHANNEL_CAPACITY,
            counters: Arc::default(),
            running: None,
        })
    }

    /// When the kernel wakes the poll thread (for the next [`start`](Self::start)): after every
    /// record (`Wakeup::Events(1)`, the default and goebpf's), after every N records
    /// (`Wakeup::Events(n)`: much cheaper under load), or when a number of bytes is waiting
    /// (`Wakeup::Watermark`). Records below the threshold are read at the next poll timeout.
    pub fn set_wakeup(&mut self, wakeup: Wakeup) -> &mut Self {
        self.wakeup = wakeup;
        self
    }

    /// How long the poll thread waits for a wakeup before it drains every ring anyway (100 ms by
    /// default; for the next [`start`](Self::start)).
    pub fn set_poll_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.poll_timeout = timeout;
        self
    }

    /// The capacity of the event channel (4096 by default; 0 makes a rendezvous channel, as
    /// goebpf's; for the next [`start`](Self::start)). A full channel stalls the poll thread, and
    /// the kernel drops (and counts as lost) what no longer fits in the rings.
    pub fn set_channel_capacity(&mut self, capacity: usize) -> &mut Self {
        self.capacity = capacity;
        self
    }

    /// The counters, shareable with other threads; they add up over every run.
    pub fn counters(&self) -> Arc<Counters> {
        Arc::clone(&self.counters)
    }

    /// Whether the poll thread runs.
    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// Opens a ring of at least `buffer_size` bytes on every online CPU, stores the fds in the
    /// map, and starts the poll thread (goebpf's `StartForAllProcessesAndCPUs`). On error,
    /// everything set up so far is released and the map slots it wrote are deleted.
    pub fn start(&mut self, buffer_size: usize) -> Result<Receiver<Event>, EventsError> {
        if self.running.is_some() {
            return Err(EventsError::AlreadyRunning);
        }
        let online = cpu::online_cpus().map_err(EventsError::Cpus)?;
        if let Some(&cpu) = online.iter().find(|&&c| c >= self.max_entries) {
            return Err(EventsError::MapTooSmall {
                cpu,
                max_entries: self.max_entries,
            });
        }
        let mut sources: Vec<Box<dyn Source>> = Vec::with_capacity(online.len());
        for cpu in online {
            let mut ring = CpuRing {
                reader: PerfReader::open(cpu, buffer_size, self.wakeup)?,
                map: Arc::clone(&self.map),
                registered: false,
            };
            ring.reader.register(&*ring.map)?;
            // From here on, dropping the ring (on a later error too) deletes its slot.
            ring.registered = true;
            sources.push(Box::new(ring));
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

    /// Stops the poll thread, waits for it, and releases every ring (their map slots deleted,
    /// the events disabled and closed). Returns promptly whatever the consumer does; see the type's
    /// documentation for what happens to undelivered events. A no-op when not running; the reader
    /// can be started again.
    pub fn stop(&mut self) -> Result<(), EventsError> {
        match self.running.take() {
            Some(mut r) => r.stop(),
            None => Ok(()),
        }
    }
}

impl AsFd for PerfEvents {
    /// The perf event array's fd (a duplicate owned by the reader).
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.map.as_fd()
    }
}

/// A CPU's reader as the poll thread sees it.
#[derive(Debug)]
struct CpuRing {
    reader: PerfReader,
    map: Arc<OwnedFd>,
    registered: bool,
}

impl CpuRing {
    fn unregister(&mut self) {
        if std::mem::take(&mut self.registered) {
            if let Err(e) = self.reader.unregister(&*self.map) {
                log::warn!("{e}");
            }
        }
    }
}

impl Source for CpuRing {
    fn id(&self) -> u32 {
        self.reader.cpu()
    }

    fn fd(&self) -> BorrowedFd<'_> {
        self.reader.as_fd()
    }

    fn drain(
        &mut self,
        sink: &mut dyn FnMut(&[u8]) -> ControlFlow<()>,
    ) -> Result<DrainStats, EventsError> {
        self.reader.try_for_each(|r| match r {
            PerfRecord::Sample(data) => sink(data),
            PerfRecord::Lost(_) | PerfRecord::Unknown { .. } => ControlFlow::Continue(()),
        })
    }

    fn close(&mut self) {
        self.unregister();
    }
}

impl Drop for CpuRing {
    fn drop(&mut self) {
        self.unregister();
    }
}
