//! CPU lists: the kernel's `0-3,8-11` syntax, and the possible and online CPUs of this machine.
//!
//! Per-CPU maps hold one value for each *possible* CPU; perf event arrays get one ring for each
//! *online* CPU. Both sets can have holes (`0-3,8-11`), so they are returned as lists of CPU ids,
//! not counts (goebpf accepted only `0` and `0-N`, and reported a read error only once: both fixed
//! here).

use std::fmt::Write as _;
use std::io;
use std::sync::OnceLock;

/// Where the kernel lists the possible CPUs.
pub const POSSIBLE_PATH: &str = "/sys/devices/system/cpu/possible";
/// Where the kernel lists the online CPUs.
pub const ONLINE_PATH: &str = "/sys/devices/system/cpu/online";

/// The largest CPU id the parser accepts (the kernel's `NR_CPUS` is at most 8192); bounds the
/// memory a bad input can ask for.
pub const MAX_CPU_ID: u32 = (1 << 16) - 1;

/// A CPU list string that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CpuListError {
    /// An item is not a number or a `low-high` range.
    #[error("invalid item {item:?} in cpu list {input:?}")]
    BadItem {
        /// The whole input.
        input: String,
        /// The item that does not parse.
        item: String,
    },
    /// A range whose low end is above its high end (`3-1`).
    #[error("reversed range {item:?} in cpu list {input:?}")]
    ReversedRange {
        /// The whole input.
        input: String,
        /// The range.
        item: String,
    },
    /// Two commas with nothing between them, or a leading or trailing comma.
    #[error("empty item in cpu list {input:?}")]
    EmptyItem {
        /// The whole input.
        input: String,
    },
    /// A CPU id above [`MAX_CPU_ID`].
    #[error("cpu {cpu} in cpu list {input:?} is above the limit {max}", max = MAX_CPU_ID)]
    TooLarge {
        /// The whole input.
        input: String,
        /// The CPU id.
        cpu: u64,
    },
}

/// The CPU list of this machine could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CpuError {
    /// The sysfs file could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: &'static str,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The sysfs file does not hold a CPU list.
    #[error("cannot parse {path}")]
    Parse {
        /// The file.
        path: &'static str,
        /// Why.
        #[source]
        source: CpuListError,
    },
}

/// Parses a CPU list (`0`, `0-3`, `0-3,8-11`; whitespace around items and a trailing newline are
/// allowed; an empty or blank string is the empty list) into sorted, deduplicated CPU ids.
///
/// ```
/// # use bpf_sys::cpu::parse_cpu_list;
/// assert_eq!(parse_cpu_list("0-2,8\n").unwrap(), vec![0, 1, 2, 8]);
/// assert!(parse_cpu_list("0,,1").is_err());
/// ```
pub fn parse_cpu_list(input: &str) -> Result<Vec<u32>, CpuListError> {
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Ok(Vec::new());
    }
    let mut cpus = Vec::new();
    for raw in trimmed.split(',') {
        let item = raw.trim();
        if item.is_empty() {
            return Err(CpuListError::EmptyItem {
                input: input.to_owned(),
            });
        }
        let bad = || CpuListError::BadItem {
            input: input.to_owned(),
            item: item.to_owned(),
        };
        let (low, high) = match item.split_once('-') {
            Some((l, h)) => (
                parse_id(l.trim(), input).ok_or_else(bad)??,
                parse_id(h.trim(), input).ok_or_else(bad)??,
            ),
            None => {
                let id = parse_id(item, input).ok_or_else(bad)??;
                (id, id)
            }
        };
        if low > high {
            return Err(CpuListError::ReversedRange {
                input: input.to_owned(),
                item: item.to_owned(),
            });
        }
        cpus.extend(low..=high);
    }
    cpus.sort_unstable();
    cpus.dedup();
    Ok(cpus)
}

/// A decimal CPU id: `None` when `s` is not made of ASCII digits, `Some(Err)` when it is too large.
fn parse_id(s: &str, input: &str) -> Option<Result<u32, CpuListError>> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // All digits: the only failure left is overflow.
    let id = s.parse::<u64>().unwrap_or(u64::MAX);
    Some(match u32::try_from(id) {
        Ok(id) if id <= MAX_CPU_ID => Ok(id),
        _ => Err(CpuListError::TooLarge {
            input: input.to_owned(),
            cpu: id,
        }),
    })
}

/// Formats CPU ids as the kernel does (`0-3,8-11`); the inverse of [`parse_cpu_list`] for sorted,
/// deduplicated input (any input is accepted: it is sorted and deduplicated first).
pub fn format_cpu_list(cpus: &[u32]) -> String {
    let mut sorted = cpus.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out = String::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        // Writing to a String cannot fail.
        let _ = if start == end {
            write!(out, "{start}")
        } else {
            write!(out, "{start}-{end}")
        };
        i += 1;
    }
    out
}

