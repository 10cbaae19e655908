//! The process-wide table of mock "fds": the numbers that stand for mock maps and loaded mock
//! programs in the values of fd-holding maps (program arrays, maps of maps), as real fds do in
//! the kernel. No real fd is ever opened: the numbers start far above any fd a process holds.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, Weak};

use crate::map::Inner;

/// The first mock fd number.
pub const FIRST_MOCK_FD: i32 = 0x1000_0000;

static NEXT_FD: AtomicU32 = AtomicU32::new(FIRST_MOCK_FD as u32);
static NEXT_MAP_ID: AtomicU32 = AtomicU32::new(1);
static NEXT_PROG_ID: AtomicU32 = AtomicU32::new(1);

/// What a mock fd stands for.
#[derive(Debug, Clone)]
pub(crate) enum Entry {
    Map(Weak<Inner>),
    Program { id: u32 },
}

static TABLE: Mutex<BTreeMap<i32, Entry>> = Mutex::new(BTreeMap::new());

fn table() -> std::sync::MutexGuard<'static, BTreeMap<i32, Entry>> {
    TABLE.lock().unwrap_or_else(|e| e.into_inner())
}

/// A fresh mock fd number (wraps long before `i32::MAX`: 2^28 numbers are plenty for tests).
pub(crate) fn next_fd() -> i32 {
    let n = NEXT_FD.fetch_add(1, Ordering::Relaxed);
    FIRST_MOCK_FD + (n.wrapping_sub(FIRST_MOCK_FD as u32) & 0x0fff_ffff) as i32
}

pub(crate) fn next_map_id() -> u32 {
    NEXT_MAP_ID.fetch_add(1, Ordering::Relaxed)
}

pub(crate) fn next_prog_id() -> u32 {
    NEXT_PROG_ID.fetch_add(1, Ordering::Relaxed)
}

pub(crate) fn register(fd: i32, entry: Entry) {
    table().insert(fd, entry);
}

pub(crate) fn unregister(fd: i32) {
    table().remove(&fd);
}

pub(crate) fn resolve(fd: i32) -> Option<Entry> {
    table().get(&fd).cloned()
}
