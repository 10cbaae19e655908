//! The demo behind `cargo xtask demo` (root only): goebpf's packet counter and basic firewall,
//! attached in private network namespaces, fed with real UDP and ICMP packets.
//!
//! Layout: three namespaces joined by two veth pairs, so that one stream of packets meets
//! both XDP programs (an interface has one XDP program per mode, and XDP sees only what an
//! interface receives):
//!
//! ```text
//!  sender                      router                         receiver
//!  s0 198.18.1.2/24  ------  r0 198.18.1.1/24  [firewall]
//!     198.18.1.66/24 (blocked source)
//!                              r1 198.18.2.1/24  ------  a0 198.18.2.2/24  [packet counter]
//! ```
//!
//! The firewall drops 198.18.1.64/26 on the router's ingress from the sender; the counter
//! counts, per IP protocol, what reaches the receiver. The sender sends UDP and ICMP echo
//! requests from both of its addresses. The demo prints the counts and the drops per rule,
//! detaches, removes the namespaces, and exits 0 only when every packet is accounted for:
//! each one from the allowed address counted at the receiver, each one from the blocked
//! address dropped by the rule.
//!
//! The namespaces belong to `sleep` processes that die with the demo (`setpriv --pdeathsig`),
//! so nothing is left behind on any path: error, panic, Ctrl-C or kill. No interface of the
//! machine's own namespace is touched.

use std::error::Error;
use std::fs::File;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use ebpf::attach::xdp::{self, XdpMode, XdpOptions};
use ebpf::attach::KernelSystem;
use ebpf::maps::{LpmKey, LpmTrie, PerCpuArray};

type Result<T = (), E = Box<dyn Error + Send + Sync>> = std::result::Result<T, E>;

const USAGE: &str = "\
usage: demo [--bpf-dir DIR] [--packets N]

Attaches target/bpf/xdp_basic_firewall.o and xdp_packet_counter.o in private network
namespaces, sends UDP and ICMP packets through them, prints what they saw, and cleans up.
Needs root. Exit status 0 only when every packet sent is accounted for.

  --bpf-dir DIR   where the BPF objects are (default: <workspace>/target/bpf)
  --packets N     packets of each kind from each source address (default 20)";

