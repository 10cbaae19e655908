//! What the goebpf examples share: a small argument parser, the root check, Ctrl-C and
//! `--duration` handling, the BPF object's default path, the loaded object's inventory, and the
//! error report (the whole chain of causes on one line).
//!
//! Included by each example with `mod common;` (cargo does not build `examples/common/` as an
//! example of its own).
#![allow(dead_code, reason = "each example uses a part of this module")]

use std::error::Error as StdError;
use std::fmt;
use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ebpf::attach::KernelSystem;
use ebpf::maps::{Map, PerCpuArray};

/// Any error, with its chain of causes.
pub type Error = Box<dyn StdError + Send + Sync>;
/// The examples' result.
pub type Result<T = (), E = Error> = std::result::Result<T, E>;

/// A mistake on the command line: reported with a pointer to `--help`, exit status 2.
#[derive(Debug)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl StdError for UsageError {}

/// Runs an example's body and turns its result into an exit status, printing errors as
/// `NAME: error: what: why: root cause`.
pub fn main_with(name: &str, body: impl FnOnce() -> Result) -> ExitCode {
    match body() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is::<UsageError>() => {
            eprintln!("{name}: {e}\nrun `{name} --help` for the options");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("{name}: error: {}", chain(&*e));
            ExitCode::FAILURE
        }
    }
}

/// An error and its sources on one line.
pub fn chain(e: &(dyn StdError + 'static)) -> String {
    let mut msg = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        // Some errors repeat their source in their message: say it once.
        if !msg.ends_with(&text) {
            msg.push_str(": ");
            msg.push_str(&text);
        }
        source = s.source();
    }
    msg
}

/// A command-line parser for `--flag VALUE`, `--flag=VALUE` and `-f VALUE`.
#[derive(Debug)]
pub struct Args {
    args: std::vec::IntoIter<String>,
    /// The flag being parsed and an inline value (`--flag=VALUE`) not yet taken.
    current: String,
    inline: Option<String>,
}

impl Args {
    /// The process's arguments, without the program name.
    pub fn from_env() -> Self {
        Args {
            args: std::env::args().skip(1).collect::<Vec<_>>().into_iter(),
            current: String::new(),
            inline: None,
        }
    }

    /// The next flag, `None` at the end. A positional argument is a usage error, and so is a
    /// value given to the previous flag with `=` that it did not take.
    pub fn next_flag(&mut self) -> Result<Option<String>> {
        if self.inline.is_some() {
            return Err(usage(format!("{} takes no value", self.current)));
        }
        let Some(arg) = self.args.next() else {
            return Ok(None);
        };
        if !arg.starts_with('-') || arg == "-" {
            return Err(usage(format!("unexpected argument `{arg}`")));
        }
        match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => {
                self.current = flag.to_owned();
                self.inline = Some(value.to_owned());
            }
            _ => self.current = arg,
        }
        Ok(Some(self.current.clone()))
    }

    /// The value of the current flag.
    pub fn value(&mut self) -> Result<String> {
        if let Some(v) = self.inline.take() {
            return Ok(v);
        }
        self.args
            .next()
            .ok_or_else(|| usage(format!("{} needs a value", self.current)))
    }

    /// The value of the current flag, parsed.
    pub fn parse<T: FromStr>(&mut self) -> Result<T>
    where
        T::Err: fmt::Display,
    {
        let v = self.value()?;
        v.parse()
            .map_err(|e| usage(format!("invalid value `{v}` for {}: {e}", self.current)))
    }

    /// `--duration SECS`: fractional seconds, more than zero.
    pub fn duration(&mut self) -> Result<Duration> {
        let secs: f64 = self.parse()?;
        Duration::try_from_secs_f64(secs)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(|| {
                usage(format!(
                    "{} needs a positive number of seconds",
                    self.current
                ))
            })
    }

    /// The error for a flag this example does not know.
    pub fn unknown(&self) -> Error {
        usage(format!("unknown option `{}`", self.current))
    }
}

/// A usage error.
pub fn usage(msg: impl Into<String>) -> Error {
    Box::new(UsageError(msg.into()))
}

/// A required option that was not given.
pub fn required<T>(value: Option<T>, flag: &str) -> Result<T> {
    value.ok_or_else(|| usage(format!("{flag} is required")))
}

/// Refuses to go on without root: loading and attaching programs needs CAP_BPF and
/// CAP_NET_ADMIN (CAP_PERFMON for perf buffers), which root has.
pub fn require_root(name: &str, what: &str) -> Result {
    if rustix::process::geteuid().is_root() {
        Ok(())
    } else {
        Err(format!(
            "{what} needs root (CAP_BPF, CAP_NET_ADMIN): run it as root, for instance \
             `sudo ip netns exec NS {name} ...`"
        )
        .into())
    }
}

