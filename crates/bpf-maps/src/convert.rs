//! Keys and values from Rust values: goebpf's `KeyValueToBytes`, and LPM keys from CIDRs.
//!
//! [`KeyValue`] writes a Rust value into a zero-filled buffer of exactly the map's key or value
//! size; a value that needs more bytes is a [`ConvertError::TooLong`] with `{ got, expected }`.
//! A value whose own bytes already are those bytes (an integer of the size's width, a byte
//! string of that length: [`KeyValue::exact_bytes`]) is passed to the map as it is, without a
//! copy.
//!
//! | Rust value | bytes |
//! | --- | --- |
//! | every integer (`u8`..`u128`, `i8`..`i128`, `usize`, `isize`) | by value, not by width: any integer whose value fits in the size (unsigned for values >= 0, two's complement for negatives) is written in native byte order, zero- or sign-extended. Native is little-endian on every BPF target we support (x86_64, aarch64), as goebpf always wrote; so `5i32` fits a 2-byte value and `70000` does not |
//! | `&str`, `String` | the UTF-8 bytes, zero-padded; **not** forced NUL-terminated: a string as long as the size fills it without a NUL (goebpf's rule) |
//! | `&[u8]`, `Vec<u8>`, `[u8; N]` | the bytes, zero-padded |
//! | [`Ipv4Addr`], [`Ipv6Addr`], [`IpAddr`] | 4 or 16 bytes in network order, zero-padded |
//! | [`Cidr`] | an LPM trie key: the prefix length as a native (little-endian) `u32`, then the address bytes in network order |
//! | [`Plain`] | the bytes of any `bytemuck::Pod` value |
//!
//! ```
//! use bpf_maps::{lpm_key, to_bytes};
//!
//! assert_eq!(to_bytes(&0x0102u32, 2)?, [2, 1]);
//! assert_eq!(to_bytes("eth0", 6)?, b"eth0\0\0");
//! assert_eq!(to_bytes(&lpm_key("10.0.0.0/8")?, 8)?, [8, 0, 0, 0, 10, 0, 0, 0]);
//! assert!(to_bytes(&70000, 2).is_err());
//! # Ok::<(), bpf_maps::ConvertError>(())
//! ```

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use crate::error::ConvertError;

/// A Rust value that can be a map key or value (see the [module docs](self) for each encoding).
pub trait KeyValue {
    /// Writes the value into `out`, which is zero-filled and exactly the key or value size.
    fn write_bytes(&self, out: &mut [u8]) -> Result<(), ConvertError>;

    /// The value's own bytes when they are exactly what [`KeyValue::write_bytes`] writes into
    /// `size` bytes (an integer of that width, a byte string of that length), so a map
    /// operation can pass them without a copy; `None` (the default) to convert.
    ///
    /// An implementation returns `Some` only with bytes equal to those `write_bytes` would write.
    #[inline]
    fn exact_bytes(&self, size: usize) -> Option<&[u8]> {
        let _ = size;
        None
    }
}

/// `value` as a zero-padded buffer of `size` bytes (goebpf's `KeyValueToBytes`).
pub fn to_bytes<T: KeyValue + ?Sized>(value: &T, size: usize) -> Result<Vec<u8>, ConvertError> {
    let mut out = vec![0u8; size];
    value.write_bytes(&mut out)?;
    Ok(out)
}

impl<T: KeyValue + ?Sized> KeyValue for &T {
    #[inline]
    fn write_bytes(&self, out: &mut [u8]) -> Result<(), ConvertError> {
        (**self).write_bytes(out)
    }

    #[inline]
    fn exact_bytes(&self, size: usize) -> Option<&[u8]> {
        (**self).exact_bytes(size)
    }
}

/// `bytes` when they are `size` long (a byte string's own bytes are its padded form then).
#[inline]
fn exact(bytes: &[u8], size: usize) -> Option<&[u8]> {
    (bytes.len() == size).then_some(bytes)
}

fn copy_padded(bytes: &[u8], out: &mut [u8]) -> Result<(), ConvertError> {
    if bytes.len() > out.len() {
        return Err(ConvertError::TooLong {
            got: bytes.len(),
            expected: out.len(),
        });
    }
    out[..bytes.len()].copy_from_slice(bytes);
    out[bytes.len()..].fill(0);
    Ok(())
}

