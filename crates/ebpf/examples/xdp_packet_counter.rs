//! goebpf's `xdp/packet_counter`: counts the IPv4 packets an interface receives, per IP
//! protocol, with an XDP program, and prints the non-zero counters every second.
//!
//! The program (`bpf-progs/xdp_packet_counter.c`) adds 1 to `protocols[ip protocol]` (a
//! per-CPU array of 255 counters) for each IPv4 packet and passes it on. Run it inside a network
//! namespace, on one end of a veth pair (see `docs/examples.md`):
//!
//! ```text
//! ip netns exec NS target/debug/examples/xdp_packet_counter --iface veth0
//! ```

mod common;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use common::{Args, Result};
use ebpf::attach::xdp::{self, XdpMode, XdpOptions};
use ebpf::maps::{Map, PerCpuArray};

const NAME: &str = "xdp_packet_counter";
const USAGE: &str = "\
usage: xdp_packet_counter --iface IFACE [options]

Counts the IPv4 packets IFACE receives, per IP protocol (XDP), and prints the non-zero
counters every second. Ctrl-C detaches the program and exits.
Needs root; meant for an interface in a network namespace of your own.

options:
  -i, --iface IFACE      the interface to attach to (required)
      --mode MODE        XDP mode: auto (default: native where the driver has it), skb, drv, hw
      --elf PATH         the BPF object (default: <workspace>/target/bpf/xdp_packet_counter.o)
      --program NAME     the program in the object (default: packet_count)
      --duration SECS    stop after SECS seconds instead of waiting for Ctrl-C
  -h, --help             this text";

fn main() -> ExitCode {
    common::main_with(NAME, run)
}

fn run() -> Result {
    let mut iface = None;
    let mut mode = XdpMode::None;
    let mut elf: Option<PathBuf> = None;
    let mut program = "packet_count".to_owned();
    let mut duration = None;
    let mut args = Args::from_env();
    while let Some(flag) = args.next_flag()? {
        match flag.as_str() {
            "-i" | "--iface" => iface = Some(args.value()?),
            "--mode" => mode = common::xdp_mode(&mut args)?,
            "--elf" => elf = Some(args.value()?.into()),
            "--program" => program = args.value()?,
            "--duration" => duration = Some(args.duration()?),
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            _ => return Err(args.unknown()),
        }
    }
    let iface = common::required(iface, "--iface")?;
    common::require_root(NAME, "attaching an XDP program")?;

    let path = common::object_path(elf, NAME)?;
    let system = common::load(&path)?;
    common::print_inventory(&system);
    let protocols = PerCpuArray::<_, u64>::new(common::map(&system, "protocols")?)?;

    let stop = common::Stop::new(duration)?;
    let prog = common::program(&system, &program)?;
    let link = xdp::attach(prog, iface.as_str(), &XdpOptions::new().mode(mode))?;
    println!("attached: {link}");
    println!("counting IPv4 packets per protocol on {iface}, every second:");

    let mut result = Ok(());
    while stop.wait(Duration::from_secs(1)) {
        match counts(&protocols) {
            Ok(line) => println!("{line}"),
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    if result.is_ok() {
        result = counts(&protocols).map(|line| println!("final ({}): {line}", stop.reason()));
    }
    link.detach()?;
    println!("detached the packet counter from {iface}");
    result
}

/// The non-zero counters as `ICMP: 3  UDP: 10` (goebpf's line, protocol names included).
fn counts<M: Map>(protocols: &PerCpuArray<M, u64>) -> Result<String> {
    let mut line = String::new();
    for proto in 0..protocols.len() {
        let n = common::sum(protocols, proto)?;
        if n > 0 {
            if !line.is_empty() {
                line.push_str("  ");
            }
            line.push_str(&format!("{}: {n}", protocol_name(proto)));
        }
    }
    if line.is_empty() {
        line.push_str("(no IPv4 packets yet)");
    }
    Ok(line)
}

/// goebpf's names for the common protocols; others by number.
fn protocol_name(proto: u32) -> String {
    match proto {
        1 => "ICMP".into(),
        2 => "IGMP".into(),
        4 => "IPIP".into(),
        6 => "TCP".into(),
        17 => "UDP".into(),
        47 => "GRE".into(),
        98 => "ENCAP".into(),
        132 => "SCTP".into(),
        n => format!("proto {n}"),
    }
}
