//! String tables (ELF `.strtab`, BTF string sections) whose UTF-8 is checked once.
//!
//! Objects name dozens of sections, symbols, types and members, each a short NUL-terminated
//! string; checking each one as UTF-8 costs more than the rest of reading it. A [`StrTable`]
//! checks the whole table once, so a name inside it is sliced out as a `&str` directly. Names the
//! check did not cover (past the first invalid byte, or starting inside a multi-byte character)
//! come back as bytes, for the caller to read the way it always has.

/// A string table and the longest prefix of it that is valid UTF-8.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct StrTable<'a> {
    bytes: &'a [u8],
    /// `bytes` up to its first invalid UTF-8 sequence.
    text: &'a str,
}

/// A string read from a [`StrTable`].
pub(crate) enum Str<'a> {
    /// Valid UTF-8.
    Text(&'a str),
    /// Bytes the table's check did not cover: they may or may not be UTF-8.
    Bytes(&'a [u8]),
}

impl<'a> StrTable<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        let text = match std::str::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) => std::str::from_utf8(bytes.get(..e.valid_up_to()).unwrap_or_default())
                .unwrap_or_default(),
        };
        StrTable { bytes, text }
    }

    /// The string at `offset`, up to its NUL; `None` when `offset` is past the end or no NUL
    /// follows it.
    #[inline]
    pub fn get(&self, offset: usize) -> Option<Str<'a>> {
        if let Some(s) = self.text_at(offset) {
            return Some(Str::Text(s));
        }
        let rest = self.bytes.get(offset..)?;
        let end = nul(rest)?;
        rest.get(..end).map(Str::Bytes)
    }

    /// Whether the string at `offset` is `name`, byte for byte, found without looking for the
    /// string's end; `name` must hold no NUL.
    #[inline]
    pub fn bytes_are(&self, offset: usize, name: &[u8]) -> bool {
        debug_assert!(!name.contains(&0));
        let Some(rest) = self.bytes.get(offset..) else {
            return false;
        };
        // The end first: it tells most other names apart.
        rest.get(name.len()) == Some(&0) && rest.get(..name.len()) == Some(name)
    }

    /// Whether the string at `offset` is empty or missing (where [`StrTable::get`] gives `None`),
    /// without reading it as text.
    pub fn is_empty_at(&self, offset: usize) -> bool {
        match self.bytes.get(offset..) {
            Some(rest @ [first, ..]) if *first != 0 => nul(rest).is_none(),
            _ => true,
        }
    }

    /// [`StrTable::get`] when the string is in the checked prefix.
    #[inline]
    pub fn text_at(&self, offset: usize) -> Option<&'a str> {
        let rest = self.text.get(offset..)?;
        // A NUL is a character of its own: the slice before it is valid UTF-8.
        rest.get(..nul(rest.as_bytes())?)
    }
}

/// The index of the first NUL byte, eight bytes at a time.
#[inline]
pub(crate) fn nul(bytes: &[u8]) -> Option<usize> {
    const LO: u64 = u64::from_ne_bytes([0x01; 8]);
    const HI: u64 = u64::from_ne_bytes([0x80; 8]);
    let mut i = 0;
    while let Some(chunk) = bytes.get(i..i + 8) {
        let w = u64::from_le_bytes(chunk.try_into().unwrap_or([0xff; 8]));
        // The lowest bit set is the first zero byte's (borrows only reach bytes after it).
        let zero = w.wrapping_sub(LO) & !w & HI;
        if zero != 0 {
            return Some(i + zero.trailing_zeros() as usize / 8);
        }
        i += 8;
    }
    let tail = bytes.get(i..)?;
    tail.iter().position(|&b| b == 0).map(|p| i + p)
}

#[cfg(test)]
mod tests {
    use super::{Str, StrTable};

    fn read(t: &StrTable<'_>, off: usize) -> Option<String> {
        t.get(off).map(|s| match s {
            Str::Text(s) => format!("T:{s}"),
            Str::Bytes(b) => format!("B:{}", String::from_utf8_lossy(b)),
        })
    }

    #[test]
    fn finds_the_first_nul_at_any_position() {
        for len in 0..40 {
            for at in 0..=len {
                let mut b = vec![b'a'; len];
                // 0x01 and 0x80 bytes around the NUL trip naive word tricks.
                for (i, x) in b.iter_mut().enumerate() {
                    *x = [b'a', 0x01, 0x80, 0xff][i % 4];
                }
                let want = (at < len).then_some(at);
                if let Some(x) = b.get_mut(at) {
                    *x = 0;
                }
                if let Some(x) = b.get_mut(at + 1) {
                    *x = 0;
                }
                assert_eq!(super::nul(&b), want, "{len} {at}");
            }
        }
    }

    #[test]
    fn names_inside_and_past_the_checked_prefix() {
        let t = StrTable::new(b"\0abc\0d\xffe\0\xc3\xa9\0tail");
        assert_eq!(read(&t, 0).as_deref(), Some("T:"));
        assert_eq!(read(&t, 1).as_deref(), Some("T:abc"));
        assert_eq!(read(&t, 2).as_deref(), Some("T:bc"));
        // Spans the invalid byte.
        assert_eq!(read(&t, 5).as_deref(), Some("B:d\u{fffd}e"));
        // Past the invalid byte: read as bytes, still UTF-8.
        assert_eq!(read(&t, 9).as_deref(), Some("B:\u{e9}"));
        // Inside a multi-byte character.
        assert_eq!(read(&t, 10).as_deref(), Some("B:\u{fffd}"));
        // No NUL after it, or out of range.
        assert_eq!(read(&t, 12), None);
        assert_eq!(read(&t, 100), None);
        let ok = StrTable::new("x\0\u{e9}t\0".as_bytes());
        assert_eq!(read(&ok, 2).as_deref(), Some("T:\u{e9}t"));
        assert_eq!(read(&ok, 3).as_deref(), Some("B:\u{fffd}t"));
        assert_eq!(read(&StrTable::default(), 0), None);
    }
}