/// Writes a two's complement integer of 16 bytes (`le`, little-endian) needing `needed` bytes.
fn write_int(
    le: [u8; 16],
    negative: bool,
    needed: usize,
    out: &mut [u8],
) -> Result<(), ConvertError> {
    if needed > out.len() {
        return Err(ConvertError::TooLong {
            got: needed,
            expected: out.len(),
        });
    }
    let fill = if negative { 0xff } else { 0 };
    for (i, o) in out.iter_mut().enumerate() {
        *o = le.get(i).copied().unwrap_or(fill);
    }
    if cfg!(target_endian = "big") {
        out.reverse();
    }
    Ok(())
}

fn write_unsigned(v: u128, out: &mut [u8]) -> Result<(), ConvertError> {
    let needed = 16 - (v.leading_zeros() / 8) as usize;
    write_int(v.to_le_bytes(), false, needed, out)
}

fn write_signed(v: i128, out: &mut [u8]) -> Result<(), ConvertError> {
    if v >= 0 {
        return write_unsigned(v as u128, out);
    }
    // Bits of magnitude plus the sign bit.
    let bits = 128 - (!v).leading_zeros() as usize + 1;
    write_int(v.to_le_bytes(), true, bits.div_ceil(8), out)
}

macro_rules! unsigned {
    ($($t:ty),*) => {$(
        impl KeyValue for $t {
            #[inline]
            fn write_bytes(&self, out: &mut [u8]) -> Result<(), ConvertError> {
                // The common case, a key or value of the integer's own width: its native bytes
                // (what the general path writes too, without the 16-byte detour).
                if out.len() == size_of::<$t>() {
                    out.copy_from_slice(&self.to_ne_bytes());
                    return Ok(());
                }
                write_unsigned(*self as u128, out)
            }

            #[inline]
            fn exact_bytes(&self, size: usize) -> Option<&[u8]> {
                // The in-memory bytes are the native-order bytes written above.
                exact(bytemuck::bytes_of(self), size)
            }
        }
    )*};
}
macro_rules! signed {
    ($($t:ty),*) => {$(
        impl KeyValue for $t {
            #[inline]
            fn write_bytes(&self, out: &mut [u8]) -> Result<(), ConvertError> {
                // Own width: native bytes, as in the unsigned case (two's complement fits).
                if out.len() == size_of::<$t>() {
                    out.copy_from_slice(&self.to_ne_bytes());
                    return Ok(());
                }
                write_signed(*self as i128, out)
            }

            #[inline]
            fn exact_bytes(&self, size: usize) -> Option<&[u8]> {
                exact(bytemuck::bytes_of(self), size)
            }
        }
    )*};
}
unsigned!(u8, u16, u32, u64, u128, usize);
signed!(i8, i16, i32, i64, i128, isize);

impl KeyValue for str {
    #[inline]
    fn write_bytes(&self, out: &mut [u8]) -> Result<(), ConvertError> {
        copy_padded(self.as_bytes(), out)
    }

    #[inline]
    fn exact_bytes(&self, size: usize) -> Option<&[u8]> {
        exact(self.as_bytes(), size)
    }
}

impl KeyValue for String {
    #[inline]
    fn write_bytes(&self, out: &mut [u8]) -> Result<(), ConvertError> {
        copy_padded(self.as_bytes(), out)
    }

    #[inline]
    fn exact_bytes(&self, size: usize) -> Option<&[u8]> {
        exact(self.as_bytes(), size)
    }
}

impl KeyValue for [u8] {
    #[inline]
    fn write_bytes(&self, out: &mut [u8]) -> Result<(), ConvertError> {
        copy_padded(self, out)
    }

    #[inline]
    fn exact_bytes(&self, size: usize) -> Option<&[u8]> {
        exact(self, size)
    }
}

impl KeyValue for Vec<u8> {
    #[inline]
    fn write_bytes(&self, out: &mut [u8]) -> Result<(), ConvertError> {
        copy_padded(self, out)
    }

    #[inline]
    fn exact_bytes(&self, size: usize) -> Option<&[u8]> {
        exact(self, size)
    }
}

