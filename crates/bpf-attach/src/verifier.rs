//! Verifier rejections as values ([`VerifierError`]), and the bounded state machine that grows
//! the verifier log buffer ([`LogGrowth`]).
//!
//! A program is first loaded without a log (the verifier runs faster, and most loads succeed);
//! only a failure is retried with a log, which grows when the kernel says it did not fit
//! (`ENOSPC`): to the size the kernel reports (`log_true_size`, Linux 6.4) or four times larger
//! before that, never past [`LogLimits::max_size`] and never more than [`LogLimits::max_tries`]
//! calls. The machine is pure, so it is unit-tested without a kernel.

use std::fmt;

use bpf_elf::LineInfo;
use bpf_sys::SysError;

use crate::error::errno::ENOSPC;

/// Bounds of the verifier log's growth, and the level to log at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogLimits {
    /// The log level of the first attempt: 0 loads without a log and asks for one only on
    /// failure; 1 (`LogBuf::LEVEL_ERRORS`), 2 (verbose) or 4 (stats) log from the first attempt,
    /// and a successful load keeps its log ([`crate::KernelProgram::verifier_log`]).
    pub level: u32,
    /// The first log buffer's size in bytes.
    pub initial_size: usize,
    /// The largest buffer tried; a log that does not fit in it is kept truncated.
    pub max_size: usize,
    /// The most `BPF_PROG_LOAD` calls for one load configuration.
    pub max_tries: u32,
}

impl Default for LogLimits {
    /// Level 0, 64 KiB first, 16 MiB at most, 6 calls.
    fn default() -> Self {
        LogLimits {
            level: 0,
            initial_size: 64 * 1024,
            max_size: 16 * 1024 * 1024,
            max_tries: 6,
        }
    }
}

/// One `BPF_PROG_LOAD` attempt the machine asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogRequest {
    /// The log buffer's size; 0 for no log.
    pub size: usize,
    /// The log level (0 with no log).
    pub level: u32,
}

/// How an attempt went, as the machine needs to know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    /// The log buffer the attempt had (0: none).
    pub size: usize,
    /// The errno of the failure.
    pub errno: Option<i32>,
    /// `log_true_size`: the bytes the whole log needs, when the kernel says (Linux 6.4).
    pub true_size: Option<u32>,
}

/// The log-growth state machine: call [`LogGrowth::next`] with `None` for the first attempt,
/// then with each failed attempt; stop when it answers `None` (or when an attempt succeeds).
#[derive(Debug, Clone)]
pub struct LogGrowth {
    limits: LogLimits,
    tries: u32,
}

impl LogGrowth {
    /// A machine with these bounds.
    pub fn new(limits: LogLimits) -> Self {
        let max_size = limits.max_size.clamp(128, bpf_sys::bpf::LogBuf::MAX_SIZE);
        let limits = LogLimits {
            max_size,
            initial_size: limits.initial_size.clamp(128, max_size),
            max_tries: limits.max_tries.max(1),
            ..limits
        };
        LogGrowth { limits, tries: 0 }
    }

    /// The calls made so far.
    pub fn tries(&self) -> u32 {
        self.tries
    }

    /// The next attempt after `last` (`None`: before the first), or `None` to stop: the last
    /// failure is final.
    pub fn next(&mut self, last: Option<Attempt>) -> Option<LogRequest> {
        if self.tries >= self.limits.max_tries {
            return None;
        }
        let level = self.limits.level.max(1);
        let request = match last {
            None if self.limits.level == 0 => LogRequest { size: 0, level: 0 },
            None => LogRequest {
                size: self.limits.initial_size,
                level,
            },
            // A failure without a log: once more with one.
            Some(a) if a.size == 0 => LogRequest {
                size: self.limits.initial_size,
                level,
            },
            // The log did not fit: grow it, to the size the kernel asked for when it said.
            Some(a) if a.errno == Some(ENOSPC) => {
                if a.size >= self.limits.max_size {
                    return None;
                }
                let wanted = match a.true_size {
                    Some(t) if t as usize > a.size => t as usize,
                    _ => a.size.saturating_mul(4),
                };
                LogRequest {
                    size: wanted.min(self.limits.max_size),
                    level,
                }
            }
            // Any other failure with a log is the verifier's (or the kernel's) answer.
            Some(_) => return None,
        };
        self.tries += 1;
        Some(request)
    }
}

