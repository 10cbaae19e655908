//! goebpf's `socket_filter/packet_counter`: counts every packet an interface sees with a
//! socket filter on a raw packet socket.
//!
//! The example opens an `AF_PACKET` raw socket for every protocol (`ETH_P_ALL`), binds it to
//! the interface (`SO_BINDTODEVICE`), attaches the program (`bpf-progs/socket_filter_packet_counter.c`,
//! which adds 1 to `counter[0]` and keeps the whole packet) with `SO_ATTACH_BPF`, and prints the
//! count every second. A packet socket sees both directions: what the interface receives and
//! what it sends.
//!
//! ```text
//! ip netns exec NS target/debug/examples/socket_filter_packet_counter --iface veth0
//! ```

mod common;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use common::{Args, Result};
use ebpf::attach::socket::{self, SocketAttach};
use ebpf::attach::{AttachError, Iface};
use ebpf::maps::PerCpuArray;
use socket2::{Domain, Protocol, Socket, Type};

const NAME: &str = "socket_filter_packet_counter";
const ETH_P_ALL: u16 = 0x0003;
const ENODEV: i32 = 19;
const USAGE: &str = "\
usage: socket_filter_packet_counter --iface IFACE [options]

Counts every packet IFACE sends or receives with a socket filter on a raw packet socket bound
to it, and prints the count every second. Ctrl-C detaches the filter and exits.
Needs root.

options:
  -i, --iface IFACE      the interface to bind the packet socket to (required)
      --elf PATH         the BPF object (default: <workspace>/target/bpf/socket_filter_packet_counter.o)
      --program NAME     the program in the object (default: packet_counter)
      --duration SECS    stop after SECS seconds instead of waiting for Ctrl-C
  -h, --help             this text";

fn main() -> ExitCode {
    common::main_with(NAME, run)
}

fn run() -> Result {
    let mut iface = None;
    let mut elf: Option<PathBuf> = None;
    let mut program = "packet_counter".to_owned();
    let mut duration = None;
    let mut args = Args::from_env();
    while let Some(flag) = args.next_flag()? {
        match flag.as_str() {
            "-i" | "--iface" => iface = Some(args.value()?),
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
    let iface: String = common::required(iface, "--iface")?;
    common::require_root(NAME, "a packet socket with a BPF filter")?;

    let path = common::object_path(elf, NAME)?;
    let system = common::load(&path)?;
    common::print_inventory(&system);
    let counter = PerCpuArray::<_, u64>::new(common::map(&system, "counter")?)?;

    // goebpf's socket: AF_PACKET, SOCK_RAW, htons(ETH_P_ALL), bound to the interface.
    let sock = Socket::new(
        Domain::PACKET,
        Type::RAW,
        Some(Protocol::from(i32::from(ETH_P_ALL.to_be()))),
    )
    .map_err(|e| format!("cannot open a packet socket: {e}"))?;
    sock.bind_device(Some(iface.as_bytes()))
        .map_err(|e| -> common::Error {
            if e.raw_os_error() == Some(ENODEV) {
                AttachError::InterfaceNotFound {
                    iface: Iface::Name(iface.clone()),
                }
                .into()
            } else {
                format!("cannot bind the packet socket to {iface}: {e}").into()
            }
        })?;

    let stop = common::Stop::new(duration)?;
    let prog = common::program(&system, &program)?;
    let link = socket::attach(prog, &sock, SocketAttach::Filter)?;
    println!(
        "attached: socket filter (program id {}) on a packet socket bound to {iface}",
        link.prog_id()
    );

    let mut result = Ok(());
    while stop.wait(Duration::from_secs(1)) {
        match common::sum(&counter, 0) {
            Ok(n) => println!(" Packets: {n}"),
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    if result.is_ok() {
        result =
            common::sum(&counter, 0).map(|n| println!("final ({}): Packets: {n}", stop.reason()));
    }
    link.detach()?;
    drop(sock);
    println!("detached the socket filter and closed the socket");
    result
}
