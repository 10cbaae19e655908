//! Safe views of the memory the kernel shares with us: perf rings and BPF ring buffers.
//!
//! Both are single-producer (the kernel) / single-consumer (us) rings over `MAP_SHARED` memory.
//! The kernel writes records and then publishes a producer position with release semantics; we
//! read the position with acquire semantics, read the records, and publish a consumer position
//! with release semantics so that the kernel may reuse the space.
//!
//! # Why the views are sound
//!
//! Handing out `&[u8]` over memory that the kernel may write at the same time would be undefined
//! behaviour. So the views hand out only bytes that the kernel has finished writing and will not
//! write again until we move the consumer position:
//! - [`PerfRing::readable`] gives the bytes between our tail and a head read with Acquire;
//! - [`RingBufCursor::next`] (and [`RingBufRegion::read`]) give one record whose header, read
//!   with Acquire, says it is committed, found by walking record by record from the consumer
//!   position up to a producer position read with Acquire.
//!
//! The consumer position moves only through methods that take `&mut self`
//! ([`PerfRing::set_data_tail`], [`RingBufRegion::set_consumer_pos`]), so the borrow checker
//! guarantees that no slice is alive when the kernel is allowed to overwrite it. The new position
//! is checked against what we have read, so a bad value cannot open a hole either.
//!
//! One thing the type system cannot see: another mapping of the *same* perf event or ring buffer
//! (a second view over a duplicated fd, or another process) that moves the consumer position
//! behind this view's back. Do not do that. Each view checks that the position in shared memory
//! is still its own and returns [`RingError::ConsumerMoved`] if not: the perf view at every
//! [`PerfRing::readable`] (once per drain); the ring buffer view at every [`RingBufRegion::read`],
//! and once per batch with a [`RingBufCursor`] (when it is made, and again each time
//! [`RingBufCursor::next`] reaches the producer position and loads it anew), not at every record. The check detects
//! misuse; it cannot prevent a move that happens right after it, per record or per batch alike.
//!
//! # Memory ordering, against the kernel's side
//!
//! Perf ring (`kernel/events/ring_buffer.c`): `perf_output_put_handle` writes the record, then
//! `smp_wmb()` and `WRITE_ONCE(data_head)` (store-release in effect); `perf_output_begin` reads
//! `data_tail` with `READ_ONCE` and a control dependency before it writes. We load `data_head`
//! with Acquire (pairs with the kernel's wmb: the record bytes are visible) and store `data_tail`
//! with Release (the kernel's "D" barrier: our reads of the record are done before the kernel can
//! see the space as free).
//!
//! BPF ring buffer (`kernel/bpf/ringbuf.c`): `__bpf_ringbuf_reserve` loads `consumer_pos` with
//! `smp_load_acquire`, writes the record header with the BUSY bit, then
//! `smp_store_release(&producer_pos)`; `bpf_ringbuf_commit` clears BUSY (and maybe sets DISCARD)
//! with `xchg` on the header's length word, a full barrier, then loads `consumer_pos` with
//! `smp_load_acquire` and wakes the reader only if it equals the record's position. We load
//! `producer_pos` with Acquire (we see at least the BUSY header of every record before it, not an
//! older lap's bytes; a [`RingBufCursor`] does this once per batch, and again only when
//! [`RingBufCursor::next`] reaches the position it loaded, since every record before that position stays reserved with its
//! length written), load every record's header with Acquire (pairs with the xchg: the record bytes
//! are visible; a record can be committed at any time after the producer position moved past it,
//! so this load is needed per record), and store
//! `consumer_pos` with Release (pairs with the reserve's acquire: our reads are done before the
//! space is reused). Before going to sleep, a reader must issue a full fence
//! ([`RingBufRegion::full_fence`]) between storing `consumer_pos` and re-reading the header or
//! producer position: otherwise the store may sit in the store buffer while we read an old BUSY
//! header, the kernel's commit reads the old `consumer_pos`, decides no wakeup is needed, and both
//! sides wait for each other (a missed wakeup; aya fixed this with a SeqCst fence, and libbpf is
//! right only because its epoll is level-triggered).