/// Where a failing instruction came from, by BTF line info.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceLocation {
    /// The source file, as the compiler recorded it.
    pub file: String,
    /// The line (1-based).
    pub line: u32,
    /// The column (0 when not recorded).
    pub column: u32,
    /// The source line's text, when recorded.
    pub text: String,
}

impl fmt::Display for SourceLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// The verifier rejected a program.
///
/// `Display` gives one line: the program, where the failing instruction comes from (when the
/// object has BTF line info), the last relevant lines of the log and how many were left out.
/// `{:#}` adds the whole log on the lines after it; [`VerifierError::log`] gives it too.
///
/// ```text
/// verifier rejected program xdp_bad at bad.c:12: 1: (79) r0 = *(u64 *)(r2 +0): R2 !read_ok (3 lines omitted)
/// ```
#[derive(Debug)]
pub struct VerifierError {
    program: String,
    log: String,
    truncated: bool,
    failing_insn: Option<usize>,
    location: Option<SourceLocation>,
    source: SysError,
}

impl VerifierError {
    /// A rejection of `program`, with the call's error and the log.
    ///
    /// `truncated`: the log did not fit in the largest buffer allowed. `source_of` maps an
    /// instruction index to its source location (from BTF line info).
    pub fn new(
        program: impl Into<String>,
        source: SysError,
        log: impl Into<String>,
        truncated: bool,
        source_of: impl Fn(usize) -> Option<SourceLocation>,
    ) -> Self {
        let log = log.into();
        let failing_insn = failing_insn(&log);
        let location = failing_insn.and_then(source_of);
        VerifierError {
            program: program.into(),
            log,
            truncated,
            failing_insn,
            location,
            source,
        }
    }

    /// The program's name.
    pub fn program(&self) -> &str {
        &self.program
    }

    /// The errno of `BPF_PROG_LOAD` (`EACCES` for an unsafe program, `EINVAL` for a malformed
    /// one, `ENOSPC` when even the largest log did not fit).
    pub fn errno(&self) -> Option<i32> {
        self.source.errno()
    }

    /// The whole log, as the kernel wrote it.
    pub fn log(&self) -> &str {
        &self.log
    }

    /// The log's lines, without empty ones.
    pub fn lines(&self) -> impl Iterator<Item = &str> {
        self.log
            .lines()
            .map(str::trim_end)
            .filter(|l| !l.is_empty())
    }

    /// Whether the log was cut because it did not fit in the largest buffer allowed.
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    /// The index of the instruction the verifier stopped at, when the log names one.
    pub fn failing_insn(&self) -> Option<usize> {
        self.failing_insn
    }

    /// The source file and line of that instruction, from the object's BTF line info.
    pub fn source_location(&self) -> Option<&SourceLocation> {
        self.location.as_ref()
    }

    /// The lines `Display` shows, and how many it leaves out.
    pub fn relevant_lines(&self) -> (Vec<&str>, usize) {
        relevant_lines(&self.log)
    }
}

impl fmt::Display for VerifierError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "verifier rejected program {}", self.program)?;
        if let Some(loc) = &self.location {
            write!(f, " at {loc}")?;
        }
        let (lines, omitted) = relevant_lines(&self.log);
        if lines.is_empty() {
            f.write_str(" (empty log)")?;
        }
        for l in &lines {
            write!(f, ": {}", l.trim())?;
        }
        if omitted > 0 {
            let s = if omitted == 1 { "" } else { "s" };
            write!(f, " ({omitted} line{s} omitted)")?;
        }
        if self.truncated {
            f.write_str(" (log truncated)")?;
        }
        if f.alternate() {
            write!(f, "\n{}", self.log.trim_end())?;
        }
        Ok(())
    }
}

