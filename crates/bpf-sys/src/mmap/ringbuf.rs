//! The mmap'd memory of a BPF ring buffer (`BPF_MAP_TYPE_RINGBUF`): a region, the records in it,
//! and a cursor that walks them a batch at a time.
//!
//! Memory ordering and why the views are sound: see the [parent module](super). In short: the
//! producer position is loaded with Acquire (once per batch by a [`RingBufCursor`], and again by
//! [`RingBufCursor::next`] when the walk reaches it), every record header with Acquire (pairs with the kernel's commit
//! `xchg`; this load is needed for every record), and the consumer position stored with Release
//! through `&mut self`, which no slice can outlive.

use std::os::fd::BorrowedFd;
use std::sync::atomic::{fence, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use memmap2::{MmapOptions, MmapRaw};

use super::{map_err, page_size, RingError};
use crate::uapi;

/// `BPF_RINGBUF_BUSY_BIT`: the record is reserved but not yet committed.
#[doc(alias = "BPF_RINGBUF_BUSY_BIT")]
pub const RINGBUF_BUSY_BIT: u32 = uapi::BPF_RINGBUF_BUSY_BIT;
/// `BPF_RINGBUF_DISCARD_BIT`: the record was discarded; skip it.
#[doc(alias = "BPF_RINGBUF_DISCARD_BIT")]
pub const RINGBUF_DISCARD_BIT: u32 = uapi::BPF_RINGBUF_DISCARD_BIT;
/// `BPF_RINGBUF_HDR_SZ`: the size of a record header (`len`, `pg_off`).
#[doc(alias = "BPF_RINGBUF_HDR_SZ")]
pub const RINGBUF_HDR_SZ: u32 = uapi::BPF_RINGBUF_HDR_SZ;

/// A ring buffer record header's length word, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader {
    /// Reserved, not yet committed.
    pub busy: bool,
    /// Discarded by the program.
    pub discard: bool,
    /// The length of the sample, without header and padding.
    pub len: u32,
}

impl RecordHeader {
    /// Decodes the header's length word.
    #[inline]
    pub fn from_word(word: u32) -> Self {
        RecordHeader {
            busy: word & RINGBUF_BUSY_BIT != 0,
            discard: word & RINGBUF_DISCARD_BIT != 0,
            len: word & !(RINGBUF_BUSY_BIT | RINGBUF_DISCARD_BIT),
        }
    }

    /// The space the record takes in the ring: header plus sample, rounded up to 8 bytes.
    #[inline]
    pub fn total_len(&self) -> u64 {
        (u64::from(self.len) + u64::from(RINGBUF_HDR_SZ) + 7) & !7
    }
}

/// A position of a record in a [`RingBufRegion`], handed out by the region itself
/// ([`RingBufRegion::first`], [`RingBufCursor::pos`], [`RingBufEntry`]'s `next`) so that it is
/// always a record boundary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RecordPos {
    ring: u64,
    pos: u64,
}

impl RecordPos {
    /// The ring position (bytes since the ring was created).
    #[inline]
    pub fn get(&self) -> u64 {
        self.pos
    }
}

/// What [`RingBufRegion::read`] or [`RingBufCursor::next`] found at a position.
#[derive(Debug, Clone, Copy)]
pub enum RingBufEntry<'a> {
    /// No record: the position is the producer position.
    Empty,
    /// A record is reserved there but not yet committed: stop and come back later.
    Busy,
    /// A discarded record: skip to `next`.
    Discarded {
        /// The next record's position.
        next: RecordPos,
    },
    /// A committed record.
    Sample {
        /// The sample bytes, zero-copy (a wrapped record is contiguous thanks to the double
        /// mapping).
        data: &'a [u8],
        /// The next record's position.
        next: RecordPos,
    },
}

