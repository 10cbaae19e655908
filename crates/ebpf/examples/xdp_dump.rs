//! goebpf's `xdp/xdp_dump`: prints every TCP SYN an interface receives, sent from XDP to user
//! space through a perf event array.
//!
//! The program (`bpf-progs/xdp_dump.c`) sends, for each IPv4 TCP packet with SYN set, a 12-byte
//! record `{be32 saddr, be32 daddr, be16 sport, be16 dport}` followed by the whole packet
//! (`bpf_perf_event_output` with the packet length in the flags' upper 32 bits) to the perf
//! event array `perfmap`, and passes the packet. The example reads the rings of every online CPU
//! with `bpf_perf::PerfEvents` and prints `TCP: a.b.c.d:port -> e.f.g.h:port` and a hex dump of
//! the packet; on exit, the numbers of events received and lost.
//!
//! ```text
//! ip netns exec NS target/debug/examples/xdp_dump --iface veth0
//! ```

mod common;

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use common::{Args, Result};
use ebpf::attach::xdp::{self, XdpMode, XdpOptions};
use ebpf::perf::{PerfEvents, RecvTimeoutError};

const NAME: &str = "xdp_dump";
const HEADER: usize = 12;
const USAGE: &str = "\
usage: xdp_dump --iface IFACE [options]

Prints the TCP SYNs IFACE receives (source and destination, then a hex dump of the packet),
sent by an XDP program through a perf event array. Ctrl-C detaches, prints how many events
were received and lost, and exits.
Needs root; meant for an interface in a network namespace of your own.

options:
  -i, --iface IFACE      the interface to attach to (required)
      --mode MODE        XDP mode: auto (default: native where the driver has it), skb, drv, hw
      --elf PATH         the BPF object (default: <workspace>/target/bpf/xdp_dump.o)
      --program NAME     the program in the object (default: xdp_dump)
      --buffer BYTES     the size of each CPU's ring (default 65536; rounded up to pages)
      --no-hex           do not print the packets' bytes
      --count N          stop after N events
      --duration SECS    stop after SECS seconds instead of waiting for Ctrl-C
  -h, --help             this text";

fn main() -> ExitCode {
    common::main_with(NAME, run)
}

fn run() -> Result {
    let mut iface = None;
    let mut mode = XdpMode::None;
    let mut elf: Option<PathBuf> = None;
    let mut program = "xdp_dump".to_owned();
    let mut buffer = 65536usize;
    let mut hex = true;
    let mut count: Option<u64> = None;
    let mut duration = None;
    let mut args = Args::from_env();
    while let Some(flag) = args.next_flag()? {
        match flag.as_str() {
            "-i" | "--iface" => iface = Some(args.value()?),
            "--mode" => mode = common::xdp_mode(&mut args)?,
            "--elf" => elf = Some(args.value()?.into()),
            "--program" => program = args.value()?,
            "--buffer" => buffer = args.parse()?,
            "--no-hex" => hex = false,
            "--count" => count = Some(args.parse()?),
            "--duration" => duration = Some(args.duration()?),
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            _ => return Err(args.unknown()),
        }
    }
    let iface: String = common::required(iface, "--iface")?;
    common::require_root(NAME, "attaching an XDP program and reading perf events")?;

    let path = common::object_path(elf, NAME)?;
    let system = common::load(&path)?;
    common::print_inventory(&system);

    let stop = common::Stop::new(duration)?;
    let mut events = PerfEvents::new(common::map(&system, "perfmap")?)?;
    let rx = events.start(buffer)?;
    let counters = events.counters();
    let prog = common::program(&system, &program)?;
    let link = match xdp::attach(prog, iface.as_str(), &XdpOptions::new().mode(mode)) {
        Ok(link) => link,
        Err(e) => {
            // The attach error is the one to report; stopping the reader is cleanup.
            let _ = events.stop();
            return Err(e.into());
        }
    };
    println!("attached: {link}");
    println!("waiting for TCP SYNs on {iface}; Ctrl-C to stop");

    let mut seen = 0u64;
    while !stop.stopped() && count.is_none_or(|n| seen < n) {
        match rx.recv_timeout(stop.remaining(Duration::from_millis(200))) {
            Ok(event) => {
                seen += 1;
                print_event(&event.data, hex);
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    // Detach first (no new events), then stop the reader and print what it counted.
    let detached = link.detach();
    events.stop()?;
    detached?;
    println!();
    println!("Summary:");
    println!("\t{} events received", counters.received());
    println!("\t{} events lost", counters.lost());
    println!("detached from {iface}");
    Ok(())
}

/// One event: goebpf's `TCP: src:port -> dst:port` line, then the packet in hex.
fn print_event(data: &[u8], hex: bool) {
    let Some(header) = data.get(..HEADER) else {
        println!("short event ({} bytes)", data.len());
        return;
    };
    let ip = |at: usize| Ipv4Addr::new(header[at], header[at + 1], header[at + 2], header[at + 3]);
    let port = |at: usize| u16::from_be_bytes([header[at], header[at + 1]]);
    println!("TCP: {}:{} -> {}:{}", ip(0), port(8), ip(4), port(10));
    if hex {
        let packet = trim_padding(&data[HEADER..]);
        for (i, chunk) in packet.chunks(16).enumerate() {
            let bytes: Vec<String> = chunk.iter().map(|b| format!("{b:02x}")).collect();
            println!("  {:04x}  {}", i * 16, bytes.join(" "));
        }
    }
}

/// The packet without the perf record's padding: Ethernet (14 bytes) plus the IPv4 total
/// length, when the packet says so.
fn trim_padding(packet: &[u8]) -> &[u8] {
    let ip_len = packet
        .get(16..18)
        .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])));
    match ip_len {
        Some(len) if 14 + len <= packet.len() => &packet[..14 + len],
        _ => packet,
    }
}