impl<const N: usize> KeyValue for [u8; N] {
    #[inline]
    fn write_bytes(&self, out: &mut [u8]) -> Result<(), ConvertError> {
        copy_padded(self, out)
    }

    #[inline]
    fn exact_bytes(&self, size: usize) -> Option<&[u8]> {
        exact(self, size)
    }
}

impl KeyValue for Ipv4Addr {
    fn write_bytes(&self, out: &mut [u8]) -> Result<(), ConvertError> {
        copy_padded(&self.octets(), out)
    }
}

impl KeyValue for Ipv6Addr {
    fn write_bytes(&self, out: &mut [u8]) -> Result<(), ConvertError> {
        copy_padded(&self.octets(), out)
    }
}

impl KeyValue for IpAddr {
    fn write_bytes(&self, out: &mut [u8]) -> Result<(), ConvertError> {
        match self {
            IpAddr::V4(a) => a.write_bytes(out),
            IpAddr::V6(a) => a.write_bytes(out),
        }
    }
}

/// The bytes of any plain-data value, for the byte-level API (`map.upsert(&Plain(&s), ...)`).
#[derive(Debug, Clone, Copy)]
pub struct Plain<'a, T: bytemuck::Pod>(pub &'a T);

impl<T: bytemuck::Pod> KeyValue for Plain<'_, T> {
    fn write_bytes(&self, out: &mut [u8]) -> Result<(), ConvertError> {
        copy_padded(bytemuck::bytes_of(self.0), out)
    }

    #[inline]
    fn exact_bytes(&self, size: usize) -> Option<&[u8]> {
        exact(bytemuck::bytes_of(self.0), size)
    }
}

/// An IP network: an address with its host bits cleared and a prefix length. As a key it is
/// the LPM trie key `{ u32 prefixlen; u8 data[] }`.
///
/// ```
/// use bpf_maps::Cidr;
///
/// let c: Cidr = "192.168.1.77/24".parse()?;
/// assert_eq!(c.to_string(), "192.168.1.0/24");
/// assert_eq!("fe80::1".parse::<Cidr>()?.prefix_len(), 128);
/// # Ok::<(), bpf_maps::ConvertError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    addr: IpAddr,
    prefix_len: u8,
}

impl Cidr {
    /// The network of `addr` with `prefix_len` bits (host bits cleared); more bits than the
    /// address has is an error.
    pub fn new(addr: IpAddr, prefix_len: u8) -> Result<Self, ConvertError> {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if prefix_len > max {
            return Err(ConvertError::Cidr {
                input: format!("{addr}/{prefix_len}"),
                reason: format!("prefix length {prefix_len} is more than {max}"),
            });
        }
        let addr = match addr {
            IpAddr::V4(a) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(prefix_len))
                    .unwrap_or(0);
                IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask))
            }
            IpAddr::V6(a) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(prefix_len))
                    .unwrap_or(0);
                IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask))
            }
        };
        Ok(Cidr { addr, prefix_len })
    }

    /// The network address.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length in bits.
    pub fn prefix_len(&self) -> u8 {
        self.prefix_len
    }

    /// The key size an LPM trie needs for this family: 4 + 4 or 4 + 16.
    pub fn key_size(&self) -> usize {
        4 + if self.addr.is_ipv4() { 4 } else { 16 }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

impl FromStr for Cidr {
    type Err = ConvertError;

    /// `a.b.c.d/n`, `x::y/n`, or a bare address (`/32` or `/128`), as goebpf's
    /// `CreateLPMtrieKey`, but a bad input is an error rather than a nil key.
    fn from_str(s: &str) -> Result<Self, ConvertError> {
        let bad = |reason: &str| ConvertError::Cidr {
            input: s.to_string(),
            reason: reason.to_string(),
        };
        let (addr, len) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| bad("not an IP address"))?;
        let len = match len {
            Some(l) if !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()) => l
                .parse::<u8>()
                .map_err(|_| bad("prefix length out of range"))?,
            Some(_) => return Err(bad("prefix length is not a number")),
            None if addr.is_ipv4() => 32,
            None => 128,
        };
        Cidr::new(addr, len)
    }
}

