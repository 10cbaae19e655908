//! Network attachments against the real kernel: XDP (netlink in skb and drv mode, bpf_link),
//! TC (`cls_bpf` with and without direct action, TCX), socket filters and reuseport programs.
//!
//! Every test runs in its own pair of namespaces joined by a veth (never on the machine's own
//! interfaces) and sends real UDP packets from a socket in `ns_b` to one in `ns_a`. The pairs
//! are made quiet first (IPv6 off, static neighbours) so that counters see exactly the packets
//! a test sends. `ip link`, `tc filter show` and `bpftool` give an independent view of each
//! attachment and of its removal once the link is dropped.

use std::net::{Ipv4Addr, UdpSocket};
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use ebpf::attach::socket::{self, SocketAttach};
use ebpf::attach::tc::{self, TcDirection, TcMechanism, TcOptions, TcxAnchor};
use ebpf::attach::xdp::{self, XdpMechanism, XdpMode, XdpOptions};
use ebpf::attach::{AttachError, Iface, Link};
use ebpf::sys::map::{MapCreateAttr, MapFd};
use ebpf::sys::probe::{self, LinkKind};
use ebpf::sys::prog::{self, ProgLoadAttr};
use ebpf::sys::{uapi, MapType, ProgramType};
use tests::{fail, require_feature, require_root, require_tool, NetNs, TestResult, VethPair};

const XDP_DROP: i32 = 1;
const XDP_PASS: i32 = 2;
const TC_ACT_OK: i32 = 0;
const TC_ACT_SHOT: i32 = 2;
/// TCX: go on with the next program (`TCX_NEXT`, the same as `TC_ACT_UNSPEC`).
const TCX_NEXT: i32 = -1;
/// A socket filter's verdict: keep up to this many bytes (all of them).
const KEEP_ALL: i32 = 0xffff;
/// Packets each traffic test sends.
const N: usize = 10;

fn setup() -> TestResult {
    require_root()?;
    require_tool("ip")?;
    require_tool("tc")?;
    require_tool("bpftool")
}

/// A veth pair whose ends send nothing on their own: IPv6 off (no router solicitations, no
/// MLD) and permanent neighbour entries (no ARP).
fn quiet_pair() -> TestResult<VethPair> {
    let pair = VethPair::new()?;
    for (ns, ifname) in [(&pair.ns_a, &pair.if_a), (&pair.ns_b, &pair.if_b)] {
        for conf in ["all", "default", ifname.as_str()] {
            ns.exec(
                "sh",
                &[
                    "-c",
                    &format!("echo 1 > /proc/sys/net/ipv6/conf/{conf}/disable_ipv6"),
                ],
            )?;
        }
    }
    let mac = |ns: &NetNs, ifname: &str| -> TestResult<String> {
        Ok(ns
            .exec("cat", &[&format!("/sys/class/net/{ifname}/address")])?
            .trim()
            .to_owned())
    };
    let (mac_a, mac_b) = (mac(&pair.ns_a, &pair.if_a)?, mac(&pair.ns_b, &pair.if_b)?);
    for (ns, addr, lladdr, dev) in [
        (&pair.ns_b, pair.addr_a, &mac_a, &pair.if_b),
        (&pair.ns_a, pair.addr_b, &mac_b, &pair.if_a),
    ] {
        ns.exec(
            "ip",
            &[
                "neigh",
                "replace",
                &addr.to_string(),
                "lladdr",
                lladdr,
                "dev",
                dev,
                "nud",
                "permanent",
            ],
        )?;
    }
    Ok(pair)
}

/// A UDP socket in `ns_a` on `addr_a`, with a short read timeout.
fn receiver(pair: &VethPair) -> TestResult<UdpSocket> {
    let addr = pair.addr_a;
    let sock = pair.ns_a.run(move || UdpSocket::bind((addr, 0)))??;
    sock.set_read_timeout(Some(Duration::from_millis(300)))?;
    Ok(sock)
}

/// Sends `n` datagrams from `ns_b` to `to`.
fn send(pair: &VethPair, to: &UdpSocket, n: usize) -> TestResult {
    let dest = to.local_addr()?;
    pair.ns_b.run(move || -> std::io::Result<()> {
        let sock = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?;
        for i in 0..n {
            sock.send_to(format!("packet {i}").as_bytes(), dest)?;
        }
        Ok(())
    })??;
    Ok(())
}

/// How many datagrams arrive before the socket stays quiet for its timeout.
fn drain(sock: &UdpSocket) -> usize {
    let mut buf = [0u8; 64];
    let mut n = 0;
    while sock.recv(&mut buf).is_ok() {
        n += 1;
    }
    n
}

/// Sends `n` datagrams and says how many arrived.
fn round_trip(pair: &VethPair, rx: &UdpSocket, n: usize) -> TestResult<usize> {
    send(pair, rx, n)?;
    Ok(drain(rx))
}

fn load(t: ProgramType, insns: &[uapi::bpf_insn]) -> TestResult<OwnedFd> {
    let attr = ProgLoadAttr::new(t, insns, c"GPL");
    Ok(prog::load(&attr, None)?)
}

