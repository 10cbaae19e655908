//! The one error type of the readers.

use bpf_sys::cpu::CpuError;
use bpf_sys::mmap::RingError;
use bpf_sys::{MapType, SysError};

/// Setting up, reading or stopping a perf or ring buffer reader failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EventsError {
    /// The map is not of the type the reader reads.
    #[error("map is a {}, expected a {expected:?}", found.map_or_else(|| format!("map of type {found_raw}"), |t| format!("{t:?}")))]
    WrongMapType {
        /// The type the reader needs.
        expected: MapType,
        /// The map's type, if this library knows it.
        found: Option<MapType>,
        /// The map's type number.
        found_raw: u32,
    },
    /// A system call failed (`BPF_OBJ_GET_INFO_BY_FD`, `perf_event_open`, `epoll_ctl`, ...);
    /// `cpu` names the CPU whose ring it was for, if any.
    #[error("{} failed{}", source.call, cpu.map(|c| format!(" for cpu {c}")).unwrap_or_default())]
    Sys {
        /// The CPU, for per-CPU steps.
        cpu: Option<u32>,
        /// The call and its errno.
        #[source]
        source: SysError,
    },
    /// Storing a perf event's fd in the perf event array failed.
    #[error("storing the perf event fd of cpu {cpu} in the perf event array failed")]
    StoreFd {
        /// The CPU (the key).
        cpu: u32,
        /// The `BPF_MAP_UPDATE_ELEM` failure.
        #[source]
        source: SysError,
    },
    /// An online CPU has no slot in the perf event array (`max_entries` too small).
    #[error("cpu {cpu} is online but the perf event array has only {max_entries} entries")]
    MapTooSmall {
        /// The CPU.
        cpu: u32,
        /// The map's `max_entries`.
        max_entries: u32,
    },
    /// The CPU lists could not be read.
    #[error("reading the cpu list failed")]
    Cpus(#[source] CpuError),
    /// A ring could not be mapped, or its positions are inconsistent.
    #[error("ring {id} failed")]
    Ring {
        /// The CPU of a perf ring, or the index of a ring buffer.
        id: u32,
        /// What went wrong.
        #[source]
        source: RingError,
    },
    /// A perf record does not decode (a kernel bug or memory corruption): the rest of the ring's
    /// readable bytes were skipped.
    #[error("corrupt perf record at ring position {pos} on cpu {cpu}: {reason}")]
    Corrupt {
        /// The CPU.
        cpu: u32,
        /// The record's ring position.
        pos: u64,
        /// What is wrong.
        reason: &'static str,
    },
    /// A watermark the ring can never reach: the kernel would never wake the reader.
    #[error("wakeup watermark of {watermark} bytes does not fit a ring of {ring_size} bytes")]
    WatermarkTooLarge {
        /// The watermark asked for.
        watermark: u32,
        /// The ring's data size.
        ring_size: usize,
    },
    /// [`start`](crate::PerfEvents::start) was called on a reader that is running.
    #[error("the reader is already running")]
    AlreadyRunning,
    /// No ring buffer was added before [`start`](crate::RingBufEvents::start).
    #[error("no ring buffer to read")]
    NoRings,
    /// The poll thread could not be spawned.
    #[error("spawning the poll thread failed")]
    Spawn(#[source] std::io::Error),
    /// The poll thread panicked.
    #[error("the poll thread panicked")]
    PollThreadPanicked,
}

impl EventsError {
    pub(crate) fn sys(source: SysError) -> Self {
        EventsError::Sys { cpu: None, source }
    }

    pub(crate) fn sys_cpu(cpu: u32, source: SysError) -> Self {
        EventsError::Sys {
            cpu: Some(cpu),
            source,
        }
    }
}
