//! The goebpf examples of the facade (`crates/ebpf/examples/`), run as a user would run them:
//! each binary inside the namespace of one end of a veth pair (`ip netns exec`), with
//! `--duration 2`, while a test socket in the other end's namespace sends real packets; the
//! assertions read what the example printed, and `ip link`/`tc filter show` confirm that it
//! attached and that nothing is left once it exits.
//!
//! The binaries come from `cargo build -p ebpf --examples` (found next to this test binary,
//! under `target/debug/examples/`); a missing one fails the test with that command. The
//! `cargo xtask vm-test` initramfs carries them at the same path, so they run in the VM too.

use std::io::{BufRead, BufReader, Read};
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rustix::net::{ipproto, AddressFamily, SendFlags, SocketType};
use tests::{fail, require_root, require_tool, TestResult, VethPair};

/// How long each example runs.
const DURATION: &str = "2";
/// Packets of each kind a test sends.
const N: u64 = 10;
const ICMP_ID: u16 = 0xeb9f;

/// The example binary `name`, or a failure saying how to build it.
fn example(name: &str) -> TestResult<PathBuf> {
    let mut candidates = Vec::new();
    // Next to this binary: target/<profile>/deps/kernel-HASH -> target/<profile>/examples.
    if let Ok(exe) = std::env::current_exe() {
        if let Some(profile) = exe.parent().and_then(Path::parent) {
            candidates.push(profile.join("examples").join(name));
        }
    }
    // The parent, not `tests/..`: the VM's initramfs has no `tests/` directory to go through.
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = manifest.parent().unwrap_or(manifest);
    candidates.push(root.join("target/debug/examples").join(name));
    if let Some(found) = candidates.iter().find(|p| p.is_file()) {
        return Ok(found.clone());
    }
    Err(fail(format!(
        "the example binary {name} is missing (looked at {}): build the examples first with \
         `cargo build -p ebpf --examples`",
        candidates
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )))
}

fn setup() -> TestResult {
    require_root()?;
    require_tool("ip")?;
    require_tool("tc")
}