impl std::error::Error for VerifierError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Whether a log line is the summary the verifier prints after its verdict.
fn is_summary(line: &str) -> bool {
    const PREFIXES: [&str; 4] = [
        "processed ",
        "verification time ",
        "stack depth ",
        "mark_precise",
    ];
    PREFIXES.iter().any(|p| line.starts_with(p))
}

/// `N: (op) ...`: the index of an instruction line of the log.
fn insn_index(line: &str) -> Option<usize> {
    let (n, rest) = line.split_once(": ")?;
    if !rest.starts_with('(') {
        return None;
    }
    n.parse().ok()
}

/// The instruction the verifier stopped at: the last instruction line of the log.
pub(crate) fn failing_insn(log: &str) -> Option<usize> {
    log.lines().rev().find_map(|l| insn_index(l.trim()))
}

/// At most this many lines are shown.
const SHOWN: usize = 4;

/// The lines that explain the rejection: from the last instruction line (with its source line
/// before it) to the verdict, without the summary after it; at most [`SHOWN`] lines, the last
/// ones. Returns them and how many lines of the log are left out.
pub(crate) fn relevant_lines(log: &str) -> (Vec<&str>, usize) {
    let all: Vec<&str> = log
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .collect();
    let mut end = all.len();
    while end > 0 && is_summary(all[end - 1]) {
        end -= 1;
    }
    if end == 0 {
        // Only a summary (or nothing): show its last line.
        let shown: Vec<&str> = all.last().copied().into_iter().collect();
        return (shown.clone(), all.len() - shown.len());
    }
    let body = &all[..end];
    let mut start = match body.iter().rposition(|l| insn_index(l).is_some()) {
        Some(i) if i + 1 < end => {
            if i > 0 && body[i - 1].starts_with(';') {
                i - 1
            } else {
                i
            }
        }
        // No instruction line, or the log ends on one: the verdict and the line before it.
        _ => end.saturating_sub(2),
    };
    start = start.max(end.saturating_sub(SHOWN));
    let shown = body[start..end].to_vec();
    (shown.clone(), all.len() - shown.len())
}

/// The strings of a raw BTF blob in the host's byte order.
pub(crate) fn btf_string(raw: &[u8], offset: u32) -> Option<String> {
    let u32_at =
        |o: usize| -> Option<u32> { Some(u32::from_ne_bytes(raw.get(o..o + 4)?.try_into().ok()?)) };
    if raw.get(..2)? != 0xeb9fu16.to_ne_bytes() {
        return None;
    }
    let hdr = u32_at(4)? as usize;
    let start = hdr.checked_add(u32_at(16)? as usize)?;
    let end = start.checked_add(u32_at(20)? as usize)?;
    let strings = raw.get(start..end)?;
    let rest = strings.get(offset as usize..)?;
    let len = rest.iter().position(|&b| b == 0)?;
    Some(String::from_utf8_lossy(&rest[..len]).into_owned())
}