use std::mem::offset_of;
use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicU64, Ordering};

use memmap2::{MmapOptions, MmapRaw};

use crate::error::SysError;
use crate::uapi::perf_event_mmap_page;

mod ringbuf;

pub use ringbuf::{
    RecordHeader, RecordPos, RingBufCursor, RingBufEntry, RingBufRegion, RINGBUF_BUSY_BIT,
    RINGBUF_DISCARD_BIT, RINGBUF_HDR_SZ,
};

/// The system page size.
pub fn page_size() -> usize {
    rustix::param::page_size()
}

/// The number of data pages for a perf ring of at least `bytes` bytes: rounded up to whole pages
/// and then to a power of two (at least 1). goebpf's `(bytes / page + 2) * page` gave a
/// non-power-of-two count for most sizes, which the kernel rejects. Saturates at the largest
/// power of two a `usize` holds.
pub fn pages_for(bytes: usize) -> usize {
    pages_for_page_size(bytes, page_size())
}

fn pages_for_page_size(bytes: usize, page_size: usize) -> usize {
    let pages = bytes.div_ceil(page_size.max(1)).max(1);
    pages
        .checked_next_power_of_two()
        .unwrap_or(1 << (usize::BITS - 1))
}

/// A ring could not be mapped or used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RingError {
    /// A perf ring's data area must be a power of two of pages.
    #[error("perf ring data size must be a power of two number of pages, got {pages} pages")]
    NotPowerOfTwoPages {
        /// The page count asked for.
        pages: usize,
    },
    /// A BPF ring buffer's size must be a power of two multiple of the page size.
    #[error("ring buffer size {size} is not a power of two multiple of the page size {page_size}")]
    BadRingBufSize {
        /// The size (the map's `max_entries`).
        size: usize,
        /// The page size.
        page_size: usize,
    },
    /// The ring is larger than the address space.
    #[error("ring of {pages} pages is too large to map")]
    TooLarge {
        /// The page count.
        pages: usize,
    },
    /// `mmap` failed.
    #[error("mapping the ring failed")]
    Mmap(#[source] SysError),
    /// A new consumer position lies outside what has been read.
    #[error("new consumer position {new} is outside {current}..={limit}")]
    PositionOutOfRange {
        /// The position asked for.
        new: u64,
        /// The current consumer position.
        current: u64,
        /// The furthest position read so far.
        limit: u64,
    },
    /// A record position from another ring, or one that the consumer has already passed.
    #[error("record position {pos} does not belong to this ring's unread records")]
    StalePosition {
        /// The position.
        pos: u64,
    },
    /// The positions in shared memory do not fit the ring (a kernel bug or memory corruption).
    #[error("inconsistent ring positions: producer {producer}, consumer {consumer}, size {size}")]
    Inconsistent {
        /// The producer position (perf: `data_head`).
        producer: u64,
        /// The consumer position (perf: `data_tail`).
        consumer: u64,
        /// The data size.
        size: u64,
    },
    /// The consumer position in shared memory was changed by someone else (another mapping of the
    /// same ring).
    #[error(
        "consumer position moved behind this reader's back: expected {expected}, found {found}"
    )]
    ConsumerMoved {
        /// Our position.
        expected: u64,
        /// The one in shared memory.
        found: u64,
    },
}

fn map_err(e: std::io::Error) -> RingError {
    RingError::Mmap(SysError::new("mmap", e))
}

/// Where `len` bytes starting at ring position `pos` lie in a ring of `size` bytes (a power of
/// two): the offset of the first piece and the lengths of the two pieces (the second starts at
/// offset 0 and is empty when the range does not wrap). `len` must not exceed `size`.
pub fn split_range(pos: u64, len: usize, size: usize) -> (usize, usize, usize) {
    let start = (pos & (size as u64).wrapping_sub(1)) as usize;
    let first = len.min(size - start);
    (start, first, len - first)
}

// ---------------------------------------------------------------------------------------------
// Perf ring
// ---------------------------------------------------------------------------------------------