/// The mmap'd memory of a `BPF_MAP_TYPE_RINGBUF` map: the consumer page read-write at offset 0;
/// the producer page and the data pages read-only at offset `page_size`, with the data pages
/// mapped twice back to back by the kernel so that every record is contiguous.
///
/// Reading a batch: take a [`cursor`](Self::cursor) and call its
/// [`next_in_batch`](RingBufCursor::next_in_batch) (the records before the producer position it
/// loaded) or [`next`](RingBufCursor::next) (which follows the producer) until `Empty` or `Busy`; drop it and [`set_consumer_pos`](Self::set_consumer_pos) to its
/// [`pos`](RingBufCursor::pos) (a Release store); before sleeping, [`full_fence`](Self::full_fence)
/// and one more look. [`read`](Self::read) reads one position with every check redone, for
/// callers who keep positions themselves.
#[derive(Debug)]
pub struct RingBufRegion {
    consumer: MmapRaw,
    producer: MmapRaw,
    data_size: usize,
    /// Our copy of `consumer_pos`: only we write it, and only through `&mut self`.
    consumer_pos: u64,
    /// Tells this region's `RecordPos`es from others'.
    id: u64,
}

impl RingBufRegion {
    /// Maps ring buffer map `fd` whose `max_entries` (its data size in bytes) is `size`.
    pub fn new(fd: BorrowedFd<'_>, size: usize) -> Result<Self, RingError> {
        let ps = page_size();
        if !size.is_power_of_two() || size % ps != 0 {
            return Err(RingError::BadRingBufSize {
                size,
                page_size: ps,
            });
        }
        let too_large = || RingError::TooLarge { pages: size / ps };
        let producer_len = size
            .checked_mul(2)
            .and_then(|s| s.checked_add(ps))
            .ok_or_else(too_large)?;
        let consumer = MmapOptions::new().len(ps).map_raw(&fd).map_err(map_err)?;
        let producer = MmapOptions::new()
            .offset(ps as u64)
            .len(producer_len)
            .map_raw_read_only(&fd)
            .map_err(map_err)?;
        static NEXT_ID: AtomicU64 = AtomicU64::new(0);
        let mut region = RingBufRegion {
            consumer,
            producer,
            data_size: size,
            consumer_pos: 0,
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        };
        region.consumer_pos = region.consumer_atomic().load(Ordering::Relaxed) as u64;
        // Record positions are multiples of 8; anything else was not written by the kernel.
        if region.consumer_pos % 8 != 0 {
            let producer = region.producer_pos();
            return Err(RingError::Inconsistent {
                producer,
                consumer: region.consumer_pos,
                size: size as u64,
            });
        }
        Ok(region)
    }

    #[inline]
    fn consumer_atomic(&self) -> &AtomicUsize {
        // SAFETY: the consumer page is mapped for as long as `self` lives and page-aligned;
        // `consumer_pos` (an `unsigned long`) is at its start, so the pointer is valid and aligned
        // for an `AtomicUsize`. The kernel reads it with `smp_load_acquire`; we access it only
        // through this atomic.
        unsafe { &*self.consumer.as_mut_ptr().cast::<AtomicUsize>() }
    }

    #[inline]
    fn producer_atomic(&self) -> &AtomicUsize {
        // SAFETY: the producer page is mapped (read-only) for as long as `self` lives and
        // page-aligned; `producer_pos` (an `unsigned long`) is at its start. We only load it, and
        // the kernel writes it with `smp_store_release`.
        unsafe { &*self.producer.as_ptr().cast::<AtomicUsize>() }
    }

    #[inline]
    fn data_ptr(&self) -> *const u8 {
        // SAFETY: the data pages start one page into the producer mapping, which is
        // `page + 2 * data_size` bytes long.
        unsafe {
            self.producer
                .as_ptr()
                .add(self.producer.len() - 2 * self.data_size)
        }
    }

    /// The size of the data area in bytes (the map's `max_entries`).
    pub fn data_size(&self) -> usize {
        self.data_size
    }

    /// `producer_pos`, loaded with Acquire: every record before it is at least reserved, with its
    /// header written. Pairs with `smp_store_release(&rb->producer_pos)` in
    /// `__bpf_ringbuf_reserve`.
    #[inline]
    pub fn producer_pos(&self) -> u64 {
        self.producer_atomic().load(Ordering::Acquire) as u64
    }

