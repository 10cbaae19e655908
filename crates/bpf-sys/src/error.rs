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
        SysError { call, source: io::Error::last_os_error() }
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