const SENDER: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 2);
const BLOCKED: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 66);
const RECEIVER: Ipv4Addr = Ipv4Addr::new(198, 18, 2, 2);
/// The firewall's one rule: the blocked CIDR and its index in `matches`.
const RULE: (Ipv4Addr, u32, u32) = (Ipv4Addr::new(198, 18, 1, 64), 26, 0);
const IPPROTO_ICMP: u32 = 1;
const IPPROTO_UDP: u32 = 17;

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            let mut msg = e.to_string();
            let mut source = e.source();
            while let Some(s) = source {
                msg.push_str(": ");
                msg.push_str(&s.to_string());
                source = s.source();
            }
            eprintln!("demo: {msg}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<bool> {
    let mut bpf_dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/bpf"));
    let mut packets = 20usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--bpf-dir" => bpf_dir = args.next().ok_or("--bpf-dir needs a value")?.into(),
            "--packets" => packets = args.next().ok_or("--packets needs a value")?.parse()?,
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(true);
            }
            other => return Err(format!("unknown argument `{other}`\n{USAGE}").into()),
        }
    }
    if !rustix::process::geteuid().is_root() {
        return Err(
            "the demo creates network namespaces and attaches XDP programs: run it as \
                    root (sudo cargo xtask demo)"
                .into(),
        );
    }
    let started = Instant::now();

    // The namespaces and their wiring.
    let sender = Ns::new("sender")?;
    let router = Ns::new("router")?;
    let receiver = Ns::new("receiver")?;
    sender.ip(&[
        "link",
        "add",
        "s0",
        "type",
        "veth",
        "peer",
        "name",
        "r0",
        "netns",
        &router.pid(),
    ])?;
    router.ip(&[
        "link",
        "add",
        "r1",
        "type",
        "veth",
        "peer",
        "name",
        "a0",
        "netns",
        &receiver.pid(),
    ])?;
    for (ns, dev, addrs) in [
        (&sender, "s0", &["198.18.1.2/24", "198.18.1.66/24"][..]),
        (&router, "r0", &["198.18.1.1/24"][..]),
        (&router, "r1", &["198.18.2.1/24"][..]),
        (&receiver, "a0", &["198.18.2.2/24"][..]),
    ] {
        for addr in addrs {
            ns.ip(&["addr", "add", addr, "dev", dev])?;
        }
        ns.ip(&["link", "set", dev, "up"])?;
    }
    for ns in [&sender, &router, &receiver] {
        ns.ip(&["link", "set", "lo", "up"])?;
    }
    sender.ip(&["route", "add", "198.18.2.0/24", "via", "198.18.1.1"])?;
    receiver.ip(&["route", "add", "198.18.1.0/24", "via", "198.18.2.1"])?;
    router.sh("echo 1 > /proc/sys/net/ipv4/ip_forward")?;
    println!("namespaces: sender (s0), router (r0, r1), receiver (a0), joined by two veth pairs");

    // The programs, through the object loader.
    let mut firewall = KernelSystem::load_elf(bpf_dir.join("xdp_basic_firewall.o"))?;
    firewall.load_all()?;
    let mut counter = KernelSystem::load_elf(bpf_dir.join("xdp_packet_counter.o"))?;
    counter.load_all()?;
    let blacklist =
        LpmTrie::<_, [u8; 4], u32>::new(firewall.map("blacklist").ok_or("no blacklist map")?)?;
    blacklist.insert(&LpmKey::new(RULE.1, RULE.0.octets()), &RULE.2, 0)?;
    let matches = PerCpuArray::<_, u64>::new(firewall.map("matches").ok_or("no matches map")?)?;
    let protocols =
        PerCpuArray::<_, u64>::new(counter.map("protocols").ok_or("no protocols map")?)?;
    let fw_prog = firewall
        .program("firewall")
        .and_then(|p| p.fd())
        .ok_or("firewall not loaded")?;
    let count_prog = counter
        .program("packet_count")
        .and_then(|p| p.fd())
        .ok_or("packet_count not loaded")?;

    // Native XDP on both veth ends; a bpf_link where the kernel has one.
    let opts = XdpOptions::new().mode(XdpMode::Drv);
    let fw_link = router.run(|| xdp::attach(fw_prog, "r0", &opts))??;
    let count_link = receiver.run(|| xdp::attach(count_prog, "a0", &opts))??;
    println!("attached: firewall as {fw_link}");
    println!("attached: packet counter as {count_link}");
    println!("firewall rule {}: drop {}/{}", RULE.2, RULE.0, RULE.1);

    // The traffic: UDP to a socket in the receiver, ICMP echo requests to its address.
    let udp_rx = receiver.run(|| UdpSocket::bind((RECEIVER, 0)))??;
    udp_rx.set_read_timeout(Some(Duration::from_millis(500)))?;
    let dest = SocketAddrV4::new(RECEIVER, udp_rx.local_addr()?.port());
    sender.run(|| send_traffic(dest, packets))??;
    let mut udp_received = 0;
    let mut buf = [0u8; 64];
    while udp_rx.recv(&mut buf).is_ok() {
        udp_received += 1;
    }

    let sum = |a: &PerCpuArray<_, u64>, i: u32| -> Result<u64> { Ok(a.get(i)?.iter().sum()) };
    let (udp, icmp) = (
        sum(&protocols, IPPROTO_UDP)?,
        sum(&protocols, IPPROTO_ICMP)?,
    );
    let other: u64 = (0..255)
        .filter(|&p| p != IPPROTO_UDP && p != IPPROTO_ICMP)
        .map(|p| sum(&protocols, p))
        .sum::<Result<u64>>()?;
    let dropped = sum(&matches, RULE.2)?;
    let n = packets as u64;
    println!();
    println!("sent from {SENDER} (allowed): {packets} UDP, {packets} ICMP echo requests");
    println!("sent from {BLOCKED} (blocked): {packets} UDP, {packets} ICMP echo requests");
    println!();
    println!("packet counter at the receiver (IPv4 per protocol):");
    println!("  icmp   {icmp:>6}");
    println!("  udp    {udp:>6}");
    println!("  other  {other:>6}");
    println!("firewall drops per rule:");
    println!("  rule {} {}/{}  {dropped:>6}", RULE.2, RULE.0, RULE.1);
    println!("udp datagrams the receiver's socket got: {udp_received}");

    let ok = udp == n && icmp == n && other == 0 && dropped == 2 * n && udp_received == packets;
    if !ok {
        println!(
            "MISMATCH: expected {n} udp, {n} icmp, 0 other counted, {} dropped, {n} received",
            2 * n
        );
    }

    // Detach (reporting failures), then the namespaces go with their guards.
    fw_link.detach()?;
    count_link.detach()?;
    println!("\ndetached both programs");
    drop((sender, router, receiver));
    println!("removed the namespaces ({:.1?} in all)", started.elapsed());
    println!("{}", if ok { "demo: ok" } else { "demo: FAILED" });
    Ok(ok)
}

