//! `cargo xtask test [-- ARGS]`: the project's one test command (CI runs it through `.ci/run`).
//!
//! Runs every layer in turn, cheapest first, and stops at the first failing step: setup,
//! build-bpf, codegen drift, rustfmt, clippy, unit and tidy tests, the kernel tests on the host
//! in strict mode, and the kernel tests in a VM on Debian's 6.1. `ARGS` go to the kernel test
//! binary, on the host and in the VM. See `docs/testing.md`.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::{cargo, root, run as run_cmd};
use crate::Result;

/// One step of the test command: a name to announce and the work.
type Step<'a> = (&'a str, Box<dyn Fn() -> Result + 'a>);

pub fn run(args: &[String]) -> Result {
    let extra = test_args(
        args,
        "usage: cargo xtask test [-- ARGS for the kernel test binary]",
    )?;
    let steps = steps(extra);
    let total = Instant::now();
    let mut times = Vec::new();
    for (i, (name, work)) in steps.iter().enumerate() {
        let n = format!("[{}/{}]", i + 1, steps.len());
        println!("==> test {n} {name}");
        let start = Instant::now();
        let result = work();
        let took = start.elapsed();
        if let Err(e) = result {
            println!("==> test {n} {name}: FAILED after {}", secs(took));
            return Err(format!("step `{name}` failed: {e}"));
        }
        println!("==> test {n} {name}: ok in {}", secs(took));
        times.push((*name, took));
    }
    print_summary(&times, total.elapsed());
    Ok(())
}

/// The steps in order; `extra` goes to the kernel test binary.
fn steps(extra: &[String]) -> Vec<Step<'_>> {
    vec![
        ("setup", Box::new(|| crate::setup::run(&[]))),
        ("build-bpf", Box::new(|| crate::build_bpf::run(&[]))),
        (
            "codegen --check",
            Box::new(|| crate::codegen::run(&["--check".into()])),
        ),
        (
            "cargo fmt --check",
            Box::new(|| cargo_step(&["fmt", "--all", "--", "--check"])),
        ),
        (
            "cargo clippy",
            Box::new(|| {
                cargo_step(&[
                    "clippy",
                    "--workspace",
                    "--all-targets",
                    "--",
                    "-D",
                    "warnings",
                ])
            }),
        ),
        (
            "unit and tidy tests",
            Box::new(|| cargo_step(&["test", "--workspace", "--exclude", "tests"])),
        ),
        (
            "build the examples",
            Box::new(|| cargo_step(&["build", "-p", "ebpf", "--examples"])),
        ),
        (
            "kernel tests (host, strict)",
            Box::new(|| host_kernel_tests(extra)),
        ),
        ("vm-test --kernel 6.1", Box::new(|| vm_tests(extra))),
        ("fuzz the ELF parser", Box::new(fuzz)),
    ]
}

/// How long CI fuzzes the ELF parser; `BPF_FUZZ_SECONDS` overrides it.
const FUZZ_SECONDS: u32 = 60;

/// Installs cargo-fuzz when missing, then fuzzes the parser for a bounded time
/// (`fuzz/run.sh`, seeded with the objects of bpf-progs/).
fn fuzz() -> Result {
    let seconds = std::env::var("BPF_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse::<u32>().ok())
        .unwrap_or(FUZZ_SECONDS);
    let installed = cargo()
        .args(["fuzz", "--version"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !installed {
        cargo_step(&["install", "--locked", "--quiet", "cargo-fuzz"])?;
    }
    run_cmd(
        Command::new("bash")
            .arg(root().join("fuzz/run.sh"))
            .arg(seconds.to_string()),
    )
}

fn cargo_step(args: &[&str]) -> Result {
    run_cmd(cargo().args(args))
}

fn host_kernel_tests(extra: &[String]) -> Result {
    let binary = kernel_test_binary()?;
    let mut cmd = Command::new(&binary);
    cmd.current_dir(root())
        .env("BPF_TEST_STRICT", "1")
        .args(extra);
    run_cmd(&mut cmd)
}

fn vm_tests(extra: &[String]) -> Result {
    let mut args = vec!["--kernel".to_string(), "6.1".to_string()];
    if !extra.is_empty() {
        args.push("--".into());
        args.extend(extra.iter().cloned());
    }
    crate::vm_test::run(&args)
}

/// Splits `[-- ARGS]`: nothing, or `--` followed by the arguments for the kernel test binary.
pub fn test_args<'a>(args: &'a [String], usage: &str) -> Result<&'a [String]> {
    match args.split_first() {
        None => Ok(&[]),
        Some((dashes, rest)) if dashes == "--" => Ok(rest),
        Some((other, _)) => Err(format!("unexpected argument `{other}`\n{usage}")),
    }
}

/// Builds the kernel test binary (`tests/kernel/main.rs`) and returns its path, found in the
/// `compiler-artifact` message cargo prints for the test target named `kernel`.
pub fn kernel_test_binary() -> Result<PathBuf> {
    let out = cargo()
        .args([
            "test",
            "-p",
            "tests",
            "--test",
            "kernel",
            "--no-run",
            "--message-format=json",
        ])
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        print_diagnostics(&stdout);
        return Err(format!(
            "building the kernel test binary failed with {}",
            out.status
        ));
    }
    find_executable(&stdout, "kernel").ok_or_else(|| {
        "cargo built no executable for the test target `kernel` (tests/kernel/main.rs)".into()
    })
}

/// The `executable` of the last `compiler-artifact` message for the target named `target`.
fn find_executable(messages: &str, target: &str) -> Option<PathBuf> {
    messages
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == target)
        .filter_map(|m| m["executable"].as_str().map(PathBuf::from))
        .next_back()
}

/// With `--message-format=json` the compiler's errors are JSON on stdout: show them rendered.
fn print_diagnostics(messages: &str) {
    messages
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-message")
        .filter_map(|m| m["message"]["rendered"].as_str().map(str::to_owned))
        .for_each(|text| eprint!("{text}"));
}

fn print_summary(times: &[(&str, Duration)], total: Duration) {
    println!("==> test: all steps passed in {}", secs(total));
    for (name, took) in times {
        println!("    {:>8}  {name}", secs(*took));
    }
}

fn secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_kernel_executable_among_artifacts() {
        let messages = r#"{"reason":"compiler-artifact","target":{"name":"tests"},"executable":null}
not json
{"reason":"compiler-artifact","target":{"name":"kernel"},"executable":"/t/debug/deps/kernel-abc"}
{"reason":"build-finished","success":true}"#;
        assert_eq!(
            find_executable(messages, "kernel"),
            Some(PathBuf::from("/t/debug/deps/kernel-abc"))
        );
        assert_eq!(find_executable(messages, "other"), None);
    }

    #[test]
    fn test_args_require_the_double_dash() {
        let args = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(test_args(&args(&[]), "u"), Ok(&[][..]));
        assert_eq!(
            test_args(&args(&["--", "a", "--b"]), "u"),
            Ok(&args(&["a", "--b"])[..])
        );
        assert!(test_args(&args(&["a"]), "u").is_err());
    }
}
