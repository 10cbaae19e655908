//! Perf records, decoded from the bytes of a ring as the kernel lays them out: a pure layer over
//! two slices, so that the arithmetic (wraparound, a record split at the end, a size field at the
//! edge) is tested without a kernel.
//!
//! A perf ring holds records back to back from the tail to the head, each a
//! `struct perf_event_header { u32 type; u16 misc; u16 size; }` followed by `size - 8` bytes. A
//! record may wrap past the end of the data area anywhere, even inside its header; the unread
//! bytes are then two slices (the end of the data area, then its start). For a BPF output event
//! (`PERF_SAMPLE_RAW`) a `PERF_RECORD_SAMPLE` body is a `u32` raw size and the raw bytes, padded by
//! the kernel (with stale bytes: `perf_output_skip` does not write them) so that the size field
//! and the bytes together are a multiple of 8; a
//! `PERF_RECORD_LOST` body is `{ u64 id; u64 lost; }`.

use std::ops::ControlFlow;

use bpf_sys::uapi::{PERF_RECORD_LOST, PERF_RECORD_SAMPLE};

/// The size of `struct perf_event_header`.
pub const HEADER_SIZE: usize = 8;

/// The unread bytes of a ring, as at most two slices: the second holds what wrapped past the
/// end of the data area, and is empty otherwise.
#[derive(Debug, Clone, Copy, Default)]
pub struct RingBytes<'a> {
    first: &'a [u8],
    second: &'a [u8],
}

impl<'a> RingBytes<'a> {
    /// Joins the two pieces.
    pub fn new(first: &'a [u8], second: &'a [u8]) -> Self {
        RingBytes { first, second }
    }

    /// How many bytes in all.
    pub fn len(&self) -> usize {
        self.first.len() + self.second.len()
    }

    /// Whether there is no byte.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `len` bytes at `offset`, as two slices (the second empty unless the range wraps); `None`
    /// past the end.
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

    fn read_array<const N: usize>(&self, offset: usize) -> Option<[u8; N]> {
        let (a, b) = self.get(offset, N)?;
        let mut out = [0u8; N];
        out[..a.len()].copy_from_slice(a);
        out[a.len()..].copy_from_slice(b);
        Some(out)
    }
}

/// One record of a perf ring, borrowed from the ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PerfRecord<'a> {
    /// A sample: what the program passed to `bpf_perf_event_output()`, followed by the kernel's
    /// padding (0 to 7 bytes, so that the raw size field and the data fill a multiple of 8 bytes;
    /// the kernel skips them without writing, so they hold whatever the ring held there before:
    /// the record does not say how long the program's data was, so put a length in the data or
    /// use sizes where 4 + size is a multiple of 8). Borrowed straight from
    /// the ring, except when it wraps past the end of the data area, where it is copied once into
    /// the reader's scratch buffer.
    #[doc(alias = "PERF_RECORD_SAMPLE")]
    Sample(&'a [u8]),
    /// The kernel dropped this many samples because the ring was full.
    #[doc(alias = "PERF_RECORD_LOST")]
    Lost(u64),
    /// A record of another type (counted, otherwise ignored).
    Unknown {
        /// `perf_event_header.type`.
        record_type: u32,
    },
}

/// What one drain of a ring found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DrainStats {
    /// Samples handed to the callback.
    pub samples: u64,
    /// Samples the kernel reported lost (perf), as the sum of its `PERF_RECORD_LOST` counts.
    pub lost: u64,
    /// Records of unknown type (perf) or discarded records (ring buffer).
    pub skipped: u64,
    /// Bytes handed back to the kernel.
    pub bytes: u64,
}

impl DrainStats {
    /// Adds another drain's figures.
    pub fn add(&mut self, other: DrainStats) {
        self.samples = self.samples.saturating_add(other.samples);
        self.lost = self.lost.saturating_add(other.lost);
        self.skipped = self.skipped.saturating_add(other.skipped);
        self.bytes = self.bytes.saturating_add(other.bytes);
    }
}

/// Why a record did not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Corrupt {
    /// The record's offset from the start of the bytes.
    pub offset: usize,
    pub reason: &'static str,
}