/// `return r0`.
fn ret_prog(t: ProgramType, r0: i32) -> TestResult<OwnedFd> {
    load(t, &[prog::mov64_imm(0, r0), prog::exit()])
}

/// An array of one u64 counter.
fn counter() -> TestResult<MapFd> {
    Ok(MapFd::create(&MapCreateAttr::new(MapType::Array, 4, 8, 1))?)
}

fn count(map: &MapFd) -> TestResult<u64> {
    let mut v = [0u8; 8];
    map.lookup(&0u32.to_ne_bytes(), &mut v, 0)?;
    Ok(u64::from_ne_bytes(v))
}

/// Adds 1 to `map[0]` (atomically), then returns `ret`.
fn counting_prog(t: ProgramType, map: &MapFd, ret: i32) -> TestResult<OwnedFd> {
    let [ld0, ld1] = prog::ld_map_fd(1, map.fd());
    let st_w = (uapi::BPF_ST | uapi::BPF_MEM | uapi::BPF_W) as u8;
    let add_k = (uapi::BPF_ALU64 | uapi::BPF_ADD | uapi::BPF_K) as u8;
    let jeq_k = (uapi::BPF_JMP | uapi::BPF_JEQ | uapi::BPF_K) as u8;
    let atomic_dw = (uapi::BPF_STX | uapi::BPF_DW | uapi::BPF_ATOMIC) as u8;
    let insns = [
        ld0,
        ld1,
        prog::insn(st_w, 10, 0, -4, 0), // *(u32 *)(r10 - 4) = 0
        prog::mov64_reg(2, 10),
        prog::insn(add_k, 2, 0, 0, -4), // r2 = &key
        prog::call_helper(uapi::BPF_FUNC_map_lookup_elem),
        prog::insn(jeq_k, 0, 0, 2, 0), // if r0 == NULL skip the add
        prog::mov64_imm(1, 1),
        prog::insn(atomic_dw, 0, 1, 0, uapi::BPF_ADD as i32), // lock *(u64 *)r0 += r1
        prog::mov64_imm(0, ret),
        prog::exit(),
    ];
    load(t, &insns)
}

fn prog_id(fd: &OwnedFd) -> TestResult<u32> {
    Ok(ebpf::sys::obj::prog_info(fd)?.id)
}

/// Whether any object in `json` has `"id"` or `"prog_id"` equal to `id`.
fn mentions_prog(json: &serde_json::Value, id: u32) -> bool {
    match json {
        serde_json::Value::Object(m) => m.iter().any(|(k, v)| {
            ((k == "id" || k == "prog_id") && v.as_u64() == Some(u64::from(id)))
                || mentions_prog(v, id)
        }),
        serde_json::Value::Array(a) => a.iter().any(|v| mentions_prog(v, id)),
        _ => false,
    }
}

/// `bpftool --json net` inside `ns`.
fn bpftool_net(ns: &NetNs) -> TestResult<serde_json::Value> {
    let text = ns.exec("bpftool", &["--json", "net"])?;
    serde_json::from_str(&text).map_err(|e| fail(format!("bpftool net printed no JSON: {e}")))
}

fn ip_link(ns: &NetNs, ifname: &str) -> TestResult<String> {
    ns.exec("ip", &["-d", "link", "show", "dev", ifname])
}

fn tc_filters(ns: &NetNs, ifname: &str, dir: &str) -> TestResult<String> {
    ns.exec("tc", &["filter", "show", "dev", ifname, dir])
}

fn tc_qdiscs(ns: &NetNs, ifname: &str) -> TestResult<String> {
    ns.exec("tc", &["qdisc", "show", "dev", ifname])
}

#[track_caller]
fn check(cond: bool, what: impl std::fmt::Display) -> TestResult {
    if cond {
        Ok(())
    } else {
        Err(fail(what))
    }
}

// ---------------------------------------------------------------------------------------------
// XDP

