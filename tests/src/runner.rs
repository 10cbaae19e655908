//! The test runner: libtest-mimic underneath (filters, `--list`, `--test-threads`), with guards
//! turned into skips or failures and an fd-leak check once every test has run.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::process::ExitCode;

use libtest_mimic::{Arguments, Failed, Trial};

use crate::{strict, Outcome, TestResult};

/// One kernel test: its name and its function.
#[derive(Debug, Clone, Copy)]
pub struct Test {
    /// The function's name; the runner prefixes it with its group.
    pub name: &'static str,
    /// The test itself.
    pub run: fn() -> TestResult,
}

/// Defines `pub const TESTS: &[tests::Test]` from a list of test functions.
#[macro_export]
macro_rules! tests {
    ($($name:ident),* $(,)?) => {
        /// The tests of this group, for the runner.
        pub const TESTS: &[$crate::Test] = &[$($crate::Test { name: stringify!($name), run: $name }),*];
    };
}

fn open_fds() -> Option<Vec<String>> {
    let dir = std::fs::read_dir("/proc/self/fd").ok()?;
    let mut fds: Vec<String> = dir
        .filter_map(|e| e.ok())
        .map(|e| {
            let target = std::fs::read_link(e.path())
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            format!("{} -> {target}", e.file_name().to_string_lossy())
        })
        .collect();
    fds.sort();
    Some(fds)
}

fn trial(group: &'static str, test: Test) -> Trial {
    let name = format!("{group}::{}", test.name);
    Trial::test(name.clone(), move || {
        let result = catch_unwind(AssertUnwindSafe(test.run));
        match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(Outcome::Fail(msg))) => Err(Failed::from(msg)),
            Ok(Err(Outcome::Skip { reason, probed })) => {
                if strict() && !probed {
                    Err(Failed::from(format!(
                        "guard not met in strict mode: {reason}"
                    )))
                } else {
                    println!("skip {name}: {reason}");
                    Ok(())
                }
            }
            Err(panic) => {
                let msg = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_else(|| "panicked".into());
                Err(Failed::from(msg))
            }
        }
    })
}

/// Kernels before 5.11 charge BPF maps to `RLIMIT_MEMLOCK`; raise it for the whole run (a no-op
/// where the limit cannot be raised, such as without CAP_SYS_RESOURCE on a newer kernel).
fn raise_memlock_limit() {
    let unlimited = rustix::process::Rlimit {
        current: None,
        maximum: None,
    };
    let _ = rustix::process::setrlimit(rustix::process::Resource::Memlock, unlimited);
}

/// Runs the groups of tests and checks that no fd leaked; the binary's `main`.
pub fn main(groups: &[(&'static str, &'static [Test])]) -> ExitCode {
    let args = Arguments::from_args();
    raise_memlock_limit();
    let trials: Vec<Trial> = groups
        .iter()
        .flat_map(|(group, tests)| tests.iter().map(|t| trial(group, *t)))
        .collect();
    let before = open_fds();
    let conclusion = libtest_mimic::run(&args, trials);
    let after = open_fds();
    let mut code = conclusion.exit_code();
    if let (Some(before), Some(after)) = (before, after) {
        let leaked: Vec<&String> = after.iter().filter(|fd| !before.contains(fd)).collect();
        if !leaked.is_empty() && !args.list {
            eprintln!(
                "fd leak: {} fd(s) open after the run that were not before:",
                leaked.len()
            );
            for fd in leaked {
                eprintln!("  {fd}");
            }
            code = ExitCode::FAILURE;
        }
    }
    if strict() {
        println!("strict mode: unmet guards fail unless a probe found the feature missing");
    }
    code
}
