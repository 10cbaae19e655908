//! goebpf's `xdp/basic_firewall`: drops IPv4 packets by source CIDR with an XDP program and
//! prints, every second, how many packets each rule dropped.
//!
//! The program (`bpf-progs/xdp_basic_firewall.c`) looks the source address up in the LPM trie
//! `blacklist` (value: the rule's index) and counts a match in the per-CPU array `matches`.
//! Run it inside a network namespace, on one end of a veth pair (see `docs/examples.md`):
//!
//! ```text
//! ip netns exec NS target/debug/examples/xdp_basic_firewall --iface veth0 \
//!     --drop 198.18.0.2 --drop 198.18.64.0/18
//! ```

mod common;

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use common::{Args, Result};
use ebpf::attach::xdp::{self, XdpMode, XdpOptions};
use ebpf::maps::{Cidr, LpmKey, LpmTrie, PerCpuArray};

const NAME: &str = "xdp_basic_firewall";
const MAX_RULES: usize = 16;
const USAGE: &str = "\
usage: xdp_basic_firewall --iface IFACE --drop CIDR [--drop CIDR ...] [options]

Drops the IPv4 packets that IFACE receives from the given source networks (XDP), and prints
every second how many packets each rule dropped. Ctrl-C detaches the program and exits.
Needs root; meant for an interface in a network namespace of your own.

options:
  -i, --iface IFACE      the interface to attach to (required)
  -d, --drop CIDR        a source network to drop: 198.18.0.0/24, or a bare address for /32
                         (repeatable, at most 16, IPv4 only)
      --mode MODE        XDP mode: auto (default: native where the driver has it), skb, drv, hw
      --elf PATH         the BPF object (default: <workspace>/target/bpf/xdp_basic_firewall.o)
      --duration SECS    stop after SECS seconds instead of waiting for Ctrl-C
  -h, --help             this text";

fn main() -> ExitCode {
    common::main_with(NAME, run)
}

fn run() -> Result {
    let mut iface = None;
    let mut rules: Vec<Cidr> = Vec::new();
    let mut mode = XdpMode::None;
    let mut elf: Option<PathBuf> = None;
    let mut duration = None;
    let mut args = Args::from_env();
    while let Some(flag) = args.next_flag()? {
        match flag.as_str() {
            "-i" | "--iface" => iface = Some(args.value()?),
            "-d" | "--drop" => {
                let cidr: Cidr = args.parse()?;
                if !matches!(cidr.addr(), IpAddr::V4(_)) {
                    return Err(common::usage(format!(
                        "--drop {cidr}: only IPv4 networks (the program reads IPv4 headers)"
                    )));
                }
                rules.push(cidr);
            }
            "--mode" => mode = common::xdp_mode(&mut args)?,
            "--elf" => elf = Some(args.value()?.into()),
            "--duration" => duration = Some(args.duration()?),
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            _ => return Err(args.unknown()),
        }
    }
    let iface = common::required(iface, "--iface")?;
    if rules.is_empty() {
        return Err(common::usage("give at least one --drop CIDR"));
    }
    if rules.len() > MAX_RULES {
        return Err(common::usage(format!(
            "{} rules given, the program has room for {MAX_RULES}",
            rules.len()
        )));
    }
    common::require_root(NAME, "attaching an XDP program")?;

    let path = common::object_path(elf, NAME)?;
    let system = common::load(&path)?;
    common::print_inventory(&system);

    let blacklist = LpmTrie::<_, [u8; 4], u32>::new(common::map(&system, "blacklist")?)?;
    for (index, cidr) in rules.iter().enumerate() {
        let IpAddr::V4(addr) = cidr.addr() else {
            continue;
        };
        let key = LpmKey::new(u32::from(cidr.prefix_len()), addr.octets());
        blacklist.insert(&key, &(index as u32), 0)?;
    }
    let matches = PerCpuArray::<_, u64>::new(common::map(&system, "matches")?)?;

    let stop = common::Stop::new(duration)?;
    let prog = common::program(&system, "firewall")?;
    let link = xdp::attach(prog, iface.as_str(), &XdpOptions::new().mode(mode))?;
    println!("attached: {link}");
    for (index, cidr) in rules.iter().enumerate() {
        println!("rule {index}: drop {cidr}");
    }
    println!();

    let mut result = Ok(());
    while stop.wait(Duration::from_secs(1)) {
        if let Err(e) = print_table(&rules, &matches) {
            result = Err(e);
            break;
        }
    }
    // The last counts, then detach (also after an error reading the map).
    if result.is_ok() {
        println!("final counts ({}):", stop.reason());
        result = print_table(&rules, &matches);
    }
    link.detach()?;
    println!("detached the firewall from {iface}");
    result
}

/// goebpf's table: each rule with the packets it dropped, summed over the CPUs.
fn print_table<M: ebpf::maps::Map>(rules: &[Cidr], matches: &PerCpuArray<M, u64>) -> Result {
    println!("{:<4} {:<20} {:>10}", "RULE", "CIDR", "DROPS");
    for (index, cidr) in rules.iter().enumerate() {
        let drops = common::sum(matches, index as u32)?;
        println!("{index:<4} {:<20} {drops:>10}", cidr.to_string());
    }
    println!();
    Ok(())
}
