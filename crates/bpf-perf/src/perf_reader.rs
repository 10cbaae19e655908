//! One CPU's perf ring: the zero-copy reader under [`PerfEvents`](crate::PerfEvents), for users
//! who run their own loop.

use std::ops::ControlFlow;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use bpf_sys::map::MapFd;
use bpf_sys::mmap::{self, PerfRing};
use bpf_sys::perf::{self, Wakeup};
use bpf_sys::MapType;

use crate::error::EventsError;
use crate::record::{self, DrainStats, PerfRecord, RingBytes};

/// Checks that `map` is of type `expected`; returns its `max_entries`.
pub(crate) fn check_map_type(map: BorrowedFd<'_>, expected: MapType) -> Result<u32, EventsError> {
    let info = bpf_sys::obj::map_info(map).map_err(EventsError::sys)?;
    if info.type_ != expected as u32 {
        return Err(EventsError::WrongMapType {
            expected,
            found: MapType::try_from(info.type_).ok(),
            found_raw: info.type_,
        });
    }
    Ok(info.max_entries)
}

/// The `PERF_COUNT_SW_BPF_OUTPUT` event of one CPU and its mmap'd ring: what
/// `bpf_perf_event_output(ctx, &map, BPF_F_CURRENT_CPU, ...)` writes into once the event's fd is
/// in the perf event array at the CPU's index ([`register`](Self::register)).
///
/// Reading is zero-copy: [`for_each`](Self::for_each) hands every record between the tail and
/// the head to a callback as a [`PerfRecord`] borrowed from the ring (a sample that wraps past
/// the end of the ring is the one exception, copied once into a scratch buffer), then hands the
/// space back to the kernel with one Release store of the tail. The reader never blocks: wait on
/// its fd ([`AsFd`]) with epoll, `poll` or an async runtime; it becomes readable when the
/// kernel wakes readers (the [`Wakeup`] policy chosen at [`open`](Self::open)).
///
/// Minimum kernel: 4.4 (`bpf_perf_event_output`). Dropping the reader disables the event, unmaps
/// the ring and closes the fd; a perf event array slot that still holds the event keeps it alive
/// in the kernel until the slot is overwritten or deleted ([`unregister`](Self::unregister)).
#[derive(Debug)]
pub struct PerfReader {
    cpu: u32,
    // Field order: the ring is unmapped before the event's fd is closed.
    ring: PerfRing,
    event: OwnedFd,
    scratch: Vec<u8>,
    totals: DrainStats,
}

impl PerfReader {
    /// Opens a BPF output event on `cpu` (for every process) with a ring of at least
    /// `buffer_size` bytes, rounded up to a power of two of pages (any size is accepted; 0 gives
    /// one page), and maps it. `wakeup` is when the kernel makes the fd readable: after every
    /// record (`Wakeup::Events(1)`, goebpf's), after every N records, or once a number of bytes
    /// is waiting (`Wakeup::Watermark`, which must be smaller than the ring).
    pub fn open(cpu: u32, buffer_size: usize, wakeup: Wakeup) -> Result<Self, EventsError> {
        let pages = mmap::pages_for(buffer_size);
        let ring_size = pages.saturating_mul(mmap::page_size());
        if let Wakeup::Watermark(w) = wakeup {
            if w as usize >= ring_size {
                return Err(EventsError::WatermarkTooLarge {
                    watermark: w,
                    ring_size,
                });
            }
        }
        let event = perf::open_bpf_output(cpu, wakeup).map_err(|e| EventsError::sys_cpu(cpu, e))?;
        let ring = PerfRing::new(event.as_fd(), pages)
            .map_err(|source| EventsError::Ring { id: cpu, source })?;
        Ok(PerfReader {
            cpu,
            ring,
            event,
            scratch: Vec::new(),
            totals: DrainStats::default(),
        })
    }

    /// The CPU whose records this ring receives.
    pub fn cpu(&self) -> u32 {
        self.cpu
    }

    /// The size of the ring's data area in bytes (a power of two of pages).
    pub fn ring_size(&self) -> usize {
        self.ring.data_size()
    }

    /// Stores the event's fd in `map` (a perf event array) at index [`cpu`](Self::cpu), so that
    /// BPF output on that CPU lands in this ring. Other map types are refused.
    pub fn register(&self, map: impl AsFd) -> Result<(), EventsError> {
        let map = map.as_fd();
        let max_entries = check_map_type(map, MapType::PerfEventArray)?;
        if self.cpu >= max_entries {
            return Err(EventsError::MapTooSmall {
                cpu: self.cpu,
                max_entries,
            });
        }
        let fd = self.event.as_raw_fd() as u32;
        MapFd::new(map)
            .and_then(|m| m.update(&self.cpu.to_ne_bytes(), &fd.to_ne_bytes(), 0))
            .map_err(|source| EventsError::StoreFd {
                cpu: self.cpu,
                source,
            })
    }

