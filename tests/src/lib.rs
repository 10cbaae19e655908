//! The kernel test harness: one test binary (`tests/kernel/main.rs`), guards that say why a test
//! did not run, a strict mode that turns unmet guards into failures, RAII guards for network
//! namespaces, veth pairs and private bpffs mounts, and an fd-leak check at the end of the run.
//!
//! A test is a plain `fn() -> TestResult` that opens with guards:
//!
//! ```no_run
//! use tests::{require_root, TestResult};
//! fn map_create_works() -> TestResult {
//!     require_root()?;
//!     Ok(())
//! }
//! ```
//!
//! Strict mode (`BPF_TEST_STRICT=1`, set by `cargo xtask test` and in the VM): an unmet guard
//! fails the test, unless a probe found that the kernel truly lacks the feature
//! ([`require_feature`]).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod asm;
mod net;
mod runner;

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

pub use net::{NetNs, VethPair};
pub use runner::{main, Test};

/// What a test returns: `Ok(())` for a pass.
pub type TestResult<T = ()> = Result<T, Outcome>;

/// Why a test did not pass.
#[derive(Debug)]
pub enum Outcome {
    /// A guard was not met; the test did not run its body.
    Skip {
        /// What was missing, in a few words.
        reason: String,
        /// A probe found that the kernel lacks the feature: a skip even in strict mode.
        probed: bool,
    },
    /// The test failed.
    Fail(String),
}

impl<E: std::error::Error> From<E> for Outcome {
    fn from(err: E) -> Self {
        let mut msg = err.to_string();
        let mut source = err.source();
        while let Some(s) = source {
            msg.push_str(": ");
            msg.push_str(&s.to_string());
            source = s.source();
        }
        Outcome::Fail(msg)
    }
}

/// A failure with a message.
pub fn fail(msg: impl fmt::Display) -> Outcome {
    Outcome::Fail(msg.to_string())
}

/// Whether unmet guards fail (`BPF_TEST_STRICT=1`).
pub fn strict() -> bool {
    std::env::var("BPF_TEST_STRICT").is_ok_and(|v| v == "1")
}

/// The test needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN in practice).
pub fn require_root() -> TestResult {
    if rustix::process::geteuid().is_root() {
        Ok(())
    } else {
        Err(Outcome::Skip {
            reason: "needs root".into(),
            probed: false,
        })
    }
}

/// The test needs a kernel feature; `present` must come from a probe of the running kernel,
/// never from its version. A missing feature skips, in strict mode too.
pub fn require_feature(feature: &str, present: bool) -> TestResult {
    if present {
        Ok(())
    } else {
        Err(Outcome::Skip {
            reason: format!("the kernel lacks {feature} (probed)"),
            probed: true,
        })
    }
}

/// Whether `/proc/kallsyms` lists `symbol`: the kernel finds the address of a typed `__ksym`
/// variable there, which it lists only with `CONFIG_KALLSYMS_ALL`.
pub fn kallsyms_has(symbol: &str) -> bool {
    std::fs::read_to_string("/proc/kallsyms")
        .is_ok_and(|all| ebpf::attach::kernel_config::parse_kallsyms(&all).contains_key(symbol))
}

/// Whether the kernel's BTF has a type of `kind` named `name` (a kfunc's `FUNC`, a per-CPU
/// variable's `VAR`: kernels built with an older pahole have no `VAR`s).
pub fn kernel_btf_has(kind: ebpf::elf::btf::BtfKind, name: &str) -> bool {
    ebpf::attach::kernel_btf::kernel_btf().is_ok_and(|b| b.find(kind, name).is_some())
}

/// Whether the kernel can load a typed `__ksym` of the per-CPU variable `name`: a `VAR` in its
/// BTF, and an address in `/proc/kallsyms` (`CONFIG_KALLSYMS_ALL`).
pub fn typed_ksym_var_loadable(name: &str) -> bool {
    kernel_btf_has(ebpf::elf::btf::BtfKind::Var, name) && kallsyms_has(name)
}

/// The test needs a program on `PATH` (`bpftool`, `ip`, `tc`).
pub fn require_tool(tool: &str) -> TestResult {
    let found = std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(tool).is_file()));
    if found {
        Ok(())
    } else {
        Err(Outcome::Skip {
            reason: format!("{tool} is not installed"),
            probed: false,
        })
    }
}

/// A name unique to this process and call, at most 15 bytes (an interface or BPF object name).
pub fn unique_name(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let tail = format!("{:x}{n:x}", std::process::id() % 0x10000);
    let keep = 15usize.saturating_sub(tail.len()).min(prefix.len());
    format!("{}{tail}", &prefix[..keep])
}

/// Runs a command, failing with its stderr when it does not exit 0.
#[track_caller]
pub fn cmd(program: &str, args: &[&str]) -> TestResult<String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| fail(format!("cannot run {program}: {e}")))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(fail(format!(
            "`{program} {}` failed with {}: {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// `bpftool --json ARGS`, parsed: an independent view of kernel state.
#[track_caller]
pub fn bpftool(args: &[&str]) -> TestResult<serde_json::Value> {
    require_tool("bpftool")?;
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let text = cmd("bpftool", &all)?;
    serde_json::from_str(&text).map_err(|e| fail(format!("bpftool printed no JSON: {e}")))
}

/// A private bpffs instance mounted on a fresh directory; unmounted and removed on drop.
#[derive(Debug)]
pub struct BpfFs {
    path: PathBuf,
}

impl BpfFs {
    /// Mounts a new bpffs (every bpffs mount is its own instance).
    pub fn new() -> TestResult<Self> {
        require_root()?;
        let path = std::env::temp_dir().join(unique_name("bpffs"));
        std::fs::create_dir_all(&path)
            .map_err(|e| fail(format!("mkdir {}: {e}", path.display())))?;
        let fs = BpfFs { path };
        cmd("mount", &["-t", "bpf", "bpf", &fs.path.to_string_lossy()])?;
        Ok(fs)
    }

    /// Where it is mounted.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for BpfFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        let _ = std::fs::remove_dir(&self.path);
    }
}

/// The tracefs mount point, mounting tracefs at `/sys/kernel/tracing` when it is not mounted.
pub fn tracefs() -> TestResult<PathBuf> {
    let path = PathBuf::from("/sys/kernel/tracing");
    if path.join("events").is_dir() {
        return Ok(path);
    }
    require_root()?;
    cmd(
        "mount",
        &["-t", "tracefs", "tracefs", "/sys/kernel/tracing"],
    )?;
    if path.join("events").is_dir() {
        Ok(path)
    } else {
        Err(fail("tracefs mounted but has no events directory"))
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn unique_names_fit_an_interface_name_and_differ() {
        let a = unique_name("a-very-long-prefix-indeed");
        let b = unique_name("a-very-long-prefix-indeed");
        assert!(a.len() <= 15, "{a}");
        assert_ne!(a, b);
    }

    #[test]
    fn errors_become_failures_with_their_sources() {
        let err = std::io::Error::other("inner");
        match Outcome::from(err) {
            Outcome::Fail(msg) => assert_eq!(msg, "inner"),
            other => panic!("{other:?}"),
        }
    }
}
