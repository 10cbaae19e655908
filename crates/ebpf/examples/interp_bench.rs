//! Measures the userspace interpreter: instructions per second on the packet-parsing XDP
//! program `xdp_basic_firewall` (Ethernet and IPv4 parsing, bounds checks, an LPM trie lookup
//! in an empty trie), run on a TCP/IPv4 frame, with in-memory maps. The time includes each
//! run's setup (copying the packet in, the result out) and the map helper. Needs
//! `cargo xtask build-bpf`; prints one line `instructions_per_second=N` and details.
//!
//! `cargo run --release -p ebpf --example interp_bench [-- SECONDS] [--write-docs]`
//!
//! With `--write-docs` it also replaces the `## Interpreter` section at the end of
//! `docs/benchmarks.md` (the section `cargo xtask bench` keeps when it rewrites the file) with
//! the figure, the machine, the kernel and the date.

use std::path::PathBuf;
use std::time::Duration;

use ebpf::mock::interp::bench_interpreter;

fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let write_docs = args.iter().any(|a| a == "--write-docs");
    let seconds: f64 = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(3.0);
    let object =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/bpf/xdp_basic_firewall.o");
    let mut frame = vec![0u8; 14 + 20 + 20];
    frame[12..14].copy_from_slice(&[0x08, 0x00]);
    frame[14] = 0x45;
    frame[23] = 6;
    frame[26..30].copy_from_slice(&[198, 18, 0, 7]);
    let r = bench_interpreter(
        &object,
        "firewall",
        &frame,
        Duration::from_secs_f64(seconds),
    )?;
    println!("instructions_per_second={:.0}", r.instructions_per_second);
    println!(
        "program=xdp_basic_firewall/firewall runs={} instructions={} instructions_per_run={} ns_per_run={:.1} seconds={:.2}",
        r.runs,
        r.instructions,
        r.instructions / r.runs.max(1),
        r.elapsed.as_nanos() as f64 / r.runs.max(1) as f64,
        r.elapsed.as_secs_f64()
    );
    if write_docs {
        write_docs_section(&r)?;
    }
    Ok(())
}

fn write_docs_section(
    r: &ebpf::mock::interp::BenchResult,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/benchmarks.md");
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|r| r.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_else(|| "unknown".into());
    let cpus = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let date = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let target = 50e6;
    let section = format!(
        "## Interpreter\n\n\
         Written by `cargo run --release -p ebpf --example interp_bench -- --write-docs` \
         (`bpf_mock::interp::bench_interpreter`): the userspace interpreter running \
         `xdp_basic_firewall`'s `firewall` (Ethernet and IPv4 parsing, bounds checks, an LPM trie \
         lookup) on a 54-byte TCP/IPv4 frame with in-memory maps, back to back for {:.1} s. The time \
         includes each run's setup (packet in, result out) and the map helper.\n\n\
         | | |\n| --- | --- |\n| CPU | {model} |\n| CPUs | {cpus} |\n| kernel | {} |\n| date | {date} |\n\n\
         | program | instructions per run | runs | ns per run | instructions per second | target |\n\
         | --- | ---: | ---: | ---: | ---: | --- |\n\
         | xdp_basic_firewall/firewall | {} | {} | {:.1} | {:.1} M | ≥ 50 M {} |\n",
        r.elapsed.as_secs_f64(),
        kernel.trim(),
        r.instructions / r.runs.max(1),
        r.runs,
        r.elapsed.as_nanos() as f64 / r.runs.max(1) as f64,
        r.instructions_per_second / 1e6,
        if r.instructions_per_second >= target { "pass" } else { "**FAIL**" },
    );
    let old = std::fs::read_to_string(&path).unwrap_or_default();
    let kept = match old.find("## Interpreter") {
        Some(i) => old[..i].to_string(),
        None if old.is_empty() => "# Benchmarks\n\n".to_string(),
        None => format!("{}\n\n", old.trim_end()),
    };
    std::fs::write(&path, format!("{kept}{section}"))?;
    eprintln!("wrote {}", path.display());
    Ok(())
}