    /// Deletes index [`cpu`](Self::cpu) of `map` (best kept for a slot this reader registered):
    /// BPF output on that CPU then fails with `ENOENT` instead of filling a ring no one reads.
    pub fn unregister(&self, map: impl AsFd) -> Result<(), EventsError> {
        MapFd::new(map.as_fd())
            .and_then(|m| m.delete(&self.cpu.to_ne_bytes()))
            .map_err(|e| EventsError::sys_cpu(self.cpu, e))
    }

    /// Starts counting: `PERF_EVENT_IOC_ENABLE` (the event is enabled when opened).
    pub fn enable(&self) -> Result<(), EventsError> {
        perf::enable(self.event.as_fd()).map_err(|e| EventsError::sys_cpu(self.cpu, e))
    }

    /// Stops the event: `PERF_EVENT_IOC_DISABLE`; BPF output to it then fails.
    pub fn disable(&self) -> Result<(), EventsError> {
        perf::disable(self.event.as_fd()).map_err(|e| EventsError::sys_cpu(self.cpu, e))
    }

    /// Bytes the kernel has written that are not read yet.
    pub fn pending_bytes(&self) -> u64 {
        self.ring.data_head().wrapping_sub(self.ring.data_tail())
    }

    /// What every drain so far found, added up.
    pub fn totals(&self) -> DrainStats {
        self.totals
    }

    /// Calls `f` on every record in the ring, oldest first, then hands the space back to the
    /// kernel. Returns what this drain found.
    ///
    /// A corrupt record (which the kernel does not write) ends the drain with
    /// [`EventsError::Corrupt`] after the records before it were handed to `f`; the rest of the
    /// ring is skipped so that the next drain starts clean.
    #[inline]
    pub fn for_each<F>(&mut self, mut f: F) -> Result<DrainStats, EventsError>
    where
        F: FnMut(PerfRecord<'_>),
    {
        self.try_for_each(|r| {
            f(r);
            ControlFlow::Continue(())
        })
    }

    /// [`for_each`](Self::for_each) that stops when `f` breaks: the record it broke on and the
    /// records after it stay in the ring for the next drain (a way to apply back-pressure).
    #[inline]
    pub fn try_for_each<F>(&mut self, f: F) -> Result<DrainStats, EventsError>
    where
        F: FnMut(PerfRecord<'_>) -> ControlFlow<()>,
    {
        // Memory ordering, against `kernel/events/ring_buffer.c`:
        // - `readable()` loads `data_head` with Acquire, pairing with the kernel's `smp_wmb()`
        //   before `WRITE_ONCE(data_head)` in `perf_output_put_handle`: every record byte before
        //   that head is visible to the loads below.
        // - `set_data_tail()` stores `data_tail` with Release, once per drain: all our reads of
        //   the records happen before the kernel (which reads `data_tail` with `READ_ONCE` and a
        //   control dependency before writing, its barrier "D" against our "B") reuses the space.
        // - No full fence is needed before sleeping: the kernel's wakeups count records
        //   (`wakeup_events`) or bytes past the last wakeup (`wakeup_watermark`) and do not read
        //   `data_tail`, so a record written while we drain raises a wakeup of its own that the
        //   next `epoll_wait` reports (or the poll timeout catches, for a policy of N records).
        let (walk, tail) = {
            let readable = self.ring.readable().map_err(|source| EventsError::Ring {
                id: self.cpu,
                source,
            })?;
            let (a, b) = readable.as_slices();
            let walk = record::walk(RingBytes::new(a, b), &mut self.scratch, f);
            (walk, readable.tail().wrapping_add(walk.stats.bytes))
        };
        if walk.stats.bytes > 0 {
            self.ring
                .set_data_tail(tail)
                .map_err(|source| EventsError::Ring {
                    id: self.cpu,
                    source,
                })?;
        }
        self.totals.add(walk.stats);
        if let Some(c) = walk.corrupt {
            return Err(EventsError::Corrupt {
                cpu: self.cpu,
                pos: tail
                    .wrapping_sub(walk.stats.bytes)
                    .wrapping_add(c.offset as u64),
                reason: c.reason,
            });
        }
        Ok(walk.stats)
    }
}

impl AsFd for PerfReader {
    /// The perf event's fd: readable when the kernel wakes readers of the ring.
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.event.as_fd()
    }
}

impl Drop for PerfReader {
    fn drop(&mut self) {
        // Best effort: an event still in a map slot stops taking records.
        let _ = perf::disable(self.event.as_fd());
    }
}
