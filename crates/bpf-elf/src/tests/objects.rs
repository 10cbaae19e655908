//! What a user checks: each object of `bpf-progs/` parses into the maps and programs its source
//! declares, in both byte orders, and links and relocates.

use super::{all_stems, object, object_eb};
use crate::{
    AttachType, MapOrigin, MapReferenceKind, MapSlot, MapSpec, MapType, ObjectSpec, Pinning,
    ProgramType, Reference, SlotValue,
};
use bpf_sys::uapi;

#[track_caller]
fn map<'a>(obj: &'a ObjectSpec, name: &str) -> &'a MapSpec {
    obj.map(name).unwrap_or_else(|| {
        let names: Vec<_> = obj.maps.iter().map(|m| m.name.as_str()).collect();
        panic!("no map {name}; maps: {names:?}")
    })
}

/// Checks name, type and key/value/max_entries.
#[track_caller]
fn assert_map(
    obj: &ObjectSpec,
    name: &str,
    ty: MapType,
    key: u32,
    value: u32,
    max: u32,
) -> MapSpec {
    let m = map(obj, name);
    assert_eq!(
        (m.map_type, m.key_size, m.value_size, m.max_entries),
        (ty, key, value, max),
        "map {name}"
    );
    m.clone()
}

#[track_caller]
fn assert_map_names(obj: &ObjectSpec, names: &[&str]) {
    let got: Vec<_> = obj.maps.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(got, names);
}

/// Checks the programs: (name, section, type), in order.
#[track_caller]
fn assert_programs(obj: &ObjectSpec, want: &[(&str, &str, ProgramType)]) {
    let got: Vec<_> = obj
        .programs
        .iter()
        .map(|p| (p.name.as_str(), p.section.as_str(), p.program_type))
        .collect();
    assert_eq!(got, want);
    for p in &obj.programs {
        assert_eq!(p.license, "GPL", "{}", p.name);
        assert!(!p.instructions().is_empty());
    }
}

