//! `cargo xtask setup`: installs the Debian packages the project needs, only those missing.
//!
//! Idempotent and quiet: when everything is present it prints one line and touches nothing.
//! `apt-get update` runs only when something has to be installed.

use std::process::Command;

use crate::util::run as run_cmd;
use crate::Result;

/// What the project needs from Debian, and why.
const PACKAGES: &[&str] = &[
    "clang",           // compiles bpf-progs/*.c
    "llvm",            // llvm-objdump, llvm-strip for BPF objects
    "libbpf-dev",      // bpf_helpers.h and friends for bpf-progs
    "bpftool",         // an independent view of kernel state in tests; in the VM
    "iproute2",        // ip, tc: in tests and in the VM
    "linux-libc-dev",  // UAPI headers for bpf-progs and codegen
    "libclang-dev",    // bindgen in `cargo xtask codegen`
    "qemu-system-x86", // `cargo xtask vm-test`
    "busybox-static",  // the VM's userland
    "xz-utils",        // trixie's kernel modules are .ko.xz (vm-test --kernel 6.12)
];

pub fn run(args: &[String]) -> Result {
    if !args.is_empty() {
        return Err("usage: cargo xtask setup".into());
    }
    let missing = missing(PACKAGES)?;
    if missing.is_empty() {
        println!("setup: all packages present");
        return Ok(());
    }
    println!("setup: installing {}", missing.join(" "));
    install(&missing)
}

/// The packages of `wanted` that dpkg does not report as installed.
fn missing<'a>(wanted: &[&'a str]) -> Result<Vec<&'a str>> {
    let mut missing = Vec::new();
    for &package in wanted {
        if !installed(package)? {
            missing.push(package);
        }
    }
    Ok(missing)
}

/// Whether dpkg reports `package` as installed (an unknown package is not installed).
fn installed(package: &str) -> Result<bool> {
    let out = Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .map_err(|e| format!("cannot run dpkg-query (is this Debian?): {e}"))?;
    // "install ok installed" or "hold ok installed"; not "... half-installed" nor "... config-files".
    Ok(out.status.success()
        && String::from_utf8_lossy(&out.stdout)
            .trim()
            .ends_with(" installed"))
}

fn install(packages: &[&str]) -> Result {
    let apt = |args: &[&str]| {
        let mut cmd = Command::new("apt-get");
        cmd.env("DEBIAN_FRONTEND", "noninteractive").args(args);
        cmd
    };
    run_cmd(&mut apt(&["-q", "update"]))
        .map_err(|e| format!("apt-get update: {e} (setup needs root)"))?;
    let mut cmd = apt(&["-y", "-q", "--no-install-recommends", "install"]);
    cmd.args(packages);
    run_cmd(&mut cmd).map_err(|e| format!("apt-get install: {e} (setup needs root)"))?;
    let still = missing(packages)?;
    if still.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "still missing after apt-get install: {}",
            still.join(" ")
        ))
    }
}