/// Drop then pass, observed by whether packets arrive, in one mode over netlink.
fn xdp_netlink(mode: XdpMode, ip_word: &str) -> TestResult {
    setup()?;
    let pair = quiet_pair()?;
    let rx = receiver(&pair)?;
    check(
        round_trip(&pair, &rx, 3)? == 3,
        "traffic flows before any attach",
    )?;
    let drop_prog = ret_prog(ProgramType::Xdp, XDP_DROP)?;
    let id = prog_id(&drop_prog)?;
    let opts = XdpOptions::new()
        .mode(mode)
        .mechanism(XdpMechanism::Netlink);
    let ifname = pair.if_a.clone();
    let link = pair
        .ns_a
        .run(|| xdp::attach(&drop_prog, ifname.as_str(), &opts))??;
    check(
        link.mode() == mode,
        format!("attached in {} mode", link.mode()),
    )?;
    check(link.fd_link().is_none(), "netlink attach made no bpf_link")?;

    let shown = ip_link(&pair.ns_a, &pair.if_a)?;
    check(
        shown.contains(ip_word) && shown.contains(&format!("prog/xdp id {id}")),
        format!("ip link shows {ip_word} and prog {id}: {shown}"),
    )?;
    check(
        mentions_prog(&bpftool_net(&pair.ns_a)?, id),
        "bpftool net lists the program",
    )?;
    let q = pair.ns_a.run(|| xdp::query(ifname.as_str()))??;
    check(
        q.prog_id(mode) == Some(id),
        format!("query finds the program: {q:?}"),
    )?;

    check(
        round_trip(&pair, &rx, N)? == 0,
        "xdp drop lets nothing through",
    )?;

    // Dropped on this thread, outside the namespace: the link detaches where it attached.
    drop(link);
    let shown = ip_link(&pair.ns_a, &pair.if_a)?;
    check(
        !shown.contains("prog/xdp"),
        format!("ip link shows no xdp after drop: {shown}"),
    )?;
    check(
        !mentions_prog(&bpftool_net(&pair.ns_a)?, id),
        "bpftool net no longer lists it",
    )?;
    check(
        round_trip(&pair, &rx, N)? == N,
        "traffic flows again after detach",
    )?;

    // A pass program lets everything through.
    let pass = ret_prog(ProgramType::Xdp, XDP_PASS)?;
    let link = pair
        .ns_a
        .run(|| xdp::attach(&pass, ifname.as_str(), &opts))??;
    check(
        round_trip(&pair, &rx, N)? == N,
        "xdp pass lets everything through",
    )?;
    link.detach()?;
    Ok(())
}

fn xdp_netlink_skb_mode_drops_and_passes_real_packets() -> TestResult {
    xdp_netlink(XdpMode::Skb, "xdpgeneric")
}

fn xdp_netlink_drv_mode_drops_and_passes_real_packets() -> TestResult {
    // veth has native XDP: "xdp" without a suffix in `ip link`.
    xdp_netlink(XdpMode::Drv, "xdp ")
}

fn xdp_bpf_link_drops_until_dropped() -> TestResult {
    setup()?;
    require_feature("xdp bpf_link", probe::link_type_supported(LinkKind::Xdp))?;
    let pair = quiet_pair()?;
    let rx = receiver(&pair)?;
    let drop_prog = ret_prog(ProgramType::Xdp, XDP_DROP)?;
    let id = prog_id(&drop_prog)?;
    let ifname = pair.if_a.clone();
    let opts = XdpOptions::new().mechanism(XdpMechanism::Link);
    let link = pair
        .ns_a
        .run(|| xdp::attach(&drop_prog, ifname.as_str(), &opts))??;
    let fd_link = link.fd_link().ok_or_else(|| fail("a bpf_link was made"))?;
    let link_id = fd_link.id()?;
    check(fd_link.prog_id()? == id, "the link runs our program")?;
    check(
        mentions_prog(
            &tests::bpftool(&["link", "show", "id", &link_id.to_string()])?,
            id,
        ),
        "bpftool link show finds the link",
    )?;
    check(
        ip_link(&pair.ns_a, &pair.if_a)?.contains(&format!("prog/xdp id {id}")),
        "ip link shows the program",
    )?;
    check(
        mentions_prog(&bpftool_net(&pair.ns_a)?, id),
        "bpftool net lists it",
    )?;
    check(
        round_trip(&pair, &rx, N)? == 0,
        "the linked drop program drops",
    )?;

    // The link replaces its program atomically.
    let mut link = link;
    let pass = ret_prog(ProgramType::Xdp, XDP_PASS)?;
    link.replace(&pass)?;
    check(
        link.prog_id() == prog_id(&pass)?,
        "replace updates the program id",
    )?;
    check(
        round_trip(&pair, &rx, N)? == N,
        "after the update, packets pass",
    )?;

    drop(link);
    check(
        !ip_link(&pair.ns_a, &pair.if_a)?.contains("prog/xdp"),
        "the program is gone once the link is dropped",
    )?;
    check(
        tests::bpftool(&["link", "show", "id", &link_id.to_string()]).is_err(),
        "the link is gone",
    )?;
    Ok(())
}

fn xdp_counter_counts_every_packet() -> TestResult {
    setup()?;
    let pair = quiet_pair()?;
    let rx = receiver(&pair)?;
    let map = counter()?;
    let p = counting_prog(ProgramType::Xdp, &map, XDP_PASS)?;
    let ifname = pair.if_a.clone();
    let link = pair
        .ns_a
        .run(|| xdp::attach(&p, ifname.as_str(), &XdpOptions::new()))??;
    check(
        round_trip(&pair, &rx, N)? == N,
        "the counter passes packets",
    )?;
    let c = count(&map)?;
    check(c == N as u64, format!("xdp counted {c} packets, sent {N}"))?;
    link.detach()?;
    Ok(())
}

