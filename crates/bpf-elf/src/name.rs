//! [`Name`]: a name read from an object: a section, symbol, map, program, BTF type or member.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;

use compact_str::CompactString;

/// A name read from an object: a section, symbol, map, program, BTF type, member, ...
///
/// Names up to 24 bytes (almost every name, in objects and in vmlinux alike) are stored inline,
/// so parsing allocates nothing per name and a clone is a copy of 24 bytes. It reads as a `str`
/// (`Deref`, `AsRef<str>`, `Borrow<str>`, comparisons with `str` and `String`), and converts to
/// a `String` with `String::from` or `to_string()`.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Name(CompactString);

impl Name {
    /// The empty name (anonymous types and members, no license).
    pub const fn empty() -> Name {
        Name(CompactString::const_new(""))
    }

    /// The name as a `str`.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// Bytes from a string section: borrowed as they are when they are UTF-8 (they always are
    /// in clang's and the kernel's BTF), with invalid sequences replaced otherwise.
    pub(crate) fn from_bytes(bytes: &[u8]) -> Name {
        // The check first: `from_utf8_lossy` walks valid input several times slower.
        match std::str::from_utf8(bytes) {
            Ok(s) => Name(CompactString::from(s)),
            Err(_) => Name(CompactString::from(String::from_utf8_lossy(bytes))),
        }
    }
}

impl Deref for Name {
    type Target = str;
    fn deref(&self) -> &str {
        self.0.as_str()
    }
}

impl AsRef<str> for Name {
    fn as_ref(&self) -> &str {
        self.0.as_str()
    }
}

impl AsRef<std::path::Path> for Name {
    fn as_ref(&self) -> &std::path::Path {
        self.0.as_str().as_ref()
    }
}

impl AsRef<[u8]> for Name {
    fn as_ref(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl Borrow<str> for Name {
    fn borrow(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.0.as_str(), f)
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}

impl From<&str> for Name {
    #[inline]
    fn from(s: &str) -> Name {
        Name(CompactString::new(s))
    }
}

impl From<String> for Name {
    fn from(s: String) -> Name {
        Name(CompactString::from(s))
    }
}

impl From<&String> for Name {
    fn from(s: &String) -> Name {
        Name(CompactString::new(s))
    }
}

impl From<Name> for String {
    fn from(n: Name) -> String {
        n.0.into_string()
    }
}

impl PartialEq<str> for Name {
    fn eq(&self, other: &str) -> bool {
        self.0.as_str() == other
    }
}

impl PartialEq<&str> for Name {
    fn eq(&self, other: &&str) -> bool {
        self.0.as_str() == *other
    }
}

impl PartialEq<String> for Name {
    fn eq(&self, other: &String) -> bool {
        self.0.as_str() == other.as_str()
    }
}

impl PartialEq<Name> for str {
    fn eq(&self, other: &Name) -> bool {
        self == other.0.as_str()
    }
}

impl PartialEq<Name> for &str {
    fn eq(&self, other: &Name) -> bool {
        *self == other.0.as_str()
    }
}

impl PartialEq<Name> for String {
    fn eq(&self, other: &Name) -> bool {
        self.as_str() == other.0.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::Name;

    #[test]
    fn reads_and_compares_as_a_str() {
        let short = Name::from_bytes(b"task_struct");
        let long = Name::from_bytes(b"a_name_longer_than_twenty_four_bytes_for_the_heap");
        assert_eq!(short, "task_struct");
        assert_eq!("task_struct", short);
        assert_eq!(short.len(), 11);
        assert!(long.starts_with("a_name_longer"));
        assert_eq!(String::from(long.clone()), long.to_string());
        assert_eq!(format!("{short:?}"), "\"task_struct\"");
        assert!(Name::empty().is_empty());
        let mut set = std::collections::HashSet::new();
        set.insert(short);
        assert!(set.contains("task_struct"));
    }

    #[test]
    fn invalid_utf8_is_replaced_not_refused() {
        let n = Name::from_bytes(b"bad\xffname");
        assert_eq!(n, "bad\u{fffd}name");
    }
}