    /// Our consumer position: everything before it has been handed back to the kernel.
    #[inline]
    pub fn consumer_pos(&self) -> u64 {
        self.consumer_pos
    }

    /// Bytes between the consumer and the producer (records, reserved or committed).
    pub fn available(&self) -> u64 {
        self.producer_pos().wrapping_sub(self.consumer_pos)
    }

    /// The position of the first unread record (the consumer position).
    #[inline]
    pub fn first(&self) -> RecordPos {
        RecordPos {
            ring: self.id,
            pos: self.consumer_pos,
        }
    }

    /// Checks that the consumer position in shared memory is still ours.
    #[inline]
    fn check_consumer(&self) -> Result<(), RingError> {
        let found = self.consumer_atomic().load(Ordering::Relaxed) as u64;
        if found != self.consumer_pos {
            return Err(RingError::ConsumerMoved {
                expected: self.consumer_pos,
                found,
            });
        }
        Ok(())
    }

    /// [`producer_pos`](Self::producer_pos), checked to be at most one ring ahead of the
    /// consumer and not behind `at` (a position already known to hold a record or the end).
    #[inline]
    fn checked_producer(&self, at: u64) -> Result<u64, RingError> {
        let prod = self.producer_pos();
        let size = self.data_size as u64;
        let pending = prod.wrapping_sub(self.consumer_pos);
        if pending > size || at.wrapping_sub(self.consumer_pos) > pending {
            return Err(RingError::Inconsistent {
                producer: prod,
                consumer: self.consumer_pos,
                size,
            });
        }
        Ok(prod)
    }

    /// The error for a record or a producer position that does not fit the ring.
    #[cold]
    fn inconsistent(&self, prod: u64) -> RingError {
        RingError::Inconsistent {
            producer: prod,
            consumer: self.consumer_pos,
            size: self.data_size as u64,
        }
    }

    /// Reads the record at `at` with every check redone: that the consumer position in shared
    /// memory is still ours, that `at` belongs to this ring's unread records, and the producer
    /// position (loaded with Acquire); then the header's length word, loaded with Acquire (pairs
    /// with the kernel's `xchg` in `bpf_ringbuf_commit`, so a committed record's bytes are
    /// visible). To walk many records, a [`cursor`](Self::cursor) does the per-batch checks once.
    pub fn read(&self, at: RecordPos) -> Result<RingBufEntry<'_>, RingError> {
        self.check_consumer()?;
        let offset = at.pos.wrapping_sub(self.consumer_pos);
        if at.ring != self.id || offset > self.data_size as u64 || at.pos % 8 != 0 {
            return Err(RingError::StalePosition { pos: at.pos });
        }
        let prod = self.checked_producer(at.pos)?;
        if at.pos == prod {
            return Ok(RingBufEntry::Empty);
        }
        let mask = self.data_size as u64 - 1;
        // SAFETY: `at` lies in `[consumer, prod)` and `prod - consumer <= data_size` (checked
        // just now, with `prod` loaded with Acquire); it is a record boundary: positions are
        // made only by this region (`first`, a cursor, an entry's `next`), each one the consumer
        // position or the end of a record walked from it, and the id check above refused other
        // rings'. `data_ptr()` is the data area, of `mask + 1` bytes mapped twice, alive and
        // with `consumer_pos` frozen while `self` is borrowed for the returned lifetime.
        unsafe { entry_at(self.data_ptr(), mask, self.id, at.pos, prod) }
            .ok_or_else(|| self.inconsistent(prod))
    }

    /// A cursor at the consumer position for one batch of records. Checks once that the
    /// consumer position in shared memory is still ours ([`RingError::ConsumerMoved`]) and loads
    /// the producer position with Acquire; the cursor then walks the records up to it, loading
    /// each header with Acquire, and loads the producer position again (with the same checks)
    /// only when it reaches it.
    #[inline]
    pub fn cursor(&self) -> Result<RingBufCursor<'_>, RingError> {
        self.check_consumer()?;
        let prod = self.checked_producer(self.consumer_pos)?;
        Ok(RingBufCursor {
            region: self,
            data: self.data_ptr(),
            mask: self.data_size as u64 - 1,
            id: self.id,
            pos: self.consumer_pos,
            prod,
        })
    }

    /// What a cursor at `pos` does when it reaches its producer position: checks the consumer
    /// position and loads the producer position again.
    #[inline(never)]
    fn reload(&self, pos: u64) -> Result<u64, RingError> {
        self.check_consumer()?;
        self.checked_producer(pos)
    }

    /// Hands every record before `to` back to the kernel: a Release store of `consumer_pos`, so
    /// that our reads of them happen before the kernel reuses the space (pairs with
    /// `smp_load_acquire(&rb->consumer_pos)` in `__bpf_ringbuf_reserve`).
    ///
    /// `to` must come from this region and not be behind the consumer position. Call
    /// [`full_fence`](Self::full_fence) after it before the last check for records before
    /// sleeping.
    pub fn set_consumer_pos(&mut self, to: RecordPos) -> Result<(), RingError> {
        let offset = to.pos.wrapping_sub(self.consumer_pos);
        if to.ring != self.id || offset > self.data_size as u64 {
            return Err(RingError::StalePosition { pos: to.pos });
        }
        // `unsigned long` positions: usize is the kernel's width (truncation is the kernel's own
        // wrap-around on 32-bit).
        self.consumer_atomic()
            .store(to.pos as usize, Ordering::Release);
        self.consumer_pos = to.pos;
        Ok(())
    }

    /// A full (SeqCst) fence. Issue it between [`set_consumer_pos`](Self::set_consumer_pos) and
    /// re-reading the producer position or a header before going to sleep: it orders our store of
    /// `consumer_pos` before those loads, matching the full barrier of the kernel's `xchg` before
    /// it reads `consumer_pos` to decide whether to wake us. Without it both sides can miss each
    /// other's update and the reader sleeps on a committed record (a missed wakeup).
    pub fn full_fence(&self) {
        fence(Ordering::SeqCst);
    }
}

