//! What a program's ELF section name says: program type, expected attach type, attach target.
//!
//! The table follows libbpf's convention (the one cilium/ebpf generates from libbpf's source),
//! so any object written for libbpf, aya or cilium/ebpf gets the same reading here. Two fallbacks
//! follow it, so older objects keep working:
//!
//! 1. the legacy "sloppy" form `NAME/anything` of a fixed name (`xdp/foo`, `socket/1`,
//!    `classifier/x`), which libbpf before 1.0 accepted;
//! 2. goebpf's names, matched case-insensitively on the part before the first `/`:
//!    `xdp`, `socket_filter`, `kprobe/SYM`, `kretprobe/SYM`, `tc_cls`, `tc_act`.
//!
//! A name that matches nothing gives [`ProgramType::Unspec`]; the program is still parsed and its
//! type can be set by hand before loading. It never fails the object.

use bpf_sys::{AttachType as A, ProgramType as P};

/// How a section name was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramSection {
    /// The program type (`Unspec` when the name is unknown).
    pub program_type: P,
    /// The attach type to pass at load time (`expected_attach_type`), if the convention sets one.
    pub expected_attach_type: Option<A>,
    /// What to attach to, from the part after the prefix: a kernel function (`kprobe/SYM`,
    /// `fentry/FUNC`), `CATEGORY/NAME` for tracepoints, `PATH:FUNC` for uprobes, ...
    pub attach_to: Option<String>,
    /// A sleepable program (`.s` variants, `syscall`): load with `BPF_F_SLEEPABLE`.
    pub sleepable: bool,
    /// An XDP program that handles multi-buffer packets (`xdp.frags`): load with
    /// `BPF_F_XDP_HAS_FRAGS`.
    pub xdp_frags: bool,
    /// A return probe (`kretprobe`, `uretprobe`, `kretsyscall`, `*.multi` return variants).
    pub return_probe: bool,
    /// The convention entry that matched (`"kprobe+"`, `"xdp"`, `"goebpf:tc_cls"`), or `None`.
    pub convention: Option<&'static str>,
}

const NONE: u8 = 0;
/// The name is a prefix: `NAME` or `NAME/target`.
const PLUS: u8 = 1;
const SLEEP: u8 = 2;
const FRAGS: u8 = 4;
const RET: u8 = 8;

