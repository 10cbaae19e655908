//! The errors of this crate: [`MapError`] for maps, [`ConvertError`] for the conversions of Rust
//! values to key and value bytes.

use std::fmt;
use std::io;
use std::path::PathBuf;

use bpf_sys::probe::NotSupported;
use bpf_sys::{MapType, SysError};

/// `ENOENT`: the key is not in the map (or the walk is over).
pub const ENOENT: i32 = 2;
/// `EEXIST`: the key is already in the map (an insert with `BPF_NOEXIST`).
pub const EEXIST: i32 = 17;
/// `E2BIG`: the map is full.
pub const E2BIG: i32 = 7;
/// `EINVAL`.
pub const EINVAL: i32 = 22;
/// `ENOSPC`: a batch buffer is too small for one hash bucket.
pub const ENOSPC: i32 = 28;
/// `EPERM`: not allowed (a write to a frozen map, no privilege).
pub const EPERM: i32 = 1;

/// Which part of an element a size error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Part {
    /// The key.
    Key,
    /// The value (for per-CPU maps: the whole buffer of one slot per possible CPU).
    Value,
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Part::Key => "key",
            Part::Value => "value",
        })
    }
}

/// A Rust value could not be turned into key or value bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConvertError {
    /// The value needs more bytes than the key or value has.
    #[error("{got} bytes do not fit in {expected}")]
    TooLong {
        /// The bytes the value needs.
        got: usize,
        /// The bytes the map's key or value has.
        expected: usize,
    },
    /// A string is not an IP address or a CIDR (`10.0.0.0/8`, `fe80::/10`).
    #[error("invalid CIDR {input:?}: {reason}")]
    Cidr {
        /// The input.
        input: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// A difference between a map spec and the pinned map it would reuse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldDiff {
    /// The field (`map_type`, `key_size`, `value_size`, `max_entries`, `flags`, `map_extra`).
    pub field: &'static str,
    /// What the spec asks for (after normalisation).
    pub spec: String,
    /// What the pinned map has.
    pub pinned: String,
}

impl fmt::Display for FieldDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: spec {}, pinned {}",
            self.field, self.spec, self.pinned
        )
    }
}

struct Diffs<'a>(&'a [FieldDiff]);

impl fmt::Display for Diffs<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

/// An operation on a map failed.
///
/// Callers test for the common kernel answers without string matching: [`MapError::errno`],
/// [`MapError::is_not_found`] (`ENOENT`), [`MapError::is_exists`] (`EEXIST`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MapError {
    /// `BPF_MAP_CREATE` failed.
    #[error("cannot create map {map}")]
    Create {
        /// The map's name.
        map: String,
        /// The system call's error.
        #[source]
        source: SysError,
    },
    /// The running kernel lacks the map type (probed after a failed create).
    #[error("cannot create map {map}")]
    NotSupported {
        /// The map's name.
        map: String,
        /// The missing feature and the version that brought it.
        #[source]
        source: NotSupported,
    },
    /// An element or map command failed in the kernel.
    #[error("{op} on map {map} failed")]
    Op {
        /// The operation (`lookup`, `update`, `delete`, `next key`, `lookup batch`...).
        op: &'static str,
        /// The map's name.
        map: String,
        /// The system call's error, with the errno.
        #[source]
        source: SysError,
    },
    /// A batch command failed after it had processed some elements.
    #[error("{op} on map {map} failed after {count} elements")]
    Batch {
        /// The operation.
        op: &'static str,
        /// The map's name.
        map: String,
        /// Elements processed before the failure.
        count: usize,
        /// The system call's error.
        #[source]
        source: SysError,
    },
    /// A byte slice or a typed view's key or value does not have the map's size.
    #[error("{part} of map {map} is {got} bytes, the map uses {expected}")]
    Size {
        /// The map's name.
        map: String,
        /// Key or value.
        part: Part,
        /// The bytes given (or the size of the Rust type).
        got: usize,
        /// The bytes the map uses.
        expected: usize,
    },
    /// A Rust value is too long for the map's key or value.
    #[error("{part} for map {map} is too long: {got} bytes, at most {expected}")]
    TooLong {
        /// The map's name.
        map: String,
        /// Key or value.
        part: Part,
        /// The bytes the value needs.
        got: usize,
        /// The bytes the map has.
        expected: usize,
    },
    /// A key or value could not be converted (a bad CIDR string).
    #[error("invalid {part} for map {map}")]
    Convert {
        /// The map's name.
        map: String,
        /// Key or value.
        part: Part,
        /// Why.
        #[source]
        source: ConvertError,
    },
    /// The operation does not apply to this map type (a typed view of the wrong type,
    /// `lookup_string` on a per-CPU map, an integer read of a value wider than 8 bytes).
    #[error("{op} is not supported for map {map} of type {map_type:?}")]
    Unsupported {
        /// The operation or view.
        op: &'static str,
        /// The map's name.
        map: String,
        /// Its type.
        map_type: MapType,
    },
    /// The spec cannot be created as it is (an array key wider than 4 bytes).
    #[error("invalid spec for map {map}: {reason}")]
    InvalidSpec {
        /// The map's name.
        map: String,
        /// What is wrong.
        reason: String,
    },
    /// The kernel reports a map type this build does not know.
    #[error("map {map} has an unknown type {raw}")]
    UnknownType {
        /// The map's name.
        map: String,
        /// The type's number.
        raw: u32,
    },
    /// A pinned map cannot be reused: the spec and the pinned map differ in these fields.
    #[error("pinned map {map} at {path:?} is incompatible: {}", Diffs(differences))]
    Incompatible {
        /// The map's name.
        map: String,
        /// Where it is pinned.
        path: PathBuf,
        /// Each field that differs.
        differences: Vec<FieldDiff>,
    },
    /// A pin exists where the policy was [`PinPolicy::Fail`](crate::PinPolicy::Fail).
    #[error("map {map} is already pinned at {path:?}")]
    PinExists {
        /// The map's name.
        map: String,
        /// The path.
        path: PathBuf,
    },
    /// A pin path is not on a BPF filesystem.
    #[error("{path:?} for map {map} is not on a bpf filesystem")]
    NotBpffs {
        /// The map's name.
        map: String,
        /// The path.
        path: PathBuf,
    },
    /// Pinning, opening a pin or unpinning failed.
    #[error("{op} {path:?} for map {map} failed")]
    Pin {
        /// `pin`, `open pinned`, `unpin`, `create directory`.
        op: &'static str,
        /// The map's name.
        map: String,
        /// The path.
        path: PathBuf,
        /// The system call's error.
        #[source]
        source: SysError,
    },
    /// A filesystem call around pinning failed (checking the filesystem, creating directories).
    #[error("{op} {path:?} failed")]
    Io {
        /// The operation.
        op: &'static str,
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Opening an existing map (by fd, id or path) failed.
    #[error("cannot open map {what}")]
    Open {
        /// What was opened: `fd 5`, `id 17`, `path "/sys/fs/bpf/x"`.
        what: String,
        /// The system call's error.
        #[source]
        source: SysError,
    },
    /// A key walk gave more keys than the map can hold: the map changed too much meanwhile.
    #[error("iteration over map {map} aborted after {count} keys")]
    IterationAborted {
        /// The map's name.
        map: String,
        /// Keys seen.
        count: usize,
    },
    /// A global variable is not in this data map.
    #[error("map {map} has no variable {name}")]
    NoVariable {
        /// The map's name.
        map: String,
        /// The variable.
        name: String,
    },
}