/// The record at ring position `pos` of a data area at `data` of `mask + 1` bytes: `None` if
/// its length runs past `prod` (which only a kernel bug or memory corruption can cause).
///
/// # Safety
///
/// - `data` points to the data area of a live ring buffer mapping, `mask + 1` bytes (a power of
///   two) mapped twice back to back, which stays mapped for `'a`;
/// - with `consumer` the consumer position, `consumer <= pos < prod <= consumer + mask + 1` in
///   wrapping ring arithmetic, where `prod` was loaded with Acquire from the producer position;
/// - `pos` is a record boundary: the consumer position or the end of a record walked from it;
/// - the consumer position does not move for `'a` (the caller holds a shared borrow of the
///   region, and only `&mut` moves it).
#[inline(always)]
unsafe fn entry_at<'a>(
    data: *const u8,
    mask: u64,
    id: u64,
    pos: u64,
    prod: u64,
) -> Option<RingBufEntry<'a>> {
    let start = (pos & mask) as usize;
    // SAFETY: `start <= mask`, so the 4-byte length word lies in the data area (the caller's
    // guarantee); `start` is a record boundary, 8-aligned, so the word is aligned. The kernel
    // writes it only atomically (store at reserve, `xchg` at commit), and we only load it. The
    // Acquire load pairs with the `xchg` in `bpf_ringbuf_commit`: once BUSY is seen clear, the
    // record's bytes are visible. This load is needed for every record: the producer position
    // says only that a record is reserved.
    let word = unsafe { &*data.add(start).cast::<AtomicU32>() }.load(Ordering::Acquire);
    let hdr = RecordHeader::from_word(word);
    if hdr.busy {
        return Some(RingBufEntry::Busy);
    }
    // The length was written at reserve time, before the producer position that covers the
    // record was published, and the commit keeps it: the record must end at or before `prod`.
    let total = hdr.total_len();
    if total > prod.wrapping_sub(pos) {
        return None;
    }
    let next = RecordPos {
        ring: id,
        pos: pos.wrapping_add(total),
    };
    if hdr.discard {
        return Some(RingBufEntry::Discarded { next });
    }
    // `total <= prod - pos <= prod - consumer <= mask + 1`, so the sample ends before
    // `start + mask + 1 < 2 * (mask + 1)`.
    let len = hdr.len as usize;
    // SAFETY: the range `start + 8 .. start + 8 + len` ends before `2 * (mask + 1)`, inside the
    // double mapping of the data pages, alive for `'a`. The record is committed (BUSY clear,
    // seen with Acquire after the kernel's xchg), lies between the consumer and the producer
    // position, and starts at a record boundary (the caller's guarantees). The kernel does not
    // write a committed record until `consumer_pos` passes it, which it does not for `'a`. u8
    // has no invalid bit patterns.
    let bytes =
        unsafe { std::slice::from_raw_parts(data.add(start + RINGBUF_HDR_SZ as usize), len) };
    Some(RingBufEntry::Sample { data: bytes, next })
}