impl From<IpAddr> for Cidr {
    /// A host route (`/32` or `/128`).
    fn from(addr: IpAddr) -> Self {
        Cidr {
            addr,
            prefix_len: if addr.is_ipv4() { 32 } else { 128 },
        }
    }
}

impl KeyValue for Cidr {
    fn write_bytes(&self, out: &mut [u8]) -> Result<(), ConvertError> {
        let need = self.key_size();
        if out.len() < need {
            return Err(ConvertError::TooLong {
                got: need,
                expected: out.len(),
            });
        }
        out[..4].copy_from_slice(&u32::from(self.prefix_len).to_ne_bytes());
        match self.addr {
            IpAddr::V4(a) => out[4..8].copy_from_slice(&a.octets()),
            IpAddr::V6(a) => out[4..20].copy_from_slice(&a.octets()),
        }
        out[need..].fill(0);
        Ok(())
    }
}

/// The LPM trie key of a CIDR string (goebpf's `CreateLPMtrieKey`): `"10.0.0.0/8"`,
/// `"fe80::/10"`, or a bare address for a host route. Host bits are cleared. A bad input is an
/// error (goebpf returned nil and panicked later).
pub fn lpm_key(s: &str) -> Result<Cidr, ConvertError> {
    s.parse()
}

/// A native-endian unsigned integer of 0 to 8 bytes (goebpf's
/// `ParseFlexibleIntegerLittleEndian`, little-endian on our targets); `None` past 8 bytes.
#[inline]
pub fn ne_to_u64(bytes: &[u8]) -> Option<u64> {
    // Fixed widths first: one load, no copy through a padded buffer.
    match bytes.len() {
        8 => return bytes.try_into().ok().map(u64::from_ne_bytes),
        4 => {
            return bytes
                .try_into()
                .ok()
                .map(|b| u64::from(u32::from_ne_bytes(b)))
        }
        _ => {}
    }
    if bytes.len() > 8 {
        return None;
    }
    let mut buf = [0u8; 8];
    if cfg!(target_endian = "big") {
        buf[8 - bytes.len()..].copy_from_slice(bytes);
        Some(u64::from_be_bytes(buf))
    } else {
        buf[..bytes.len()].copy_from_slice(bytes);
        Some(u64::from_le_bytes(buf))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn too_long(got: usize, expected: usize) -> ConvertError {
        ConvertError::TooLong { got, expected }
    }

    #[test]
    fn integers_convert_by_value() {
        assert_eq!(to_bytes(&5i32, 2).unwrap(), [5, 0]);
        assert_eq!(to_bytes(&5u8, 8).unwrap(), [5, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(to_bytes(&-1i64, 2).unwrap(), [0xff, 0xff]);
        assert_eq!(to_bytes(&-2i8, 4).unwrap(), [0xfe, 0xff, 0xff, 0xff]);
        assert_eq!(to_bytes(&-128i32, 1).unwrap(), [0x80]);
        assert_eq!(to_bytes(&-129i32, 1), Err(too_long(2, 1)));
        assert_eq!(to_bytes(&70000, 2), Err(too_long(3, 2)));
        assert_eq!(to_bytes(&u64::MAX, 8).unwrap(), [0xff; 8]);
        assert_eq!(to_bytes(&u128::MAX, 8), Err(too_long(16, 8)));
        assert_eq!(to_bytes(&0u32, 0).unwrap(), Vec::<u8>::new());
        assert_eq!(to_bytes(&i64::MIN, 8).unwrap(), i64::MIN.to_le_bytes());
    }

    #[test]
    fn strings_and_bytes_are_zero_padded_not_nul_forced() {
        assert_eq!(to_bytes("abc", 3).unwrap(), b"abc");
        assert_eq!(to_bytes(&String::from("ab"), 4).unwrap(), b"ab\0\0");
        assert_eq!(to_bytes("abcd", 3), Err(too_long(4, 3)));
        assert_eq!(to_bytes(&[1u8, 2][..], 3).unwrap(), [1, 2, 0]);
        assert_eq!(to_bytes(&vec![1u8; 5], 4), Err(too_long(5, 4)));
        assert_eq!(to_bytes(&[7u8; 2], 2).unwrap(), [7, 7]);
        assert_eq!(to_bytes(&Plain(&0x0102u16), 3).unwrap(), [2, 1, 0]);
    }

    #[test]
    fn ip_addresses_are_network_order() {
        let a: Ipv4Addr = "10.1.2.3".parse().unwrap();
        assert_eq!(to_bytes(&a, 4).unwrap(), [10, 1, 2, 3]);
        assert_eq!(to_bytes(&IpAddr::V4(a), 3), Err(too_long(4, 3)));
        let b: Ipv6Addr = "::1".parse().unwrap();
        assert_eq!(to_bytes(&b, 16).unwrap()[15], 1);
    }

    #[test]
    fn cidrs_parse_mask_and_encode() {
        assert_eq!(
            to_bytes(&lpm_key("10.1.2.3/8").unwrap(), 8).unwrap(),
            [8, 0, 0, 0, 10, 0, 0, 0]
        );
        assert_eq!(lpm_key("10.0.0.1").unwrap().prefix_len(), 32);
        assert_eq!(lpm_key("0.0.0.0/0").unwrap().to_string(), "0.0.0.0/0");
        let v6 = lpm_key("2001:db8::ff/32").unwrap();
        assert_eq!(v6.to_string(), "2001:db8::/32");
        let bytes = to_bytes(&v6, 20).unwrap();
        assert_eq!(&bytes[..6], &[32, 0, 0, 0, 0x20, 0x01]);
        assert_eq!(to_bytes(&v6, 8), Err(too_long(20, 8)));
        for bad in [
            "",
            "10.0.0.0/33",
            "10.0.0/8",
            "10.0.0.0/",
            "10.0.0.0/x",
            "::/129",
            "a/1",
            "1.2.3.4/-1",
        ] {
            assert!(
                matches!(lpm_key(bad), Err(ConvertError::Cidr { .. })),
                "{bad}"
            );
        }
    }

    /// `exact_bytes` of a value, checked against `to_bytes`: the same bytes when `Some`.
    fn exact_matches<T: KeyValue + ?Sized>(v: &T, size: usize) -> bool {
        match v.exact_bytes(size) {
            Some(b) => to_bytes(v, size).as_deref() == Ok(b),
            None => false,
        }
    }

    #[test]
    fn exact_bytes_are_the_converted_bytes_of_own_width_values_only() {
        assert!(exact_matches(&7u32, 4));
        assert!(exact_matches(&-2i16, 2));
        assert!(exact_matches(&&u64::MAX, 8));
        assert!(exact_matches("eth0", 4));
        assert!(exact_matches(&String::from("ab"), 2));
        assert!(exact_matches(&[1u8, 2, 3][..], 3));
        assert!(exact_matches(&vec![9u8; 5], 5));
        assert!(exact_matches(&[7u8; 2], 2));
        assert!(exact_matches(&Plain(&0x0102u16), 2));
        // Widening, padding and encodings go through `write_bytes`.
        assert_eq!(7u32.exact_bytes(8), None);
        assert_eq!(7u64.exact_bytes(4), None);
        assert_eq!("eth0".exact_bytes(6), None);
        assert_eq!(Plain(&1u16).exact_bytes(4), None);
        assert_eq!(Ipv4Addr::LOCALHOST.exact_bytes(4), None);
        assert_eq!(lpm_key("10.0.0.0/8").unwrap().exact_bytes(8), None);
        let dynamic: &dyn KeyValue = &5u16;
        assert_eq!(dynamic.exact_bytes(2), Some(&5u16.to_ne_bytes()[..]));
    }

    #[test]
    fn ne_integers_of_any_width() {
        assert_eq!(ne_to_u64(&[1, 2]), Some(0x0201));
        assert_eq!(ne_to_u64(&[]), Some(0));
        assert_eq!(ne_to_u64(&[0; 9]), None);
        assert_eq!(ne_to_u64(&7u32.to_ne_bytes()), Some(7));
        assert_eq!(ne_to_u64(&u64::MAX.to_ne_bytes()), Some(u64::MAX));
    }

    proptest! {
        /// The own-width fast path writes what the general (by value) path writes.
        #[test]
        fn own_width_integers_match_the_general_path(v in any::<i64>()) {
            prop_assert_eq!(to_bytes(&(v as u32), 4), to_bytes(&u64::from(v as u32), 4));
            prop_assert_eq!(to_bytes(&(v as u64), 8), to_bytes(&u128::from(v as u64), 8));
            prop_assert_eq!(to_bytes(&(v as i16), 2), to_bytes(&i64::from(v as i16), 2));
            prop_assert_eq!(to_bytes(&v, 8), to_bytes(&i128::from(v), 8));
            prop_assert_eq!(ne_to_u64(&(v as u32).to_ne_bytes()), Some(u64::from(v as u32)));
            prop_assert_eq!(ne_to_u64(&(v as u64).to_ne_bytes()), Some(v as u64));
            prop_assert!(exact_matches(&(v as u32), 4));
            prop_assert!(exact_matches(&(v as i8), 1));
            prop_assert!(exact_matches(&(v as u128), 16));
            prop_assert!(exact_matches(&v, 8));
        }
    }

    proptest! {
        #[test]
        fn unsigned_round_trips(v in any::<u64>(), size in 0usize..12) {
            match to_bytes(&v, size) {
                Ok(b) => prop_assert_eq!(ne_to_u64(&b[..size.min(8)]).unwrap(), v),
                Err(ConvertError::TooLong { got, expected }) => {
                    prop_assert_eq!(expected, size);
                    prop_assert!(got > size && size < 8 && v >> (size * 8) != 0);
                }
                Err(e) => prop_assert!(false, "{e}"),
            }
        }

        #[test]
        fn signed_round_trips_with_sign_extension(v in any::<i64>(), size in 1usize..=8) {
            match to_bytes(&v, size) {
                Ok(b) => {
                    let raw = ne_to_u64(&b).unwrap();
                    let shift = 64 - 8 * size as u32;
                    let back = ((raw << shift) as i64) >> shift;
                    if v < 0 {
                        prop_assert_eq!(back, v);
                    } else {
                        prop_assert_eq!(raw as i64, v);
                    }
                }
                Err(ConvertError::TooLong { expected, .. }) => {
                    prop_assert_eq!(expected, size);
                    let fits_signed = v < 0 && v >= -(1i128 << (8 * size - 1)) as i64;
                    let fits_unsigned = v >= 0 && (v as u128) < (1u128 << (8 * size));
                    prop_assert!(!fits_signed && !fits_unsigned);
                }
                Err(e) => prop_assert!(false, "{e}"),
            }
        }

        #[test]
        fn bytes_round_trip_padded(b in proptest::collection::vec(any::<u8>(), 0..32), size in 0usize..40) {
            match to_bytes(&b, size) {
                Ok(out) => {
                    prop_assert_eq!(&out[..b.len()], &b[..]);
                    prop_assert!(out[b.len()..].iter().all(|&x| x == 0));
                }
                Err(e) => prop_assert_eq!(e, ConvertError::TooLong { got: b.len(), expected: size }),
            }
        }

        #[test]
        fn v4_cidrs_round_trip(a in any::<u32>(), len in 0u8..=32) {
            let c = Cidr::new(IpAddr::V4(Ipv4Addr::from(a)), len).unwrap();
            let back: Cidr = c.to_string().parse().unwrap();
            prop_assert_eq!(back, c);
            let bytes = to_bytes(&c, 8).unwrap();
            prop_assert_eq!(u32::from_ne_bytes(bytes[..4].try_into().unwrap()), u32::from(len));
            let masked = u32::from_be_bytes(bytes[4..].try_into().unwrap());
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - u32::from(len)) };
            prop_assert_eq!(masked, a & mask);
        }

        #[test]
        fn v6_cidrs_round_trip(a in any::<u128>(), len in 0u8..=128) {
            let c = Cidr::new(IpAddr::V6(Ipv6Addr::from(a)), len).unwrap();
            prop_assert_eq!(c.to_string().parse::<Cidr>().unwrap(), c);
            // Masking is idempotent.
            prop_assert_eq!(Cidr::new(c.addr(), len).unwrap(), c);
        }

        #[test]
        fn arbitrary_strings_never_panic(s in ".{0,40}") {
            let _ = lpm_key(&s);
        }
    }
}
