//! `cargo xtask demo`: installs what is missing (`setup`), compiles the BPF programs
//! (`build-bpf`), then runs the `demo` example of the `ebpf` crate, which attaches goebpf's
//! packet counter and basic firewall in private network namespaces, sends traffic through
//! them, and exits 0 only when it saw every packet it sent. Needs root.
//!
//! Arguments after `demo` go to the example (`--packets N`; `--help`).

use std::process::Command;
use std::time::Instant;

use crate::{util, Result};

/// Runs the demo.
pub fn run(args: &[String]) -> Result {
    let uid = util::output(Command::new("id").arg("-u"))?;
    if uid.trim() != "0" {
        return Err(
            "the demo creates network namespaces and attaches XDP programs, which \
                    needs root: run `sudo cargo xtask demo`"
                .into(),
        );
    }
    let started = Instant::now();
    crate::setup::run(&[])?;
    let bpf_dir = crate::build_bpf::build()?;
    let prepared = started.elapsed();
    let demo = Instant::now();
    util::run(
        util::cargo()
            .args(["run", "--quiet", "-p", "ebpf", "--example", "demo", "--"])
            .arg("--bpf-dir")
            .arg(&bpf_dir)
            .args(args),
    )
    .map_err(|e| format!("the demo failed: {e}"))?;
    eprintln!(
        "xtask demo: setup and build-bpf {:.1?}, demo (build and run) {:.1?}",
        prepared,
        demo.elapsed()
    );
    Ok(())
}
