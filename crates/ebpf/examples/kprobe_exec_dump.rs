//! goebpf's `kprobe/exec_dump`: prints every process execution on the machine, sent by a kprobe
//! on the execve system call through a perf event array.
//!
//! The program (`bpf-progs/kprobe_exec_dump.c`, section `kprobe/guess_execve`) sends, per
//! execve, a 56-byte header `{u64 ktime_ns, u32 pid, u32 uid, u32 gid, s32 type, char comm[32]}`,
//! then the file name and up to 20 arguments, each NUL-terminated, to the perf event array
//! `events`. The example removes stale probe events of dead processes (goebpf's
//! `CleanupProbes`), attaches the program to the system call's entry point (`guess_execve`
//! resolved through `/proc/kallsyms`), and prints `TIME PCOMM PID UID GID DESC` lines.
//!
//! It needs a kernel with kprobes (CONFIG_KPROBES); on one without, it stops with the library's
//! typed "unsupported" error. It touches no network interface.
//!
//! ```text
//! sudo target/debug/examples/kprobe_exec_dump
//! ```

mod common;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use common::{Args, Result};
use ebpf::attach::kprobe::{self, KprobeOptions};
use ebpf::attach::AttachError;
use ebpf::perf::{PerfEvents, RecvTimeoutError};
use ebpf::sys::time::ktime_to_system_time;

const NAME: &str = "kprobe_exec_dump";
const HEADER: usize = 56;
const USAGE: &str = "\
usage: kprobe_exec_dump [options]

Prints every process execution (execve) on the machine: time, parent command, pid, uid, gid,
file name and arguments, sent by a kprobe through a perf event array. Ctrl-C detaches, prints
how many events were received and lost, and exits.
Needs root and a kernel with kprobes (CONFIG_KPROBES).

options:
      --elf PATH         the BPF object (default: <workspace>/target/bpf/kprobe_exec_dump.o)
      --program NAME     the program in the object (default: execve_entry)
      --count N          stop after N events
      --duration SECS    stop after SECS seconds instead of waiting for Ctrl-C
  -h, --help             this text";

fn main() -> ExitCode {
    common::main_with(NAME, run)
}

fn run() -> Result {
    let mut elf: Option<PathBuf> = None;
    let mut program = "execve_entry".to_owned();
    let mut count: Option<u64> = None;
    let mut duration = None;
    let mut args = Args::from_env();
    while let Some(flag) = args.next_flag()? {
        match flag.as_str() {
            "--elf" => elf = Some(args.value()?.into()),
            "--program" => program = args.value()?,
            "--count" => count = Some(args.parse()?),
            "--duration" => duration = Some(args.duration()?),
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            _ => return Err(args.unknown()),
        }
    }
    common::require_root(NAME, "attaching a kprobe")?;

    // goebpf's CleanupProbes: events left by dead processes of this library. On a kernel
    // without kprobe_events there is nothing to clean; the attach below says why.
    match ebpf::attach::cleanup_probes() {
        Ok(removed) if !removed.is_empty() => {
            println!("removed {} stale probe event(s)", removed.len());
        }
        _ => {}
    }

    let path = common::object_path(elf, NAME)?;
    let system = common::load(&path)?;
    common::print_inventory(&system);
    let prog = system
        .program(&program)
        .ok_or_else(|| format!("the object has no program `{program}`"))?;
    let target = prog
        .attach_to()
        .ok_or_else(|| format!("the section of `{program}` names no function to probe"))?
        .to_owned();
    let fd = common::program(&system, &program)?;

    let stop = common::Stop::new(duration)?;
    let mut events = PerfEvents::new(common::map(&system, "events")?)?;
    let rx = events.start(64 * 1024)?;
    let counters = events.counters();
    let link = match kprobe::attach(fd, &target, &KprobeOptions::entry()) {
        Ok(link) => link,
        Err(e) => {
            let _ = events.stop();
            let symbol = kprobe::resolve_symbol(&target);
            let hint = if matches!(e, AttachError::Unsupported { .. }) {
                "\nthis example needs a kernel with kprobes (CONFIG_KPROBES), and the running \
                 kernel has none: run it on another kernel, for instance in `cargo xtask vm-test`"
            } else {
                ""
            };
            return Err(format!(
                "cannot attach the kprobe on {target} ({symbol}): {}{hint}",
                common::chain(&e)
            )
            .into());
        }
    };
    println!("attached: {}", link.describe());
    println!(
        "{:<12} {:<16} {:>7} {:>6} {:>6} DESC",
        "TIME", "PCOMM", "PID", "UID", "GID"
    );

    let mut seen = 0u64;
    while !stop.stopped() && count.is_none_or(|n| seen < n) {
        match rx.recv_timeout(stop.remaining(Duration::from_millis(200))) {
            Ok(event) => {
                seen += 1;
                print_event(&event.data);
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    let detached = link.detach();
    events.stop()?;
    detached?;
    println!();
    println!("Summary:");
    println!("\t{} events received", counters.received());
    println!("\t{} events lost", counters.lost());
    Ok(())
}

/// One execve: goebpf's line, `HH:MM:SS.mmm comm pid uid gid filename args...`.
fn print_event(data: &[u8]) {
    let Some(header) = data.get(..HEADER) else {
        println!("short event ({} bytes)", data.len());
        return;
    };
    let u32_at = |at: usize| {
        u32::from_ne_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
    };
    let mut ktime = [0u8; 8];
    ktime.copy_from_slice(&header[..8]);
    let ktime = u64::from_ne_bytes(ktime);
    let (pid, uid, gid) = (u32_at(8), u32_at(12), u32_at(16));
    let comm = ebpf::sys::util::nul_terminated_string_lossy(&header[24..56]);
    // The file name and the arguments, each NUL-terminated (the record may be padded).
    let strings: Vec<String> = data[HEADER..]
        .split(|&b| b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect();
    println!(
        "{:<12} {comm:<16} {pid:>7} {uid:>6} {gid:>6} {}",
        clock(ktime),
        strings.join(" ")
    );
}

/// `HH:MM:SS.mmm` (UTC) of a `bpf_ktime_get_ns()` timestamp.
fn clock(ktime_ns: u64) -> String {
    let t = ktime_to_system_time(ktime_ns)
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = t.as_secs() % 86_400;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        t.subsec_millis()
    )
}
