//! Perf event array and BPF ring buffer readers: how records that BPF programs write with
//! `bpf_perf_event_output()` or `bpf_ringbuf_output()`/`_reserve()` reach user space.
//!
//! Two layers, for two kinds of users:
//!
//! - **Zero-copy readers**, one ring each, for those who run their own loop: [`PerfReader`]
//!   (one CPU's perf ring) and [`RingBuf`] (one BPF ring buffer). A callback gets every record
//!   borrowed straight from the shared memory ([`PerfRecord`], `&[u8]`); the space is handed back
//!   to the kernel once per drain. They never block: each is
//!   [`AsFd`](std::os::fd::AsFd), to wait on with epoll, `poll` or an async runtime (the
//!   `tokio` feature adds thin wrappers).
//! - **Channel readers**, goebpf's shape: [`PerfEvents`] (every online CPU of a perf event array)
//!   and [`RingBufEvents`] (any number of ring buffers) run one poll thread over one epoll and
//!   send copied [`Event`]s on a bounded `crossbeam-channel`, with [`Counters`] readable from any
//!   thread and a `stop()` that returns promptly whatever the consumer does.
//!
//! When not to use it: for a map's contents (use `bpf-maps`), or for records a program writes
//! into a plain map.
//!
//! Why it is shaped so: the mmap'd rings and every `unsafe` live in `bpf_sys::mmap`, whose views
//! hand out only bytes the kernel has finished writing and will not write until the consumer
//! position moves (through `&mut self`); this crate adds the record framing (a pure function of
//! two slices, property-tested without a kernel), the policies (wakeup, timeout, channel), and
//! the thread. The memory ordering against the kernel's side is written down where each reader
//! drains ([`PerfReader::try_for_each`], [`RingBuf::try_for_each`]) and in `docs/events.md`.
//!
//! Readers take any map handle through `impl AsFd` and check the map's type with the kernel, so
//! they work with every handle type of the workspace, or a bare fd.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod error;
mod perf_events;
mod perf_reader;
mod poller;
mod record;
mod ringbuf;
#[cfg(feature = "tokio")]
pub mod tokio;

pub use bpf_sys::perf::Wakeup;
pub use error::EventsError;
pub use perf_events::PerfEvents;
pub use perf_reader::PerfReader;
pub use poller::{Counters, Event, DEFAULT_CHANNEL_CAPACITY, DEFAULT_POLL_TIMEOUT};
pub use record::{DrainStats, PerfRecord, RingBytes};
pub use ringbuf::{RingBuf, RingBufEvents};

/// The channel types the readers hand out, re-exported so that users need no direct dependency.
pub use crossbeam_channel::{Receiver, RecvError, RecvTimeoutError, TryRecvError};
