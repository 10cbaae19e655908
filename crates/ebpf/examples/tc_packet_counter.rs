//! goebpf's `tc/packet_counter`: counts the IPv4 packets and bytes an interface receives and
//! sends, with two TC classifiers, and prints the counters every second.
//!
//! The programs (`bpf-progs/tc_packet_counter.c`, `tc_ingress` and `tc_egress`) add 1 and the
//! IP total length to `metrics[dir | unit]` (a per-CPU array; bit 0 of the index is set for
//! egress, bit 1 for bytes) and return `TC_ACT_OK`. The example attaches them as `bpf` filters
//! under a `clsact` qdisc, as goebpf did (`tc filter show dev IFACE ingress` lists them while it
//! runs); exiting removes the filters, and the qdisc when this example created it.
//!
//! ```text
//! ip netns exec NS target/debug/examples/tc_packet_counter --iface veth0
//! ```

mod common;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use common::{Args, Result};
use ebpf::attach::tc::{self, TcDirection, TcMechanism, TcOptions};
use ebpf::maps::{Map, PerCpuArray};

const NAME: &str = "tc_packet_counter";
const USAGE: &str = "\
usage: tc_packet_counter --iface IFACE [options]

Counts the IPv4 packets and bytes IFACE receives (ingress) and sends (egress) with two TC
classifiers, and prints the counters every second. Ctrl-C detaches both and exits.
Needs root; meant for an interface in a network namespace of your own.

options:
  -i, --iface IFACE      the interface to attach to (required)
      --elf PATH         the BPF object (default: <workspace>/target/bpf/tc_packet_counter.o)
      --ingress NAME     the ingress program (default: tc_ingress)
      --egress NAME      the egress program (default: tc_egress)
      --direct-action    attach in direct-action mode (goebpf's example did not)
      --tcx              attach with TCX links (Linux 6.6) instead of cls_bpf filters
      --clobber-ingress  replace an `ingress` qdisc in the way (goebpf's example always did;
                         its filters go with it)
      --duration SECS    stop after SECS seconds instead of waiting for Ctrl-C
  -h, --help             this text";

fn main() -> ExitCode {
    common::main_with(NAME, run)
}

fn run() -> Result {
    let mut iface = None;
    let mut elf: Option<PathBuf> = None;
    let mut ingress = "tc_ingress".to_owned();
    let mut egress = "tc_egress".to_owned();
    let mut direct_action = false;
    let mut tcx = false;
    let mut clobber = false;
    let mut duration = None;
    let mut args = Args::from_env();
    while let Some(flag) = args.next_flag()? {
        match flag.as_str() {
            "-i" | "--iface" => iface = Some(args.value()?),
            "--elf" => elf = Some(args.value()?.into()),
            "--ingress" => ingress = args.value()?,
            "--egress" => egress = args.value()?,
            "--direct-action" => direct_action = true,
            "--tcx" => tcx = true,
            "--clobber-ingress" => clobber = true,
            "--duration" => duration = Some(args.duration()?),
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            _ => return Err(args.unknown()),
        }
    }
    let iface: String = common::required(iface, "--iface")?;
    common::require_root(NAME, "attaching TC programs")?;

    let path = common::object_path(elf, NAME)?;
    let system = common::load(&path)?;
    common::print_inventory(&system);
    let metrics = PerCpuArray::<_, u64>::new(common::map(&system, "metrics")?)?;

    let stop = common::Stop::new(duration)?;
    let options = |direction| {
        TcOptions::new(direction)
            .mechanism(if tcx {
                TcMechanism::Tcx
            } else {
                TcMechanism::ClsBpf
            })
            .direct_action(direct_action)
            .clobber_ingress(clobber)
    };
    let in_link = tc::attach(
        common::program(&system, &ingress)?,
        iface.as_str(),
        &options(TcDirection::Ingress),
    )?;
    println!("attached: {in_link}");
    // On an error here, `in_link` is dropped, which detaches it.
    let eg_link = tc::attach(
        common::program(&system, &egress)?,
        iface.as_str(),
        &options(TcDirection::Egress),
    )?;
    println!("attached: {eg_link}");
    println!();

    let mut result = Ok(());
    while stop.wait(Duration::from_secs(1)) {
        if let Err(e) = print_metrics(&metrics) {
            result = Err(e);
            break;
        }
    }
    if result.is_ok() {
        println!("final counts ({}):", stop.reason());
        result = print_metrics(&metrics);
    }
    let detached = eg_link.detach();
    in_link.detach()?;
    detached?;
    println!("detached both programs from {iface}");
    result
}

/// goebpf's lines, `[idx N] rx|tx packets|bytes: value`, for every slot (zero included, so
/// that a reader sees all four).
fn print_metrics<M: Map>(metrics: &PerCpuArray<M, u64>) -> Result {
    for index in 0..4u32 {
        let dir = if index & 1 == 0 { "rx" } else { "tx" };
        let unit = if index & 2 == 0 { "packets" } else { "bytes" };
        let value = common::sum(metrics, index)?;
        println!("[idx {index}] {dir} {unit}: {value}");
    }
    println!();
    Ok(())
}