/// The source location of instruction `insn`: the line info record with the largest
/// instruction index not past it.
pub(crate) fn locate(btf: &[u8], line_info: &[LineInfo], insn: usize) -> Option<SourceLocation> {
    let rec = line_info
        .iter()
        .filter(|r| r.insn <= insn)
        .max_by_key(|r| r.insn)?;
    Some(SourceLocation {
        file: btf_string(btf, rec.file_name_off)?,
        line: rec.line(),
        column: rec.column(),
        text: btf_string(btf, rec.line_off).unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::errno::{EACCES, EINVAL, EPERM};

    fn fail(size: usize, errno: i32, true_size: Option<u32>) -> Option<Attempt> {
        Some(Attempt {
            size,
            errno: Some(errno),
            true_size,
        })
    }

    #[test]
    fn first_attempt_has_no_log_then_a_failure_gets_one() {
        let mut m = LogGrowth::new(LogLimits::default());
        assert_eq!(m.next(None), Some(LogRequest { size: 0, level: 0 }));
        assert_eq!(
            m.next(fail(0, EACCES, None)),
            Some(LogRequest {
                size: 64 * 1024,
                level: 1
            })
        );
        // The verifier's answer with a log is final.
        assert_eq!(m.next(fail(64 * 1024, EACCES, None)), None);
        assert_eq!(m.tries(), 2);
    }

    #[test]
    fn a_requested_level_logs_from_the_first_attempt() {
        let mut m = LogGrowth::new(LogLimits {
            level: 2,
            ..LogLimits::default()
        });
        assert_eq!(
            m.next(None),
            Some(LogRequest {
                size: 64 * 1024,
                level: 2
            })
        );
    }

    #[test]
    fn enospc_grows_four_times_without_true_size() {
        let mut m = LogGrowth::new(LogLimits::default());
        m.next(None);
        let r = m.next(fail(0, EACCES, None)).unwrap();
        let r = m.next(fail(r.size, ENOSPC, None)).unwrap();
        assert_eq!(r.size, 256 * 1024);
    }

    #[test]
    fn enospc_jumps_to_the_true_size_when_reported() {
        let mut m = LogGrowth::new(LogLimits::default());
        m.next(None);
        let r = m.next(fail(0, EINVAL, None)).unwrap();
        let r = m.next(fail(r.size, ENOSPC, Some(100_000))).unwrap();
        assert_eq!(r.size, 100_000);
        // A true size that is not larger is ignored: grow anyway.
        let r = m.next(fail(r.size, ENOSPC, Some(10))).unwrap();
        assert_eq!(r.size, 400_000);
    }

    #[test]
    fn growth_stops_at_the_cap_and_the_try_limit() {
        let limits = LogLimits {
            max_size: 1 << 20,
            max_tries: 10,
            ..LogLimits::default()
        };
        let mut m = LogGrowth::new(limits);
        let mut last = None;
        let mut sizes = Vec::new();
        while let Some(r) = m.next(last) {
            sizes.push(r.size);
            last = fail(r.size, if r.size == 0 { EACCES } else { ENOSPC }, None);
        }
        assert_eq!(sizes, [0, 65536, 262144, 1048576]);
        // A huge true size is capped.
        let mut m = LogGrowth::new(limits);
        m.next(None);
        m.next(fail(0, EACCES, None));
        assert_eq!(
            m.next(fail(65536, ENOSPC, Some(u32::MAX))).unwrap().size,
            1 << 20
        );

        let mut m = LogGrowth::new(LogLimits {
            max_tries: 3,
            ..LogLimits::default()
        });
        let mut n = 0;
        let mut last = None;
        while let Some(r) = m.next(last) {
            n += 1;
            last = fail(r.size, if r.size == 0 { EPERM } else { ENOSPC }, None);
        }
        assert_eq!(n, 3);
    }

    #[test]
    fn limits_are_sanitised() {
        let mut m = LogGrowth::new(LogLimits {
            level: 1,
            initial_size: 0,
            max_size: usize::MAX,
            max_tries: 0,
        });
        assert_eq!(
            m.next(None),
            Some(LogRequest {
                size: 128,
                level: 1
            })
        );
        assert_eq!(m.next(fail(128, ENOSPC, None)), None);
    }

    const REJECTED: &str = "\
func#0 @0
0: R1=ctx() R10=fp0
; int xdp_bad(struct xdp_md *ctx) @ bad.c:12
0: (b7) r0 = 0                        ; R0_w=0
1: (79) r0 = *(u64 *)(r2 +0)
R2 !read_ok
processed 2 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0
";

    fn sys(errno: i32) -> SysError {
        SysError::new("BPF_PROG_LOAD", std::io::Error::from_raw_os_error(errno))
    }

    #[test]
    fn display_ends_with_the_failing_instruction_and_the_verdict() {
        let e = VerifierError::new("xdp_bad", sys(EACCES), REJECTED, false, |_| None);
        assert_eq!(e.failing_insn(), Some(1));
        assert_eq!(
            e.to_string(),
            "verifier rejected program xdp_bad: 1: (79) r0 = *(u64 *)(r2 +0): R2 !read_ok \
             (5 lines omitted)"
        );
        assert_eq!(e.errno(), Some(EACCES));
        let all = format!("{e:#}");
        assert!(all.ends_with("mark_read 0"), "{all}");
        assert!(all.contains("func#0 @0"));
    }

    #[test]
    fn display_names_the_source_line() {
        let loc = SourceLocation {
            file: "bad.c".into(),
            line: 13,
            column: 5,
            text: "return *p;".into(),
        };
        let e = VerifierError::new("xdp_bad", sys(EACCES), REJECTED, false, |i| {
            (i == 1).then(|| loc.clone())
        });
        assert!(e
            .to_string()
            .starts_with("verifier rejected program xdp_bad at bad.c:13: 1:"));
        assert_eq!(e.source_location(), Some(&loc));
    }

    #[test]
    fn source_line_before_the_failing_instruction_is_shown() {
        let log = "0: (b7) r0 = 0\n; return *(int *)0; @ x.c:3\n1: (61) r0 = *(u32 *)(r0 +0)\nR0 invalid mem access 'scalar'\n";
        let (lines, omitted) = relevant_lines(log);
        assert_eq!(
            lines,
            [
                "; return *(int *)0; @ x.c:3",
                "1: (61) r0 = *(u32 *)(r0 +0)",
                "R0 invalid mem access 'scalar'"
            ]
        );
        assert_eq!(omitted, 1);
    }

    #[test]
    fn logs_without_instruction_lines_show_the_last_two() {
        let log = "BPF program is too large. Processed 1000001 insn\nlast line\nprocessed 1000001 insns\n";
        let e = VerifierError::new("big", sys(E2BIG_FOR_TEST), log, true, |_| None);
        assert_eq!(
            e.to_string(),
            "verifier rejected program big: BPF program is too large. Processed 1000001 insn: \
             last line (1 line omitted) (log truncated)"
        );
        let e = VerifierError::new("x", sys(EINVAL), "", false, |_| None);
        assert_eq!(e.to_string(), "verifier rejected program x (empty log)");
        let (l, o) = relevant_lines("processed 1 insns\n");
        assert_eq!((l, o), (vec!["processed 1 insns"], 0));
    }

    const E2BIG_FOR_TEST: i32 = crate::error::errno::E2BIG;

    #[test]
    fn a_long_tail_after_the_instruction_is_cut_to_the_last_lines() {
        let log = "5: (85) call bpf_foo#1234\na\nb\nc\nd\ne\n";
        let (lines, omitted) = relevant_lines(log);
        assert_eq!(lines, ["b", "c", "d", "e"]);
        assert_eq!(omitted, 2);
    }

    fn raw_btf(strings: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&0xeb9fu16.to_ne_bytes());
        b.extend_from_slice(&[1, 0]);
        for v in [24u32, 0, 0, 0, strings.len() as u32] {
            b.extend_from_slice(&v.to_ne_bytes());
        }
        b.extend_from_slice(strings);
        b
    }

    #[test]
    fn line_info_gives_file_and_line() {
        let btf = raw_btf(b"\0bad.c\0return 0;\0");
        let recs = [
            LineInfo {
                insn: 0,
                file_name_off: 1,
                line_off: 7,
                line_col: (10 << 10) | 3,
            },
            LineInfo {
                insn: 4,
                file_name_off: 1,
                line_off: 7,
                line_col: 12 << 10,
            },
        ];
        let l = locate(&btf, &recs, 3).unwrap();
        assert_eq!((l.file.as_str(), l.line, l.column), ("bad.c", 10, 3));
        assert_eq!(l.text, "return 0;");
        assert_eq!(locate(&btf, &recs, 9).unwrap().line, 12);
        assert_eq!(locate(&btf, &[], 0), None);
        assert_eq!(btf_string(b"nonsense", 0), None);
    }
}