/// The mmap'd ring of a perf event: one metadata page (`struct perf_event_mmap_page`) and 2^n
/// data pages, mapped read-write and shared.
///
/// Reading: [`readable`](Self::readable) gives the unread bytes (a head loaded with Acquire);
/// parse records from them; then [`set_data_tail`](Self::set_data_tail) (a Release store) to
/// hand the space back. The view does not own the fd: the mapping stays valid after it closes.
#[derive(Debug)]
pub struct PerfRing {
    map: MmapRaw,
    data_size: usize,
    /// Our copy of `data_tail`: only we write it, and only through `&mut self`.
    tail: u64,
    /// The highest valid head loaded so far (never behind `tail`).
    head_seen: AtomicU64,
}

impl PerfRing {
    /// Maps the ring of perf event `fd` with `data_pages` data pages (a power of two; see
    /// [`pages_for`]).
    pub fn new(fd: BorrowedFd<'_>, data_pages: usize) -> Result<Self, RingError> {
        if !data_pages.is_power_of_two() {
            return Err(RingError::NotPowerOfTwoPages { pages: data_pages });
        }
        let ps = page_size();
        let data_size = data_pages
            .checked_mul(ps)
            .ok_or(RingError::TooLarge { pages: data_pages })?;
        let len = data_size
            .checked_add(ps)
            .ok_or(RingError::TooLarge { pages: data_pages })?;
        let map = MmapOptions::new().len(len).map_raw(&fd).map_err(map_err)?;
        let ring = PerfRing {
            map,
            data_size,
            tail: 0,
            head_seen: AtomicU64::new(0),
        };
        // A fresh event starts at 0; a ring mapped again continues where the last reader left.
        let tail = ring.tail_atomic().load(Ordering::Relaxed);
        Ok(PerfRing {
            tail,
            head_seen: AtomicU64::new(tail),
            ..ring
        })
    }

    fn meta(&self) -> *mut perf_event_mmap_page {
        self.map.as_mut_ptr().cast()
    }

    fn head_atomic(&self) -> &AtomicU64 {
        // SAFETY: the metadata page is mapped for as long as `self` lives, page-aligned, and
        // `data_head` sits at an 8-aligned offset inside it (offset 1024, checked by bindgen's
        // layout tests), so the pointer is valid and aligned for an `AtomicU64`. Both sides access
        // it atomically: the kernel with `WRITE_ONCE`, we only through this atomic.
        unsafe {
            &*self
                .meta()
                .cast::<u8>()
                .add(offset_of!(perf_event_mmap_page, data_head))
                .cast::<AtomicU64>()
        }
    }

    fn tail_atomic(&self) -> &AtomicU64 {
        // SAFETY: as for `head_atomic`: `data_tail` is 8-aligned inside the mapped metadata page;
        // the kernel reads it with `READ_ONCE`, we access it only through this atomic.
        unsafe {
            &*self
                .meta()
                .cast::<u8>()
                .add(offset_of!(perf_event_mmap_page, data_tail))
                .cast::<AtomicU64>()
        }
    }

    fn data_ptr(&self) -> *const u8 {
        // SAFETY: the data area starts one page into the mapping, which is `page + data_size`
        // bytes long, so the offset stays inside it.
        unsafe { self.map.as_ptr().add(self.map.len() - self.data_size) }
    }

    /// The size of the data area in bytes (a power of two).
    pub fn data_size(&self) -> usize {
        self.data_size
    }

    /// `data_head`, loaded with Acquire: every record before it is fully written.
    ///
    /// Pairs with the kernel's `smp_wmb(); WRITE_ONCE(data_head)` in `perf_output_put_handle`.
    pub fn data_head(&self) -> u64 {
        let head = self.head_atomic().load(Ordering::Acquire);
        if head.wrapping_sub(self.tail) <= self.data_size as u64 {
            self.head_seen.fetch_max(head, Ordering::Relaxed);
        }
        head
    }