/// Sends `n` UDP datagrams and `n` ICMP echo requests from each of the sender's addresses,
/// paced a little so that neighbour resolution never overflows its queue.
fn send_traffic(dest: SocketAddrV4, n: usize) -> Result {
    use rustix::net::{bind, ipproto, sendto, socket, AddressFamily, SendFlags, SocketType};
    for src in [SENDER, BLOCKED] {
        let udp = UdpSocket::bind((src, 0))?;
        let icmp = socket(AddressFamily::INET, SocketType::RAW, Some(ipproto::ICMP))?;
        bind(&icmp, &SocketAddrV4::new(src, 0))?;
        for seq in 0..n as u16 {
            udp.send_to(format!("datagram {seq} from {src}").as_bytes(), dest)?;
            let echo = icmp_echo(0xeb9f, seq, b"ebpf demo");
            sendto(
                &icmp,
                &echo,
                SendFlags::empty(),
                &SocketAddrV4::new(*dest.ip(), 0),
            )?;
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    // Let the last packets cross both hops.
    std::thread::sleep(Duration::from_millis(200));
    Ok(())
}

/// An ICMP echo request with its checksum.
fn icmp_echo(id: u16, seq: u16, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![8, 0, 0, 0];
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(payload);
    let mut sum: u32 = p
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    p[2..4].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    p
}

/// A network namespace owned by a `sleep` process that dies with this one.
struct Ns {
    name: &'static str,
    child: Child,
    file: File,
}

impl Ns {
    fn new(name: &'static str) -> Result<Ns> {
        let mut child = Command::new("setpriv")
            .args([
                "--pdeathsig",
                "KILL",
                "--",
                "unshare",
                "--net",
                "--",
                "sleep",
                "infinity",
            ])
            .stdin(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start the {name} namespace (setpriv, unshare): {e}"))?;
        let pid = child.id();
        let own = std::fs::metadata("/proc/self/ns/net")?.ino();
        // Wait until the child runs `sleep` in its own namespace: never configure ours.
        let deadline = Instant::now() + Duration::from_secs(5);
        let file = loop {
            let ns_path = format!("/proc/{pid}/ns/net");
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            if comm.trim() == "sleep" {
                let file = File::open(&ns_path)?;
                if file.metadata()?.ino() != own {
                    break file;
                }
            }
            if let Some(status) = child.try_wait()? {
                return Err(format!("the {name} namespace process exited with {status}").into());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("the {name} namespace did not come up").into());
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        Ok(Ns { name, child, file })
    }

    fn pid(&self) -> String {
        self.child.id().to_string()
    }

    /// Runs a command inside the namespace.
    fn exec(&self, program: &str, args: &[&str]) -> Result {
        let out = Command::new("nsenter")
            .arg(format!("--net=/proc/{}/ns/net", self.child.id()))
            .arg("--")
            .arg(program)
            .args(args)
            .output()?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "in the {} namespace, `{program} {}` failed: {}",
                self.name,
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            )
            .into())
        }
    }

    fn ip(&self, args: &[&str]) -> Result {
        self.exec("ip", args)
    }

    fn sh(&self, script: &str) -> Result {
        self.exec("sh", &["-c", script])
    }

    /// Runs `f` on a thread inside the namespace: its sockets and attachments live there.
    fn run<R: Send>(&self, f: impl FnOnce() -> R + Send) -> Result<R> {
        std::thread::scope(|s| {
            s.spawn(|| {
                rustix::thread::move_into_link_name_space(
                    self.file.as_fd(),
                    Some(rustix::thread::LinkNameSpaceType::Network),
                )
                .map(|()| f())
            })
            .join()
            .map_err(|_| format!("the thread in the {} namespace panicked", self.name))?
            .map_err(|e| format!("entering the {} namespace: {e}", self.name).into())
        })
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        // The namespace, its interfaces and their XDP programs go with the last process in it.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
