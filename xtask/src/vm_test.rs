//! `cargo xtask vm-test`: runs the kernel test binary inside a Debian kernel under qemu (TCG).
//!
//! The kernels come from Debian's archive (one private apt view per suite, `debian.rs`) and
//! are cached under `target/vm/LABEL/`; the initramfs is rebuilt on every run (a few seconds).
//! The VM's `/init` prints one result line, [`RESULT_PREFIX`] followed by the test binary's
//! exit status, and powers off. See `docs/testing.md`.

mod initramfs;
mod modules;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use crate::debian::{extract, Archive};
use crate::util::target_dir;
use crate::Result;

const USAGE: &str = "\
usage: cargo xtask vm-test [--kernel 5.10|6.1|6.12|all] [--timeout SECS] [--verbose]
                           [--cmdline PARAMS] [--sh CMD] [-- ARGS]
  --kernel   which Debian kernel to boot (default 6.1); `all` runs each in turn
  --timeout  seconds before qemu is killed, per kernel (default 900)
  --verbose  show the kernel's messages (no `quiet`), with a backtrace of every CPU on a
             soft lockup
  --cmdline  more kernel command line parameters (e.g. `softlockup_panic=1`)
  --sh CMD   run the shell command CMD in the VM instead of the kernel test binary
  ARGS       passed to the kernel test binary";

/// The line the VM's init prints when the payload has finished: this prefix, then its exit status.
pub const RESULT_PREFIX: &str = "ebpf-vm-test: exit=";
/// What the init prints when a mount, `insmod` or the like fails: the run then fails too.
pub const SETUP_FAILED: &str = "ebpf-vm-test: setup failed:";

/// Kernel modules the tests need (veth pairs, TC classifier and action programs, and
/// connection tracking, whose kfuncs are in its own BTF), in load order: `crc32c_generic`
/// before `nf_conntrack`, which needs `libcrc32c`, whose init needs a `crc32c` (a soft
/// dependency, which `.modinfo`'s `depends` does not list).
const MODULES: &[&str] = &[
    "veth",
    "cls_bpf",
    "sch_ingress",
    "act_bpf",
    "crc32c_generic",
    "nf_conntrack",
];

/// The kernel command line of every run.
const CMDLINE: &str = "console=ttyS0 panic=-1";
/// Added to [`CMDLINE`] unless `--verbose`: only the payload's output on the console.
const QUIET: &str = "quiet";
/// Added to [`CMDLINE`] with `--verbose`: a soft lockup prints the stacks of all CPUs.
const VERBOSE: &str = "softlockup_all_cpu_backtrace=1";

/// TCG with both vCPUs on one host thread. Multi-threaded TCG (QEMU's default for `-smp 2`)
/// sometimes keeps running a stale translation of an `int3` after the kernel has patched its
/// own text back (a tracepoint or kprobe switched on or off while the other vCPU runs the same
/// code); that vCPU then traps on the `int3` forever, a soft lockup. See docs/testing.md,
/// "Single-threaded TCG".
const ACCEL: &str = "tcg,thread=single";

/// How long qemu may take to power off after the result line before it is killed.
const POWEROFF_GRACE: Duration = Duration::from_secs(30);

/// A Debian kernel the tests run on: `linux-image-amd64` of `suite`.
struct Kernel {
    label: &'static str,
    suite: &'static str,
}

/// To add a kernel: one line here (a Debian suite whose `linux-image-amd64` resolves to it).
const KERNELS: &[Kernel] = &[
    Kernel {
        label: "5.10",
        suite: "bullseye",
    },
    Kernel {
        label: "6.1",
        suite: "bookworm",
    },
    Kernel {
        label: "6.12",
        suite: "trixie",
    },
];

/// What the VM runs.
pub enum Payload {
    /// The kernel test binary with its arguments.
    Tests { binary: PathBuf, args: Vec<String> },
    /// A shell command instead (`--sh`), to check the VM itself by hand.
    Shell(String),
}

struct Options {
    kernels: Vec<&'static Kernel>,
    timeout: Duration,
    shell: Option<String>,
    args: Vec<String>,
    /// The kernel command line.
    cmdline: String,
}

