//! tracefs probe events: the `kprobe_events` and `uprobe_events` files, written where the
//! kernel has no `kprobe`/`uprobe` perf PMU (or the caller forces it).
//!
//! Every event this library creates lives in its own group, [`GROUP`] (`ebpf`), and is named
//! `ebpf_<pid>_<seq>_<target>`: the namespace, the pid of the process that made it, a number
//! unique within that process, and the probed symbol made into a valid event name. The pid lets
//! [`cleanup_probes`] remove exactly the events left behind by processes that died without
//! removing theirs (goebpf's `CleanupProbes` removed every goebpf event, live owners' too).
//! Events are removed with their group (`-:ebpf/NAME`): goebpf wrote `-:NAME`, which depending
//! on the kernel missed kretprobe events or hit another group's event of the same name.
//!
//! Writes to the files are serialised within the process. The event itself is not enabled in
//! ftrace (goebpf wrote `1` to its `enable` file, which turned on ftrace recording for nothing):
//! a perf event on its id is all a BPF program needs.

use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use bpf_sys::SysError;

use crate::attach_error::AttachError;

/// The tracefs group of every event this library creates.
pub const GROUP: &str = "ebpf";

/// The prefix of the names of this library's events (then `<pid>_<seq>_<target>`).
pub const EVENT_PREFIX: &str = "ebpf_";

/// The longest event name the kernel accepts (`MAX_EVENT_NAME_LEN` 64, with the NUL).
pub const MAX_EVENT_NAME: usize = 63;

/// How long a removal waits for an event that is still busy (`EBUSY`: a perf event on it is
/// still open, typically a copy of its fd held by a concurrent fork until that child's exec).
const BUSY_WAIT: Duration = Duration::from_millis(1000);

/// Serialises writes to the probe event files within the process.
static WRITE_LOCK: Mutex<()> = Mutex::new(());

/// Makes event names unique within the process.
static NEXT_SEQ: AtomicU32 = AtomicU32::new(0);

/// Which tracefs file defines the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProbeFile {
    /// `kprobe_events`: kprobes and kretprobes.
    Kprobe,
    /// `uprobe_events`: uprobes and uretprobes.
    Uprobe,
}

impl ProbeFile {
    /// The file's name in tracefs.
    pub fn file_name(self) -> &'static str {
        match self {
            ProbeFile::Kprobe => "kprobe_events",
            ProbeFile::Uprobe => "uprobe_events",
        }
    }
}

/// One event defined in `kprobe_events` or `uprobe_events`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeEvent {
    /// The file it is defined in.
    pub file: ProbeFile,
    /// A return probe (`r`).
    pub retprobe: bool,
    /// A kretprobe's maxactive (`r64:`), when set.
    pub maxactive: Option<u32>,
    /// The event's group.
    pub group: String,
    /// The event's name.
    pub name: String,
    /// What it probes: `SYMBOL[+OFFSET]`, an address, or `PATH:0xOFFSET`.
    pub target: String,
    /// The pid of the process that created it, for this library's events.
    pub pid: Option<u32>,
}

impl ProbeEvent {
    /// Whether this library created it (group [`GROUP`], a name with a pid).
    pub fn is_ours(&self) -> bool {
        self.group == GROUP && self.pid.is_some()
    }

    /// `group/name`, as tracefs and `perf list` show it.
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.group, self.name)
    }
}

impl fmt::Display for ProbeEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&definition(
            self.retprobe,
            self.maxactive,
            &self.group,
            &self.name,
            &self.target,
        ))
    }
}

/// Parses one line of `kprobe_events` or `uprobe_events` (`p:GROUP/NAME TARGET [ARGS]`,
/// `r64:GROUP/NAME TARGET`); `None` for a line that is not an event definition.
pub fn parse_line(file: ProbeFile, line: &str) -> Option<ProbeEvent> {
    let mut fields = line.split_ascii_whitespace();
    let head = fields.next()?;
    let target = fields.next().unwrap_or("").to_string();
    let (kind, full) = head.split_once(':')?;
    let retprobe = match kind.as_bytes().first()? {
        b'p' => false,
        b'r' => true,
        _ => return None,
    };
    let maxactive = match &kind[1..] {
        "" => None,
        n => Some(n.parse().ok()?),
    };
    let (group, name) = full.split_once('/')?;
    if group.is_empty() || name.is_empty() {
        return None;
    }
    Some(ProbeEvent {
        file,
        retprobe,
        maxactive,
        group: group.to_string(),
        pid: (group == GROUP).then(|| pid_of_event(name)).flatten(),
        name: name.to_string(),
        target,
    })
}

/// The pid in one of this library's event names (`ebpf_<pid>_...`).
pub fn pid_of_event(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(EVENT_PREFIX)?;
    let (pid, _) = rest.split_once('_')?;
    pid.parse().ok()
}