type Def = (&'static str, P, Option<A>, u8);

/// libbpf's table, in libbpf's order (the first match wins).
const TABLE: &[Def] = &[
    ("socket", P::SocketFilter, None, NONE),
    (
        "sk_reuseport/migrate",
        P::SkReuseport,
        Some(A::SkReuseportSelectOrMigrate),
        NONE,
    ),
    (
        "sk_reuseport",
        P::SkReuseport,
        Some(A::SkReuseportSelect),
        NONE,
    ),
    ("kprobe+", P::Kprobe, None, PLUS),
    ("uprobe+", P::Kprobe, None, PLUS),
    ("uprobe.s+", P::Kprobe, None, PLUS | SLEEP),
    ("kretprobe+", P::Kprobe, None, PLUS | RET),
    ("uretprobe+", P::Kprobe, None, PLUS | RET),
    ("uretprobe.s+", P::Kprobe, None, PLUS | RET | SLEEP),
    ("kprobe.multi+", P::Kprobe, Some(A::TraceKprobeMulti), PLUS),
    (
        "kretprobe.multi+",
        P::Kprobe,
        Some(A::TraceKprobeMulti),
        PLUS | RET,
    ),
    (
        "kprobe.session+",
        P::Kprobe,
        Some(A::TraceKprobeSession),
        PLUS,
    ),
    ("uprobe.multi+", P::Kprobe, Some(A::TraceUprobeMulti), PLUS),
    (
        "uretprobe.multi+",
        P::Kprobe,
        Some(A::TraceUprobeMulti),
        PLUS | RET,
    ),
    (
        "uprobe.multi.s+",
        P::Kprobe,
        Some(A::TraceUprobeMulti),
        PLUS | SLEEP,
    ),
    (
        "uretprobe.multi.s+",
        P::Kprobe,
        Some(A::TraceUprobeMulti),
        PLUS | RET | SLEEP,
    ),
    ("ksyscall+", P::Kprobe, None, PLUS),
    ("kretsyscall+", P::Kprobe, None, PLUS | RET),
    ("usdt+", P::Kprobe, None, PLUS),
    ("usdt.s+", P::Kprobe, None, PLUS | SLEEP),
    ("tc/ingress", P::SchedCls, Some(A::TcxIngress), NONE),
    ("tc/egress", P::SchedCls, Some(A::TcxEgress), NONE),
    ("tcx/ingress", P::SchedCls, Some(A::TcxIngress), NONE),
    ("tcx/egress", P::SchedCls, Some(A::TcxEgress), NONE),
    ("tc", P::SchedCls, None, NONE),
    ("classifier", P::SchedCls, None, NONE),
    ("action", P::SchedAct, None, NONE),
    ("netkit/primary", P::SchedCls, Some(A::NetkitPrimary), NONE),
    ("netkit/peer", P::SchedCls, Some(A::NetkitPeer), NONE),
    ("tracepoint+", P::Tracepoint, None, PLUS),
    ("tp+", P::Tracepoint, None, PLUS),
    ("raw_tracepoint+", P::RawTracepoint, None, PLUS),
    ("raw_tp+", P::RawTracepoint, None, PLUS),
    ("raw_tracepoint.w+", P::RawTracepointWritable, None, PLUS),
    ("raw_tp.w+", P::RawTracepointWritable, None, PLUS),
    ("tp_btf+", P::Tracing, Some(A::TraceRawTp), PLUS),
    ("fentry+", P::Tracing, Some(A::TraceFentry), PLUS),
    ("fmod_ret+", P::Tracing, Some(A::ModifyReturn), PLUS),
    ("fexit+", P::Tracing, Some(A::TraceFexit), PLUS),
    ("fentry.s+", P::Tracing, Some(A::TraceFentry), PLUS | SLEEP),
    (
        "fmod_ret.s+",
        P::Tracing,
        Some(A::ModifyReturn),
        PLUS | SLEEP,
    ),
    ("fexit.s+", P::Tracing, Some(A::TraceFexit), PLUS | SLEEP),
    ("freplace+", P::Ext, None, PLUS),
    ("lsm+", P::Lsm, Some(A::LsmMac), PLUS),
    ("lsm.s+", P::Lsm, Some(A::LsmMac), PLUS | SLEEP),
    ("lsm_cgroup+", P::Lsm, Some(A::LsmCgroup), PLUS),
    ("iter+", P::Tracing, Some(A::TraceIter), PLUS),
    ("iter.s+", P::Tracing, Some(A::TraceIter), PLUS | SLEEP),
    ("syscall", P::Syscall, None, SLEEP),
    ("xdp.frags/devmap", P::Xdp, Some(A::XdpDevMap), FRAGS),
    ("xdp/devmap", P::Xdp, Some(A::XdpDevMap), NONE),
    ("xdp.frags/cpumap", P::Xdp, Some(A::XdpCpuMap), FRAGS),
    ("xdp/cpumap", P::Xdp, Some(A::XdpCpuMap), NONE),
    ("xdp.frags", P::Xdp, Some(A::Xdp), FRAGS),
    ("xdp", P::Xdp, Some(A::Xdp), NONE),
    ("perf_event", P::PerfEvent, None, NONE),
    ("lwt_in", P::LwtIn, None, NONE),
    ("lwt_out", P::LwtOut, None, NONE),
    ("lwt_xmit", P::LwtXmit, None, NONE),
    ("lwt_seg6local", P::LwtSeg6local, None, NONE),
    ("sockops", P::SockOps, Some(A::CgroupSockOps), NONE),
    (
        "sk_skb/stream_parser",
        P::SkSkb,
        Some(A::SkSkbStreamParser),
        NONE,
    ),
    (
        "sk_skb/stream_verdict",
        P::SkSkb,
        Some(A::SkSkbStreamVerdict),
        NONE,
    ),
    ("sk_skb/verdict", P::SkSkb, Some(A::SkSkbVerdict), NONE),
    ("sk_skb", P::SkSkb, None, NONE),
    ("sk_msg", P::SkMsg, Some(A::SkMsgVerdict), NONE),
    ("lirc_mode2", P::LircMode2, Some(A::LircMode2), NONE),
    (
        "flow_dissector",
        P::FlowDissector,
        Some(A::FlowDissector),
        NONE,
    ),
    (
        "cgroup_skb/ingress",
        P::CgroupSkb,
        Some(A::CgroupInetIngress),
        NONE,
    ),
    (
        "cgroup_skb/egress",
        P::CgroupSkb,
        Some(A::CgroupInetEgress),
        NONE,
    ),
    ("cgroup/skb", P::CgroupSkb, None, NONE),
    (
        "cgroup/sock_create",
        P::CgroupSock,
        Some(A::CgroupInetSockCreate),
        NONE,
    ),
    (
        "cgroup/sock_release",
        P::CgroupSock,
        Some(A::CgroupInetSockRelease),
        NONE,
    ),
    (
        "cgroup/sock",
        P::CgroupSock,
        Some(A::CgroupInetSockCreate),
        NONE,
    ),
    (
        "cgroup/post_bind4",
        P::CgroupSock,
        Some(A::CgroupInet4PostBind),
        NONE,
    ),
    (
        "cgroup/post_bind6",
        P::CgroupSock,
        Some(A::CgroupInet6PostBind),
        NONE,
    ),
    (
        "cgroup/bind4",
        P::CgroupSockAddr,
        Some(A::CgroupInet4Bind),
        NONE,
    ),
    (
        "cgroup/bind6",
        P::CgroupSockAddr,
        Some(A::CgroupInet6Bind),
        NONE,
    ),
    (
        "cgroup/connect4",
        P::CgroupSockAddr,
        Some(A::CgroupInet4Connect),
        NONE,
    ),
    (
        "cgroup/connect6",
        P::CgroupSockAddr,
        Some(A::CgroupInet6Connect),
        NONE,
    ),
    (
        "cgroup/connect_unix",
        P::CgroupSockAddr,
        Some(A::CgroupUnixConnect),
        NONE,
    ),
    (
        "cgroup/sendmsg4",
        P::CgroupSockAddr,
        Some(A::CgroupUdp4Sendmsg),
        NONE,
    ),
    (
        "cgroup/sendmsg6",
        P::CgroupSockAddr,
        Some(A::CgroupUdp6Sendmsg),
        NONE,
    ),
    (
        "cgroup/sendmsg_unix",
        P::CgroupSockAddr,
        Some(A::CgroupUnixSendmsg),
        NONE,
    ),
    (
        "cgroup/recvmsg4",
        P::CgroupSockAddr,
        Some(A::CgroupUdp4Recvmsg),
        NONE,
    ),
    (
        "cgroup/recvmsg6",
        P::CgroupSockAddr,
        Some(A::CgroupUdp6Recvmsg),
        NONE,
    ),
    (
        "cgroup/recvmsg_unix",
        P::CgroupSockAddr,
        Some(A::CgroupUnixRecvmsg),
        NONE,
    ),
    (
        "cgroup/getpeername4",
        P::CgroupSockAddr,
        Some(A::CgroupInet4Getpeername),
        NONE,
    ),
    (
        "cgroup/getpeername6",
        P::CgroupSockAddr,
        Some(A::CgroupInet6Getpeername),
        NONE,
    ),
    (
        "cgroup/getpeername_unix",
        P::CgroupSockAddr,
        Some(A::CgroupUnixGetpeername),
        NONE,
    ),
    (
        "cgroup/getsockname4",
        P::CgroupSockAddr,
        Some(A::CgroupInet4Getsockname),
        NONE,
    ),
    (
        "cgroup/getsockname6",
        P::CgroupSockAddr,
        Some(A::CgroupInet6Getsockname),
        NONE,
    ),
    (
        "cgroup/getsockname_unix",
        P::CgroupSockAddr,
        Some(A::CgroupUnixGetsockname),
        NONE,
    ),
    (
        "cgroup/sysctl",
        P::CgroupSysctl,
        Some(A::CgroupSysctl),
        NONE,
    ),
    (
        "cgroup/getsockopt",
        P::CgroupSockopt,
        Some(A::CgroupGetsockopt),
        NONE,
    ),
    (
        "cgroup/setsockopt",
        P::CgroupSockopt,
        Some(A::CgroupSetsockopt),
        NONE,
    ),
    ("cgroup/dev", P::CgroupDevice, Some(A::CgroupDevice), NONE),
    ("struct_ops+", P::StructOps, None, PLUS),
    ("struct_ops.s+", P::StructOps, None, PLUS | SLEEP),
    ("sk_lookup", P::SkLookup, Some(A::SkLookup), NONE),
    ("netfilter", P::Netfilter, Some(A::Netfilter), NONE),
];

/// goebpf's names (matched case-insensitively on the part before the first `/`).
const GOEBPF: &[Def] = &[
    ("goebpf:xdp", P::Xdp, Some(A::Xdp), NONE),
    ("goebpf:socket_filter", P::SocketFilter, None, NONE),
    ("goebpf:kprobe", P::Kprobe, None, PLUS),
    ("goebpf:kretprobe", P::Kprobe, None, PLUS | RET),
    ("goebpf:tc_cls", P::SchedCls, None, NONE),
    ("goebpf:tc_act", P::SchedAct, None, NONE),
];

fn build(def: &Def, attach_to: Option<&str>) -> ProgramSection {
    let &(convention, program_type, expected_attach_type, flags) = def;
    ProgramSection {
        program_type,
        expected_attach_type,
        attach_to: attach_to.filter(|t| !t.is_empty()).map(str::to_string),
        sleepable: flags & SLEEP != 0,
        xdp_frags: flags & FRAGS != 0,
        return_probe: flags & RET != 0,
        convention: Some(convention),
    }
}

/// The first byte of `TABLE[i]`'s name.
const fn first_byte(i: usize) -> u8 {
    TABLE[i].0.as_bytes()[0]
}

const _: () = assert!(TABLE.len() < 256, "BY_FIRST holds u8 indices");

/// `TABLE`'s indices grouped by the first byte of their name, in table order within a group:
/// only entries that start like the section name can match it, and their order is kept.
const BY_FIRST: [u8; TABLE.len()] = {
    let mut order = [0u8; TABLE.len()];
    let mut n = 0;
    let mut byte = 0;
    while byte < 256 {
        let mut i = 0;
        while i < TABLE.len() {
            if first_byte(i) as usize == byte {
                order[n] = i as u8;
                n += 1;
            }
            i += 1;
        }
        byte += 1;
    }
    order
};

/// For each first byte, its group in [`BY_FIRST`] (start, end).
const GROUPS: [(u8, u8); 256] = {
    let mut groups = [(0u8, 0u8); 256];
    let mut n = 0;
    let mut byte = 0;
    while byte < 256 {
        let start = n;
        let mut i = 0;
        while i < TABLE.len() {
            if first_byte(i) as usize == byte {
                n += 1;
            }
            i += 1;
        }
        groups[byte] = (start as u8, n as u8);
        byte += 1;
    }
    groups
};

/// The entries of `TABLE` whose name starts with `first`, in table order.
fn candidates(first: Option<u8>) -> impl Iterator<Item = &'static Def> {
    let (start, end) = first
        .and_then(|b| GROUPS.get(usize::from(b)))
        .copied()
        .unwrap_or_default();
    BY_FIRST
        .get(usize::from(start)..usize::from(end))
        .unwrap_or_default()
        .iter()
        .filter_map(|&i| TABLE.get(usize::from(i)))
}