/// A walk over one batch of a [`RingBufRegion`]'s records, from the consumer position
/// ([`RingBufRegion::cursor`]).
///
/// It keeps the producer position it loaded (with Acquire) and reads the records before it
/// without touching the shared positions again: per record, only the header's length word is
/// loaded (with Acquire, which the kernel's commit protocol requires). When the walk reaches the
/// producer position, it loads it again (and checks again that the consumer position in shared
/// memory is still ours). It borrows the region, so the consumer position cannot move while it
/// or any sample it handed out lives: drop it, then [`RingBufRegion::set_consumer_pos`] to its
/// [`pos`](Self::pos).
#[derive(Debug)]
pub struct RingBufCursor<'a> {
    region: &'a RingBufRegion,
    /// The region's data area, its size minus one and its id, kept here so that the walk
    /// needs nothing from the region per record.
    data: *const u8,
    mask: u64,
    id: u64,
    /// A record boundary in `[consumer, prod]`.
    pos: u64,
    /// A producer position loaded with Acquire, at most one ring ahead of the consumer.
    prod: u64,
}

impl<'a> RingBufCursor<'a> {
    /// The position of the next record to read: after every sample and discarded record
    /// [`next`](Self::next) has returned.
    #[inline]
    pub fn pos(&self) -> RecordPos {
        RecordPos {
            ring: self.id,
            pos: self.pos,
        }
    }