/// An event name for `target` made by process `pid`: `ebpf_<pid>_<seq>_<target>`, the target
/// with every character outside `[A-Za-z0-9_]` replaced by `_`, cut so that the name fits
/// [`MAX_EVENT_NAME`].
pub fn event_name(pid: u32, seq: u32, target: &str) -> String {
    let mut name = format!("{EVENT_PREFIX}{pid}_{seq}_");
    for c in target.chars() {
        if name.len() >= MAX_EVENT_NAME {
            break;
        }
        name.push(if c.is_ascii_alphanumeric() || c == '_' {
            c
        } else {
            '_'
        });
    }
    name
}

/// The line that defines an event: `p:GROUP/NAME TARGET`, `r[MAXACTIVE]:GROUP/NAME TARGET`.
pub fn definition(
    retprobe: bool,
    maxactive: Option<u32>,
    group: &str,
    name: &str,
    target: &str,
) -> String {
    let kind = match (retprobe, maxactive) {
        (false, _) => "p".to_string(),
        (true, None) => "r".to_string(),
        (true, Some(n)) => format!("r{n}"),
    };
    format!("{kind}:{group}/{name} {target}")
}

/// Where tracefs is, mounting it (or debugfs) when it is not mounted.
pub(crate) fn tracefs() -> Result<&'static Path, AttachError> {
    bpf_sys::fs::mount_tracefs().map_err(|e| {
        AttachError::syscall(
            "find tracefs",
            bpf_sys::fs::TRACEFS_PATH,
            SysError::new("mount", io::Error::other(e.to_string())),
        )
    })
}

fn io_error(
    op: &'static str,
    target: impl fmt::Display,
    call: &'static str,
    e: io::Error,
) -> AttachError {
    AttachError::syscall(op, target, SysError::new(call, e))
}

fn write_command(path: &Path, command: &str) -> io::Result<()> {
    let _guard = WRITE_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let mut f = std::fs::OpenOptions::new().append(true).open(path)?;
    // One write: the kernel parses each write as one command.
    f.write_all(command.as_bytes())
}

/// A probe event this process created in tracefs; removed when dropped (best effort, logged)
/// or by [`TracefsEvent::remove`].
#[derive(Debug)]
pub(crate) struct TracefsEvent {
    tracefs: &'static Path,
    file: ProbeFile,
    name: String,
    keep: bool,
}

impl TracefsEvent {
    /// Defines an event for `target` (`SYMBOL[+OFFSET]` or `PATH:0xOFFSET`) and returns it with
    /// its tracepoint id.
    pub(crate) fn add(
        file: ProbeFile,
        retprobe: bool,
        maxactive: Option<u32>,
        target: &str,
        name_hint: &str,
    ) -> Result<(TracefsEvent, u64), AttachError> {
        let tracefs = tracefs()?;
        let path = tracefs.join(file.file_name());
        let seq = NEXT_SEQ.fetch_add(1, Ordering::Relaxed);
        let name = event_name(std::process::id(), seq, name_hint);
        let line = definition(retprobe, maxactive, GROUP, &name, target);
        write_command(&path, &line).map_err(|e| {
            io_error(
                "add probe event",
                format!("{line:?} in {}", path.display()),
                "write",
                e,
            )
        })?;
        let event = TracefsEvent {
            tracefs,
            file,
            name,
            keep: false,
        };
        // From here on, an error drops `event`, which removes it again.
        let id = event.id()?;
        Ok((event, id))
    }

    fn dir(&self) -> PathBuf {
        self.tracefs.join("events").join(GROUP).join(&self.name)
    }

    fn id(&self) -> Result<u64, AttachError> {
        let path = self.dir().join("id");
        read_id(&path)
    }

    /// `ebpf/NAME`.
    pub(crate) fn full_name(&self) -> String {
        format!("{GROUP}/{}", self.name)
    }

    /// Leaves the event in place when this value goes ([`cleanup_probes`] removes it once the
    /// process has died).
    pub(crate) fn keep(mut self) {
        self.keep = true;
    }

    /// Removes the event now.
    pub(crate) fn remove(mut self) -> Result<(), AttachError> {
        self.keep = true;
        remove_event(self.tracefs, self.file, GROUP, &self.name)
    }
}

impl Drop for TracefsEvent {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        if let Err(e) = remove_event(self.tracefs, self.file, GROUP, &self.name) {
            crate::link::log_drop_failure(&format!("probe event {GROUP}/{}", self.name), &e);
        }
    }
}

/// Reads a tracepoint id file (`events/GROUP/NAME/id`).
pub(crate) fn read_id(path: &Path) -> Result<u64, AttachError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| io_error("read tracepoint id", path.display(), "read", e))?;
    text.trim().parse().map_err(|_| {
        io_error(
            "read tracepoint id",
            path.display(),
            "parse",
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("not a number: {text:?}"),
            ),
        )
    })
}

/// Writes `-:GROUP/NAME`, waiting up to a second while the event is busy.
fn remove_event(
    tracefs: &Path,
    file: ProbeFile,
    group: &str,
    name: &str,
) -> Result<(), AttachError> {
    let path = tracefs.join(file.file_name());
    let command = format!("-:{group}/{name}");
    let start = std::time::Instant::now();
    loop {
        match write_command(&path, &command) {
            Ok(()) => return Ok(()),
            Err(e) if e.raw_os_error() == Some(EBUSY) && start.elapsed() < BUSY_WAIT => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => {
                return Err(io_error(
                    "remove probe event",
                    format!("{group}/{name} in {}", path.display()),
                    "write",
                    e,
                ))
            }
        }
    }
}