pub fn run(args: &[String]) -> Result {
    let options = parse(args)?;
    let payload = match options.shell {
        Some(script) => Payload::Shell(script),
        None => Payload::Tests {
            binary: crate::test::kernel_test_binary()?,
            args: options.args,
        },
    };
    let mut results = Vec::new();
    for kernel in &options.kernels {
        let result = run_kernel(kernel, &payload, &options.cmdline, options.timeout);
        match &result {
            Ok(report) => println!("vm-test {}: ok, {}", kernel.label, report.timings()),
            Err(e) => eprintln!("vm-test {}: FAILED: {e}", kernel.label),
        }
        results.push((kernel.label, result));
    }
    summarise(&results)
}

fn parse(args: &[String]) -> Result<Options> {
    let mut options = Options {
        kernels: vec![kernel("6.1")?],
        timeout: Duration::from_secs(900),
        shell: None,
        args: Vec::new(),
        cmdline: String::new(),
    };
    let mut verbose = false;
    let mut extra = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = || {
            it.next()
                .ok_or_else(|| format!("{arg} needs a value\n{USAGE}"))
        };
        match arg.as_str() {
            "--kernel" => options.kernels = kernels(value()?)?,
            "--timeout" => options.timeout = Duration::from_secs(seconds(value()?)?),
            "--sh" => options.shell = Some(value()?.clone()),
            "--verbose" => verbose = true,
            "--cmdline" => extra.push(value()?.as_str()),
            "--" => {
                options.args = it.by_ref().cloned().collect();
            }
            other => return Err(format!("unexpected argument `{other}`\n{USAGE}")),
        }
    }
    let mode = if verbose { VERBOSE } else { QUIET };
    options.cmdline = [CMDLINE, mode]
        .into_iter()
        .chain(extra)
        .collect::<Vec<_>>()
        .join(" ");
    Ok(options)
}

fn kernels(label: &str) -> Result<Vec<&'static Kernel>> {
    if label == "all" {
        Ok(KERNELS.iter().collect())
    } else {
        Ok(vec![kernel(label)?])
    }
}

fn kernel(label: &str) -> Result<&'static Kernel> {
    KERNELS
        .iter()
        .find(|k| k.label == label)
        .ok_or_else(|| format!("unknown kernel `{label}`\n{USAGE}"))
}

fn seconds(text: &str) -> Result<u64> {
    text.parse()
        .map_err(|_| format!("--timeout: `{text}` is not a number of seconds"))
}

/// What a passing run on one kernel measured.
struct Report {
    package: String,
    initramfs: Duration,
    to_result: Duration,
}

impl Report {
    fn timings(&self) -> String {
        format!(
            "{}: initramfs built in {:.1}s, boot to result {:.1}s",
            self.package,
            self.initramfs.as_secs_f64(),
            self.to_result.as_secs_f64()
        )
    }
}

fn run_kernel(
    kernel: &Kernel,
    payload: &Payload,
    cmdline: &str,
    timeout: Duration,
) -> Result<Report> {
    let image = prepare(kernel)?;
    let modules = modules::resolve(&image.modules, MODULES)?;
    // One initramfs per run: two vm-tests at once (two terminals, two checkouts sharing a
    // target directory) must not boot each other's payloads.
    let initrd = kernel_dir(kernel).join(format!("initrd-{}.img", std::process::id()));
    let _cleanup = RemoveOnDrop(initrd.clone());
    let start = Instant::now();
    let spec = initramfs::Spec {
        label: kernel.label,
        boot: &image.boot,
        modules: &modules,
        payload,
    };
    let size = initramfs::build(&spec, &initrd)?;
    let initramfs = start.elapsed();
    println!(
        "vm-test {}: booting {} with a {:.1} MiB initramfs ({} modules)",
        kernel.label,
        image.package,
        size as f64 / (1 << 20) as f64,
        modules.len()
    );
    let outcome = boot(&image.vmlinuz, &initrd, cmdline, timeout)?;
    let to_result = outcome.verdict(timeout)?;
    Ok(Report {
        package: image.package,
        initramfs,
        to_result,
    })
}

/// Removes a file when dropped (the per-run initramfs).
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A kernel unpacked on the host.
struct KernelImage {
    package: String,
    /// `boot/` of the unpacked package (vmlinuz, config).
    boot: PathBuf,
    vmlinuz: PathBuf,
    /// `lib/modules/VERSION` of the unpacked package.
    modules: PathBuf,
}

fn kernel_dir(kernel: &Kernel) -> PathBuf {
    target_dir().join("vm").join(kernel.label)
}