/// Decodes a record that lies wholly at the start of `rest` (the rest of one of the two slices,
/// so the record does not wrap): the record and its size. `None` for anything else (a record
/// that runs past the end of `rest`, or any record that does not decode), which [`decode`] then
/// handles: it accepts exactly what this accepts, and reports the rest. The hot path of
/// [`walk`]: fixed-size reads, no copy, no call.
#[inline(always)]
fn decode_flat(rest: &[u8]) -> Option<(PerfRecord<'_>, usize)> {
    let (hdr, _) = rest.split_first_chunk::<HEADER_SIZE>()?;
    let record_type = u32::from_ne_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]);
    let size = usize::from(u16::from_ne_bytes([hdr[6], hdr[7]]));
    // `None` when `size < HEADER_SIZE` (the range is reversed) or past the end of `rest`.
    let body = rest.get(HEADER_SIZE..size)?;
    let record = match record_type {
        PERF_RECORD_SAMPLE => {
            let (raw_size, raw) = body.split_first_chunk::<4>()?;
            PerfRecord::Sample(raw.get(..u32::from_ne_bytes(*raw_size) as usize)?)
        }
        PERF_RECORD_LOST => {
            let (_id, rest) = body.split_first_chunk::<8>()?;
            let (lost, _) = rest.split_first_chunk::<8>()?;
            PerfRecord::Lost(u64::from_ne_bytes(*lost))
        }
        other => PerfRecord::Unknown { record_type: other },
    };
    Some((record, size))
}

/// Decodes the record at `offset`: the record and its size. `scratch` is used (and the sample
/// copied into it) only when the sample's bytes wrap. The slow path of [`walk`], for a record
/// that wraps past the end of the data area (once per lap at most) or does not decode.
#[cold]
#[inline(never)]
pub(crate) fn decode<'r: 's, 's>(
    bytes: RingBytes<'r>,
    offset: usize,
    scratch: &'s mut Vec<u8>,
) -> Result<(PerfRecord<'s>, usize), &'static str> {
    let hdr: [u8; HEADER_SIZE] = bytes.read_array(offset).ok_or("header past the head")?;
    let record_type = u32::from_ne_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]);
    let size = usize::from(u16::from_ne_bytes([hdr[6], hdr[7]]));
    if size < HEADER_SIZE {
        return Err("record size smaller than its header");
    }
    if offset + size > bytes.len() {
        return Err("record extends past the head");
    }
    let record = match record_type {
        PERF_RECORD_SAMPLE => {
            let raw_size: [u8; 4] = bytes
                .read_array(offset + HEADER_SIZE)
                .filter(|_| size >= HEADER_SIZE + 4)
                .ok_or("sample too short for its raw size field")?;
            let raw_size = u32::from_ne_bytes(raw_size) as usize;
            if raw_size > size - HEADER_SIZE - 4 {
                return Err("sample raw size larger than the record");
            }
            let (a, b) = bytes
                .get(offset + HEADER_SIZE + 4, raw_size)
                .ok_or("sample past the head")?;
            if b.is_empty() {
                PerfRecord::Sample(a)
            } else {
                // The one copy: a sample that wraps past the end of the data area.
                scratch.clear();
                scratch.extend_from_slice(a);
                scratch.extend_from_slice(b);
                PerfRecord::Sample(&scratch[..])
            }
        }
        PERF_RECORD_LOST => {
            if size < HEADER_SIZE + 16 {
                return Err("lost record too short");
            }
            let lost: [u8; 8] = bytes
                .read_array(offset + HEADER_SIZE + 8)
                .ok_or("lost record past the head")?;
            PerfRecord::Lost(u64::from_ne_bytes(lost))
        }
        other => PerfRecord::Unknown { record_type: other },
    };
    Ok((record, size))
}

/// What [`walk`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Walk {
    /// Figures; `bytes` is how many bytes may be handed back (all of them after a corrupt record).
    pub stats: DrainStats,
    /// The first record that did not decode.
    pub corrupt: Option<Corrupt>,
}