    /// The record at the cursor. A sample or a discarded record moves the cursor past it;
    /// `Busy` (reserved, not committed yet: call again to look again) and `Empty` leave it
    /// where it is. `Empty` means the cursor reached a producer position loaded just now.
    #[inline]
    #[allow(
        clippy::should_implement_trait,
        reason = "a fallible, lending walk: not an Iterator"
    )]
    pub fn next(&mut self) -> Result<RingBufEntry<'a>, RingError> {
        if self.pos == self.prod {
            self.prod = self.region.reload(self.pos)?;
            if self.pos == self.prod {
                return Ok(RingBufEntry::Empty);
            }
        }
        self.read()
    }

    /// [`next`](Self::next) within the batch the cursor loaded: `Empty` at the producer position
    /// loaded when the cursor was made (or last reloaded), without loading it again. A reader
    /// that stops there lets the producer run ahead of it; one that follows the producer to its
    /// latest position catches up with it more often, and every record committed while the
    /// reader is caught up costs the producer a wakeup.
    #[inline]
    pub fn next_in_batch(&mut self) -> Result<RingBufEntry<'a>, RingError> {
        if self.pos == self.prod {
            return Ok(RingBufEntry::Empty);
        }
        self.read()
    }

    /// The record at `pos`, which is before `prod`.
    #[inline(always)]
    fn read(&mut self) -> Result<RingBufEntry<'a>, RingError> {
        // SAFETY: `data`, `mask` and `id` are the region's, borrowed for `'a`, which also keeps
        // `consumer_pos` still. `consumer <= pos < prod <= consumer + mask + 1`: `prod` was loaded
        // with Acquire and checked by `cursor()` or `reload()`, never behind `pos`, and both
        // callers return before reading when `pos == prod`; `pos` started at the consumer
        // position and moved only to the end of a record that ends at or before `prod`, so it is
        // a record boundary.
        let Some(entry) = (unsafe { entry_at(self.data, self.mask, self.id, self.pos, self.prod) })
        else {
            return Err(self.region.inconsistent(self.prod));
        };
        if let RingBufEntry::Sample { next, .. } | RingBufEntry::Discarded { next } = entry {
            self.pos = next.pos;
        }
        Ok(entry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn header_words_decode() {
        let h = RecordHeader::from_word(RINGBUF_BUSY_BIT | 5);
        assert_eq!(
            h,
            RecordHeader {
                busy: true,
                discard: false,
                len: 5
            }
        );
        assert_eq!(h.total_len(), 16);
        let d = RecordHeader::from_word(RINGBUF_DISCARD_BIT | 8);
        assert!(d.discard && !d.busy);
        assert_eq!(d.total_len(), 16);
        assert_eq!(RecordHeader::from_word(0).total_len(), 8);
    }

    /// A ring buffer laid out as the kernel lays it, in a memfd: the consumer page, the producer
    /// page, and the data area written twice back to back (the kernel's double mapping).
    struct FakeRing {
        file: std::fs::File,
        size: usize,
        ps: usize,
        data: Vec<u8>,
        prod: u64,
    }

    #[derive(Debug, Clone, PartialEq)]
    enum Rec {
        Sample(Vec<u8>),
        Discarded(usize),
        Busy(usize),
    }

    impl FakeRing {
        fn new(size: usize, start: u64) -> Self {
            let ps = page_size();
            let fd = rustix::fs::memfd_create("ringbuf-test", rustix::fs::MemfdFlags::CLOEXEC)
                .expect("memfd_create");
            let file = std::fs::File::from(fd);
            file.set_len((2 * ps + 2 * size) as u64).unwrap();
            let ring = FakeRing {
                file,
                size,
                ps,
                data: vec![0xaa; size],
                prod: start,
            };
            ring.set_consumer(start);
            ring.publish();
            ring
        }

        fn set_consumer(&self, pos: u64) {
            use std::os::unix::fs::FileExt;
            self.file.write_all_at(&pos.to_ne_bytes(), 0).unwrap();
        }

        fn consumer(&self) -> u64 {
            use std::os::unix::fs::FileExt;
            let mut b = [0u8; 8];
            self.file.read_exact_at(&mut b, 0).unwrap();
            u64::from_ne_bytes(b)
        }

        /// Writes a record at the producer position (not yet published).
        fn push(&mut self, rec: &Rec) {
            let (flags, body) = match rec {
                Rec::Sample(d) => (0, d.clone()),
                Rec::Discarded(n) => (RINGBUF_DISCARD_BIT, vec![0xdd; *n]),
                Rec::Busy(n) => (RINGBUF_BUSY_BIT, vec![0xbb; *n]),
            };
            let mut bytes = (body.len() as u32 | flags).to_ne_bytes().to_vec();
            bytes.extend_from_slice(&[0; 4]);
            bytes.extend_from_slice(&body);
            bytes.resize(bytes.len().next_multiple_of(8), 0xee);
            for b in bytes {
                self.data[(self.prod % self.size as u64) as usize] = b;
                self.prod = self.prod.wrapping_add(1);
            }
        }

        /// Writes the data area (twice) and the producer position.
        fn publish(&self) {
            use std::os::unix::fs::FileExt;
            let base = (2 * self.ps) as u64;
            self.file.write_all_at(&self.data, base).unwrap();
            self.file
                .write_all_at(&self.data, base + self.size as u64)
                .unwrap();
            self.file
                .write_all_at(&self.prod.to_ne_bytes(), self.ps as u64)
                .unwrap();
        }

        fn region(&self) -> RingBufRegion {
            use std::os::fd::AsFd;
            RingBufRegion::new(self.file.as_fd(), self.size).unwrap()
        }
    }

    fn rec_len(r: &Rec) -> u64 {
        let n = match r {
            Rec::Sample(d) => d.len(),
            Rec::Discarded(n) | Rec::Busy(n) => *n,
        };
        (n as u64 + 8).next_multiple_of(8)
    }

    /// Walks one batch: the samples, the discarded count, and whether it stopped on a busy record.
    fn walk(region: &RingBufRegion) -> (Vec<Vec<u8>>, usize, bool, RecordPos) {
        let mut cur = region.cursor().unwrap();
        let (mut samples, mut discarded) = (Vec::new(), 0);
        loop {
            match cur.next().unwrap() {
                RingBufEntry::Empty => return (samples, discarded, false, cur.pos()),
                RingBufEntry::Busy => return (samples, discarded, true, cur.pos()),
                RingBufEntry::Discarded { next } => {
                    discarded += 1;
                    assert_eq!(next, cur.pos());
                }
                RingBufEntry::Sample { data, next } => {
                    samples.push(data.to_vec());
                    assert_eq!(next, cur.pos());
                }
            }
        }
    }

    fn rec_strategy() -> impl Strategy<Value = Rec> {
        prop_oneof![
            6 => proptest::collection::vec(any::<u8>(), 0..300).prop_map(Rec::Sample),
            1 => (0usize..40).prop_map(Rec::Discarded),
        ]
    }

    #[test]
    fn a_cursor_refuses_a_moved_consumer_and_inconsistent_positions() {
        let size = page_size();
        let mut ring = FakeRing::new(size, 64);
        ring.push(&Rec::Sample(vec![1; 8]));
        ring.publish();
        let region = ring.region();
        ring.set_consumer(72);
        assert!(matches!(
            region.cursor(),
            Err(RingError::ConsumerMoved {
                expected: 64,
                found: 72
            })
        ));
        ring.set_consumer(64);
        // A producer more than a ring ahead.
        ring.prod = 64 + size as u64 + 8;
        ring.publish();
        assert!(matches!(
            region.cursor(),
            Err(RingError::Inconsistent { .. })
        ));
        // A record longer than what the producer position covers.
        ring.prod = 64 + 8;
        ring.publish();
        let mut cur = region.cursor().unwrap();
        assert!(matches!(cur.next(), Err(RingError::Inconsistent { .. })));
        // A producer that went backwards while a cursor walked.
        ring.prod = 64 + 16;
        ring.publish();
        let mut cur = region.cursor().unwrap();
        assert!(matches!(cur.next(), Ok(RingBufEntry::Sample { .. })));
        ring.prod = 64;
        ring.publish();
        assert!(matches!(cur.next(), Err(RingError::Inconsistent { .. })));
    }

    #[test]
    fn a_batch_ends_at_the_producer_position_the_cursor_loaded() {
        let size = page_size();
        let mut ring = FakeRing::new(size, 0);
        ring.push(&Rec::Sample(vec![1; 8]));
        ring.push(&Rec::Discarded(4));
        ring.publish();
        let region = ring.region();
        let mut cur = region.cursor().unwrap();
        // Published after the cursor loaded the producer position: not part of its batch.
        ring.push(&Rec::Sample(vec![2; 3]));
        ring.publish();
        assert!(matches!(
            cur.next_in_batch(),
            Ok(RingBufEntry::Sample {
                data: [1, 1, 1, 1, 1, 1, 1, 1],
                ..
            })
        ));
        assert!(matches!(
            cur.next_in_batch(),
            Ok(RingBufEntry::Discarded { .. })
        ));
        assert!(matches!(cur.next_in_batch(), Ok(RingBufEntry::Empty)));
        assert!(matches!(cur.next_in_batch(), Ok(RingBufEntry::Empty)));
        assert_eq!(cur.pos().get(), 16 + 16);
        // `next` loads the producer position again and goes on.
        assert!(matches!(
            cur.next(),
            Ok(RingBufEntry::Sample {
                data: [2, 2, 2],
                ..
            })
        ));
        assert!(matches!(cur.next(), Ok(RingBufEntry::Empty)));
        assert!(matches!(cur.next_in_batch(), Ok(RingBufEntry::Empty)));
    }

    proptest! {
        #[test]
        fn a_cursor_reads_records_laid_out_as_the_kernel_does(
            shift in 0u32..2,
            start in any::<u64>(),
            first in proptest::collection::vec(rec_strategy(), 0..12),
            more in proptest::collection::vec(rec_strategy(), 0..6),
            busy in proptest::option::of(0usize..20),
        ) {
            let size = page_size() << shift;
            // Anywhere in the ring and near the end of the u64 range, 8-aligned.
            let start = start & !7;
            // Keep what fits, as the kernel would: the first batch, then more records published
            // while the cursor walks, then maybe a busy one.
            let mut used = 0;
            let fits = |recs: Vec<Rec>, used: &mut u64| -> Vec<Rec> {
                recs.into_iter()
                    .take_while(|r| {
                        let fits = *used + rec_len(r) <= size as u64 - 64;
                        if fits {
                            *used += rec_len(r);
                        }
                        fits
                    })
                    .collect()
            };
            let first = fits(first, &mut used);
            let more = fits(more, &mut used);
            let samples = |recs: &[Rec]| -> Vec<Vec<u8>> {
                recs.iter()
                    .filter_map(|r| match r { Rec::Sample(d) => Some(d.clone()), _ => None })
                    .collect()
            };
            let discards =
                |recs: &[Rec]| recs.iter().filter(|r| matches!(r, Rec::Discarded(_))).count();

            let mut ring = FakeRing::new(size, start);
            for r in &first {
                ring.push(r);
            }
            ring.publish();
            let mut region = ring.region();
            prop_assert_eq!(region.consumer_pos(), start);
            let mut cur = region.cursor().unwrap();
            let mut got = Vec::new();
            let mut discarded = 0;
            // Walk the first batch, then publish more: the cursor reloads the producer position
            // when it reaches the one it loaded.
            for _ in 0..first.len() {
                match cur.next().unwrap() {
                    RingBufEntry::Sample { data, .. } => got.push(data.to_vec()),
                    RingBufEntry::Discarded { .. } => discarded += 1,
                    other => prop_assert!(false, "{other:?}"),
                }
            }
            for r in &more {
                ring.push(r);
            }
            if let Some(n) = busy {
                ring.push(&Rec::Busy(n));
            }
            ring.publish();
            let end_of_committed = start.wrapping_add(used);
            loop {
                match cur.next().unwrap() {
                    RingBufEntry::Sample { data, .. } => got.push(data.to_vec()),
                    RingBufEntry::Discarded { .. } => discarded += 1,
                    RingBufEntry::Busy => {
                        prop_assert!(busy.is_some());
                        // Busy leaves the cursor on the record; so does looking again.
                        prop_assert!(matches!(cur.next().unwrap(), RingBufEntry::Busy));
                        break;
                    }
                    RingBufEntry::Empty => {
                        prop_assert!(busy.is_none());
                        break;
                    }
                }
            }
            let all: Vec<Rec> = first.iter().chain(&more).cloned().collect();
            prop_assert_eq!(&got, &samples(&all));
            prop_assert_eq!(discarded, discards(&all));
            let end = cur.pos();
            prop_assert_eq!(end.get(), end_of_committed);
            region.set_consumer_pos(end).unwrap();
            prop_assert_eq!(ring.consumer(), end_of_committed);
            // Nothing more before the busy record (or the producer position).
            let (s, d, stopped_busy, pos) = walk(&region);
            prop_assert!(s.is_empty() && d == 0);
            prop_assert_eq!(stopped_busy, busy.is_some());
            prop_assert_eq!(pos, end);
        }

        #[test]
        fn total_len_is_padded_to_eight(len in 0u32..(1 << 30)) {
            let t = RecordHeader::from_word(len).total_len();
            prop_assert_eq!(t % 8, 0);
            prop_assert!(t >= u64::from(len) + 8 && t < u64::from(len) + 16);
        }
    }
}
