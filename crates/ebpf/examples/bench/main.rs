//! The benchmark of `cargo xtask bench`: the library against the raw-syscall floor
//! (`bpf_sys::floor`, plain `bpf(2)` with every buffer allocated once), interleaved round by
//! round, medians reported.
//!
//! Needs root and a BPF-capable kernel, and `target/bpf/bench_load.o` (`cargo xtask build-bpf`).
//! Build it in release mode: `cargo run --release -p ebpf --example bench --features bench`.
//! It prints one JSON object per line on stdout (what `cargo xtask bench` turns into
//! `docs/benchmarks.md`) and progress on stderr.
//!
//! Options: `--rounds N` (default 7), `--quick` (fewer operations, for a smoke run), `--only
//! WORD` (run the groups whose name contains WORD).
//!
//! Each figure: per round, the library's pass and the floor's pass run back to back (the order
//! alternating between rounds), each over the same number of operations on the same kind of
//! object; the figure is the median over the rounds of each side's time per operation, and the
//! ratio is the median of the per-round ratios floor time / our time (1.0 = as fast as the floor,
//! higher is better).
#![forbid(unsafe_code)]

mod events;
mod load;
mod maps;

use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

/// Run settings and the output.
#[derive(Debug)]
pub struct Bench {
    pub rounds: usize,
    pub quick: bool,
    only: Option<String>,
    pub failures: usize,
}

impl Bench {
    /// Whether a group runs (`--only`).
    pub fn wants(&self, group: &str) -> bool {
        self.only.as_deref().is_none_or(|w| group.contains(w))
    }

    /// Scales an operation count down for `--quick`.
    pub fn ops(&self, n: u64) -> u64 {
        if self.quick {
            (n / 8).max(1)
        } else {
            n
        }
    }

    /// Prints one JSON line.
    pub fn emit(&self, v: Value) {
        println!("{v}");
    }

    /// A correctness check: printed, and counted when it fails.
    pub fn check(&mut self, what: &str, ok: bool, detail: String) {
        if !ok {
            self.failures += 1;
            eprintln!("CHECK FAILED: {what}: {detail}");
        }
        self.emit(json!({"kind": "check", "what": what, "ok": ok, "detail": detail}));
    }

    /// Runs `ours` and `floor` interleaved for the rounds (after one warm-up pass each) and
    /// emits the figure. Each closure runs `ops` operations and returns the time they took.
    #[allow(clippy::too_many_arguments)]
    pub fn compare(
        &mut self,
        group: &str,
        workload: &str,
        api: &str,
        target: Option<f64>,
        ops: u64,
        mut ours: impl FnMut() -> Result<Duration>,
        mut floor: impl FnMut() -> Result<Duration>,
    ) -> Result<(f64, f64, f64)> {
        ours()?;
        floor()?;
        let (mut o, mut f, mut r) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..self.rounds {
            let (to, tf) = if round % 2 == 0 {
                let to = ours()?;
                (to, floor()?)
            } else {
                let tf = floor()?;
                (ours()?, tf)
            };
            o.push(to.as_secs_f64() * 1e9 / ops as f64);
            f.push(tf.as_secs_f64() * 1e9 / ops as f64);
            r.push(tf.as_secs_f64() / to.as_secs_f64().max(1e-12));
        }
        let (mo, mf, mr) = (median(&mut o), median(&mut f), median(&mut r));
        eprintln!("  {group} / {workload} / {api}: ours {mo:.1} ns/op, floor {mf:.1} ns/op, ratio {mr:.3}");
        self.emit(json!({
            "kind": "figure", "group": group, "workload": workload, "api": api,
            "unit": "ns/op", "ours": mo, "floor": mf, "ratio": mr, "target": target,
            "ops": ops, "rounds": self.rounds,
        }));
        Ok((mo, mf, mr))
    }
}

/// The median (the mean of the two middle values for an even count).
pub fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Times `f`.
pub fn timed(f: impl FnOnce() -> Result) -> Result<Duration> {
    let t = Instant::now();
    f()?;
    Ok(t.elapsed())
}

fn main() {
    let mut bench = Bench {
        rounds: 7,
        quick: false,
        only: None,
        failures: 0,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--rounds" => {
                bench.rounds = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .filter(|&n| n > 0)
                    .unwrap_or(7)
            }
            "--quick" => bench.quick = true,
            "--only" => bench.only = args.next(),
            other => {
                eprintln!("bench: unknown argument `{other}`");
                std::process::exit(2);
            }
        }
    }
    bench.emit(json!({"kind": "meta", "rounds": bench.rounds, "quick": bench.quick}));
    let started = Instant::now();
    type Group = fn(&mut Bench) -> Result;
    let groups: [(&str, Group); 3] = [
        ("maps", maps::run),
        ("load", load::run),
        ("events", events::run),
    ];
    let mut failed = false;
    for (name, run) in groups {
        if let Err(e) = run(&mut bench) {
            eprintln!("bench: {name}: {e}");
            bench.emit(json!({"kind": "error", "group": name, "error": e.to_string()}));
            failed = true;
        }
    }
    bench.emit(
        json!({"kind": "done", "seconds": started.elapsed().as_secs_f64(),
        "failed_checks": bench.failures}),
    );
    if failed || bench.failures > 0 {
        std::process::exit(1);
    }
}