fn xdp_fail_if_present_gives_the_typed_error() -> TestResult {
    setup()?;
    let pair = quiet_pair()?;
    let first = ret_prog(ProgramType::Xdp, XDP_PASS)?;
    let second = ret_prog(ProgramType::Xdp, XDP_DROP)?;
    let first_id = prog_id(&first)?;
    let ifname = pair.if_a.clone();
    let netlink = XdpOptions::new()
        .mode(XdpMode::Skb)
        .mechanism(XdpMechanism::Netlink);
    pair.ns_a.run(|| -> TestResult {
        let link = xdp::attach(&first, ifname.as_str(), &netlink)?;
        match xdp::attach(&second, ifname.as_str(), &netlink.fail_if_present(true)) {
            Err(AttachError::XdpAlreadyAttached { iface, prog_id, .. }) => {
                check(iface == ifname, format!("the error names {iface}"))?;
                check(
                    prog_id == Some(first_id),
                    format!("it names the program {prog_id:?}"),
                )?;
            }
            other => return Err(fail(format!("expected XdpAlreadyAttached, got {other:?}"))),
        }
        // A bpf_link never replaces a program either.
        if probe::link_type_supported(LinkKind::Xdp) {
            let as_link = XdpOptions::new()
                .mode(XdpMode::Skb)
                .mechanism(XdpMechanism::Link);
            match xdp::attach(&second, ifname.as_str(), &as_link) {
                Err(AttachError::XdpAlreadyAttached { .. }) => {}
                other => return Err(fail(format!("link over netlink: {other:?}"))),
            }
        }
        check(
            xdp::query(ifname.as_str())?.prog_id(XdpMode::Skb) == Some(first_id),
            "the first program is still attached",
        )?;
        link.detach()?;
        Ok(())
    })??;
    Ok(())
}

fn xdp_replace_with_expected_program_and_mismatch() -> TestResult {
    setup()?;
    let pair = quiet_pair()?;
    let rx = receiver(&pair)?;
    let pass = ret_prog(ProgramType::Xdp, XDP_PASS)?;
    let drop_prog = ret_prog(ProgramType::Xdp, XDP_DROP)?;
    let ifname = pair.if_a.clone();
    let netlink = XdpOptions::new()
        .mode(XdpMode::Drv)
        .mechanism(XdpMechanism::Netlink);
    let (first, second) = pair.ns_a.run(|| -> TestResult<_> {
        let first = xdp::attach(&pass, ifname.as_str(), &netlink)?;
        // Replacing the program we expect works.
        let second = xdp::attach(&drop_prog, ifname.as_str(), &netlink.replace(pass.as_fd()))?;
        // Expecting the pass program again fails: the drop program is there now.
        match xdp::attach(&pass, ifname.as_str(), &netlink.replace(pass.as_fd())) {
            Err(AttachError::XdpNotExpected { .. }) => {}
            other => return Err(fail(format!("expected XdpNotExpected, got {other:?}"))),
        }
        Ok((first, second))
    })??;
    check(round_trip(&pair, &rx, N)? == 0, "the replacement drops")?;
    // The first link's program was replaced: its detach leaves the second one alone.
    first.detach()?;
    check(
        pair.ns_a
            .run(|| xdp::query(ifname.as_str()))??
            .prog_id(XdpMode::Drv)
            == Some(prog_id(&drop_prog)?),
        "detaching a replaced link leaves the new program",
    )?;
    second.detach()?;
    check(
        pair.ns_a.run(|| xdp::query(ifname.as_str()))??.is_empty(),
        "nothing is left",
    )?;
    check(round_trip(&pair, &rx, N)? == N, "traffic flows")?;
    Ok(())
}

fn xdp_one_program_on_two_interfaces() -> TestResult {
    setup()?;
    let pair = quiet_pair()?;
    let p = ret_prog(ProgramType::Xdp, XDP_PASS)?;
    let id = prog_id(&p)?;
    let opts = XdpOptions::new().mechanism(XdpMechanism::Netlink);
    let (if_a, if_b) = (pair.if_a.clone(), pair.if_b.clone());
    let a = pair.ns_a.run(|| xdp::attach(&p, if_a.as_str(), &opts))??;
    let b = pair.ns_b.run(|| xdp::attach(&p, if_b.as_str(), &opts))??;
    for (ns, ifname) in [(&pair.ns_a, &if_a), (&pair.ns_b, &if_b)] {
        check(
            ip_link(ns, ifname)?.contains(&format!("prog/xdp id {id}")),
            format!("{ifname} runs the program"),
        )?;
    }
    // Each link detaches its own interface only (goebpf remembered just the last one).
    let links: Vec<Link> = vec![a.into(), b.into()];
    let mut links = links.into_iter();
    links.next().expect("two links").detach()?;
    check(
        !ip_link(&pair.ns_a, &if_a)?.contains("prog/xdp"),
        "a is detached",
    )?;
    check(
        ip_link(&pair.ns_b, &if_b)?.contains("prog/xdp"),
        "b still runs it",
    )?;
    drop(links);
    check(
        !ip_link(&pair.ns_b, &if_b)?.contains("prog/xdp"),
        "b is detached",
    )?;
    Ok(())
}

