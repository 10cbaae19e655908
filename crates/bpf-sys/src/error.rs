//! The error of every system call in this crate.

use std::io;

/// A system call failed: which one, and the errno it gave.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
#[error("{call} failed")]
pub struct SysError {
    /// The call, named as the kernel names it (`BPF_MAP_CREATE`, `perf_event_open`, `mmap`).
    pub call: &'static str,
    /// The errno, as an `io::Error`.
    #[source]
    pub source: io::Error,
}

impl SysError {
    /// A failure of `call` with the thread's current errno.
    pub fn last(call: &'static str) -> Self {
        SysError {
            call,
            source: io::Error::last_os_error(),
        }
    }

    /// A failure of `call` with `source`.
    pub fn new(call: &'static str, source: io::Error) -> Self {
        SysError { call, source }
    }

    /// The raw errno, if the error came from the kernel.
    pub fn errno(&self) -> Option<i32> {
        self.source.raw_os_error()
    }
}

impl SysError {
    /// A call this crate refused before reaching the kernel, because an argument could not be
    /// passed as given (a slice shorter than the size the kernel uses, a path with a NUL byte).
    /// The source has kind `InvalidInput`, carries `msg`, and no errno.
    pub fn invalid_input(call: &'static str, msg: impl Into<String>) -> Self {
        SysError {
            call,
            source: io::Error::new(io::ErrorKind::InvalidInput, msg.into()),
        }
    }

    /// Whether the kernel answered with errno `errno`.
    pub fn is_errno(&self, errno: i32) -> bool {
        self.errno() == Some(errno)
    }
}

/// A batch map command failed after it had processed some elements.
///
/// `BPF_MAP_UPDATE_BATCH` and `BPF_MAP_DELETE_BATCH` stop at the first element that fails; the
/// elements before it were applied, and [`BatchError::count`] says how many.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
#[error("{} failed after {count} elements", source.call)]
pub struct BatchError {
    /// The elements processed before the failure.
    pub count: u32,
    /// The failure, naming the command and carrying the errno.
    #[source]
    pub source: SysError,
}

impl BatchError {
    /// The raw errno, if the error came from the kernel.
    pub fn errno(&self) -> Option<i32> {
        self.source.errno()
    }
}
