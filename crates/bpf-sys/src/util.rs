//! Small byte conversions that BPF maps and events need: NUL-terminated strings and
//! little-endian integers of any width from 0 to 8 bytes.
//!
//! These are goebpf's `NullTerminatedStringToString` and `ParseFlexibleIntegerLittleEndian`,
//! with two differences: an input longer than 8 bytes is an error rather than silently
//! dropping the high bytes, and the string helpers say whether they check UTF-8.

use std::borrow::Cow;
use std::str::Utf8Error;

/// An integer conversion that does not fit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IntError {
    /// More than 8 bytes were given to build a `u64`.
    #[error("{len} bytes do not fit in a u64 (at most 8)")]
    TooLong {
        /// How many bytes were given.
        len: usize,
    },
    /// The value needs more bytes than the buffer has.
    #[error("value {value:#x} does not fit in {size} bytes")]
    DoesNotFit {
        /// The value to encode.
        value: u64,
        /// The size of the buffer.
        size: usize,
    },
}

/// The bytes before the first NUL, or all of `bytes` when there is none.
pub fn nul_terminated(bytes: &[u8]) -> &[u8] {
    match bytes.iter().position(|&b| b == 0) {
        Some(end) => &bytes[..end],
        None => bytes,
    }
}

/// The bytes before the first NUL as a `&str`, checked: invalid UTF-8 is an error.
pub fn nul_terminated_str(bytes: &[u8]) -> Result<&str, Utf8Error> {
    std::str::from_utf8(nul_terminated(bytes))
}

/// The bytes before the first NUL as a string, lossy: invalid UTF-8 becomes U+FFFD, as
/// goebpf's Go `string(bytes)` conversion does. Borrows when the bytes are valid UTF-8.
pub fn nul_terminated_string_lossy(bytes: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(nul_terminated(bytes))
}

/// A little-endian unsigned integer of 0 to 8 bytes (0 bytes give 0).
///
/// ```
/// # use bpf_sys::util::le_to_u64;
/// assert_eq!(le_to_u64(&[0x34, 0x12, 0x01]).unwrap(), 0x011234);
/// assert!(le_to_u64(&[0; 9]).is_err());
/// ```
pub fn le_to_u64(bytes: &[u8]) -> Result<u64, IntError> {
    if bytes.len() > 8 {
        return Err(IntError::TooLong { len: bytes.len() });
    }
    let mut buf = [0u8; 8];
    buf[..bytes.len()].copy_from_slice(bytes);
    Ok(u64::from_le_bytes(buf))
}

/// Writes `value` little-endian into all of `out`, zero-padded; an error (and `out` left as it
/// was) when the value needs more than `out.len()` bytes.
pub fn write_le_u64(value: u64, out: &mut [u8]) -> Result<(), IntError> {
    let needed = 8 - (value.leading_zeros() / 8) as usize;
    if needed > out.len() {
        return Err(IntError::DoesNotFit {
            value,
            size: out.len(),
        });
    }
    let bytes = value.to_le_bytes();
    let n = out.len().min(8);
    out[..n].copy_from_slice(&bytes[..n]);
    out[n..].fill(0);
    Ok(())
}

/// `value` as a zero-padded little-endian buffer of `size` bytes; an error when it does not fit.
///
/// ```
/// # use bpf_sys::util::u64_to_le;
/// assert_eq!(u64_to_le(0x0102, 4).unwrap(), vec![2, 1, 0, 0]);
/// assert!(u64_to_le(0x10000, 2).is_err());
/// ```
pub fn u64_to_le(value: u64, size: usize) -> Result<Vec<u8>, IntError> {
    let needed = 8 - (value.leading_zeros() / 8) as usize;
    if needed > size {
        return Err(IntError::DoesNotFit { value, size });
    }
    let mut out = vec![0u8; size];
    write_le_u64(value, &mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn nul_terminated_stops_at_first_nul() {
        assert_eq!(nul_terminated(b"abc\0def\0"), b"abc");
        assert_eq!(nul_terminated(b"abc"), b"abc");
        assert_eq!(nul_terminated(b"\0abc"), b"");
        assert_eq!(nul_terminated(b""), b"");
        assert_eq!(nul_terminated_str(b"eth0\0\0\0").unwrap(), "eth0");
        assert!(nul_terminated_str(b"\xff\0").is_err());
        assert_eq!(nul_terminated_string_lossy(b"a\xffb\0zz"), "a\u{fffd}b");
    }

    #[test]
    fn le_integers_of_every_width() {
        assert_eq!(le_to_u64(&[]).unwrap(), 0);
        assert_eq!(le_to_u64(&[1]).unwrap(), 1);
        assert_eq!(le_to_u64(&[0xff; 8]).unwrap(), u64::MAX);
        assert_eq!(le_to_u64(&[0; 9]), Err(IntError::TooLong { len: 9 }));
        assert_eq!(u64_to_le(0, 0).unwrap(), Vec::<u8>::new());
        assert_eq!(
            u64_to_le(1, 0),
            Err(IntError::DoesNotFit { value: 1, size: 0 })
        );
        assert_eq!(u64_to_le(u64::MAX, 12).unwrap()[8..], [0, 0, 0, 0]);
        let mut buf = [9u8; 3];
        assert!(write_le_u64(0x0100_0000, &mut buf).is_err());
        assert_eq!(buf, [9, 9, 9]);
    }

    proptest! {
        #[test]
        fn le_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..=8)) {
            let v = le_to_u64(&bytes).unwrap();
            prop_assert_eq!(u64_to_le(v, bytes.len()).unwrap(), bytes);
        }

        #[test]
        fn u64_round_trips_in_any_size_that_fits(v in any::<u64>(), size in 0usize..16) {
            match u64_to_le(v, size) {
                Ok(buf) => {
                    prop_assert_eq!(buf.len(), size);
                    let back = le_to_u64(&buf[..size.min(8)]).unwrap();
                    prop_assert_eq!(back, v);
                }
                Err(IntError::DoesNotFit { .. }) => {
                    prop_assert!(size < 8 && v >> (size * 8) != 0);
                }
                Err(e) => prop_assert!(false, "unexpected {e}"),
            }
        }

        #[test]
        fn nul_terminated_never_contains_nul(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let s = nul_terminated(&bytes);
            prop_assert!(!s.contains(&0));
            prop_assert!(bytes.starts_with(s));
        }
    }
}