fn missing_interface_gives_the_typed_error() -> TestResult {
    setup()?;
    let pair = quiet_pair()?;
    let p = ret_prog(ProgramType::Xdp, XDP_PASS)?;
    let cls = ret_prog(ProgramType::SchedCls, TC_ACT_OK)?;
    pair.ns_a.run(|| -> TestResult {
        for iface in [Iface::from("nosuchif0"), Iface::Index(0x7fff_fff0)] {
            match xdp::attach(&p, iface.clone(), &XdpOptions::new()) {
                Err(AttachError::InterfaceNotFound { iface: got }) => {
                    check(got == iface, format!("the error names {got}"))?
                }
                other => return Err(fail(format!("xdp on {iface}: {other:?}"))),
            }
            match tc::attach(&cls, iface.clone(), &TcOptions::default()) {
                Err(AttachError::InterfaceNotFound { .. }) => {}
                other => return Err(fail(format!("tc on {iface}: {other:?}"))),
            }
        }
        let e = xdp::query("nosuchif0").unwrap_err();
        check(
            e.to_string() == "no interface nosuchif0 in this network namespace",
            format!("message: {e}"),
        )
    })??;
    Ok(())
}

fn wrong_program_types_are_refused() -> TestResult {
    setup()?;
    let pair = quiet_pair()?;
    let sock_prog = ret_prog(ProgramType::SocketFilter, 0)?;
    let act = ret_prog(ProgramType::SchedAct, TC_ACT_OK)?;
    let ifname = pair.if_a.clone();
    pair.ns_a.run(|| -> TestResult {
        match xdp::attach(&sock_prog, ifname.as_str(), &XdpOptions::new()) {
            Err(AttachError::WrongProgramType { got, .. }) => {
                check(got == ProgramType::SocketFilter, "names the type")?
            }
            other => return Err(fail(format!("xdp with a socket filter: {other:?}"))),
        }
        match tc::attach(&act, ifname.as_str(), &TcOptions::default()) {
            Err(e @ AttachError::Unsupported { .. }) => check(
                e.to_string().contains("act_bpf"),
                format!("the error names act_bpf: {e}"),
            )?,
            other => return Err(fail(format!("tc_act: {other:?}"))),
        }
        Ok(())
    })??;
    // Nothing was left behind by the refused attaches.
    check(
        !tc_qdiscs(&pair.ns_a, &pair.if_a)?.contains("clsact"),
        "no qdisc was made",
    )?;
    Ok(())
}

fn pinned_xdp_link_outlives_its_value_until_detached() -> TestResult {
    setup()?;
    require_feature("xdp bpf_link", probe::link_type_supported(LinkKind::Xdp))?;
    let pair = quiet_pair()?;
    let fs = tests::BpfFs::new()?;
    let pin = fs.path().join("xdp_link");
    let p = ret_prog(ProgramType::Xdp, XDP_PASS)?;
    let id = prog_id(&p)?;
    let ifname = pair.if_a.clone();
    let opts = XdpOptions::new().mechanism(XdpMechanism::Link);
    let mut link = pair
        .ns_a
        .run(|| xdp::attach(&p, ifname.as_str(), &opts))??;
    link.pin(&pin)?;
    drop(link);
    check(
        ip_link(&pair.ns_a, &pair.if_a)?.contains(&format!("prog/xdp id {id}")),
        "the pin keeps the program attached after the link value is gone",
    )?;
    let reopened = ebpf::attach::FdLink::from_pin(&pin)?;
    check(
        reopened.prog_id()? == id,
        "the pinned link runs the program",
    )?;
    reopened.detach()?;
    check(!pin.exists(), "detach removes the pin")?;
    check(
        !ip_link(&pair.ns_a, &pair.if_a)?.contains("prog/xdp"),
        "and the program is detached",
    )?;
    Ok(())
}