/// An example running in a namespace; killed (and waited for) on drop if still running.
struct Running {
    name: String,
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Running {
    /// Starts `ip netns exec NS BINARY ARGS`.
    fn start(ns: &str, name: &str, args: &[&str]) -> TestResult<Self> {
        let binary = example(name)?;
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns])
            .arg(&binary)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| fail(format!("cannot run {}: {e}", binary.display())))?;
        let stdout = child.stdout.take().ok_or_else(|| fail("no stdout pipe"))?;
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Running {
            name: name.to_owned(),
            child,
            lines,
            seen: Vec::new(),
        })
    }

    /// Waits until the example prints a line starting with `prefix` (its `attached:` line).
    fn wait_for(&mut self, prefix: &str) -> TestResult {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            match self.lines.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => {
                    let hit = line.starts_with(prefix);
                    self.seen.push(line);
                    if hit {
                        return Ok(());
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        let out = self.finish_raw()?;
        Err(fail(format!(
            "{} never printed `{prefix}`; exit {}, output:\n{}\nstderr:\n{}",
            self.name, out.status, out.stdout, out.stderr
        )))
    }

    fn finish_raw(&mut self) -> TestResult<Finished> {
        let deadline = Instant::now() + Duration::from_secs(15);
        let status = loop {
            if let Some(status) = self
                .child
                .try_wait()
                .map_err(|e| fail(format!("waiting for {}: {e}", self.name)))?
            {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return Err(fail(format!("{} did not exit within 15 s", self.name)));
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        // The reader thread ends at EOF, after the last line.
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(2)) {
            self.seen.push(line);
        }
        let mut stderr = String::new();
        if let Some(mut err) = self.child.stderr.take() {
            let _ = err.read_to_string(&mut stderr);
        }
        Ok(Finished {
            status: status
                .code()
                .map_or_else(|| status.to_string(), |c| c.to_string()),
            success: status.success(),
            stdout: self.seen.join("\n"),
            stderr,
        })
    }

    /// Waits for the example to exit and checks that it exited 0.
    fn finish(mut self) -> TestResult<String> {
        let out = self.finish_raw()?;
        if out.success {
            Ok(out.stdout)
        } else {
            Err(fail(format!(
                "{} exited with {}; output:\n{}\nstderr:\n{}",
                self.name, out.status, out.stdout, out.stderr
            )))
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

struct Finished {
    status: String,
    success: bool,
    stdout: String,
    stderr: String,
}

/// Runs an example to its end (no traffic), for `--help` and error cases.
fn run_to_end(ns: Option<&str>, name: &str, args: &[&str]) -> TestResult<Finished> {
    let binary = example(name)?;
    let mut cmd = match ns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns]).arg(&binary);
            c
        }
        None => Command::new(&binary),
    };
    let out = cmd
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| fail(format!("cannot run {}: {e}", binary.display())))?;
    Ok(Finished {
        status: out
            .status
            .code()
            .map_or_else(|| out.status.to_string(), |c| c.to_string()),
        success: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// Sends `n` UDP datagrams from `ns_b` to `addr_a:port`.
fn send_udp(pair: &VethPair, port: u16, n: u64) -> TestResult {
    let (src, dst) = (pair.addr_b, SocketAddrV4::new(pair.addr_a, port));
    pair.ns_b.run(move || -> TestResult {
        let sock = UdpSocket::bind((src, 0))?;
        for i in 0..n {
            sock.send_to(format!("datagram {i}").as_bytes(), dst)?;
            std::thread::sleep(Duration::from_millis(2));
        }
        Ok(())
    })?
}

/// Sends `n` ICMP echo requests from `ns_b` to `addr_a` and returns, for each ICMP packet with
/// our id that came back from `addr_a` within the time, its type (0 reply, 8 request).
fn ping(pair: &VethPair, n: u64) -> TestResult<Vec<u8>> {
    let (src, dst) = (pair.addr_b, pair.addr_a);
    pair.ns_b.run(move || -> TestResult<Vec<u8>> {
        let sock = rustix::net::socket(AddressFamily::INET, SocketType::RAW, Some(ipproto::ICMP))?;
        rustix::net::bind(&sock, &SocketAddrV4::new(src, 0))?;
        rustix::net::sockopt::set_socket_timeout(
            &sock,
            rustix::net::sockopt::Timeout::Recv,
            Some(Duration::from_millis(50)),
        )?;
        let mut types = Vec::new();
        let mut buf = [0u8; 1500];
        for seq in 0..n as u16 {
            let echo = icmp_echo(ICMP_ID, seq, b"ebpf examples");
            rustix::net::sendto(&sock, &echo, SendFlags::empty(), &SocketAddrV4::new(dst, 0))?;
            let end = Instant::now() + Duration::from_millis(100);
            while Instant::now() < end {
                let Ok((len, _)) =
                    rustix::net::recv(&sock, &mut buf, rustix::net::RecvFlags::empty())
                else {
                    continue;
                };
                let pkt = &buf[..len.min(buf.len())];
                let ihl = usize::from(pkt.first().copied().unwrap_or(0) & 0x0f) * 4;
                let (Some(from), Some(icmp)) = (pkt.get(12..16), pkt.get(ihl..ihl + 8)) else {
                    continue;
                };
                let from = Ipv4Addr::new(from[0], from[1], from[2], from[3]);
                if from == dst && u16::from_be_bytes([icmp[4], icmp[5]]) == ICMP_ID {
                    types.push(icmp[0]);
                }
            }
        }
        Ok(types)
    })?
}

/// Tries a TCP connection from `ns_b` to `addr_a:port` (nothing listens: a SYN, then a reset)
/// and returns the local port it used.
fn tcp_syn(pair: &VethPair, port: u16) -> TestResult<u16> {
    let (src, dst) = (pair.addr_b, SocketAddrV4::new(pair.addr_a, port));
    pair.ns_b.run(move || -> TestResult<u16> {
        let sock = rustix::net::socket(AddressFamily::INET, SocketType::STREAM, None)?;
        rustix::net::bind(&sock, &SocketAddrV4::new(src, 0))?;
        let local = match rustix::net::getsockname(&sock)?.try_into() {
            Ok(std::net::SocketAddr::V4(a)) => a.port(),
            _ => return Err(fail("the TCP socket has no IPv4 address")),
        };
        // Refused (a reset) is the expected answer.
        let _ = rustix::net::connect(&sock, &dst);
        Ok(local)
    })?
}

/// An ICMP echo request with its checksum.
fn icmp_echo(id: u16, seq: u16, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![8, 0, 0, 0];
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(payload);
    let mut sum: u32 = p
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c.get(1).copied().unwrap_or(0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    p[2..4].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    p
}

/// The last line of `out` that starts with `prefix`.
fn last_line<'a>(out: &'a str, prefix: &str) -> TestResult<&'a str> {
    out.lines()
        .rev()
        .find(|l| l.starts_with(prefix))
        .ok_or_else(|| fail(format!("no line starting with `{prefix}` in:\n{out}")))
}

/// The number after `label` in `line` (`UDP: 10` -> 10).
fn number_after(line: &str, label: &str) -> TestResult<u64> {
    let rest = line
        .split_once(label)
        .map(|(_, r)| r)
        .ok_or_else(|| fail(format!("no `{label}` in `{line}`")))?;
    rest.split_whitespace()
        .next()
        .and_then(|w| w.parse().ok())
        .ok_or_else(|| fail(format!("no number after `{label}` in `{line}`")))
}

/// Whether `ip link show IFACE` in the namespace shows an XDP program.
fn has_xdp(pair: &VethPair) -> TestResult<bool> {
    let text = pair.ns_a.exec("ip", &["link", "show", "dev", &pair.if_a])?;
    Ok(text.contains("prog/xdp"))
}

fn xdp_basic_firewall_drops_the_given_cidr_and_counts_drops_per_rule() -> TestResult {
    setup()?;
    let pair = VethPair::new()?;
    let blocked = format!("{}/32", pair.addr_b);
    let rx = pair.ns_a.run(|| UdpSocket::bind((pair.addr_a, 0)))??;
    rx.set_read_timeout(Some(Duration::from_millis(200)))?;
    let port = rx.local_addr()?.port();
    let mut ex = Running::start(
        pair.ns_a.name(),
        "xdp_basic_firewall",
        &[
            "--iface",
            &pair.if_a,
            "--drop",
            &blocked,
            "--drop",
            "198.19.255.0/24",
            "--duration",
            DURATION,
        ],
    )?;
    ex.wait_for("attached:")?;
    if !has_xdp(&pair)? {
        return Err(fail("ip link shows no xdp program while the firewall runs"));
    }
    send_udp(&pair, port, N)?;
    let mut buf = [0u8; 64];
    let delivered = rx.recv(&mut buf).is_ok();
    let out = ex.finish()?;
    if delivered {
        return Err(fail(format!(
            "a datagram from {blocked} got through the firewall"
        )));
    }
    let drops = |cidr: &str| -> TestResult<u64> {
        let line = out
            .lines()
            .rev()
            .find(|l| l.split_whitespace().nth(1) == Some(cidr))
            .ok_or_else(|| fail(format!("no table line for {cidr} in:\n{out}")))?;
        number_after(line, cidr)
    };
    let (hit, other) = (drops(&blocked)?, drops("198.19.255.0/24")?);
    if hit < N || other != 0 {
        return Err(fail(format!(
            "expected at least {N} drops for {blocked} and none for the other rule, got {hit} \
             and {other}:\n{out}"
        )));
    }
    if has_xdp(&pair)? {
        return Err(fail(
            "the firewall is still attached after the example exited",
        ));
    }
    Ok(())
}

fn xdp_packet_counter_counts_udp_icmp_and_tcp() -> TestResult {
    setup()?;
    let pair = VethPair::new()?;
    let mut ex = Running::start(
        pair.ns_a.name(),
        "xdp_packet_counter",
        &["--iface", &pair.if_a, "--duration", DURATION],
    )?;
    ex.wait_for("attached:")?;
    send_udp(&pair, 9, N)?;
    let replies = ping(&pair, N)?;
    tcp_syn(&pair, 9)?;
    let out = ex.finish()?;
    let last = last_line(&out, "final")?;
    let (udp, icmp, tcp) = (
        number_after(last, "UDP:")?,
        number_after(last, "ICMP:")?,
        number_after(last, "TCP:")?,
    );
    if udp != N || icmp != N || tcp == 0 {
        return Err(fail(format!(
            "sent {N} UDP, {N} ICMP echo requests and a TCP SYN; the counter says `{last}`"
        )));
    }
    if replies.iter().filter(|&&t| t == 0).count() as u64 != N {
        return Err(fail(format!(
            "the counter passes packets: expected {N} echo replies, got {replies:?}"
        )));
    }
    if has_xdp(&pair)? {
        return Err(fail(
            "the counter is still attached after the example exited",
        ));
    }
    Ok(())
}

fn xdp_redirect_map_reflects_icmp_to_the_sender_and_detaches_on_exit() -> TestResult {
    setup()?;
    let pair = VethPair::new()?;
    // bpf_fib_lookup answers "forwarding disabled" on an interface without forwarding.
    pair.ns_a.exec(
        "sh",
        &[
            "-c",
            &format!("echo 1 > /proc/sys/net/ipv4/conf/{}/forwarding", pair.if_a),
        ],
    )?;
    let mut ex = Running::start(
        pair.ns_a.name(),
        "xdp_redirect_map",
        &["--iface", &pair.if_a, "--duration", DURATION],
    )?;
    ex.wait_for("attached:")?;
    let during = ping(&pair, 3)?;
    let out = ex.finish()?;
    // Reflected: our own echo requests come back from addr_a (addresses swapped), type 8.
    let reflected = during.iter().filter(|&&t| t == 8).count();
    if reflected == 0 {
        return Err(fail(format!(
            "no echo request came back reflected (types seen: {during:?}); output:\n{out}"
        )));
    }
    if !out.contains(&format!("detached from {}", pair.if_a)) || has_xdp(&pair)? {
        return Err(fail(format!(
            "the program is still attached after exit:\n{out}"
        )));
    }
    // Detached: the kernel answers again, with echo replies only.
    let after = ping(&pair, 2)?;
    if after.is_empty() || after.iter().any(|&t| t != 0) {
        return Err(fail(format!(
            "after exit expected echo replies only, got {after:?}"
        )));
    }
    Ok(())
}

fn xdp_dump_prints_the_tcp_syn_sent_to_the_attached_end() -> TestResult {
    setup()?;
    let pair = VethPair::new()?;
    let mut ex = Running::start(
        pair.ns_a.name(),
        "xdp_dump",
        &["--iface", &pair.if_a, "--duration", DURATION],
    )?;
    ex.wait_for("attached:")?;
    let dport = 4242;
    let sport = tcp_syn(&pair, dport)?;
    let out = ex.finish()?;
    let expected = format!("TCP: {}:{sport} -> {}:{dport}", pair.addr_b, pair.addr_a);
    if !out.lines().any(|l| l == expected) {
        return Err(fail(format!("no `{expected}` line in:\n{out}")));
    }
    let summary = out
        .lines()
        .find(|l| l.trim_end().ends_with("events received"))
        .ok_or_else(|| fail(format!("no summary in:\n{out}")))?;
    if number_after(summary, "")? == 0 {
        return Err(fail(format!("the summary counts no event: {summary}")));
    }
    if has_xdp(&pair)? {
        return Err(fail("xdp_dump is still attached after the example exited"));
    }
    Ok(())
}

fn socket_filter_packet_counter_counts_the_packets_of_its_interface() -> TestResult {
    setup()?;
    let pair = VethPair::new()?;
    let mut ex = Running::start(
        pair.ns_a.name(),
        "socket_filter_packet_counter",
        &["--iface", &pair.if_a, "--duration", DURATION],
    )?;
    ex.wait_for("attached:")?;
    send_udp(&pair, 9, N)?;
    let out = ex.finish()?;
    let packets = number_after(last_line(&out, "final")?, "Packets:")?;
    // Each datagram in, plus whatever the kernel answers (port unreachable) and ARP.
    if packets < N {
        return Err(fail(format!(
            "sent {N} datagrams, the filter counted {packets}:\n{out}"
        )));
    }
    Ok(())
}

fn tc_packet_counter_counts_ingress_and_egress_packets_and_bytes() -> TestResult {
    setup()?;
    let pair = VethPair::new()?;
    let mut ex = Running::start(
        pair.ns_a.name(),
        "tc_packet_counter",
        &["--iface", &pair.if_a, "--duration", DURATION],
    )?;
    ex.wait_for("attached:")?;
    ex.wait_for("attached:")?;
    for dir in ["ingress", "egress"] {
        let filters = pair
            .ns_a
            .exec("tc", &["filter", "show", "dev", &pair.if_a, dir])?;
        if !filters.contains("bpf") {
            return Err(fail(format!(
                "tc filter show {dir} lists no bpf filter: {filters}"
            )));
        }
    }
    send_udp(&pair, 9, N)?;
    // Echo requests in, echo replies out.
    let replies = ping(&pair, N)?;
    let out = ex.finish()?;
    let value = |label: &str| -> TestResult<u64> { number_after(last_line(&out, label)?, label) };
    let (rx_p, tx_p) = (value("[idx 0] rx packets:")?, value("[idx 1] tx packets:")?);
    let (rx_b, tx_b) = (value("[idx 2] rx bytes:")?, value("[idx 3] tx bytes:")?);
    let echoed = replies.len() as u64;
    if rx_p < 2 * N || tx_p < echoed || echoed == 0 || rx_b < rx_p * 20 || tx_b < tx_p * 20 {
        return Err(fail(format!(
            "sent {N} datagrams and {N} echo requests ({echoed} replies); counted rx {rx_p} \
             packets {rx_b} bytes, tx {tx_p} packets {tx_b} bytes"
        )));
    }
    for dir in ["ingress", "egress"] {
        let filters = pair
            .ns_a
            .exec("tc", &["filter", "show", "dev", &pair.if_a, dir])?;
        if !filters.trim().is_empty() {
            return Err(fail(format!(
                "a {dir} filter is left after exit: {filters}"
            )));
        }
    }
    let qdiscs = pair
        .ns_a
        .exec("tc", &["qdisc", "show", "dev", &pair.if_a])?;
    if qdiscs.contains("clsact") {
        return Err(fail(format!(
            "the example's clsact qdisc is left: {qdiscs}"
        )));
    }
    Ok(())
}

/// Whether the running kernel can make kprobes at all (the perf PMU or tracefs events).
fn kernel_has_kprobes() -> bool {
    let pmu = Path::new("/sys/bus/event_source/devices/kprobe/type").exists();
    let tracefs = tests::tracefs()
        .map(|t| t.join("kprobe_events").exists())
        .unwrap_or(false);
    pmu || tracefs
}

fn kprobe_exec_dump_prints_execs_or_names_the_missing_kprobe_support() -> TestResult {
    require_root()?;
    if kernel_has_kprobes() {
        let mut ex = Running::start_host("kprobe_exec_dump", &["--duration", DURATION])?;
        ex.wait_for("attached:")?;
        let marker = tests::unique_name("exdump");
        let _ = Command::new("sh")
            .args(["-c", &format!("true {marker}")])
            .status();
        let out = ex.finish()?;
        if !out.lines().any(|l| l.contains(&marker)) {
            return Err(fail(format!("no exec line with `{marker}` in:\n{out}")));
        }
        return Ok(());
    }
    let out = run_to_end(None, "kprobe_exec_dump", &["--duration", "1"])?;
    if out.success || !out.stderr.contains("kprobes") || !out.stderr.contains("CONFIG_KPROBES") {
        return Err(fail(format!(
            "on a kernel without kprobes expected a failure naming kprobes and CONFIG_KPROBES; \
             exit {}, stdout:\n{}\nstderr:\n{}",
            out.status, out.stdout, out.stderr
        )));
    }
    Ok(())
}

impl Running {
    /// Starts an example in this process's own namespace (for the kprobe example, which
    /// touches no interface).
    fn start_host(name: &str, args: &[&str]) -> TestResult<Self> {
        let binary = example(name)?;
        let mut child = Command::new(&binary)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| fail(format!("cannot run {}: {e}", binary.display())))?;
        let stdout = child.stdout.take().ok_or_else(|| fail("no stdout pipe"))?;
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Running {
            name: name.to_owned(),
            child,
            lines,
            seen: Vec::new(),
        })
    }
}