    /// Our tail: everything before it has been handed back to the kernel.
    pub fn data_tail(&self) -> u64 {
        self.tail
    }

    /// Hands the bytes before `tail` back to the kernel: a Release store of `data_tail`, so that
    /// our reads of them happen before the kernel can reuse the space (the kernel's barrier "D").
    ///
    /// `tail` must lie between the current tail and the last head read ([`data_head`] or
    /// [`readable`]); the borrow of `&mut self` ends every slice handed out before.
    ///
    /// [`data_head`]: Self::data_head
    /// [`readable`]: Self::readable
    pub fn set_data_tail(&mut self, tail: u64) -> Result<(), RingError> {
        let limit = self.head_seen.load(Ordering::Relaxed);
        if tail.wrapping_sub(self.tail) > limit.wrapping_sub(self.tail) {
            return Err(RingError::PositionOutOfRange {
                new: tail,
                current: self.tail,
                limit,
            });
        }
        self.tail_atomic().store(tail, Ordering::Release);
        self.tail = tail;
        Ok(())
    }

    /// The unread bytes: from our tail to `data_head` loaded with Acquire, as at most two slices
    /// (the second when the range wraps past the end of the data area).
    ///
    /// The kernel does not write these bytes until the tail passes them, and the tail moves only
    /// through [`set_data_tail`](Self::set_data_tail), which needs `&mut self`.
    pub fn readable(&self) -> Result<PerfReadable<'_>, RingError> {
        let found = self.tail_atomic().load(Ordering::Relaxed);
        if found != self.tail {
            return Err(RingError::ConsumerMoved {
                expected: self.tail,
                found,
            });
        }
        let head = self.data_head();
        let len = head.wrapping_sub(self.tail);
        if len > self.data_size as u64 {
            return Err(RingError::Inconsistent {
                producer: head,
                consumer: self.tail,
                size: self.data_size as u64,
            });
        }
        // `len <= data_size`, a usize.
        let (start, first_len, second_len) = split_range(self.tail, len as usize, self.data_size);
        let data = self.data_ptr();
        // SAFETY: `start + first_len <= data_size` and `second_len <= data_size`, so both ranges lie
        // in the mapped data area, which lives as long as `self` (the returned borrow). The bytes
        // of `[tail, head)` were written by the kernel before its release of `data_head`, which our
        // Acquire load observed, and the kernel will not write them again before `data_tail` passes
        // them; `data_tail` only moves through `set_data_tail(&mut self)`, which cannot run while
        // these shared borrows live, and we checked above that no one else moved it. So nothing
        // writes this memory while the slices exist. u8 has no invalid bit patterns.
        let (first, second) = unsafe {
            (
                std::slice::from_raw_parts(data.add(start), first_len),
                std::slice::from_raw_parts(data, second_len),
            )
        };
        Ok(PerfReadable {
            first,
            second,
            tail: self.tail,
            head,
        })
    }
}

/// The unread bytes of a [`PerfRing`], from its tail to a head read with Acquire.
#[derive(Debug, Clone, Copy)]
pub struct PerfReadable<'a> {
    first: &'a [u8],
    second: &'a [u8],
    tail: u64,
    head: u64,
}

impl<'a> PerfReadable<'a> {
    /// The ring position of the first byte (the tail).
    pub fn tail(&self) -> u64 {
        self.tail
    }

    /// The ring position after the last byte (the head).
    pub fn head(&self) -> u64 {
        self.head
    }

    /// How many bytes are unread.
    pub fn len(&self) -> usize {
        self.first.len() + self.second.len()
    }

    /// Whether nothing is unread.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes as two slices; the second is empty unless the range wraps.
    pub fn as_slices(&self) -> (&'a [u8], &'a [u8]) {
        (self.first, self.second)
    }

    /// `len` bytes at `offset` from the tail, zero-copy: two slices, the second empty unless the
    /// range wraps. `None` if the range goes past the head.
    pub fn get(&self, offset: usize, len: usize) -> Option<(&'a [u8], &'a [u8])> {
        let end = offset.checked_add(len)?;
        if end > self.len() {
            return None;
        }
        let f = self.first.len();
        Some(if end <= f {
            (&self.first[offset..end], &[][..])
        } else if offset >= f {
            (&self.second[offset - f..end - f], &[][..])
        } else {
            (&self.first[offset..], &self.second[..end - f])
        })
    }

