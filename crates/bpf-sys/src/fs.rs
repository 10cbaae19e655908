//! bpffs and tracefs: finding them, mounting them, unmounting.
//!
//! bpffs holds pinned objects; every `mount -t bpf` is its own instance, so a private mount in a
//! temporary directory is a private namespace of pins. tracefs holds the `kprobe_events`,
//! `uprobe_events` and tracepoint ids; it is at `/sys/kernel/tracing` on current kernels and at
//! `/sys/kernel/debug/tracing` (inside debugfs) on old ones and on systems that only mount debugfs.
//! A mount point is recognised by its `statfs` magic, not by its path.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use rustix::mount::{MountFlags, UnmountFlags};

/// `BPF_FS_MAGIC`: the `statfs` type of a bpffs mount.
pub const BPF_FS_MAGIC: u32 = 0xcafe_4a11;
/// `TRACEFS_MAGIC`: the `statfs` type of a tracefs mount.
pub const TRACEFS_MAGIC: u32 = 0x7472_6163;
/// `DEBUGFS_MAGIC`: the `statfs` type of a debugfs mount.
pub const DEBUGFS_MAGIC: u32 = 0x6462_6720;

/// Where bpffs is mounted by convention.
pub const DEFAULT_BPFFS: &str = "/sys/fs/bpf";
/// Where tracefs is mounted on current kernels.
pub const TRACEFS_PATH: &str = "/sys/kernel/tracing";
/// Where debugfs is mounted by convention.
pub const DEBUGFS_PATH: &str = "/sys/kernel/debug";
/// Where tracefs appears inside debugfs.
pub const DEBUGFS_TRACING_PATH: &str = "/sys/kernel/debug/tracing";

const MOUNTS: &str = "/proc/self/mounts";