/// The kernel of `kernel`, downloaded and unpacked once; later runs need no network.
/// (Delete `target/vm/LABEL` to pick up a newer Debian kernel.)
fn prepare(kernel: &Kernel) -> Result<KernelImage> {
    let dir = kernel_dir(kernel);
    let package = match cached_package(&dir) {
        Some(package) => package,
        None => fetch(kernel, &dir)?,
    };
    let tree = dir.join(&package);
    let boot = tree.join("boot");
    let vmlinuz = first_entry(&boot, "vmlinuz-")?;
    let version = vmlinuz
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("vmlinuz-"))
        .ok_or_else(|| format!("odd kernel file name {}", vmlinuz.display()))?
        .to_owned();
    let modules = ["lib/modules", "usr/lib/modules"]
        .map(|d| tree.join(d).join(&version))
        .into_iter()
        .find(|d| d.is_dir())
        .ok_or_else(|| format!("{package}: no lib/modules/{version}"))?;
    Ok(KernelImage {
        package,
        boot,
        vmlinuz,
        modules,
    })
}

/// The package unpacked by an earlier run, if any.
fn cached_package(dir: &Path) -> Option<String> {
    let package = std::fs::read_to_string(dir.join("package")).ok()?;
    let package = package.trim();
    dir.join(package)
        .join(".extracted")
        .exists()
        .then(|| package.to_owned())
}

fn fetch(kernel: &Kernel, dir: &Path) -> Result<String> {
    println!(
        "vm-test {}: fetching linux-image-amd64 from Debian {}",
        kernel.label, kernel.suite
    );
    let archive = Archive::open(&[kernel.suite])?;
    let package = archive.resolve("linux-image-amd64")?;
    let deb = archive.download(&package)?;
    extract(&deb, &dir.join(&package))?;
    std::fs::write(dir.join("package"), &package)
        .map_err(|e| format!("cannot write {}/package: {e}", dir.display()))?;
    Ok(package)
}

/// The one entry of `dir` whose name starts with `prefix`.
fn first_entry(dir: &Path, prefix: &str) -> Result<PathBuf> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(prefix))
        })
        .ok_or_else(|| format!("no {prefix}* in {}", dir.display()))
}

/// What the console showed.
#[derive(Default)]
struct Outcome {
    /// The payload's exit status from the result line, and when the line came.
    result: Option<(i32, Duration)>,
    setup_failures: usize,
    timed_out: bool,
}

impl Outcome {
    fn observe(&mut self, line: &str, at: Duration) {
        if line.contains(SETUP_FAILED) {
            self.setup_failures += 1;
        }
        if let Some(code) = parse_result(line) {
            self.result.get_or_insert((code, at));
        }
    }

    /// Ok with the time from qemu's start to the result line, when the payload passed.
    fn verdict(&self, timeout: Duration) -> Result<Duration> {
        match self.result {
            None if self.timed_out => Err(format!(
                "no result after {}s: killed qemu",
                timeout.as_secs()
            )),
            None => Err(format!(
                "the VM stopped without the result line `{RESULT_PREFIX}N` (see its console above)"
            )),
            Some((code, at)) if code != 0 => Err(format!(
                "the payload failed in the VM ({RESULT_PREFIX}{code}, {:.1}s after qemu started)",
                at.as_secs_f64()
            )),
            Some(_) if self.setup_failures > 0 => Err(format!(
                "the VM's init failed to set up {} thing(s) (`{SETUP_FAILED}` lines above)",
                self.setup_failures
            )),
            Some((_, at)) => Ok(at),
        }
    }
}