fn kept_netlink_xdp_stays_attached() -> TestResult {
    setup()?;
    let pair = quiet_pair()?;
    let p = ret_prog(ProgramType::Xdp, XDP_PASS)?;
    let id = prog_id(&p)?;
    let ifname = pair.if_a.clone();
    let opts = XdpOptions::new().mechanism(XdpMechanism::Netlink);
    let link = pair
        .ns_a
        .run(|| xdp::attach(&p, ifname.as_str(), &opts))??;
    let mut pinning = link;
    check(
        pinning.pin("/sys/fs/bpf/never").is_err(),
        "a netlink attachment cannot be pinned",
    )?;
    pinning.keep();
    check(
        ip_link(&pair.ns_a, &pair.if_a)?.contains(&format!("prog/xdp id {id}")),
        "keep leaves the program attached, as goebpf did",
    )?;
    // The namespace's removal takes it away; remove it by hand meanwhile.
    pair.ns_a
        .exec("ip", &["link", "set", "dev", &ifname, "xdp", "off"])?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// TC

fn tc_counts(direct_action: bool) -> TestResult {
    setup()?;
    let pair = quiet_pair()?;
    let rx = receiver(&pair)?;
    let (in_map, out_map) = (counter()?, counter()?);
    let in_prog = counting_prog(ProgramType::SchedCls, &in_map, TC_ACT_OK)?;
    let out_prog = counting_prog(ProgramType::SchedCls, &out_map, TC_ACT_OK)?;
    let (if_a, if_b) = (pair.if_a.clone(), pair.if_b.clone());
    let ingress = TcOptions::new(TcDirection::Ingress).direct_action(direct_action);
    let egress = TcOptions::new(TcDirection::Egress).direct_action(direct_action);
    let in_link = pair
        .ns_a
        .run(|| tc::attach(&in_prog, if_a.as_str(), &ingress))??;
    let out_link = pair
        .ns_b
        .run(|| tc::attach(&out_prog, if_b.as_str(), &egress))??;
    check(
        in_link.handle() == Some(0x1600),
        "the first handle is goebpf's 0x1600",
    )?;
    check(in_link.priority() == Some(1), "priority 1 by default")?;

    let shown = tc_filters(&pair.ns_a, &if_a, "ingress")?;
    check(
        shown.contains("bpf")
            && shown.contains("handle 0x1600")
            && shown.contains(&format!("id {}", in_link.prog_id()))
            && shown.contains("direct-action") == direct_action,
        format!("tc filter show: {shown}"),
    )?;
    check(
        tc_filters(&pair.ns_b, &if_b, "egress")?.contains(&format!("id {}", out_link.prog_id())),
        "the egress filter is listed",
    )?;
    let listed = pair
        .ns_a
        .run(|| tc::filters(if_a.as_str(), TcDirection::Ingress))??;
    check(
        listed.len() == 1
            && listed[0].prog_id == Some(in_link.prog_id())
            && listed[0].direct_action == direct_action
            && listed[0].protocol == 3,
        format!("tc::filters: {listed:?}"),
    )?;
    check(
        mentions_prog(&bpftool_net(&pair.ns_a)?, in_link.prog_id()),
        "bpftool net lists the ingress program",
    )?;

    check(round_trip(&pair, &rx, N)? == N, "the counters pass packets")?;
    let (i, o) = (count(&in_map)?, count(&out_map)?);
    check(
        i == N as u64 && o == N as u64,
        format!("ingress counted {i}, egress {o}, sent {N}"),
    )?;

    drop(in_link);
    drop(out_link);
    for (ns, ifname, dir) in [
        (&pair.ns_a, &if_a, "ingress"),
        (&pair.ns_b, &if_b, "egress"),
    ] {
        check(
            tc_filters(ns, ifname, dir)?.trim().is_empty(),
            format!("no filter left on {ifname} {dir}"),
        )?;
        check(
            !tc_qdiscs(ns, ifname)?.contains("clsact"),
            format!("the clsact qdisc we made on {ifname} is gone"),
        )?;
    }
    check(
        !mentions_prog(&bpftool_net(&pair.ns_a)?, prog_id(&in_prog)?),
        "bpftool net no longer lists it",
    )?;
    Ok(())
}

fn tc_ingress_and_egress_count_with_direct_action() -> TestResult {
    tc_counts(true)
}

fn tc_ingress_and_egress_count_without_direct_action() -> TestResult {
    tc_counts(false)
}

fn tc_direct_action_makes_the_return_value_the_verdict() -> TestResult {
    setup()?;
    let pair = quiet_pair()?;
    let rx = receiver(&pair)?;
    let map = counter()?;
    let shot = counting_prog(ProgramType::SchedCls, &map, TC_ACT_SHOT)?;
    let ifname = pair.if_a.clone();
    // With direct action, TC_ACT_SHOT drops.
    let da = TcOptions::new(TcDirection::Ingress);
    let link = pair
        .ns_a
        .run(|| tc::attach(&shot, ifname.as_str(), &da))??;
    check(round_trip(&pair, &rx, N)? == 0, "direct action: shot drops")?;
    link.detach()?;
    // Without it, 2 is a class id and the packet goes on.
    let classic = TcOptions::new(TcDirection::Ingress).direct_action(false);
    let link = pair
        .ns_a
        .run(|| tc::attach(&shot, ifname.as_str(), &classic))??;
    check(round_trip(&pair, &rx, N)? == N, "classic: packets pass")?;
    link.detach()?;
    check(count(&map)? == 2 * N as u64, "both saw every packet")?;
    Ok(())
}

fn tc_handles_priorities_and_foreign_qdiscs() -> TestResult {
    setup()?;
    let pair = quiet_pair()?;
    let p = ret_prog(ProgramType::SchedCls, TC_ACT_OK)?;
    let ifname = pair.if_a.clone();
    let ns = &pair.ns_a;

    // An `ingress` qdisc is in the way: refused without clobber_ingress.
    ns.exec("tc", &["qdisc", "add", "dev", &ifname, "ingress"])?;
    match ns.run(|| tc::attach(&p, ifname.as_str(), &TcOptions::default()))? {
        Err(AttachError::IngressQdiscInTheWay { kind, .. }) => {
            check(kind == "ingress", format!("names the kind: {kind}"))?
        }
        other => {
            return Err(fail(format!(
                "expected IngressQdiscInTheWay, got {other:?}"
            )))
        }
    }
    check(
        tc_qdiscs(ns, &ifname)?.contains("qdisc ingress"),
        "the ingress qdisc is untouched",
    )?;
    let clobber = TcOptions::default().clobber_ingress(true);
    let (a, b, c) = ns.run(|| -> Result<_, AttachError> {
        let a = tc::attach(&p, ifname.as_str(), &clobber)?;
        let b = tc::attach(&p, ifname.as_str(), &TcOptions::default())?;
        let c = tc::attach(
            &p,
            ifname.as_str(),
            &TcOptions::default().priority(7).handle(0x42),
        )?;
        Ok((a, b, c))
    })??;
    check(
        (a.handle(), b.handle(), c.handle()) == (Some(0x1600), Some(0x1601), Some(0x42)),
        format!("handles {:?} {:?} {:?}", a.handle(), b.handle(), c.handle()),
    )?;
    let shown = tc_filters(ns, &ifname, "ingress")?;
    check(
        shown.contains("pref 7") && shown.contains("handle 0x42"),
        format!("priority and handle as asked: {shown}"),
    )?;
    // A taken handle is the kernel's EEXIST.
    match ns.run(|| tc::attach(&p, ifname.as_str(), &TcOptions::default().handle(0x1600)))? {
        Err(e @ AttachError::Netlink { .. }) if e.errno() == Some(17) => {}
        other => return Err(fail(format!("a taken handle: {other:?}"))),
    }
    // Detaching the middle filter removes exactly it.
    b.detach()?;
    let shown = tc_filters(ns, &ifname, "ingress")?;
    check(
        shown.contains("handle 0x1600") && !shown.contains("handle 0x1601"),
        format!("only 0x1601 went: {shown}"),
    )?;
    // Detaching a filter twice (someone removed it) is reported.
    ns.exec(
        "tc",
        &[
            "filter", "del", "dev", &ifname, "ingress", "pref", "7", "handle", "0x42", "protocol",
            "all", "bpf",
        ],
    )?;
    check(
        c.detach().is_err(),
        "detaching a filter that is gone reports it",
    )?;
    drop(a);
    check(
        !tc_qdiscs(ns, &ifname)?.contains("clsact"),
        "the clsact we made went with its last filter",
    )?;

    // A clsact made by someone else stays.
    ns.exec("tc", &["qdisc", "add", "dev", &ifname, "clsact"])?;
    let link = ns.run(|| tc::attach(&p, ifname.as_str(), &TcOptions::default()))??;
    drop(link);
    check(
        tc_qdiscs(ns, &ifname)?.contains("clsact"),
        "a clsact we did not make stays",
    )?;
    check(
        ns.run(|| tc::remove_clsact(ifname.as_str()))??,
        "remove_clsact removes it",
    )?;
    check(
        !tc_qdiscs(ns, &ifname)?.contains("clsact"),
        "and it is gone",
    )?;
    Ok(())
}

fn tcx_links_count_and_keep_their_order() -> TestResult {
    setup()?;
    require_feature("tcx links", probe::link_type_supported(LinkKind::Tcx))?;
    let pair = quiet_pair()?;
    let rx = receiver(&pair)?;
    let map = counter()?;
    // TCX stops at the first program that returns anything but TCX_NEXT.
    let counting = counting_prog(ProgramType::SchedCls, &map, TCX_NEXT)?;
    let shot = ret_prog(ProgramType::SchedCls, TC_ACT_SHOT)?;
    let ifname = pair.if_a.clone();
    let tcx = TcOptions::new(TcDirection::Ingress).mechanism(TcMechanism::Tcx);
    let counter_link = pair
        .ns_a
        .run(|| tc::attach(&counting, ifname.as_str(), &tcx))??;
    let link_id = counter_link
        .fd_link()
        .ok_or_else(|| fail("tcx makes a bpf_link"))?
        .id()?;
    check(
        tc_qdiscs(&pair.ns_a, &ifname)?
            .lines()
            .all(|l| !l.contains("clsact")),
        "tcx needs no qdisc",
    )?;
    check(
        mentions_prog(
            &tests::bpftool(&["link", "show", "id", &link_id.to_string()])?,
            counter_link.prog_id(),
        ),
        "bpftool link show finds the tcx link",
    )?;
    check(
        round_trip(&pair, &rx, N)? == N,
        "the counter passes packets",
    )?;
    check(count(&map)? == N as u64, "tcx counted every packet")?;

    // A dropping program after the counter: the counter still sees every packet.
    let after = tcx.clone().anchor(TcxAnchor::AfterLink(link_id));
    let shot_after = pair
        .ns_a
        .run(|| tc::attach(&shot, ifname.as_str(), &after))??;
    check(round_trip(&pair, &rx, N)? == 0, "the drop program drops")?;
    check(count(&map)? == 2 * N as u64, "the counter ran first")?;
    shot_after.detach()?;
    // Before it: the counter never sees them.
    let first = tcx.clone().anchor(TcxAnchor::First);
    let shot_first = pair
        .ns_a
        .run(|| tc::attach(&shot, ifname.as_str(), &first))??;
    check(round_trip(&pair, &rx, N)? == 0, "the drop program drops")?;
    check(
        count(&map)? == 2 * N as u64,
        "the counter ran after the drop: not at all",
    )?;
    drop(shot_first);
    drop(counter_link);
    check(
        tests::bpftool(&["link", "show", "id", &link_id.to_string()]).is_err(),
        "the tcx link is gone",
    )?;
    check(round_trip(&pair, &rx, N)? == N, "traffic flows")?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Sockets

fn socket_filter_counts_the_packets_of_its_socket() -> TestResult {
    setup()?;
    let pair = quiet_pair()?;
    let rx = receiver(&pair)?;
    let map = counter()?;
    let p = counting_prog(ProgramType::SocketFilter, &map, KEEP_ALL)?;
    let link = socket::attach(&p, &rx, SocketAttach::Filter)?;
    check(
        round_trip(&pair, &rx, N)? == N,
        "the filter keeps every packet",
    )?;
    check(count(&map)? == N as u64, "it counted each")?;
    link.detach()?;
    check(round_trip(&pair, &rx, N)? == N, "packets still arrive")?;
    check(count(&map)? == N as u64, "after detach it counts nothing")?;

    // A filter returning 0 drops; dropping the link restores delivery.
    let deny = ret_prog(ProgramType::SocketFilter, 0)?;
    let link = socket::attach(&deny, &rx, SocketAttach::Filter)?;
    check(round_trip(&pair, &rx, N)? == 0, "a deny filter drops")?;
    drop(link);
    check(
        round_trip(&pair, &rx, N)? == N,
        "dropping the link detaches it",
    )?;
    Ok(())
}

fn reuseport_program_detaches_with_its_own_option() -> TestResult {
    setup()?;
    use rustix::net::sockopt;
    // Two sockets of one SO_REUSEPORT group on loopback of a private namespace.
    let ns = NetNs::new()?;
    let (s1, s2) = ns.run(|| -> TestResult<(UdpSocket, UdpSocket)> {
        let mk = |port: u16| -> TestResult<UdpSocket> {
            let fd = rustix::net::socket(
                rustix::net::AddressFamily::INET,
                rustix::net::SocketType::DGRAM,
                None,
            )?;
            sockopt::set_socket_reuseport(&fd, true)?;
            rustix::net::bind(&fd, &std::net::SocketAddrV4::new(Ipv4Addr::LOCALHOST, port))?;
            Ok(UdpSocket::from(fd))
        };
        let s1 = mk(0)?;
        let port = s1.local_addr()?.port();
        Ok((s1, mk(port)?))
    })??;
    // Index 1 of the group: every packet goes to the second socket.
    let second = ret_prog(ProgramType::SocketFilter, 1)?;
    let link = socket::attach(&second, &s1, SocketAttach::ReusePort)?;
    let dest = s1.local_addr()?;
    ns.run(|| -> std::io::Result<()> {
        let tx = UdpSocket::bind("127.0.0.1:0")?;
        for _ in 0..N {
            tx.send_to(b"x", dest)?;
        }
        Ok(())
    })??;
    for s in [&s1, &s2] {
        s.set_read_timeout(Some(Duration::from_millis(300)))?;
    }
    let (n1, n2) = (drain(&s1), drain(&s2));
    check(
        (n1, n2) == (0, N),
        format!("the program sent all to the second socket: {n1} and {n2}"),
    )?;
    // goebpf's SO_DETACH_FILTER would not find it (there is no socket filter)...
    let e = ebpf::sys::sock::detach_filter(&s1).unwrap_err();
    check(e.errno() == Some(2), format!("no socket filter: {e:?}"))?;
    // ...its own option removes it, and then there is nothing left to remove.
    link.detach()?;
    let e = ebpf::sys::sock::detach_reuseport(&s1).unwrap_err();
    check(e.errno() == Some(2), format!("nothing left: {e:?}"))?;
    Ok(())
}

tests::tests![
    xdp_netlink_skb_mode_drops_and_passes_real_packets,
    xdp_netlink_drv_mode_drops_and_passes_real_packets,
    xdp_bpf_link_drops_until_dropped,
    xdp_counter_counts_every_packet,
    xdp_fail_if_present_gives_the_typed_error,
    xdp_replace_with_expected_program_and_mismatch,
    xdp_one_program_on_two_interfaces,
    pinned_xdp_link_outlives_its_value_until_detached,
    kept_netlink_xdp_stays_attached,
    missing_interface_gives_the_typed_error,
    wrong_program_types_are_refused,
    tc_ingress_and_egress_count_with_direct_action,
    tc_ingress_and_egress_count_without_direct_action,
    tc_direct_action_makes_the_return_value_the_verdict,
    tc_handles_priorities_and_foreign_qdiscs,
    tcx_links_count_and_keep_their_order,
    socket_filter_counts_the_packets_of_its_socket,
    reuseport_program_detaches_with_its_own_option,
];