const EBUSY: i32 = 16;

/// Every event defined in the file, ours or not; a missing file (a kernel without that kind of
/// probe event) has none.
pub fn read_events(file: ProbeFile) -> Result<Vec<ProbeEvent>, AttachError> {
    let path = tracefs()?.join(file.file_name());
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(text.lines().filter_map(|l| parse_line(file, l)).collect()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(io_error("list probe events", path.display(), "read", e)),
    }
}

/// This library's probe events (group [`GROUP`]) in `kprobe_events` and `uprobe_events`, of
/// every process (goebpf's `ListProbes`, which listed every line of `kprobe_events`).
pub fn list_probes() -> Result<Vec<ProbeEvent>, AttachError> {
    let mut all = read_events(ProbeFile::Kprobe)?;
    all.extend(read_events(ProbeFile::Uprobe)?);
    all.retain(ProbeEvent::is_ours);
    Ok(all)
}

/// Whether a process with this pid exists (in this process's pid namespace).
fn pid_alive(pid: u32) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
}

/// Removes this library's probe events whose creating process is dead (left behind by a crash
/// or a `keep`), and returns them. Events of live processes are left alone; an event still in
/// use by some perf event (`EBUSY` for a second) is skipped with a logged warning. A pid reused
/// by another process keeps its old events until that process dies too.
pub fn cleanup_probes() -> Result<Vec<ProbeEvent>, AttachError> {
    let tracefs = tracefs()?;
    let mut removed = Vec::new();
    for event in list_probes()? {
        let Some(pid) = event.pid else { continue };
        if pid_alive(pid) {
            continue;
        }
        match remove_event(tracefs, event.file, &event.group, &event.name) {
            Ok(()) => removed.push(event),
            Err(e) if e.errno() == Some(EBUSY) => {
                log::warn!(target: "bpf_attach", "stale probe event {} is busy: {e}", event.full_name());
            }
            // Removed meanwhile by another cleanup.
            Err(e) if e.errno() == Some(ENOENT) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(removed)
}

const ENOENT: i32 = 2;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_of_both_files_parse() {
        let e = parse_line(
            ProbeFile::Kprobe,
            "p:ebpf/ebpf_42_0_do_sys_open do_sys_open",
        )
        .unwrap();
        assert!(e.is_ours());
        assert_eq!(e.pid, Some(42));
        assert!(!e.retprobe);
        assert_eq!(e.target, "do_sys_open");
        let e = parse_line(ProbeFile::Kprobe, "r128:ebpf/ebpf_7_3_x x+4 arg1=%di").unwrap();
        assert!(e.retprobe);
        assert_eq!(e.maxactive, Some(128));
        assert_eq!(e.target, "x+4");
        assert_eq!(e.to_string(), "r128:ebpf/ebpf_7_3_x x+4");
        let e = parse_line(
            ProbeFile::Uprobe,
            "r:ebpf/ebpf_9_1_f /bin/x:0x0000000000001130",
        )
        .unwrap();
        assert_eq!(e.target, "/bin/x:0x0000000000001130");
        assert_eq!(e.file, ProbeFile::Uprobe);
        // goebpf's events and other tools' are not ours.
        let e = parse_line(
            ProbeFile::Kprobe,
            "p:kprobes/sys_execve_goebpf_77 sys_execve",
        )
        .unwrap();
        assert!(!e.is_ours());
        let e = parse_line(ProbeFile::Kprobe, "p:ebpf/handmade foo").unwrap();
        assert!(!e.is_ours());
        for bad in [
            "",
            "garbage",
            "x:a/b c",
            "p:nogroup c",
            "p:/n c",
            "rX:a/b c",
        ] {
            assert_eq!(parse_line(ProbeFile::Kprobe, bad), None, "{bad:?}");
        }
    }

    #[test]
    fn event_names_are_valid_and_bounded() {
        assert_eq!(
            event_name(12, 0, "__x64_sys_getpid"),
            "ebpf_12_0___x64_sys_getpid"
        );
        assert_eq!(event_name(1, 2, "foo.isra.0"), "ebpf_1_2_foo_isra_0");
        let long = event_name(4_000_000, 99, &"a".repeat(200));
        assert_eq!(long.len(), MAX_EVENT_NAME);
        assert_eq!(pid_of_event(&long), Some(4_000_000));
        assert!(long.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
        assert_eq!(pid_of_event("ebpf_x_1"), None);
        assert_eq!(pid_of_event("other_1_2"), None);
    }

    #[test]
    fn definitions_carry_the_group() {
        assert_eq!(definition(false, None, GROUP, "n", "s"), "p:ebpf/n s");
        assert_eq!(definition(true, None, GROUP, "n", "s"), "r:ebpf/n s");
        assert_eq!(definition(true, Some(64), GROUP, "n", "s"), "r64:ebpf/n s");
        assert_eq!(definition(false, Some(64), GROUP, "n", "s"), "p:ebpf/n s");
    }
}