fn read_cpu_file(path: &'static str) -> Result<Vec<u32>, CpuError> {
    let text = std::fs::read_to_string(path).map_err(|source| CpuError::Read { path, source })?;
    parse_cpu_list(&text).map_err(|source| CpuError::Parse { path, source })
}

/// The possible CPUs (`/sys/devices/system/cpu/possible`), read once and cached: the set is
/// fixed at boot. A failure is not cached: every call that fails returns the error.
pub fn possible_cpus() -> Result<&'static [u32], CpuError> {
    static POSSIBLE: OnceLock<Vec<u32>> = OnceLock::new();
    if let Some(cpus) = POSSIBLE.get() {
        return Ok(cpus);
    }
    let cpus = read_cpu_file(POSSIBLE_PATH)?;
    Ok(POSSIBLE.get_or_init(|| cpus))
}

/// The number of possible CPUs: how many values a per-CPU map holds for each key.
pub fn num_possible_cpus() -> Result<usize, CpuError> {
    possible_cpus().map(<[u32]>::len)
}

/// The online CPUs (`/sys/devices/system/cpu/online`), read at each call: CPU hotplug changes
/// the set while the process runs, and this is called only when rings are set up.
pub fn online_cpus() -> Result<Vec<u32>, CpuError> {
    read_cpu_file(ONLINE_PATH)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_every_kernel_format() {
        assert_eq!(parse_cpu_list("0").unwrap(), vec![0]);
        assert_eq!(parse_cpu_list("0\n").unwrap(), vec![0]);
        assert_eq!(parse_cpu_list("0-3").unwrap(), vec![0, 1, 2, 3]);
        assert_eq!(
            parse_cpu_list("0-3,8-11\n").unwrap(),
            vec![0, 1, 2, 3, 8, 9, 10, 11]
        );
        assert_eq!(parse_cpu_list("1,3 , 5-6").unwrap(), vec![1, 3, 5, 6]);
        assert_eq!(parse_cpu_list("2,0-2").unwrap(), vec![0, 1, 2]);
        assert_eq!(parse_cpu_list("").unwrap(), Vec::<u32>::new());
        assert_eq!(parse_cpu_list(" \n").unwrap(), Vec::<u32>::new());
    }

    #[test]
    fn rejects_bad_input_with_a_typed_error() {
        assert!(matches!(
            parse_cpu_list("0,,1"),
            Err(CpuListError::EmptyItem { .. })
        ));
        assert!(matches!(
            parse_cpu_list("0,"),
            Err(CpuListError::EmptyItem { .. })
        ));
        assert!(matches!(
            parse_cpu_list("3-1"),
            Err(CpuListError::ReversedRange { .. })
        ));
        assert!(matches!(
            parse_cpu_list("a"),
            Err(CpuListError::BadItem { .. })
        ));
        assert!(matches!(
            parse_cpu_list("-1"),
            Err(CpuListError::BadItem { .. })
        ));
        assert!(matches!(
            parse_cpu_list("1-"),
            Err(CpuListError::BadItem { .. })
        ));
        assert!(matches!(
            parse_cpu_list("0-7:2/4"),
            Err(CpuListError::BadItem { .. })
        ));
        assert!(matches!(
            parse_cpu_list("+1"),
            Err(CpuListError::BadItem { .. })
        ));
        assert!(matches!(
            parse_cpu_list("0-4294967295"),
            Err(CpuListError::TooLarge { .. })
        ));
        assert!(matches!(
            parse_cpu_list("99999999999999999999999"),
            Err(CpuListError::TooLarge { cpu: u64::MAX, .. })
        ));
        let msg = parse_cpu_list("x").unwrap_err().to_string();
        assert_eq!(msg, "invalid item \"x\" in cpu list \"x\"");
    }

    #[test]
    fn formats_like_the_kernel() {
        assert_eq!(format_cpu_list(&[]), "");
        assert_eq!(format_cpu_list(&[0]), "0");
        assert_eq!(format_cpu_list(&[0, 1, 2, 3, 8, 9, 10, 11]), "0-3,8-11");
        assert_eq!(format_cpu_list(&[5, 1, 3, 2]), "1-3,5");
    }

    proptest! {
        #[test]
        fn parse_inverts_format(set in proptest::collection::btree_set(0u32..300, 0..64)) {
            let cpus: Vec<u32> = set.into_iter().collect();
            let text = format_cpu_list(&cpus) + "\n";
            prop_assert_eq!(parse_cpu_list(&text).unwrap(), cpus);
        }

        #[test]
        fn parser_never_panics(s in "[0-9, \\-\n:a]{0,24}") {
            let _ = parse_cpu_list(&s);
        }
    }
}