/// `... ebpf-vm-test: exit=N` -> N.
fn parse_result(line: &str) -> Option<i32> {
    let at = line.find(RESULT_PREFIX)?;
    let rest = &line[at + RESULT_PREFIX.len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Boots qemu, streams its console to stdout, and kills it on timeout.
fn boot(vmlinuz: &Path, initrd: &Path, cmdline: &str, timeout: Duration) -> Result<Outcome> {
    let mut child = qemu(vmlinuz, initrd, cmdline)?;
    let stdout = child.stdout.take().ok_or("qemu has no stdout")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).split(b'\n') {
            let Ok(line) = line else { break };
            let line = printable(&String::from_utf8_lossy(&line));
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let start = Instant::now();
    let mut deadline = start + timeout;
    let mut outcome = Outcome::default();
    loop {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => {
                println!("{line}");
                outcome.observe(&line, start.elapsed());
                if outcome.result.is_some() {
                    deadline = deadline.min(Instant::now() + POWEROFF_GRACE);
                }
            }
            Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => {
                outcome.timed_out = true;
                // Best effort: qemu may have exited in the meantime.
                let _ = child.kill();
                break;
            }
        }
    }
    child.wait().map_err(|e| format!("waiting for qemu: {e}"))?;
    Ok(outcome)
}

/// `line` without terminal escape sequences and control characters (SeaBIOS clears the screen
/// and turns off line wrapping, which would outlive the run in the user's terminal).
fn printable(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => {
                if chars.next() == Some('[') {
                    // A CSI sequence ends with a byte in `@`..=`~`.
                    chars.by_ref().find(|c| ('@'..='~').contains(c));
                }
            }
            '\t' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

fn qemu(vmlinuz: &Path, initrd: &Path, cmdline: &str) -> Result<Child> {
    // No `-enable-kvm` or `-cpu host`: they hang or fail on these machines (machine.md).
    Command::new("qemu-system-x86_64")
        .args(["-accel", ACCEL, "-cpu", "max", "-m", "1024", "-smp", "2"])
        .args(["-nographic", "-no-reboot"])
        .arg("-kernel")
        .arg(vmlinuz)
        .arg("-initrd")
        .arg(initrd)
        .arg("-append")
        .arg(cmdline)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot run qemu-system-x86_64 (cargo xtask setup installs it): {e}"))
}

fn summarise(results: &[(&str, Result<Report>)]) -> Result {
    let failed: Vec<&str> = results
        .iter()
        .filter(|(_, r)| r.is_err())
        .map(|(label, _)| *label)
        .collect();
    if results.len() > 1 {
        println!("vm-test summary:");
        for (label, result) in results {
            match result {
                Ok(report) => println!("  {label:>5}  ok      {}", report.timings()),
                Err(e) => println!("  {label:>5}  FAILED  {e}"),
            }
        }
    }
    match (failed.as_slice(), results) {
        ([], _) => Ok(()),
        (_, [(_, Err(e))]) => Err(e.clone()),
        _ => Err(format!("failed on kernel(s) {}", failed.join(", "))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_result_line_is_found_amid_console_noise() {
        assert_eq!(parse_result("ebpf-vm-test: exit=0"), Some(0));
        assert_eq!(parse_result("\u{1b}[0mebpf-vm-test: exit=101 "), Some(101));
        assert_eq!(parse_result("ebpf-vm-test: exit="), None);
        assert_eq!(parse_result("test foo ... ok"), None);
    }

    #[test]
    fn console_lines_lose_escape_sequences() {
        assert_eq!(
            printable("\u{1b}c\u{1b}[?7l\u{1b}[2J\u{1b}[0mSeaBIOS\r"),
            "SeaBIOS"
        );
        assert_eq!(printable("a\tb"), "a\tb");
    }

    #[test]
    fn a_missing_or_failing_result_fails_the_run() {
        let timeout = Duration::from_secs(1);
        let mut outcome = Outcome::default();
        assert!(outcome.verdict(timeout).is_err());
        outcome.observe("ebpf-vm-test: exit=1", Duration::from_secs(3));
        assert!(outcome.verdict(timeout).is_err());
        let mut outcome = Outcome::default();
        outcome.observe("ebpf-vm-test: exit=0", Duration::from_secs(3));
        assert_eq!(outcome.verdict(timeout), Ok(Duration::from_secs(3)));
        outcome.observe(
            "ebpf-vm-test: setup failed: insmod /lib/modules/veth.ko",
            Duration::ZERO,
        );
        assert!(outcome.verdict(timeout).is_err());
    }

    #[test]
    fn arguments_after_the_dashes_go_to_the_tests() {
        let args: Vec<String> = ["--kernel", "all", "--", "--exact", "x"]
            .map(String::from)
            .to_vec();
        let options = parse(&args).expect("valid arguments");
        assert_eq!(options.kernels.len(), KERNELS.len());
        assert_eq!(options.args, ["--exact", "x"]);
        assert!(parse(&["--kernel".to_string(), "4.19".to_string()]).is_err());
    }

    #[test]
    fn the_console_is_quiet_unless_verbose() {
        let quiet = parse(&[]).expect("no arguments").cmdline;
        assert_eq!(quiet, "console=ttyS0 panic=-1 quiet");
        let args = ["--cmdline", "softlockup_panic=1", "--verbose"].map(String::from);
        let verbose = parse(&args).expect("valid arguments").cmdline;
        assert_eq!(
            verbose,
            "console=ttyS0 panic=-1 softlockup_all_cpu_backtrace=1 softlockup_panic=1"
        );
    }
}