/// Where the BPF object is: `--elf PATH` when given, else `<workspace>/target/bpf/STEM.o`
/// (built by `cargo xtask build-bpf`).
pub fn object_path(elf: Option<PathBuf>, stem: &str) -> Result<PathBuf> {
    if let Some(path) = elf {
        return Ok(path);
    }
    let path = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/bpf"))
        .join(format!("{stem}.o"));
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "no BPF object at {}: build it with `cargo xtask build-bpf`, or pass --elf PATH",
            path.display()
        )
        .into())
    }
}

/// Opens, creates the maps of, and loads every program of the object at `path`.
pub fn load(path: &std::path::Path) -> Result<KernelSystem> {
    let mut system = KernelSystem::load_elf(path)
        .map_err(|e| format!("loading {}: {}", path.display(), chain(&e)))?;
    system.load_all()?;
    Ok(system)
}

/// goebpf's inventory after loading: the maps and the programs.
pub fn print_inventory(system: &KernelSystem) {
    println!("Maps:");
    for map in system.maps() {
        println!(
            "\t{}: {:?}, max entries {}, key {} bytes, value {} bytes",
            map.name(),
            map.map_type(),
            map.max_entries(),
            map.key_size(),
            map.value_size()
        );
    }
    println!("Programs:");
    for prog in system.programs() {
        println!(
            "\t{}: {:?}, section {}, license {}",
            prog.name(),
            prog.program_type(),
            prog.section(),
            prog.license()
        );
    }
    println!();
}

/// A map of the object by name, or an error naming it.
pub fn map<'a>(system: &'a KernelSystem, name: &str) -> Result<&'a ebpf::maps::KernelMap> {
    system
        .map(name)
        .ok_or_else(|| format!("the object has no map `{name}`").into())
}

/// A loaded program of the object by name, or an error naming it.
pub fn program<'a>(system: &'a KernelSystem, name: &str) -> Result<std::os::fd::BorrowedFd<'a>> {
    system
        .program(name)
        .ok_or_else(|| format!("the object has no program `{name}`"))?
        .fd()
        .ok_or_else(|| format!("the program `{name}` is not loaded").into())
}

/// The sum over every CPU of one slot of a per-CPU array of counters.
pub fn sum<M: Map>(array: &PerCpuArray<M, u64>, index: u32) -> Result<u64> {
    Ok(array.get(index)?.iter().sum())
}

/// When to stop: Ctrl-C (SIGINT), SIGTERM, or the end of `--duration`.
#[derive(Debug)]
pub struct Stop {
    signalled: Arc<AtomicBool>,
    deadline: Option<Instant>,
}

impl Stop {
    /// Catches SIGINT and SIGTERM from now on; stops after `duration` when one is given.
    pub fn new(duration: Option<Duration>) -> Result<Self> {
        let signalled = Arc::new(AtomicBool::new(false));
        for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            signal_hook::flag::register(signal, Arc::clone(&signalled))
                .map_err(|e| format!("cannot catch signal {signal}: {e}"))?;
        }
        Ok(Stop {
            signalled,
            deadline: duration.map(|d| Instant::now() + d),
        })
    }

    /// Whether it is time to stop.
    pub fn stopped(&self) -> bool {
        self.signalled.load(Ordering::Relaxed) || self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// Waits up to `period`, in short steps; false when it is time to stop.
    pub fn wait(&self, period: Duration) -> bool {
        let end = Instant::now() + period;
        loop {
            if self.stopped() {
                return false;
            }
            let now = Instant::now();
            if now >= end {
                return true;
            }
            std::thread::sleep((end - now).min(Duration::from_millis(50)));
        }
    }

    /// How long until the deadline (a long time without one), at most `cap`.
    pub fn remaining(&self, cap: Duration) -> Duration {
        self.deadline.map_or(cap, |d| {
            d.saturating_duration_since(Instant::now()).min(cap)
        })
    }

    /// Why it stopped, for the last line.
    pub fn reason(&self) -> &'static str {
        if self.signalled.load(Ordering::Relaxed) {
            "interrupted"
        } else {
            "duration over"
        }
    }
}

/// `--mode`: which XDP mode to ask for.
pub fn xdp_mode(args: &mut Args) -> Result<ebpf::attach::xdp::XdpMode> {
    use ebpf::attach::xdp::XdpMode;
    let v = args.value()?;
    Ok(match v.as_str() {
        "auto" | "default" => XdpMode::None,
        "skb" | "generic" => XdpMode::Skb,
        "drv" | "native" => XdpMode::Drv,
        "hw" | "offload" => XdpMode::Hw,
        _ => {
            return Err(usage(format!(
                "invalid value `{v}` for --mode: expected auto, skb, drv or hw"
            )))
        }
    })
}