/// `a.eq_ignore_ascii_case(b)` as one plain loop: inlined, it became a fully unrolled compare
/// per goebpf name, many code lines for a check that runs once per section.
#[inline(never)]
fn eq_ignore_ascii_case(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .all(|(x, y)| x.eq_ignore_ascii_case(&y))
}

impl ProgramSection {
    /// Reads a section name.
    pub fn parse(name: &str) -> ProgramSection {
        // 1. libbpf's table (the entries that start like the name, in table order; every
        // entry is at least two bytes long).
        let first = name.as_bytes().first().copied();
        let second = name.as_bytes().get(1);
        for def in candidates(first) {
            let pat = def.0;
            if pat.as_bytes().get(1) != second {
                continue;
            }
            if let Some(prefix) = pat.strip_suffix('+') {
                if name == prefix {
                    return build(def, None);
                }
                if let Some(target) = name.strip_prefix(prefix).and_then(|r| r.strip_prefix('/')) {
                    return build(def, Some(target));
                }
            } else if name == pat {
                return build(def, None);
            }
        }
        // (A `/` byte is always the character `/` in UTF-8.)
        let slash = name.bytes().position(|b| b == b'/');
        let (head, rest) = match slash.and_then(|i| Some((name.get(..i)?, name.get(i + 1..)?))) {
            Some((h, r)) => (h, Some(r)),
            None => (name, None),
        };
        // 2. Legacy sloppy prefixes: `xdp/foo`, `socket/3`, `classifier/x`.
        if rest.is_some() {
            if let Some(def) = candidates(first).find(|d| d.0 == head && !d.0.contains(['+', '/']))
            {
                return build(def, None);
            }
        }
        // 3. goebpf: first token, case-insensitively (goebpf's names are lowercase).
        if let Some(def) = GOEBPF.iter().find(|d| {
            d.0.strip_prefix("goebpf:")
                .is_some_and(|n| eq_ignore_ascii_case(n, head))
        }) {
            let target = if def.3 & PLUS != 0 { rest } else { None };
            return build(def, target);
        }
        ProgramSection {
            program_type: P::Unspec,
            expected_attach_type: None,
            attach_to: None,
            sleepable: false,
            xdp_frags: false,
            return_probe: false,
            convention: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(name: &str) -> (P, Option<A>, Option<String>) {
        let s = ProgramSection::parse(name);
        (s.program_type, s.expected_attach_type, s.attach_to)
    }

    #[test]
    fn libbpf_names() {
        assert_eq!(p("xdp"), (P::Xdp, Some(A::Xdp), None));
        assert_eq!(p("xdp.frags").0, P::Xdp);
        assert!(ProgramSection::parse("xdp.frags").xdp_frags);
        assert_eq!(p("tc"), (P::SchedCls, None, None));
        assert_eq!(p("tc/ingress"), (P::SchedCls, Some(A::TcxIngress), None));
        assert_eq!(p("tcx/egress"), (P::SchedCls, Some(A::TcxEgress), None));
        assert_eq!(p("classifier").0, P::SchedCls);
        assert_eq!(p("action").0, P::SchedAct);
        assert_eq!(p("socket").0, P::SocketFilter);
        assert_eq!(p("sk_reuseport").1, Some(A::SkReuseportSelect));
        assert_eq!(
            p("kprobe/do_sys_open"),
            (P::Kprobe, None, Some("do_sys_open".into()))
        );
        assert!(ProgramSection::parse("kretprobe/x").return_probe);
        assert_eq!(p("ksyscall/openat").2.as_deref(), Some("openat"));
        assert_eq!(
            p("uprobe//bin/bash:readline").2.as_deref(),
            Some("/bin/bash:readline")
        );
        assert!(ProgramSection::parse("uretprobe.s/lib:f").sleepable);
        assert_eq!(
            p("tracepoint/syscalls/sys_enter_open"),
            (P::Tracepoint, None, Some("syscalls/sys_enter_open".into()))
        );
        assert_eq!(p("tp/sched/sched_switch").0, P::Tracepoint);
        assert_eq!(p("raw_tracepoint/sched_switch").0, P::RawTracepoint);
        assert_eq!(p("raw_tp/x").0, P::RawTracepoint);
        assert_eq!(
            p("tp_btf/sched_switch"),
            (P::Tracing, Some(A::TraceRawTp), Some("sched_switch".into()))
        );
        assert_eq!(p("fentry/tcp_connect").1, Some(A::TraceFentry));
        assert_eq!(p("fexit/tcp_connect").1, Some(A::TraceFexit));
        assert_eq!(
            p("lsm/file_open"),
            (P::Lsm, Some(A::LsmMac), Some("file_open".into()))
        );
        assert_eq!(
            p("cgroup_skb/ingress"),
            (P::CgroupSkb, Some(A::CgroupInetIngress), None)
        );
        assert_eq!(p("cgroup/connect4").0, P::CgroupSockAddr);
        assert_eq!(p("cgroup/dev").0, P::CgroupDevice);
        assert_eq!(p("cgroup/sysctl").0, P::CgroupSysctl);
        assert_eq!(p("sockops").1, Some(A::CgroupSockOps));
        assert_eq!(p("sk_skb/stream_verdict").1, Some(A::SkSkbStreamVerdict));
        assert_eq!(p("sk_msg").0, P::SkMsg);
        assert_eq!(p("flow_dissector").0, P::FlowDissector);
        assert_eq!(p("perf_event").0, P::PerfEvent);
        assert_eq!(p("iter/task").1, Some(A::TraceIter));
        assert_eq!(p("struct_ops/init").0, P::StructOps);
        assert_eq!(p("syscall").0, P::Syscall);
        assert!(ProgramSection::parse("syscall").sleepable);
        assert_eq!(p("netfilter").0, P::Netfilter);
    }

    #[test]
    fn goebpf_and_legacy_names() {
        assert_eq!(p("socket_filter").0, P::SocketFilter);
        assert_eq!(p("tc_cls").0, P::SchedCls);
        assert_eq!(p("TC_ACT").0, P::SchedAct);
        assert_eq!(p("XDP").0, P::Xdp);
        assert_eq!(p("xdp/anything").0, P::Xdp);
        assert_eq!(p("socket/1").0, P::SocketFilter);
        assert_eq!(p("KPROBE/sym").2.as_deref(), Some("sym"));
        assert!(ProgramSection::parse("KRETPROBE/sym").return_probe);
    }

    /// The reading before the first-byte filter and the allocation-free goebpf match.
    fn reference(name: &str) -> ProgramSection {
        for def in TABLE {
            let pat = def.0;
            if let Some(prefix) = pat.strip_suffix('+') {
                if name == prefix {
                    return build(def, None);
                }
                if let Some(target) = name.strip_prefix(prefix).and_then(|r| r.strip_prefix('/')) {
                    return build(def, Some(target));
                }
            } else if name == pat {
                return build(def, None);
            }
        }
        let (head, rest) = match name.split_once('/') {
            Some((h, r)) => (h, Some(r)),
            None => (name, None),
        };
        if rest.is_some() {
            if let Some(def) = TABLE
                .iter()
                .find(|d| !d.0.contains(['+', '/']) && d.0 == head)
            {
                return build(def, None);
            }
        }
        let lower = head.to_ascii_lowercase();
        if let Some(def) = GOEBPF
            .iter()
            .find(|d| d.0.strip_prefix("goebpf:") == Some(&lower))
        {
            let target = if def.3 & PLUS != 0 { rest } else { None };
            return build(def, target);
        }
        ProgramSection::parse("")
    }

    #[test]
    fn table_entries_are_at_least_two_bytes() {
        for (pat, ..) in TABLE {
            assert!(pat.trim_end_matches('+').len() >= 2, "{pat}");
        }
    }

    #[test]
    fn same_reading_as_a_full_scan() {
        let mut names = vec![String::new(), "/".into(), "x".into(), "Ünïcode/x".into()];
        for (pat, ..) in TABLE.iter().chain(GOEBPF) {
            let base = pat.trim_end_matches('+').trim_start_matches("goebpf:");
            for n in [
                base.to_string(),
                format!("{base}/"),
                format!("{base}/t/u"),
                format!("{base}x"),
                format!("{base}.s/x"),
                base.to_ascii_uppercase(),
                format!("{}/x", base.to_ascii_uppercase()),
                base.get(..base.len() - 1).unwrap_or_default().to_string(),
            ] {
                names.push(n);
            }
        }
        for n in &names {
            assert_eq!(ProgramSection::parse(n), reference(n), "{n:?}");
        }
    }

    #[test]
    fn unknown_names_are_unspec() {
        let s = ProgramSection::parse("my_custom");
        assert_eq!(s.program_type, P::Unspec);
        assert_eq!(s.convention, None);
        // "kprobex" is not "kprobe" + '/'.
        assert_eq!(p("kprobex/foo").0, P::Unspec);
    }
}