#[test]
fn every_object_parses_links_and_relocates_in_both_byte_orders() {
    for stem in all_stems() {
        let el = object(&stem);
        let eb = object_eb(&stem);
        assert_eq!(el.license, "GPL", "{stem}");
        assert!(!el.programs.is_empty(), "{stem} has no programs");
        // Same specs: only byte-order-dependent initial data may differ.
        let strip = |o: &ObjectSpec| {
            o.maps
                .iter()
                .map(|m| MapSpec {
                    data: m.data.as_ref().map(|d| vec![0; d.len()]),
                    ..m.clone()
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(
            strip(&el),
            strip(&eb),
            "{stem}: maps differ between byte orders"
        );
        assert_eq!(el.programs.len(), eb.programs.len());
        for (a, b) in el.programs.iter().zip(&eb.programs) {
            let la = a
                .link(&el)
                .unwrap_or_else(|e| panic!("{stem}/{}: {e}", a.name));
            let lb = b
                .link(&eb)
                .unwrap_or_else(|e| panic!("{stem}/{}: {e}", b.name));
            // Code that handles packet bytes may differ by byte order (clang folds `ntohs`), so
            // compare what does not depend on it.
            let shape = |l: &crate::LinkedProgram| {
                let refs: Vec<_> = l
                    .map_references
                    .iter()
                    .map(|r| (r.map.clone(), r.kind))
                    .collect();
                let funcs: Vec<_> = l.functions.iter().map(|f| f.0.clone()).collect();
                (refs, funcs, l.func_info.len())
            };
            assert_eq!(
                (a.name.as_str(), a.program_type, shape(&la)),
                (b.name.as_str(), b.program_type, shape(&lb)),
                "{stem}: program differs between byte orders"
            );
            // Every map reference names a map of the object, and relocation fills it in.
            let mut linked = la.clone();
            // CO-RE against the object's own BTF, its `___flavor` types renamed away as a
            // kernel would not have them: each instruction must hold what the local BTF says
            // (relocation validates it) and every relocation must resolve or poison cleanly.
            if let Some(btf) = el.btf.as_ref() {
                let types: Vec<_> = btf
                    .types()
                    .iter()
                    .map(|t| {
                        let mut t = t.clone();
                        if t.name.contains("___") {
                            t.name = format!("local_{}", t.name).into();
                        }
                        t
                    })
                    .collect();
                let target = crate::btf::Btf::from_types(&types, btf.endianness()).unwrap();
                linked
                    .relocate_core(btf, &target)
                    .unwrap_or_else(|e| panic!("{stem}/{}: {e}", a.name));
            }
            // Externs: `.kconfig` values of "y", ksyms against the object's own BTF and a fake
            // kallsyms; the `.kconfig` map joins the object's maps.
            let mut el = el.clone();
            if let Some(m) = el.kconfig_map(|_| Some("y".into())).unwrap() {
                el.maps.push(m);
            }
            linked
                .resolve_externs(&el, el.btf.as_ref(), |_| Some(0xffff_ffff_8100_0000))
                .unwrap_or_else(|e| panic!("{stem}/{}: {e}", a.name));
            let fd = |name: &str| {
                el.maps
                    .iter()
                    .position(|m| m.name == name)
                    .map(|i| 100 + i as i32)
            };
            linked
                .relocate(fd)
                .unwrap_or_else(|e| panic!("{stem}/{}: {e}", a.name));
            for r in &linked.map_references {
                let i = linked.instructions[r.insn];
                assert_eq!(i.imm, fd(&r.map).unwrap());
                let src = match r.kind {
                    MapReferenceKind::Fd => uapi::BPF_PSEUDO_MAP_FD,
                    MapReferenceKind::Value { .. } => uapi::BPF_PSEUDO_MAP_VALUE,
                };
                assert_eq!(u32::from(i.src), src);
            }
            // Encoded bytes round-trip.
            assert_eq!(linked.bytes().len(), linked.instructions.len() * 8);
        }
    }
}

#[test]
fn xdp_legacy_reads_goebpf_40_byte_maps_with_inner_maps_and_pin_paths() {
    let obj = object("xdp_legacy");
    // `.rodata.str1.1` only holds the pin paths: no map for it.
    assert_map_names(
        &obj,
        &[
            "txcnt",
            "rxcnt",
            "match_maps_tx",
            "match_maps_rx",
            "array_map",
            "perf_map",
            "programs",
        ],
    );
    let txcnt = assert_map(&obj, "txcnt", MapType::PerCpuArray, 4, 8, 100);
    assert_eq!(txcnt.pinning, Pinning::Path("/sys/fs/bpf/txcnt".into()));
    assert_eq!(txcnt.origin, MapOrigin::Legacy { record_size: 40 });
    assert_map(&obj, "rxcnt", MapType::Hash, 8, 4, 50);
    let tx = assert_map(&obj, "match_maps_tx", MapType::ArrayOfMaps, 4, 0, 10);
    let inner = tx.inner_map.expect("inner map of match_maps_tx");
    assert_eq!(
        (inner.name.as_str(), inner.map_type, inner.value_size),
        ("txcnt", MapType::PerCpuArray, 8)
    );
    assert_eq!(tx.pinning, Pinning::None);
    let rx = assert_map(&obj, "match_maps_rx", MapType::HashOfMaps, 4, 0, 20);
    assert_eq!(rx.inner_map.unwrap().name, "rxcnt");
    assert_eq!(
        rx.pinning,
        Pinning::Path("/sys/fs/bpf/match_maps_rx".into())
    );
    assert_map(&obj, "array_map", MapType::Array, 4, 8, 10);
    assert_map(&obj, "perf_map", MapType::PerfEventArray, 0, 0, 128);
    assert_map(&obj, "programs", MapType::ProgArray, 0, 0, 2);
    let xdp = ProgramType::Xdp;
    assert_programs(
        &obj,
        &[
            ("xdp0", "xdp", xdp),
            ("xdp1", "xdp", xdp),
            ("xdp_head_meta2", "xdp", xdp),
            ("xdp_root3", "xdp", xdp),
            ("xdp_perf", "xdp", xdp),
        ],
    );
    assert_eq!(obj.programs[0].expected_attach_type, Some(AttachType::Xdp));
}

#[test]
fn xdp_btf_reads_btf_maps_with_pinning_and_inline_inner_templates() {
    let obj = object("xdp_btf");
    assert_map_names(
        &obj,
        &[
            "txcnt",
            "rxcnt",
            "match_maps_tx",
            "match_maps_rx",
            "array_map",
            "perf_map",
            "programs",
        ],
    );
    let txcnt = assert_map(&obj, "txcnt", MapType::PerCpuArray, 4, 8, 100);
    assert_eq!(txcnt.pinning, Pinning::ByName);
    assert!(txcnt.btf_key_type_id.is_some() && txcnt.btf_value_type_id.is_some());
    assert_map(&obj, "rxcnt", MapType::Hash, 8, 4, 50);
    let tx = assert_map(&obj, "match_maps_tx", MapType::ArrayOfMaps, 4, 4, 10);
    let inner = *tx.inner_map.unwrap();
    assert_eq!(
        (
            inner.name.as_str(),
            inner.map_type,
            inner.key_size,
            inner.value_size,
            inner.max_entries
        ),
        ("match_maps_tx.inner", MapType::PerCpuArray, 4, 8, 100)
    );
    let rx = assert_map(&obj, "match_maps_rx", MapType::HashOfMaps, 4, 4, 20);
    assert_eq!(rx.pinning, Pinning::ByName);
    let inner = *rx.inner_map.unwrap();
    assert_eq!(
        (
            inner.map_type,
            inner.key_size,
            inner.value_size,
            inner.max_entries
        ),
        (MapType::Hash, 8, 4, 50)
    );
    assert_map(&obj, "perf_map", MapType::PerfEventArray, 4, 4, 0);
    assert_map(&obj, "programs", MapType::ProgArray, 4, 4, 2);
    assert_eq!(obj.programs.len(), 5);
}

#[test]
fn xdp_init_btf_reads_initial_slots_of_map_in_maps_and_prog_arrays() {
    let obj = object("xdp_init_btf");
    assert_map(&obj, "inner_a", MapType::Array, 4, 4, 1);
    assert_map(&obj, "inner_b", MapType::Array, 4, 4, 1);
    let outer = assert_map(&obj, "outer", MapType::ArrayOfMaps, 4, 4, 4);
    let slot = |i, m: &str| MapSlot {
        index: i,
        value: SlotValue::Map(m.into()),
    };
    assert_eq!(outer.values, vec![slot(1, "inner_a"), slot(3, "inner_b")]);
    let inner = outer.inner_map.unwrap();
    assert_eq!(
        (
            inner.map_type,
            inner.key_size,
            inner.value_size,
            inner.max_entries
        ),
        (MapType::Array, 4, 4, 1)
    );
    let outer_hash = assert_map(&obj, "outer_hash", MapType::HashOfMaps, 4, 4, 4);
    assert_eq!(outer_hash.values, vec![slot(2, "inner_b")]);
    let jmp = assert_map(&obj, "jmp_table", MapType::ProgArray, 4, 4, 4);
    let prog = |i, p: &str| MapSlot {
        index: i,
        value: SlotValue::Program(p.into()),
    };
    assert_eq!(
        jmp.values,
        vec![prog(0, "xdp_pass_prog"), prog(2, "xdp_drop_prog")]
    );
    let xdp = ProgramType::Xdp;
    assert_programs(
        &obj,
        &[
            ("xdp_pass_prog", "xdp", xdp),
            ("xdp_drop_prog", "xdp", xdp),
            ("xdp_entry", "xdp", xdp),
        ],
    );
}

#[test]
fn kprobe_objects_read_probe_targets_from_section_names() {
    let obj = object("kprobe_legacy");
    assert_map(&obj, "perf_map", MapType::PerfEventArray, 0, 0, 128);
    assert_map(&obj, "calls", MapType::Hash, 4, 8, 1024);
    let k = ProgramType::Kprobe;
    assert_programs(
        &obj,
        &[
            ("kprobe0", "kprobe/guess_execve", k),
            ("kprobe1", "kretprobe/guess_execve", k),
        ],
    );
    assert_eq!(obj.programs[0].attach_to.as_deref(), Some("guess_execve"));
    assert!(!obj.programs[0].return_probe && obj.programs[1].return_probe);

    let obj = object("kprobe_btf");
    assert_map(&obj, "perf_map", MapType::PerfEventArray, 4, 4, 0);
    assert_map(&obj, "calls", MapType::Hash, 4, 8, 1024);
    assert_programs(
        &obj,
        &[
            ("kprobe_execve", "kprobe/__x64_sys_execve", k),
            ("kretprobe_execve", "kretprobe/__x64_sys_execve", k),
            ("ksyscall_execve", "ksyscall/execve", k),
            ("kretsyscall_execve", "kretsyscall/execve", k),
        ],
    );
    let targets: Vec<_> = obj
        .programs
        .iter()
        .map(|p| (p.attach_to.as_deref(), p.return_probe))
        .collect();
    assert_eq!(
        targets,
        [
            (Some("__x64_sys_execve"), false),
            (Some("__x64_sys_execve"), true),
            (Some("execve"), false),
            (Some("execve"), true)
        ]
    );

    let obj = object("kprobe_exec_dump");
    assert_map(&obj, "events", MapType::PerfEventArray, 4, 4, 1024);
    assert_map(&obj, "buffer", MapType::PerCpuArray, 4, 16384, 1);
    assert_programs(&obj, &[("execve_entry", "kprobe/guess_execve", k)]);
}

#[test]
fn tc_objects_read_goebpf_and_libbpf_section_names() {
    let (cls, act) = (ProgramType::SchedCls, ProgramType::SchedAct);
    let obj = object("tc_legacy");
    assert_map(&obj, "metrics", MapType::PerCpuArray, 4, 8, 4);
    assert_programs(
        &obj,
        &[
            ("cls_ingress", "tc_cls", cls),
            ("cls_egress", "tc_cls", cls),
            ("act_ingress", "tc_act", act),
            ("act_egress", "tc_act", act),
        ],
    );
    let obj = object("tc_btf");
    assert_map(&obj, "metrics", MapType::PerCpuArray, 4, 8, 4);
    assert_programs(
        &obj,
        &[
            ("tc_ingress", "tc", cls),
            ("tc_egress", "tc", cls),
            ("cls_ingress", "classifier", cls),
            ("cls_egress", "classifier", cls),
            ("act_ingress", "action", act),
            ("act_egress", "action", act),
            ("tcx_ingress", "tc/ingress", cls),
            ("tcx_egress", "tcx/egress", cls),
        ],
    );
    let attach: Vec<_> = obj
        .programs
        .iter()
        .map(|p| p.expected_attach_type)
        .collect();
    assert_eq!(
        attach[6..],
        [Some(AttachType::TcxIngress), Some(AttachType::TcxEgress)]
    );
    assert!(attach[..6].iter().all(Option::is_none));

    let obj = object("tc_packet_counter");
    assert_map(&obj, "metrics", MapType::PerCpuArray, 4, 8, 255);
    assert_programs(
        &obj,
        &[("tc_ingress", "tc_cls", cls), ("tc_egress", "tc_cls", cls)],
    );
}

#[test]
fn socket_objects_parse() {
    let sf = ProgramType::SocketFilter;
    let obj = object("sock_legacy");
    assert_map(&obj, "packets", MapType::PerCpuArray, 4, 8, 1);
    assert_programs(&obj, &[("count_packets", "socket_filter", sf)]);
    let obj = object("sock_btf");
    assert_map(&obj, "packets", MapType::PerCpuArray, 4, 8, 1);
    assert_programs(&obj, &[("count_packets", "socket", sf)]);
    let obj = object("socket_filter_packet_counter");
    assert_map(&obj, "counter", MapType::PerCpuArray, 4, 8, 1);
    assert_programs(&obj, &[("packet_counter", "socket_filter", sf)]);

    for (stem, events, prog) in [
        (
            "sock_perf_btf",
            (MapType::PerfEventArray, 4, 4, 0),
            "perf_seq",
        ),
        (
            "sock_ringbuf_btf",
            (MapType::RingBuf, 0, 0, 1 << 20),
            "ringbuf_seq",
        ),
    ] {
        let obj = object(stem);
        assert_map_names(&obj, &["events", "scratch", ".rodata", ".bss"]);
        assert_map(&obj, "events", events.0, events.1, events.2, events.3);
        assert_map(&obj, "scratch", MapType::PerCpuArray, 4, 4096, 1);
        let ro = assert_map(&obj, ".rodata", MapType::Array, 4, 4, 1);
        assert_eq!(ro.data.as_deref(), Some(&64u32.to_le_bytes()[..]));
        assert!(ro.freeze);
        let vars: Vec<_> = ro
            .variables
            .iter()
            .map(|v| (v.name.as_str(), v.offset, v.size))
            .collect();
        assert_eq!(vars, [("record_size", 0, 4)]);
        let bss = assert_map(&obj, ".bss", MapType::Array, 4, 16, 1);
        assert_eq!(bss.data, Some(vec![0; 16]));
        let mut vars: Vec<_> = bss
            .variables
            .iter()
            .map(|v| (v.name.as_str(), v.offset, v.size))
            .collect();
        vars.sort();
        assert_eq!(vars, [("lost", 0, 8), ("next_seq", 8, 8)]);
        assert_programs(&obj, &[(prog, "socket", sf)]);
    }
}

#[test]
fn trace_and_example_objects_parse() {
    for stem in ["trace_legacy", "trace_btf"] {
        let obj = object(stem);
        assert_map(&obj, "counts", MapType::Array, 4, 8, 3);
        assert_programs(
            &obj,
            &[
                (
                    "tp_getpid",
                    "tracepoint/syscalls/sys_enter_getpid",
                    ProgramType::Tracepoint,
                ),
                ("uprobe_hit", "uprobe", ProgramType::Kprobe),
                (
                    "raw_sys_enter",
                    "raw_tracepoint/sys_enter",
                    ProgramType::RawTracepoint,
                ),
            ],
        );
        assert_eq!(
            obj.programs[0].attach_to.as_deref(),
            Some("syscalls/sys_enter_getpid")
        );
        assert_eq!(obj.programs[2].attach_to.as_deref(), Some("sys_enter"));
    }
    let xdp = ProgramType::Xdp;
    let obj = object("xdp_basic_firewall");
    assert_map(&obj, "matches", MapType::PerCpuArray, 4, 8, 16);
    assert_eq!(
        assert_map(&obj, "blacklist", MapType::LpmTrie, 8, 4, 16).flags,
        uapi::BPF_F_NO_PREALLOC
    );
    assert_programs(&obj, &[("firewall", "xdp", xdp)]);
    let obj = object("xdp_packet_counter");
    assert_map(&obj, "protocols", MapType::PerCpuArray, 4, 8, 255);
    assert_programs(&obj, &[("packet_count", "xdp", xdp)]);
    let obj = object("xdp_redirect_map");
    assert_map(&obj, "if_redirect", MapType::DevMap, 4, 4, 64);
    assert_programs(&obj, &[("xdp_test", "xdp", xdp)]);
    let obj = object("xdp_dump");
    assert_map(&obj, "perfmap", MapType::PerfEventArray, 4, 4, 128);
    assert_programs(&obj, &[("xdp_dump", "xdp", xdp)]);
}

#[test]
fn globals_btf_reads_global_data_as_array_maps() {
    let obj = object("globals_btf");
    let mut names: Vec<_> = obj.maps.iter().map(|m| m.name.as_str()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            ".bss",
            ".data",
            ".data.counters",
            ".rodata",
            ".rodata.str1.1"
        ]
    );
    for m in &obj.maps {
        assert_eq!(
            (m.map_type, m.key_size, m.max_entries, m.origin),
            (MapType::Array, 4, 1, MapOrigin::Data)
        );
        assert_eq!(m.data.as_ref().map(Vec::len), Some(m.value_size as usize));
        let ro = m.name.starts_with(".rodata");
        assert_eq!(
            (m.freeze, m.flags),
            (ro, if ro { uapi::BPF_F_RDONLY_PROG } else { 0 }),
            "{}",
            m.name
        );
    }
    let vars = |m: &MapSpec| {
        let mut v: Vec<_> = m
            .variables
            .iter()
            .map(|v| (v.name.clone(), v.offset, v.size))
            .collect();
        v.sort_by_key(|v| v.1);
        v
    };
    let data = map(&obj, ".data");
    assert_eq!(data.data.as_deref(), Some(&7u64.to_le_bytes()[..]));
    assert_eq!(vars(data), [("data_counter".into(), 0, 8)]);
    let bss = map(&obj, ".bss");
    assert_eq!(
        (bss.value_size, vars(bss)),
        (
            12,
            vec![("bss_counter".into(), 0, 8), ("loop_sum".into(), 8, 4)]
        )
    );
    let ro = map(&obj, ".rodata");
    assert_eq!(ro.value_size, 69);
    let v = vars(ro);
    assert_eq!(v[0], ("loop_rounds".into(), 0, 4));
    assert_eq!(v[1], ("greeting".into(), 4, 20));
    assert_eq!(v[2], ("globals_xdp.____fmt".into(), 0x18, 45));
    let bytes = ro.data.as_ref().unwrap();
    assert_eq!(&bytes[0..4], &10u32.to_le_bytes());
    assert_eq!(&bytes[4..24], b"hello from .rodata\n\0");
    let counters = map(&obj, ".data.counters");
    assert_eq!(
        vars(counters),
        [("counter_a".into(), 0, 8), ("counter_b".into(), 8, 8)]
    );
    let lit = map(&obj, ".rodata.str1.1");
    assert_eq!(
        lit.data.as_deref(),
        Some(&b"globals_xdp: a .rodata.str1.1 literal\n\0"[..])
    );
    // The BTF handed to the loader has its DATASEC sizes and offsets fixed up.
    let btf = obj.btf.as_ref().unwrap();
    let ds = btf.type_by_id(ro.btf_value_type_id.unwrap()).unwrap();
    assert_eq!(ds.size_or_type, 69);

    assert_programs(
        &obj,
        &[
            ("globals_xdp", "xdp", ProgramType::Xdp),
            ("globals_socket", "socket", ProgramType::SocketFilter),
        ],
    );
    let subs: Vec<_> = obj
        .subprograms()
        .map(|f| (f.name.as_str(), f.section.as_str(), f.instructions.len()))
        .collect();
    assert_eq!(subs, [("bump", ".text", 4), ("add_index", ".text", 5)]);
}

#[test]
fn globals_btf_links_a_subprogram_called_from_two_programs_and_a_bpf_loop_callback() {
    let obj = object("globals_btf");
    let bump = obj
        .subprograms()
        .find(|f| f.name == "bump")
        .unwrap()
        .clone();
    let add_index = obj
        .subprograms()
        .find(|f| f.name == "add_index")
        .unwrap()
        .clone();

    for prog in ["globals_xdp", "globals_socket"] {
        let p = obj.program(prog).unwrap();
        let linked = p.link(&obj).unwrap();
        let own = p.instructions().len();
        // The program first, then each subprogram once.
        assert_eq!(linked.functions[0], (prog.into(), 0));
        let bump_at = linked.functions.iter().find(|f| f.0 == "bump").unwrap().1;
        assert!(bump_at >= own);
        assert_eq!(
            linked.instructions[bump_at..bump_at + 4].len(),
            bump.instructions.len()
        );
        // Every call lands on bump's first instruction.
        let calls: Vec<_> = linked.instructions[..own]
            .iter()
            .enumerate()
            .filter(|(_, i)| i.is_pseudo_call())
            .map(|(n, i)| n as i64 + i64::from(i.imm) + 1)
            .collect();
        assert!(!calls.is_empty(), "{prog} has no bpf-to-bpf call");
        assert!(
            calls.iter().all(|t| *t == bump_at as i64),
            "{prog}: calls {calls:?}, bump at {bump_at}"
        );
        // func_info: one record at each function's start, sorted.
        let starts: Vec<_> = linked.functions.iter().map(|f| f.1).collect();
        let fi: Vec<_> = linked.func_info.iter().map(|f| f.insn).collect();
        assert_eq!(fi, starts, "{prog}");
        assert!(linked.line_info.windows(2).all(|w| w[0].insn <= w[1].insn));
        assert!(linked
            .line_info
            .iter()
            .all(|l| l.insn < linked.instructions.len() && l.line() > 0));
        // Map references: global data by value.
        assert!(linked
            .map_references
            .iter()
            .all(|r| matches!(r.kind, MapReferenceKind::Value { .. })));
    }

    let xdp = obj.link("globals_xdp").unwrap();
    assert_eq!(xdp.functions.len(), 2);
    let used = xdp.maps();
    for m in [
        ".bss",
        ".data.counters",
        ".rodata",
        ".rodata.str1.1",
        ".data",
    ] {
        assert!(used.contains(&m), "globals_xdp does not use {m}: {used:?}");
    }
    // counter_a is at offset 0 of .data.counters, the format string at 0x18 of .rodata.
    let offsets: Vec<_> = xdp
        .map_references
        .iter()
        .map(|r| (r.map.as_str(), r.kind))
        .collect();
    assert!(offsets.contains(&(".data.counters", MapReferenceKind::Value { offset: 0 })));
    assert!(offsets.contains(&(".rodata", MapReferenceKind::Value { offset: 0x18 })));
    assert!(offsets.contains(&(".rodata.str1.1", MapReferenceKind::Value { offset: 0 })));

    let mut sock = obj.link("globals_socket").unwrap();
    assert_eq!(sock.functions.len(), 3);
    let cb_at = sock
        .functions
        .iter()
        .find(|f| f.0 == "add_index")
        .unwrap()
        .1;
    assert_eq!(
        sock.instructions.len(),
        obj.program("globals_socket").unwrap().instructions().len()
            + 4
            + add_index.instructions.len()
    );
    // The callback address is a BPF_PSEUDO_FUNC ld_imm64 whose offset lands on add_index.
    let ptrs: Vec<_> = sock
        .instructions
        .iter()
        .enumerate()
        .filter(|(_, i)| i.is_ld_imm64() && u32::from(i.src) == uapi::BPF_PSEUDO_FUNC)
        .map(|(n, i)| n as i64 + i64::from(i.imm) + 1)
        .collect();
    assert_eq!(ptrs, [cb_at as i64]);
    let offsets: Vec<_> = sock
        .map_references
        .iter()
        .map(|r| (r.map.as_str(), r.kind))
        .collect();
    assert!(offsets.contains(&(".data.counters", MapReferenceKind::Value { offset: 8 })));
    assert!(offsets.contains(&(".rodata", MapReferenceKind::Value { offset: 4 })));
    assert!(offsets.contains(&(".bss", MapReferenceKind::Value { offset: 8 })));

    sock.relocate(|m| (m == ".rodata").then_some(7).or(Some(9)))
        .unwrap();
    let greeting = sock
        .map_references
        .iter()
        .find(|r| r.map == ".rodata" && r.kind == MapReferenceKind::Value { offset: 4 })
        .unwrap();
    let (a, b) = (
        sock.instructions[greeting.insn],
        sock.instructions[greeting.insn + 1],
    );
    assert_eq!(
        (u32::from(a.src), a.imm, b.imm),
        (uapi::BPF_PSEUDO_MAP_VALUE, 7, 4)
    );
    // A missing fd is an error that names the map.
    let err = sock.relocate(|m| (m != ".bss").then_some(3)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "program globals_socket: no fd for map .bss"
    );
}

#[test]
fn map_references_of_legacy_and_btf_objects_name_their_maps() {
    for stem in ["xdp_legacy", "xdp_btf"] {
        let obj = object(stem);
        let linked = obj.link("xdp1").unwrap();
        assert!(!linked.map_references.is_empty());
        for r in &linked.map_references {
            assert_eq!(r.kind, MapReferenceKind::Fd);
            assert!(obj.map(&r.map).is_some());
        }
        let refs = obj
            .program("xdp1")
            .unwrap()
            .function
            .relocations
            .iter()
            .all(|r| matches!(r.target, Reference::Map { .. }));
        assert!(refs);
    }
}

#[test]
fn programs_end_at_their_symbol_size() {
    // Five programs share the xdp section: each ends where its symbol says, and together they
    // cover the section.
    let obj = object("xdp_legacy");
    let mut next = 0;
    for p in &obj.programs {
        assert_eq!(p.function.id.insn(), next, "{}", p.name);
        next += p.instructions().len();
        assert_eq!(
            p.instructions().last().unwrap().code,
            0x95,
            "{} does not end in exit",
            p.name
        );
    }
}

#[test]
fn byte_order_independent_code_decodes_to_the_same_instructions() {
    for stem in ["globals_btf", "xdp_init_btf", "xdp_legacy"] {
        let (el, eb) = (object(stem), super::object_eb(stem));
        assert_eq!(eb.endianness, crate::Endianness::Big);
        for p in &el.programs {
            let a = p.link(&el).unwrap();
            let b = eb.link(&p.name).unwrap();
            assert_eq!(a.instructions, b.instructions, "{stem}/{}", p.name);
            assert_eq!(a.func_info, b.func_info, "{stem}/{}", p.name);
            assert_ne!(a.bytes(), b.bytes());
        }
    }
}

#[test]
fn objects_open_from_a_path_and_a_reader() {
    let path = super::bpf_dir().join("sock_btf.o");
    let a = ObjectSpec::from_path(&path).unwrap();
    let b = ObjectSpec::from_reader(std::fs::File::open(&path).unwrap()).unwrap();
    assert_eq!(a.maps, b.maps);
    assert_eq!(a.programs, b.programs);
    let err = ObjectSpec::from_path("/nonexistent/x.o").unwrap_err();
    assert_eq!(err.to_string(), "cannot read /nonexistent/x.o");
    assert!(std::error::Error::source(&err).is_some());
}

#[test]
fn functions_list_programs_and_subprograms_in_address_order_and_find_each_by_id() {
    for stem in all_stems() {
        let obj = object(&stem);
        let all: Vec<_> = obj.functions().collect();
        let ids: Vec<_> = all.iter().map(|f| f.id).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(
            ids, sorted,
            "{stem}: functions() not in section, address order"
        );
        for f in &all {
            assert_eq!(obj.function(f.id), Some(*f), "{stem}/{}", f.name);
        }
        // Programs and subprograms split the functions between them.
        let programs: Vec<_> = obj.programs.iter().map(|p| &p.function).collect();
        let subs: Vec<_> = obj.subprograms().collect();
        assert_eq!(programs.len() + subs.len(), all.len(), "{stem}");
        for f in programs.iter().chain(&subs) {
            assert!(all.contains(f), "{stem}/{}", f.name);
        }
        for s in &subs {
            assert!(!s.global || s.section == ".text", "{stem}/{}", s.name);
        }
    }
}

#[test]
fn a_programs_function_is_read_from_the_program_list() {
    let mut obj = object("globals_btf");
    assert_eq!(obj.programs.len(), 2);
    let (first, second) = (obj.programs[0].clone(), obj.programs[1].clone());
    obj.programs[0].function.instructions.truncate(1);
    assert_eq!(
        obj.function(first.function.id).unwrap().instructions.len(),
        1
    );
    obj.programs.remove(0);
    assert_eq!(obj.function(first.function.id), None);
    assert!(obj.functions().all(|f| f.id != first.function.id));
    // The other program is still found, though it moved in the list.
    assert_eq!(obj.function(second.function.id), Some(&second.function));
    // It calls subprograms, which are all still there.
    assert!(obj.link(&second.name).unwrap().functions.len() > 1);
}

/// Each function's `.BTF.ext` records, read as the records stream in, are those `BtfExt::parse`
/// groups under its section and inside its bounds, made relative to it, in file order.
#[test]
fn functions_hold_exactly_their_btf_ext_records() {
    fn expect<T: Clone>(
        groups: &[(String, Vec<T>)],
        f: &crate::FunctionSpec,
        insn: impl Fn(&T) -> usize,
        relative: impl Fn(&T, usize) -> T,
    ) -> Vec<T> {
        let bounds = f.id.insn..f.id.insn + f.instructions.len();
        groups
            .iter()
            .filter(|(s, _)| *s == f.section)
            .flat_map(|(_, recs)| recs)
            .filter(|r| bounds.contains(&insn(r)))
            .map(|r| relative(r, insn(r) - f.id.insn))
            .collect()
    }
    let (mut functions, mut lines, mut cores) = (0, 0, 0);
    for stem in super::all_stems() {
        for big_endian in [false, true] {
            let bytes = super::object_bytes(&stem, big_endian);
            let obj = ObjectSpec::parse(&bytes).unwrap_or_else(|e| panic!("{stem}: {e}"));
            let elf = crate::elf::RawElf::parse(&bytes).expect("parsed once already");
            let (Some(btf), Some(raw)) =
                (&obj.btf, elf.sections.iter().find(|s| s.name == ".BTF.ext"))
            else {
                continue;
            };
            let ext = crate::btf::BtfExt::parse(raw.data, btf).expect("parsed once already");
            for f in obj.functions() {
                functions += 1;
                let func = expect(
                    &ext.func_info,
                    f,
                    |r| r.insn,
                    |r, insn| crate::FuncInfo { insn, ..*r },
                );
                let line = expect(
                    &ext.line_info,
                    f,
                    |r| r.insn,
                    |r, insn| crate::LineInfo { insn, ..*r },
                );
                let core = expect(
                    &ext.core_relocations,
                    f,
                    |r| r.insn,
                    |r, insn| crate::CoreRelocation { insn, ..r.clone() },
                );
                assert_eq!(f.func_info, func, "{stem} {}: func_info", f.name);
                assert_eq!(f.line_info, line, "{stem} {}: line_info", f.name);
                assert_eq!(f.core_relocations, core, "{stem} {}: CO-RE", f.name);
                assert_eq!(f.func_info.len(), 1, "{stem} {}: one func_info", f.name);
                lines += f.line_info.len();
                cores += f.core_relocations.len();
            }
        }
    }
    assert!(
        functions > 50 && lines > 500 && cores > 10,
        "{functions} {lines} {cores}"
    );
}
