//! [`BtfName`]: the name of a BTF type, member, parameter or enumerator.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;

use compact_str::CompactString;

/// A name read from a BTF string section.
///
/// Names up to 24 bytes (almost every type and member name, in objects and in vmlinux alike)
/// are stored inline, so parsing a type table allocates nothing per name. It reads as a `str`
/// (`Deref`, `AsRef<str>`, `Borrow<str>`, comparisons with `str` and `String`), and converts to
/// a `String` with `String::from` or `to_string()`.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BtfName(CompactString);

impl BtfName {
    /// The empty name (anonymous types and members).
    pub const fn empty() -> BtfName {
        BtfName(CompactString::const_new(""))
    }

    /// The name as a `str`.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// Bytes from a string section: borrowed as they are when they are UTF-8 (they always are
    /// in clang's and the kernel's BTF), with invalid sequences replaced otherwise.
    pub(crate) fn from_bytes(bytes: &[u8]) -> BtfName {
        // The check first: `from_utf8_lossy` walks valid input several times slower.
        match std::str::from_utf8(bytes) {
            Ok(s) => BtfName(CompactString::from(s)),
            Err(_) => BtfName(CompactString::from(String::from_utf8_lossy(bytes))),
        }
    }
}

impl Deref for BtfName {
    type Target = str;
    fn deref(&self) -> &str {
        self.0.as_str()
    }
}

impl AsRef<str> for BtfName {
    fn as_ref(&self) -> &str {
        self.0.as_str()
    }
}

impl Borrow<str> for BtfName {
    fn borrow(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Debug for BtfName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.0.as_str(), f)
    }
}

impl fmt::Display for BtfName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}

impl From<&str> for BtfName {
    #[inline]
    fn from(s: &str) -> BtfName {
        BtfName(CompactString::new(s))
    }
}

impl From<String> for BtfName {
    fn from(s: String) -> BtfName {
        BtfName(CompactString::from(s))
    }
}

impl From<&String> for BtfName {
    fn from(s: &String) -> BtfName {
        BtfName(CompactString::new(s))
    }
}

impl From<BtfName> for String {
    fn from(n: BtfName) -> String {
        n.0.into_string()
    }
}

impl PartialEq<str> for BtfName {
    fn eq(&self, other: &str) -> bool {
        self.0.as_str() == other
    }
}

impl PartialEq<&str> for BtfName {
    fn eq(&self, other: &&str) -> bool {
        self.0.as_str() == *other
    }
}

impl PartialEq<String> for BtfName {
    fn eq(&self, other: &String) -> bool {
        self.0.as_str() == other.as_str()
    }
}

impl PartialEq<BtfName> for str {
    fn eq(&self, other: &BtfName) -> bool {
        self == other.0.as_str()
    }
}

impl PartialEq<BtfName> for &str {
    fn eq(&self, other: &BtfName) -> bool {
        *self == other.0.as_str()
    }
}

impl PartialEq<BtfName> for String {
    fn eq(&self, other: &BtfName) -> bool {
        self.as_str() == other.0.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::BtfName;

    #[test]
    fn reads_and_compares_as_a_str() {
        let short = BtfName::from_bytes(b"task_struct");
        let long = BtfName::from_bytes(b"a_name_longer_than_twenty_four_bytes_for_the_heap");
        assert_eq!(short, "task_struct");
        assert_eq!("task_struct", short);
        assert_eq!(short.len(), 11);
        assert!(long.starts_with("a_name_longer"));
        assert_eq!(String::from(long.clone()), long.to_string());
        assert_eq!(format!("{short:?}"), "\"task_struct\"");
        assert!(BtfName::empty().is_empty());
        let mut set = std::collections::HashSet::new();
        set.insert(short);
        assert!(set.contains("task_struct"));
    }

    #[test]
    fn invalid_utf8_is_replaced_not_refused() {
        let n = BtfName::from_bytes(b"bad\xffname");
        assert_eq!(n, "bad\u{fffd}name");
    }
}
