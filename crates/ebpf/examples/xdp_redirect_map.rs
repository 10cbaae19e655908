//! goebpf's `xdp/bpf_redirect_map`: reflects ICMP packets back to their sender from XDP,
//! through a FIB lookup and a device map.
//!
//! The program (`bpf-progs/xdp_redirect_map.c`) takes each IPv4 ICMP packet, asks the kernel's
//! FIB (`bpf_fib_lookup`) how to reach its source, swaps the IP addresses, rewrites the MAC
//! addresses and sends it out with `bpf_redirect_map(&if_redirect, egress ifindex)`. The
//! example attaches it to each interface given and maps each interface's index to itself in
//! `if_redirect`. A ping from the other end of a veth pair then gets its own echo request back,
//! with the addresses swapped, instead of an echo reply from the kernel.
//!
//! Unlike goebpf's, which exited with its programs still attached, this one waits, and detaches
//! on Ctrl-C or at the end of `--duration`; `--keep` leaves them attached, as goebpf did.
//!
//! ```text
//! ip netns exec NS target/debug/examples/xdp_redirect_map --iface veth0
//! ```

mod common;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use common::{Args, Result};
use ebpf::attach::xdp::{self, XdpMode, XdpOptions};
use ebpf::maps::DevMap;

const NAME: &str = "xdp_redirect_map";
const USAGE: &str = "\
usage: xdp_redirect_map --iface IFACE[,IFACE...] [options]

Reflects the ICMP packets each IFACE receives back to their sender from XDP (a FIB lookup, then
bpf_redirect_map through the device map `if_redirect`). Ctrl-C detaches and exits.
The FIB lookup needs IPv4 forwarding on each IFACE (net.ipv4.conf.IFACE.forwarding=1).
Needs root; meant for interfaces in a network namespace of your own.

options:
  -i, --iface IFACE[,..] the interfaces to attach to (required; repeatable or comma-separated)
      --mode MODE        XDP mode: skb (default, as goebpf), drv, hw, auto. A veth redirects
                         in drv mode only when its peer runs XDP or GRO too
      --elf PATH         the BPF object (default: <workspace>/target/bpf/xdp_redirect_map.o)
      --keep             exit at once and leave the programs attached (goebpf's behaviour);
                         remove them with `ip link set dev IFACE xdp off` (or xdpgeneric off)
      --duration SECS    stop after SECS seconds instead of waiting for Ctrl-C
  -h, --help             this text";

fn main() -> ExitCode {
    common::main_with(NAME, run)
}

fn run() -> Result {
    let mut ifaces: Vec<String> = Vec::new();
    let mut mode = XdpMode::Skb;
    let mut elf: Option<PathBuf> = None;
    let mut keep = false;
    let mut duration = None;
    let mut args = Args::from_env();
    while let Some(flag) = args.next_flag()? {
        match flag.as_str() {
            "-i" | "--iface" => ifaces.extend(
                args.value()?
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned),
            ),
            "--mode" => mode = common::xdp_mode(&mut args)?,
            "--elf" => elf = Some(args.value()?.into()),
            "--keep" => keep = true,
            "--duration" => duration = Some(args.duration()?),
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            _ => return Err(args.unknown()),
        }
    }
    if ifaces.is_empty() {
        return Err(common::usage("--iface is required"));
    }
    common::require_root(NAME, "attaching an XDP program")?;

    let path = common::object_path(elf, NAME)?;
    let system = common::load(&path)?;
    common::print_inventory(&system);
    let redirect = DevMap::new(common::map(&system, "if_redirect")?)?;
    let prog = common::program(&system, "xdp_test")?;

    let stop = common::Stop::new(duration)?;
    // Netlink under --keep: a bpf_link would go with this process.
    let opts = XdpOptions::new().mode(mode).mechanism(if keep {
        xdp::XdpMechanism::Netlink
    } else {
        xdp::XdpMechanism::Auto
    });
    let mut links = Vec::new();
    for iface in &ifaces {
        // Attach first: it resolves the name (a missing interface is a typed error).
        let link = xdp::attach(prog, iface.as_str(), &opts)?;
        let index = link.ifindex();
        redirect.set(index, index, None)?;
        println!("attached: {link}; if_redirect[{index}] = {index}");
        if !forwarding(iface) {
            println!(
                "note: IPv4 forwarding is off on {iface}: the FIB lookup fails and ICMP is \
                 dropped; turn it on with `sysctl -w net.ipv4.conf.{iface}.forwarding=1`"
            );
        }
        links.push(link);
    }

    if keep {
        for link in links {
            let (iface, mode) = (link.iface().to_owned(), link.mode());
            link.keep();
            let off = if mode == XdpMode::Skb {
                "xdpgeneric"
            } else {
                "xdp"
            };
            println!(
                "XDP program left attached to {iface}. To detach it: ip link set dev {iface} {off} off"
            );
        }
        return Ok(());
    }

    println!("reflecting ICMP on {}; Ctrl-C to stop", ifaces.join(", "));
    while stop.wait(Duration::from_secs(1)) {}
    println!("stopping ({})", stop.reason());
    let mut first_error = None;
    for link in links {
        let iface = link.iface().to_owned();
        match link.detach() {
            Ok(()) => println!("detached from {iface}"),
            Err(e) => {
                eprintln!("{NAME}: detaching from {iface}: {}", common::chain(&e));
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

/// Whether IPv4 forwarding is on for `iface`: `bpf_fib_lookup` answers "forwarding disabled"
/// for packets received on an interface without it.
fn forwarding(iface: &str) -> bool {
    std::fs::read_to_string(format!("/proc/sys/net/ipv4/conf/{iface}/forwarding"))
        .is_ok_and(|v| v.trim() == "1")
}