/// Calls `f` on every record in `bytes`, in order, until `f` breaks (the record it broke on is
/// not read: it stays for the next walk) or the bytes end. A record that does not decode ends the
/// walk and marks every byte as read: a ring whose framing is lost cannot be resynchronised.
#[inline]
pub(crate) fn walk<F>(bytes: RingBytes<'_>, scratch: &mut Vec<u8>, mut f: F) -> Walk
where
    F: FnMut(PerfRecord<'_>) -> ControlFlow<()>,
{
    let mut stats = DrainStats::default();
    let mut corrupt = None;
    let len = bytes.len();
    let (first, second) = (bytes.first, bytes.second);
    let mut off = 0;
    while off < len {
        // The fast path for a record wholly in one slice (every record but the one that wraps,
        // when the unread bytes wrap at all); the general decoder for the rest.
        let rest = if off < first.len() {
            first.get(off..)
        } else {
            second.get(off - first.len()..)
        };
        let flat = match rest {
            Some(rest) => decode_flat(rest),
            None => None,
        };
        let (record, size) = match flat {
            Some(r) => r,
            None => match decode(bytes, off, scratch) {
                Ok(r) => r,
                Err(reason) => {
                    corrupt = Some(Corrupt {
                        offset: off,
                        reason,
                    });
                    off = len;
                    break;
                }
            },
        };
        if f(record).is_break() {
            break;
        }
        off += size;
        match record {
            PerfRecord::Sample(_) => stats.samples += 1,
            PerfRecord::Lost(n) => stats.lost = stats.lost.saturating_add(n),
            PerfRecord::Unknown { .. } => stats.skipped += 1,
        }
    }
    stats.bytes = off as u64;
    Walk { stats, corrupt }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bpf_sys::mmap::split_range;
    use proptest::prelude::*;

    /// A record as the kernel writes it.
    #[derive(Debug, Clone, PartialEq)]
    enum Rec {
        Sample(Vec<u8>),
        Lost(u64),
        Other(u32, usize),
    }

    impl Rec {
        fn encode(&self) -> Vec<u8> {
            let mut out = Vec::new();
            let (ty, body) = match self {
                Rec::Sample(data) => {
                    // The kernel pads the raw area so that size field + data is 8-aligned, and
                    // the raw size it writes includes the padding.
                    let raw = (data.len() + 4).next_multiple_of(8) - 4;
                    let mut body = (raw as u32).to_ne_bytes().to_vec();
                    body.extend_from_slice(data);
                    body.resize(4 + raw, 0);
                    (PERF_RECORD_SAMPLE, body)
                }
                Rec::Lost(n) => {
                    let mut body = 77u64.to_ne_bytes().to_vec();
                    body.extend_from_slice(&n.to_ne_bytes());
                    (PERF_RECORD_LOST, body)
                }
                Rec::Other(ty, len) => (*ty, vec![0xee; *len]),
            };
            out.extend_from_slice(&ty.to_ne_bytes());
            out.extend_from_slice(&0u16.to_ne_bytes());
            out.extend_from_slice(&((HEADER_SIZE + body.len()) as u16).to_ne_bytes());
            out.extend_from_slice(&body);
            out
        }

        /// What a reader gives back: the sample padded as the kernel padded it.
        fn expected(&self) -> Rec {
            match self {
                Rec::Sample(data) => {
                    let mut d = data.clone();
                    d.resize((data.len() + 4).next_multiple_of(8) - 4, 0);
                    Rec::Sample(d)
                }
                other => other.clone(),
            }
        }
    }

    /// A data area of `size` bytes with `records` written from ring position `tail`, as the
    /// kernel writes them (wrapping anywhere), and the unread bytes as a `PerfRing` would split
    /// them. Returns the area and the number of bytes written.
    fn lay_out(size: usize, tail: u64, records: &[Rec]) -> (Vec<u8>, usize) {
        let mut area = vec![0xaau8; size];
        let mut pos = tail;
        for r in records {
            for b in r.encode() {
                area[(pos % size as u64) as usize] = b;
                pos += 1;
            }
        }
        let len = (pos - tail) as usize;
        assert!(len <= size);
        (area, len)
    }

    fn view(area: &[u8], tail: u64, len: usize) -> RingBytes<'_> {
        let (start, a, b) = split_range(tail, len, area.len());
        RingBytes::new(&area[start..start + a], &area[..b])
    }

    fn read_all(bytes: RingBytes<'_>) -> (Vec<Rec>, Walk) {
        let mut scratch = Vec::new();
        let mut out = Vec::new();
        let w = walk(bytes, &mut scratch, |r| {
            out.push(match r {
                PerfRecord::Sample(d) => Rec::Sample(d.to_vec()),
                PerfRecord::Lost(n) => Rec::Lost(n),
                PerfRecord::Unknown { record_type } => Rec::Other(record_type, 0),
            });
            ControlFlow::Continue(())
        });
        (out, w)
    }

    fn other_norm(r: &Rec) -> Rec {
        match r {
            Rec::Other(t, _) => Rec::Other(*t, 0),
            x => x.expected(),
        }
    }

    #[test]
    fn a_record_split_at_every_byte_of_the_end_comes_out_whole() {
        let size = 128;
        let recs = [
            Rec::Sample(vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]),
            Rec::Lost(3),
            Rec::Sample(vec![0x42; 20]),
        ];
        // Every tail in one lap puts the end of the data area at a different byte of the
        // records: inside a header, inside a size field, inside the raw size, inside the data.
        for tail in 0..size as u64 * 2 {
            let tail = tail + (1 << 40);
            let (area, len) = lay_out(size, tail, &recs);
            let (got, w) = read_all(view(&area, tail, len));
            assert_eq!(w.corrupt, None, "tail {tail}");
            let want: Vec<Rec> = recs.iter().map(Rec::expected).collect();
            assert_eq!(got, want, "tail {tail}");
            assert_eq!(w.stats.bytes as usize, len);
            assert_eq!(w.stats.samples, 2);
            assert_eq!(w.stats.lost, 3);
        }
    }

    #[test]
    fn only_a_wrapped_sample_is_copied() {
        let size = 64;
        let recs = [Rec::Sample(vec![9; 12])];
        for tail in [0u64, 40, 48, 60, 62] {
            let (area, len) = lay_out(size, tail, &recs);
            let bytes = view(&area, tail, len);
            let mut scratch = Vec::new();
            let (rec, _) = decode(bytes, 0, &mut scratch).unwrap();
            let PerfRecord::Sample(data) = rec else {
                panic!("{rec:?}")
            };
            let data_start = (tail + 12) % size as u64;
            let wraps = data_start as usize + 12 > size;
            let in_ring = area.as_ptr_range().contains(&data.as_ptr());
            assert_eq!(in_ring, !wraps, "tail {tail}");
            assert_eq!(data, &[9; 12][..]);
        }
    }

    #[test]
    fn corrupt_records_are_reported_and_skipped() {
        let mut bad_size = Rec::Sample(vec![1; 4]).encode();
        bad_size[6..8].copy_from_slice(&4u16.to_ne_bytes());
        let mut too_long = Rec::Sample(vec![1; 4]).encode();
        too_long[6..8].copy_from_slice(&200u16.to_ne_bytes());
        let mut bad_raw = Rec::Sample(vec![1; 4]).encode();
        bad_raw[8..12].copy_from_slice(&100u32.to_ne_bytes());
        let mut short_lost = Rec::Lost(1).encode();
        short_lost[6..8].copy_from_slice(&16u16.to_ne_bytes());
        short_lost.truncate(16);
        let truncated = &Rec::Sample(vec![1; 4]).encode()[..5];
        for bytes in [&bad_size[..], &too_long, &bad_raw, &short_lost, truncated] {
            let mut buf = Rec::Lost(2).encode();
            buf.extend_from_slice(bytes);
            let (got, w) = read_all(RingBytes::new(&buf, &[]));
            assert_eq!(got, vec![Rec::Lost(2)]);
            let c = w.corrupt.expect("corrupt");
            assert_eq!(c.offset, 24);
            assert_eq!(w.stats.bytes as usize, buf.len(), "{}", c.reason);
        }
    }

    #[test]
    fn a_break_leaves_the_record_unread() {
        let mut buf = Vec::new();
        for i in 0..4u8 {
            buf.extend(Rec::Sample(vec![i; 4]).encode());
        }
        let mut n = 0;
        let w = walk(RingBytes::new(&buf, &[]), &mut Vec::new(), |_| {
            n += 1;
            if n == 2 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
        assert_eq!(n, 2);
        assert_eq!(w.stats.samples, 1);
        assert_eq!(w.stats.bytes, 16);
    }

    fn rec_strategy() -> impl Strategy<Value = Rec> {
        prop_oneof![
            6 => proptest::collection::vec(any::<u8>(), 0..90).prop_map(Rec::Sample),
            1 => any::<u64>().prop_map(Rec::Lost),
            1 => (10u32..20, 0usize..3).prop_map(|(t, n)| Rec::Other(t, n * 8)),
        ]
    }

    proptest! {
        #[test]
        fn records_laid_out_as_the_kernel_does_read_back_in_order(
            shift in 7u32..10,
            tail in any::<u64>(),
            recs in proptest::collection::vec(rec_strategy(), 0..12),
        ) {
            let size = 1usize << shift;
            // Keep what fits in the ring, as the kernel would.
            let mut kept = Vec::new();
            let mut used = 0;
            for r in recs {
                let n = r.encode().len();
                if used + n > size { break; }
                used += n;
                kept.push(r);
            }
            let tail = tail.wrapping_sub(used as u64 / 2) & !7;
            let tail = tail.min(u64::MAX - size as u64);
            let (area, len) = lay_out(size, tail, &kept);
            let (got, w) = read_all(view(&area, tail, len));
            prop_assert_eq!(w.corrupt, None);
            prop_assert_eq!(w.stats.bytes as usize, len);
            let want: Vec<Rec> = kept.iter().map(other_norm).collect();
            prop_assert_eq!(got, want);
        }

        #[test]
        fn garbage_never_panics_and_never_reads_past_the_head(
            a in proptest::collection::vec(any::<u8>(), 0..80),
            b in proptest::collection::vec(any::<u8>(), 0..80),
        ) {
            let bytes = RingBytes::new(&a, &b);
            let (_, w) = read_all(bytes);
            prop_assert_eq!(w.stats.bytes as usize, bytes.len());
        }

        #[test]
        fn the_fast_path_agrees_with_the_general_decoder(
            recs in proptest::collection::vec(rec_strategy(), 1..3),
            garbage in proptest::collection::vec(any::<u8>(), 0..40),
            cut in 0usize..200,
            flip in any::<(usize, u8)>(),
        ) {
            // Real records (maybe cut short or with a byte changed), or garbage.
            let mut buf: Vec<u8> = recs.iter().flat_map(Rec::encode).collect();
            if flip.0 % 3 == 0 {
                let i = flip.0 % buf.len();
                buf[i] ^= flip.1;
            }
            buf.truncate(cut.max(1));
            for bytes in [&buf[..], &garbage[..]] {
                let mut scratch = Vec::new();
                let general = decode(RingBytes::new(bytes, &[]), 0, &mut scratch);
                match decode_flat(bytes) {
                    Some(r) => prop_assert_eq!(general, Ok(r)),
                    None => prop_assert!(general.is_err()),
                }
            }
        }

        #[test]
        fn get_agrees_with_a_flat_copy(
            a in proptest::collection::vec(any::<u8>(), 0..32),
            b in proptest::collection::vec(any::<u8>(), 0..32),
            off in 0usize..70, len in 0usize..70,
        ) {
            let r = RingBytes::new(&a, &b);
            let flat: Vec<u8> = a.iter().chain(&b).copied().collect();
            match r.get(off, len) {
                Some((x, y)) => {
                    let joined: Vec<u8> = x.iter().chain(y).copied().collect();
                    prop_assert_eq!(&joined[..], &flat[off..off + len]);
                }
                None => prop_assert!(off + len > flat.len()),
            }
        }
    }
}
