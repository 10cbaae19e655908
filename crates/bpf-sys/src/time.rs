//! Kernel timestamps to wall-clock time.
//!
//! `bpf_ktime_get_ns()` reads `CLOCK_MONOTONIC` (nanoseconds since boot, stopped while the machine
//! is suspended); `bpf_ktime_get_boot_ns()` reads `CLOCK_BOOTTIME` (the same, counting suspend).
//! A timestamp `t` of one of these clocks happened at wall-clock time
//! `realtime_now - clock_now + t`, with both "now"s read together. goebpf used the whole-second
//! `sysinfo.uptime` for the offset, which is off by up to a second and ignores suspend.
//!
//! The wall clock can be stepped (NTP, `date -s`): convert close to when the event happened, or
//! take a [`ClockOffset`] once and reuse it for a batch.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustix::time::{clock_gettime, ClockId, Timespec};

/// Which kernel clock a timestamp was taken with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KernelClock {
    /// `CLOCK_MONOTONIC`, as `bpf_ktime_get_ns()` and perf's default sample time give.
    #[doc(alias = "CLOCK_MONOTONIC")]
    Monotonic,
    /// `CLOCK_BOOTTIME`, as `bpf_ktime_get_boot_ns()` gives.
    #[doc(alias = "CLOCK_BOOTTIME")]
    Boottime,
}

impl KernelClock {
    fn id(self) -> ClockId {
        match self {
            KernelClock::Monotonic => ClockId::Monotonic,
            KernelClock::Boottime => ClockId::Boottime,
        }
    }

    /// This clock's current reading in nanoseconds.
    pub fn now_ns(self) -> u64 {
        u64::try_from(timespec_ns(clock_gettime(self.id()))).unwrap_or(0)
    }
}

/// The offset between a kernel clock and the wall clock, taken once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockOffset {
    /// Wall-clock nanoseconds since the Unix epoch at which the kernel clock read 0.
    epoch_ns: i128,
}

impl ClockOffset {
    /// Reads the wall clock and `clock` close together: the wall clock is read before and after
    /// the kernel clock and the midpoint is used, which halves the error a preemption between the
    /// reads would cause.
    pub fn now(clock: KernelClock) -> Self {
        let before = timespec_ns(clock_gettime(ClockId::Realtime));
        let kernel = timespec_ns(clock_gettime(clock.id()));
        let after = timespec_ns(clock_gettime(ClockId::Realtime));
        Self::from_readings(before + (after - before) / 2, kernel)
    }

    /// The offset from a wall-clock reading and a kernel-clock reading taken at the same moment,
    /// both in nanoseconds.
    pub fn from_readings(realtime_ns: i128, kernel_ns: i128) -> Self {
        ClockOffset {
            epoch_ns: realtime_ns - kernel_ns,
        }
    }

    /// The wall-clock time of kernel timestamp `ktime_ns`.
    pub fn to_system_time(&self, ktime_ns: u64) -> SystemTime {
        ns_to_system_time(self.epoch_ns + i128::from(ktime_ns))
    }
}

/// The wall-clock time of a `CLOCK_MONOTONIC` timestamp (`bpf_ktime_get_ns()`).
#[doc(alias = "KtimeToTime")]
pub fn ktime_to_system_time(ktime_ns: u64) -> SystemTime {
    ClockOffset::now(KernelClock::Monotonic).to_system_time(ktime_ns)
}

/// The wall-clock time of a `CLOCK_BOOTTIME` timestamp (`bpf_ktime_get_boot_ns()`).
pub fn boot_ktime_to_system_time(ktime_ns: u64) -> SystemTime {
    ClockOffset::now(KernelClock::Boottime).to_system_time(ktime_ns)
}

fn timespec_ns(ts: Timespec) -> i128 {
    i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec)
}

/// Nanoseconds since the Unix epoch (possibly negative) to a `SystemTime`, saturating at the
/// ends of what `SystemTime` can hold.
fn ns_to_system_time(ns: i128) -> SystemTime {
    let abs = ns.unsigned_abs();
    let secs = u64::try_from(abs / 1_000_000_000).unwrap_or(u64::MAX);
    // The remainder is below 10^9, so it fits in u32.
    let nanos = (abs % 1_000_000_000) as u32;
    let d = Duration::new(secs, nanos);
    let t = if ns >= 0 {
        UNIX_EPOCH.checked_add(d)
    } else {
        UNIX_EPOCH.checked_sub(d)
    };
    t.unwrap_or(UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_arithmetic() {
        let off = ClockOffset::from_readings(1_700_000_000_000_000_000, 5_000_000_000);
        let t = off.to_system_time(6_000_000_001);
        assert_eq!(
            t.duration_since(UNIX_EPOCH).unwrap(),
            Duration::new(1_700_000_001, 1)
        );
        let before_epoch = ClockOffset::from_readings(0, 2_500_000_000).to_system_time(0);
        assert_eq!(
            UNIX_EPOCH.duration_since(before_epoch).unwrap(),
            Duration::new(2, 500_000_000)
        );
    }

    #[test]
    fn a_timestamp_taken_now_converts_to_now() {
        for clock in [KernelClock::Monotonic, KernelClock::Boottime] {
            let k = clock.now_ns();
            let wall = SystemTime::now();
            let conv = match clock {
                KernelClock::Monotonic => ktime_to_system_time(k),
                KernelClock::Boottime => boot_ktime_to_system_time(k),
            };
            let diff = match conv.duration_since(wall) {
                Ok(d) => d,
                Err(e) => e.duration(),
            };
            assert!(
                diff < Duration::from_millis(50),
                "{clock:?}: off by {diff:?}"
            );
        }
    }
}