    /// Copies `out.len()` bytes at `offset` from the tail into `out`, joining a wrapped range.
    /// `None` (and `out` untouched) if the range goes past the head.
    pub fn copy_to(&self, offset: usize, out: &mut [u8]) -> Option<()> {
        let (a, b) = self.get(offset, out.len())?;
        out[..a.len()].copy_from_slice(a);
        out[a.len()..].copy_from_slice(b);
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn pages_for_rounds_up_to_a_power_of_two() {
        assert_eq!(pages_for_page_size(0, 4096), 1);
        assert_eq!(pages_for_page_size(1, 4096), 1);
        assert_eq!(pages_for_page_size(4096, 4096), 1);
        assert_eq!(pages_for_page_size(4097, 4096), 2);
        assert_eq!(pages_for_page_size(8192, 4096), 2);
        assert_eq!(pages_for_page_size(12288, 4096), 4);
        assert_eq!(pages_for_page_size(usize::MAX, 1), 1 << (usize::BITS - 1));
    }

    fn readable_over<'a>(first: &'a [u8], second: &'a [u8]) -> PerfReadable<'a> {
        PerfReadable {
            first,
            second,
            tail: 0,
            head: (first.len() + second.len()) as u64,
        }
    }

    #[test]
    fn readable_ranges_split_at_the_wrap() {
        let r = readable_over(b"abc", b"defg");
        assert_eq!(r.len(), 7);
        assert_eq!(r.get(0, 2), Some((&b"ab"[..], &b""[..])));
        assert_eq!(r.get(1, 4), Some((&b"bc"[..], &b"de"[..])));
        assert_eq!(r.get(3, 4), Some((&b"defg"[..], &b""[..])));
        assert_eq!(r.get(4, 4), None);
        assert_eq!(r.get(usize::MAX, 2), None);
        let mut out = [0u8; 5];
        assert_eq!(r.copy_to(1, &mut out), Some(()));
        assert_eq!(&out, b"bcdef");
        assert_eq!(r.copy_to(3, &mut out), None);
        assert_eq!(&out, b"bcdef");
    }

    proptest! {
        #[test]
        fn pages_for_is_the_smallest_fitting_power_of_two(bytes in 0usize..(1 << 40), shift in 12u32..17) {
            let ps = 1usize << shift;
            let p = pages_for_page_size(bytes, ps);
            prop_assert!(p.is_power_of_two());
            prop_assert!(p * ps >= bytes);
            prop_assert!(p == 1 || (p / 2) * ps < bytes);
        }

        #[test]
        fn split_range_covers_the_range_once(pos in any::<u64>(), shift in 0u32..20, frac in 0.0f64..=1.0) {
            let size = 1usize << shift;
            let len = ((size as f64) * frac) as usize;
            let (start, a, b) = split_range(pos, len, size);
            prop_assert_eq!(a + b, len);
            prop_assert!(start + a <= size);
            prop_assert!(b <= start);
            prop_assert_eq!(start as u64, pos % size as u64);
            if b > 0 { prop_assert_eq!(start + a, size); }
        }

        #[test]
        fn get_agrees_with_a_flat_copy(first in proptest::collection::vec(any::<u8>(), 0..32),
                                       second in proptest::collection::vec(any::<u8>(), 0..32),
                                       off in 0usize..70, len in 0usize..70) {
            let r = readable_over(&first, &second);
            let flat: Vec<u8> = first.iter().chain(&second).copied().collect();
            match r.get(off, len) {
                Some((a, b)) => {
                    let joined: Vec<u8> = a.iter().chain(b).copied().collect();
                    prop_assert_eq!(&joined[..], &flat[off..off + len]);
                }
                None => prop_assert!(off + len > flat.len()),
            }
        }
    }
}