impl MapError {
    /// The errno the kernel answered, when the error came from the kernel.
    pub fn errno(&self) -> Option<i32> {
        match self {
            MapError::Create { source, .. }
            | MapError::Op { source, .. }
            | MapError::Batch { source, .. }
            | MapError::Pin { source, .. }
            | MapError::Open { source, .. } => source.errno(),
            MapError::Io { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }

    /// Whether the kernel answered `ENOENT`: the key is not in the map (a lookup, an update
    /// with `BPF_EXIST`, a delete), the id or path names nothing.
    pub fn is_not_found(&self) -> bool {
        self.errno() == Some(ENOENT)
    }

    /// Whether the kernel answered `EEXIST`: the key is already in the map (an insert with
    /// `BPF_NOEXIST`).
    pub fn is_exists(&self) -> bool {
        self.errno() == Some(EEXIST)
    }

    pub(crate) fn op(op: &'static str, map: &str, source: SysError) -> Self {
        MapError::Op {
            op,
            map: map.to_string(),
            source,
        }
    }

    pub(crate) fn convert(map: &str, part: Part, e: ConvertError) -> Self {
        match e {
            ConvertError::TooLong { got, expected } => MapError::TooLong {
                map: map.to_string(),
                part,
                got,
                expected,
            },
            source => MapError::Convert {
                map: map.to_string(),
                part,
                source,
            },
        }
    }

    pub(crate) fn size(map: &str, part: Part, got: usize, expected: usize) -> Self {
        MapError::Size {
            map: map.to_string(),
            part,
            got,
            expected,
        }
    }

    /// A kernel-like error for in-memory maps: `op` failed with `errno` (what `bpf-mock` uses to
    /// answer as the kernel would).
    pub fn from_errno(op: &'static str, map: &str, errno: i32) -> Self {
        MapError::op(
            op,
            map,
            SysError::new(op_call(op), io::Error::from_raw_os_error(errno)),
        )
    }
}

/// The kernel command an operation name stands for.
pub(crate) fn op_call(op: &'static str) -> &'static str {
    match op {
        "lookup" => "BPF_MAP_LOOKUP_ELEM",
        "update" => "BPF_MAP_UPDATE_ELEM",
        "delete" => "BPF_MAP_DELETE_ELEM",
        "next key" => "BPF_MAP_GET_NEXT_KEY",
        "lookup and delete" => "BPF_MAP_LOOKUP_AND_DELETE_ELEM",
        "lookup batch" => "BPF_MAP_LOOKUP_BATCH",
        "lookup and delete batch" => "BPF_MAP_LOOKUP_AND_DELETE_BATCH",
        "update batch" => "BPF_MAP_UPDATE_BATCH",
        "delete batch" => "BPF_MAP_DELETE_BATCH",
        "freeze" => "BPF_MAP_FREEZE",
        _ => "bpf",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_helpers_read_the_kernel_answer() {
        let e = MapError::from_errno("lookup", "m", ENOENT);
        assert!(e.is_not_found());
        assert!(!e.is_exists());
        assert_eq!(e.to_string(), "lookup on map m failed");
        let e = MapError::from_errno("update", "m", EEXIST);
        assert!(e.is_exists());
        assert_eq!(MapError::size("m", Part::Key, 3, 4).errno(), None);
    }

    #[test]
    fn incompatible_names_each_field() {
        let e = MapError::Incompatible {
            map: "m".into(),
            path: "/sys/fs/bpf/m".into(),
            differences: vec![
                FieldDiff {
                    field: "key_size",
                    spec: "4".into(),
                    pinned: "8".into(),
                },
                FieldDiff {
                    field: "max_entries",
                    spec: "10".into(),
                    pinned: "20".into(),
                },
            ],
        };
        let s = e.to_string();
        assert!(
            s.contains("key_size: spec 4, pinned 8; max_entries: spec 10, pinned 20"),
            "{s}"
        );
    }
}