/// A filesystem operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FsError {
    /// `/proc/self/mounts` could not be read.
    #[error("cannot read {MOUNTS}")]
    ReadMounts {
        /// Why.
        #[source]
        source: io::Error,
    },
    /// `statfs` on a path failed.
    #[error("statfs {path:?} failed")]
    Statfs {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// `mount` failed.
    #[error("mounting {fstype} at {path:?} failed")]
    Mount {
        /// The filesystem type (`bpf`, `tracefs`, `debugfs`).
        fstype: &'static str,
        /// The mount point.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// `umount` failed.
    #[error("unmounting {path:?} failed")]
    Unmount {
        /// The mount point.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Neither tracefs nor debugfs could be mounted.
    #[error("tracefs is not mounted and could not be mounted at {TRACEFS_PATH} or {DEBUGFS_TRACING_PATH}")]
    NoTracefs {
        /// The failure of the last attempt.
        #[source]
        source: Box<FsError>,
    },
}

/// One line of `/proc/self/mounts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    /// The mounted device or source name.
    pub source: String,
    /// The mount point, with the kernel's octal escapes (`\040`) decoded.
    pub target: PathBuf,
    /// The filesystem type (`bpf`, `tracefs`, ...).
    pub fstype: String,
}

/// Parses the text of `/proc/self/mounts` (or `/proc/mounts`); malformed lines are skipped.
pub fn parse_mounts(text: &str) -> Vec<MountEntry> {
    text.lines()
        .filter_map(|line| {
            let mut f = line.split_ascii_whitespace();
            let source = unescape(f.next()?);
            let target = unescape(f.next()?);
            let fstype = unescape(f.next()?);
            Some(MountEntry {
                source,
                target: PathBuf::from(target),
                fstype,
            })
        })
        .collect()
}

/// Decodes the `\ooo` octal escapes the kernel writes for space, tab, newline and backslash.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = u32::from(b[i + 1] - b'0') * 64
                + u32::from(b[i + 2] - b'0') * 8
                + u32::from(b[i + 3] - b'0');
            if let Ok(byte) = u8::try_from(v) {
                out.push(byte);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Every mount of this process's mount namespace, from `/proc/self/mounts`.
pub fn mounts() -> Result<Vec<MountEntry>, FsError> {
    let text = std::fs::read_to_string(MOUNTS).map_err(|source| FsError::ReadMounts { source })?;
    Ok(parse_mounts(&text))
}

/// The `statfs` magic of the filesystem holding `path`.
pub fn fs_magic(path: &Path) -> Result<u32, FsError> {
    let st = rustix::fs::statfs(path).map_err(|e| FsError::Statfs {
        path: path.to_owned(),
        source: e.into(),
    })?;
    // `f_type` is a signed word; the magics are 32-bit values.
    Ok(st.f_type as u32)
}

/// Whether `path` is on a bpffs mount (by `statfs` magic). A path that does not exist is not.
pub fn is_bpffs(path: impl AsRef<Path>) -> Result<bool, FsError> {
    has_magic(path.as_ref(), &[BPF_FS_MAGIC])
}

/// Whether `path` is on a tracefs mount (by `statfs` magic). A path that does not exist is not.
pub fn is_tracefs(path: impl AsRef<Path>) -> Result<bool, FsError> {
    has_magic(path.as_ref(), &[TRACEFS_MAGIC])
}

fn has_magic(path: &Path, magics: &[u32]) -> Result<bool, FsError> {
    match fs_magic(path) {
        Ok(m) => Ok(magics.contains(&m)),
        Err(FsError::Statfs { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// Where bpffs is mounted: [`DEFAULT_BPFFS`] when it is a bpffs, otherwise the first `bpf` mount
/// in `/proc/self/mounts`, otherwise `None`.
pub fn find_bpffs() -> Result<Option<PathBuf>, FsError> {
    if is_bpffs(DEFAULT_BPFFS)? {
        return Ok(Some(PathBuf::from(DEFAULT_BPFFS)));
    }
    Ok(mounts()?
        .into_iter()
        .find(|m| m.fstype == "bpf")
        .map(|m| m.target))
}

/// Mounts a new bpffs instance at `path` (which must be an existing directory).
pub fn mount_bpffs(path: impl AsRef<Path>) -> Result<(), FsError> {
    mount("bpf", path.as_ref())
}

fn mount(fstype: &'static str, path: &Path) -> Result<(), FsError> {
    rustix::mount::mount(fstype, path, fstype, MountFlags::empty(), None).map_err(|e| {
        FsError::Mount {
            fstype,
            path: path.to_owned(),
            source: e.into(),
        }
    })
}

/// Unmounts the filesystem mounted at `path`.
pub fn unmount(path: impl AsRef<Path>) -> Result<(), FsError> {
    let path = path.as_ref();
    rustix::mount::unmount(path, UnmountFlags::empty()).map_err(|e| FsError::Unmount {
        path: path.to_owned(),
        source: e.into(),
    })
}

static TRACEFS: OnceLock<PathBuf> = OnceLock::new();

/// Where tracefs is mounted: [`TRACEFS_PATH`] if it holds tracefs, else
/// [`DEBUGFS_TRACING_PATH`] if it holds tracefs or is a directory on debugfs (old kernels);
/// `None` when neither is. A found path is cached for the life of the process (unmounting it
/// behind the library's back is not supported); `None` is not cached.
pub fn find_tracefs() -> Result<Option<&'static Path>, FsError> {
    if let Some(p) = TRACEFS.get() {
        return Ok(Some(p));
    }
    let found = if has_magic(Path::new(TRACEFS_PATH), &[TRACEFS_MAGIC])? {
        Some(TRACEFS_PATH)
    } else if has_magic(
        Path::new(DEBUGFS_TRACING_PATH),
        &[TRACEFS_MAGIC, DEBUGFS_MAGIC],
    )? {
        Some(DEBUGFS_TRACING_PATH)
    } else {
        None
    };
    Ok(found.map(|p| TRACEFS.get_or_init(|| PathBuf::from(p)).as_path()))
}

/// Where tracefs is mounted, mounting it at [`TRACEFS_PATH`] first if it is not (and, if that
/// fails, debugfs at [`DEBUGFS_PATH`], whose `tracing` directory then holds it). Mounting is
/// serialised within the process, so concurrent callers mount it once.
pub fn mount_tracefs() -> Result<&'static Path, FsError> {
    static LOCK: Mutex<()> = Mutex::new(());
    if let Some(p) = find_tracefs()? {
        return Ok(p);
    }
    let _guard = LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(p) = find_tracefs()? {
        return Ok(p);
    }
    let first = mount("tracefs", Path::new(TRACEFS_PATH));
    let result = match first {
        Ok(()) => Ok(()),
        Err(e) => {
            log::debug!("{e}; trying debugfs at {DEBUGFS_PATH}");
            match has_magic(Path::new(DEBUGFS_PATH), &[DEBUGFS_MAGIC])? {
                true => Err(e),
                false => mount("debugfs", Path::new(DEBUGFS_PATH)),
            }
        }
    };
    match (find_tracefs()?, result) {
        (Some(p), _) => Ok(p),
        (None, Err(e)) => Err(FsError::NoTracefs {
            source: Box::new(e),
        }),
        (None, Ok(())) => Err(FsError::NoTracefs {
            source: Box::new(FsError::Statfs {
                path: PathBuf::from(TRACEFS_PATH),
                source: io::Error::other("mounted, but no tracefs found"),
            }),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_mounts() {
        let text = "sysfs /sys sysfs rw,nosuid 0 0\n\
                    bpf /sys/fs/bpf bpf rw,relatime,mode=700 0 0\n\
                    none /tmp/with\\040space bpf rw 0 0\n\
                    garbage\n\
                    tracefs /sys/kernel/tracing tracefs rw 0 0\n";
        let m = parse_mounts(text);
        assert_eq!(m.len(), 4);
        assert_eq!(
            m[1],
            MountEntry {
                source: "bpf".into(),
                target: "/sys/fs/bpf".into(),
                fstype: "bpf".into()
            }
        );
        assert_eq!(m[2].target, Path::new("/tmp/with space"));
        assert_eq!(m[3].fstype, "tracefs");
    }

    #[test]
    fn unescape_handles_edges() {
        assert_eq!(unescape(r"a\134b"), r"a\b");
        assert_eq!(unescape(r"a\011"), "a\t");
        assert_eq!(unescape(r"a\01"), r"a\01");
        assert_eq!(unescape(r"\777"), r"\777");
        assert_eq!(unescape(r"\"), r"\");
    }

    #[test]
    fn a_missing_path_is_not_bpffs() {
        assert!(!is_bpffs("/nonexistent/definitely/not/here").unwrap());
        assert!(!is_bpffs("/").unwrap());
    }
}