const ALL: &[&str] = &[
    "xdp_basic_firewall",
    "xdp_packet_counter",
    "xdp_redirect_map",
    "xdp_dump",
    "kprobe_exec_dump",
    "socket_filter_packet_counter",
    "tc_packet_counter",
];

fn examples_print_help_and_refuse_bad_arguments_and_missing_interfaces() -> TestResult {
    setup()?;
    for name in ALL {
        let help = run_to_end(None, name, &["--help"])?;
        if !help.success || !help.stdout.starts_with(&format!("usage: {name}")) {
            return Err(fail(format!(
                "{name} --help: exit {}, stdout:\n{}",
                help.status, help.stdout
            )));
        }
        let bad = run_to_end(None, name, &["--no-such-option"])?;
        if bad.status != "2" || !bad.stderr.contains("unknown option `--no-such-option`") {
            return Err(fail(format!(
                "{name} --no-such-option: exit {}, stderr:\n{}",
                bad.status, bad.stderr
            )));
        }
    }
    // Not root: a clear refusal before anything is loaded.
    require_tool("setpriv")?;
    let binary = example("xdp_packet_counter")?;
    let out = Command::new("setpriv")
        .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
        .arg(&binary)
        .args(["--iface", "lo"])
        .output()
        .map_err(|e| fail(format!("cannot run setpriv: {e}")))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.success() || !stderr.contains("needs root") {
        return Err(fail(format!(
            "run as nobody: expected a refusal naming root, got {} and:\n{stderr}",
            out.status
        )));
    }
    let pair = VethPair::new()?;
    for name in ALL.iter().filter(|n| **n != "kprobe_exec_dump") {
        let mut args = vec!["--iface", "nosuchif0", "--duration", "1"];
        if *name == "xdp_basic_firewall" {
            args.extend(["--drop", "198.18.0.0/24"]);
        }
        let out = run_to_end(Some(pair.ns_a.name()), name, &args)?;
        if out.success
            || !out
                .stderr
                .contains("no interface nosuchif0 in this network namespace")
        {
            return Err(fail(format!(
                "{name} on a missing interface: exit {}, stderr:\n{}",
                out.status, out.stderr
            )));
        }
    }
    Ok(())
}

tests::tests![
    examples_print_help_and_refuse_bad_arguments_and_missing_interfaces,
    xdp_basic_firewall_drops_the_given_cidr_and_counts_drops_per_rule,
    xdp_packet_counter_counts_udp_icmp_and_tcp,
    xdp_redirect_map_reflects_icmp_to_the_sender_and_detaches_on_exit,
    xdp_dump_prints_the_tcp_syn_sent_to_the_attached_end,
    socket_filter_packet_counter_counts_the_packets_of_its_interface,
    tc_packet_counter_counts_ingress_and_egress_packets_and_bytes,
    kprobe_exec_dump_prints_execs_or_names_the_missing_kprobe_support,
];
