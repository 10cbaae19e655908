//! The interpreter on the objects of `bpf-progs/` (built by `cargo xtask build-bpf`).

use std::path::PathBuf;

use bpf_elf::ObjectSpec;
use bpf_maps::Map;

use super::*;

const CPUS: usize = 4;

fn object(stem: &str) -> ObjectSpec {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../../target/bpf/{stem}.o"));
    ObjectSpec::from_path(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; run `cargo xtask build-bpf` first", path.display()))
}

fn maps_of(obj: &ObjectSpec) -> Vec<MemMap> {
    obj.maps
        .iter()
        .map(|m| MemMap::from_spec(m, CPUS))
        .collect()
}

fn find<'a>(maps: &'a [MemMap], name: &str) -> &'a MemMap {
    maps.iter().find(|m| m.name() == name).expect("map")
}

fn load<'m>(vm: &mut Vm<'m>, obj: &ObjectSpec, maps: &'m [MemMap], prog: &str) -> ProgramId {
    vm.load(obj, prog, |name| {
        maps.iter()
            .find(|m| m.name() == name)
            .map(|m| m as &dyn Map)
    })
    .unwrap_or_else(|e| panic!("load {prog}: {e}"))
}

/// An Ethernet + IPv4 frame with `proto`, source `src` and `payload` zero bytes after the header.
pub(crate) fn ipv4_frame(proto: u8, src: [u8; 4], payload: usize) -> Vec<u8> {
    let mut f = vec![0u8; 14 + 20 + payload];
    f[0..6].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
    f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    f[14] = 0x45;
    f[16..18].copy_from_slice(&((20 + payload) as u16).to_be_bytes());
    f[22] = 64;
    f[23] = proto;
    f[26..30].copy_from_slice(&src);
    f[30..34].copy_from_slice(&[198, 18, 0, 1]);
    f
}

fn per_cpu_u64(map: &MemMap, key: u32, cpu: usize) -> u64 {
    let mut v = vec![0u8; map.value_len()];
    map.lookup_elem(&key.to_le_bytes(), &mut v, 0)
        .expect("lookup");
    u64::from_le_bytes(v[cpu * 8..cpu * 8 + 8].try_into().expect("8 bytes"))
}

#[test]
fn packet_counter_counts_ip_protocols_on_the_chosen_cpu() {
    let obj = object("xdp_packet_counter");
    let maps = maps_of(&obj);
    let mut vm = Vm::new();
    let prog = load(&mut vm, &obj, &maps, "packet_count");
    let udp = ipv4_frame(17, [10, 0, 0, 1], 8);
    for _ in 0..3 {
        let out = vm.run_xdp(prog, &udp).expect("run");
        assert_eq!(out.return_value, XDP_PASS as u64);
        assert_eq!(out.packet, udp);
    }
    vm.env_mut().cpu = 2;
    vm.run_xdp(prog, &ipv4_frame(6, [10, 0, 0, 1], 20))
        .expect("run");
    let protocols = find(&maps, "protocols");
    assert_eq!(per_cpu_u64(protocols, 17, 0), 3);
    assert_eq!(per_cpu_u64(protocols, 6, 2), 1);
    assert_eq!(per_cpu_u64(protocols, 6, 0), 0);
    // Too short for Ethernet: aborted; not IPv4: passed, nothing counted.
    assert_eq!(
        vm.run_xdp(prog, &[0u8; 10]).expect("run").return_value,
        XDP_ABORTED as u64
    );
    let mut arp = udp.clone();
    arp[12..14].copy_from_slice(&[0x08, 0x06]);
    assert_eq!(
        vm.run_xdp(prog, &arp).expect("run").return_value,
        XDP_PASS as u64
    );
    assert_eq!(per_cpu_u64(protocols, 17, 0), 3);
}

#[test]
fn firewall_drops_blacklisted_sources_and_counts_per_rule() {
    let obj = object("xdp_basic_firewall");
    let maps = maps_of(&obj);
    let blacklist = find(&maps, "blacklist");
    // 10.1.0.0/16 is rule 3.
    let mut key = 16u32.to_le_bytes().to_vec();
    key.extend_from_slice(&[10, 1, 0, 0]);
    blacklist
        .update_elem(&key, &3u32.to_le_bytes(), 0)
        .expect("insert rule");
    let mut vm = Vm::new();
    let prog = load(&mut vm, &obj, &maps, "firewall");
    let hit = ipv4_frame(6, [10, 1, 2, 3], 0);
    let miss = ipv4_frame(6, [10, 2, 2, 3], 0);
    assert_eq!(
        vm.run_xdp(prog, &hit).expect("run").return_value,
        XDP_DROP as u64
    );
    assert_eq!(
        vm.run_xdp(prog, &hit).expect("run").return_value,
        XDP_DROP as u64
    );
    assert_eq!(
        vm.run_xdp(prog, &miss).expect("run").return_value,
        XDP_PASS as u64
    );
    assert_eq!(per_cpu_u64(find(&maps, "matches"), 3, 0), 2);
}

#[test]
fn socket_filter_counts_and_returns_the_length() {
    let obj = object("sock_btf");
    let maps = maps_of(&obj);
    let mut vm = Vm::new();
    let prog = load(&mut vm, &obj, &maps, "count_packets");
    let l3 = &ipv4_frame(17, [1, 2, 3, 4], 30)[14..];
    let out = vm.run_skb(prog, l3).expect("run");
    assert_eq!(out.return_value, l3.len() as u64);
    assert_eq!(per_cpu_u64(find(&maps, "packets"), 0, 0), 1);
}

#[test]
fn tc_programs_count_packets_and_bytes_per_direction() {
    let obj = object("tc_btf");
    let maps = maps_of(&obj);
    let mut vm = Vm::new();
    let ingress = load(&mut vm, &obj, &maps, "tc_ingress");
    let egress = load(&mut vm, &obj, &maps, "act_egress");
    let frame = ipv4_frame(6, [1, 2, 3, 4], 100);
    assert_eq!(
        vm.run_skb(ingress, &frame).expect("run").return_value,
        0,
        "TC_ACT_OK"
    );
    assert_eq!(
        vm.run_skb(egress, &frame).expect("run").return_value,
        3,
        "TC_ACT_PIPE"
    );
    let metrics = find(&maps, "metrics");
    assert_eq!(per_cpu_u64(metrics, 0, 0), 1);
    assert_eq!(per_cpu_u64(metrics, 2, 0), frame.len() as u64);
    assert_eq!(per_cpu_u64(metrics, 1, 0), 1);
    assert_eq!(per_cpu_u64(metrics, 3, 0), frame.len() as u64);
}

#[test]
fn globals_subprogram_printk_and_bpf_loop() {
    let obj = object("globals_btf");
    let maps = maps_of(&obj);
    let mut vm = Vm::new();
    let xdp = load(&mut vm, &obj, &maps, "globals_xdp");
    let sock = load(&mut vm, &obj, &maps, "globals_socket");
    let frame = ipv4_frame(17, [1, 2, 3, 4], 6);
    let first = vm.run_xdp(xdp, &frame).expect("run");
    assert_eq!(first.return_value, XDP_PASS as u64);
    assert_eq!(
        first.trace,
        vec![
            "globals_xdp: first packet, data_counter=7".to_string(),
            "globals_xdp: a .rodata.str1.1 literal\n".to_string()
        ]
    );
    assert!(vm.run_xdp(xdp, &frame).expect("run").trace.is_empty());
    let out = vm.run_skb(sock, &frame[14..]).expect("run");
    assert_eq!(out.return_value, 26);
    assert_eq!(out.trace, vec!["hello from .rodata\n".to_string()]);
    let global = |map: &str, off: usize, len: usize| {
        let mut v = vec![0u8; find(&maps, map).value_len()];
        find(&maps, map)
            .lookup_elem(&[0; 4], &mut v, 0)
            .expect("lookup");
        let mut b = [0u8; 8];
        b[..len].copy_from_slice(&v[off..off + len]);
        u64::from_le_bytes(b)
    };
    assert_eq!(global(".bss", 0, 8), 2, "bss_counter");
    assert_eq!(global(".bss", 8, 4), 45, "loop_sum = 0 + 1 + ... + 9");
    assert_eq!(global(".data", 0, 8), 8, "data_counter");
    assert_eq!(global(".data.counters", 0, 8), 3, "counter_a");
    assert_eq!(global(".data.counters", 8, 8), 2 + 26, "counter_b");
}

#[test]
fn tail_calls_follow_the_inner_map_through_the_prog_array() {
    let obj = object("xdp_init_btf");
    let maps = maps_of(&obj);
    let mut vm = Vm::new();
    let entry = load(&mut vm, &obj, &maps, "xdp_entry");
    let pass = load(&mut vm, &obj, &maps, "xdp_pass_prog");
    let drop = load(&mut vm, &obj, &maps, "xdp_drop_prog");
    let jmp = find(&maps, "jmp_table");
    jmp.update_elem(&0u32.to_le_bytes(), &pass.fd().to_le_bytes(), 0)
        .expect("slot 0");
    jmp.update_elem(&2u32.to_le_bytes(), &drop.fd().to_le_bytes(), 0)
        .expect("slot 2");
    let frame = ipv4_frame(17, [1, 2, 3, 4], 0);
    // outer[1] is empty: slot 0, xdp_pass_prog.
    let out = vm.run_xdp(entry, &frame).expect("run");
    assert_eq!((out.return_value, out.tail_calls), (XDP_PASS as u64, 1));
    // outer[1] = inner_a holding 2: xdp_drop_prog.
    let inner_a = find(&maps, "inner_a");
    inner_a
        .update_elem(&0u32.to_le_bytes(), &2u32.to_le_bytes(), 0)
        .expect("inner");
    let fd = vm.add_map(inner_a);
    find(&maps, "outer")
        .update_elem(&1u32.to_le_bytes(), &fd.to_le_bytes(), 0)
        .expect("outer");
    assert_eq!(
        vm.run_xdp(entry, &frame).expect("run").return_value,
        XDP_DROP as u64
    );
    // An empty slot: the tail call falls through to XDP_ABORTED.
    inner_a
        .update_elem(&0u32.to_le_bytes(), &1u32.to_le_bytes(), 0)
        .expect("inner");
    let out = vm.run_xdp(entry, &frame).expect("run");
    assert_eq!((out.return_value, out.tail_calls), (XDP_ABORTED as u64, 0));
}

#[test]
fn wrong_input_and_unbound_maps_are_errors() {
    let obj = object("xdp_packet_counter");
    let maps = maps_of(&obj);
    let mut vm = Vm::new();
    let err = vm
        .load(&obj, "packet_count", |_| None)
        .expect_err("unbound");
    assert!(err.to_string().contains("protocols"), "{err}");
    let prog = load(&mut vm, &obj, &maps, "packet_count");
    let err = vm
        .run_tracepoint(prog, &[0; 8])
        .expect_err("xdp on raw bytes");
    assert!(matches!(err, InterpError::WrongInput { .. }), "{err}");
    let err = vm
        .run_kprobe(prog, &PtRegs::default())
        .expect_err("xdp on pt_regs");
    assert!(matches!(err, InterpError::WrongInput { .. }), "{err}");
}

#[test]
fn the_interpreter_keeps_its_speed_promise() {
    // A smoke check of the benchmark path (the figure itself comes from the release build).
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/bpf/xdp_basic_firewall.o");
    let frame = ipv4_frame(6, [10, 1, 2, 3], 0);
    let r = bench_interpreter(
        &path,
        "firewall",
        &frame,
        std::time::Duration::from_millis(50),
    )
    .expect("bench");
    assert_eq!(r.return_value, XDP_PASS as u64);
    assert!(r.instructions >= r.runs * 10, "{r:?}");
}

#[test]
fn mock_maps_bind_directly_and_maps_of_maps_resolve_mock_ids() {
    use crate::MockMap;
    let obj = object("xdp_init_btf");
    let mock = |name: &str| MockMap::with_cpus(obj.map(name).expect("spec"), CPUS).expect("mock");
    let (outer, inner_a, outer_hash, inner_b) = (
        mock("outer"),
        mock("inner_a"),
        mock("outer_hash"),
        mock("inner_b"),
    );
    let jmp = MemMap::from_spec(obj.map("jmp_table").expect("spec"), CPUS);
    let bind = |name: &str| -> Option<&dyn Map> {
        match name {
            "outer" => Some(&outer),
            "inner_a" => Some(&inner_a),
            "outer_hash" => Some(&outer_hash),
            "inner_b" => Some(&inner_b),
            "jmp_table" => Some(&jmp),
            _ => None,
        }
    };
    let mut vm = Vm::new();
    let entry = vm.load(&obj, "xdp_entry", bind).expect("load");
    let drop = vm.load(&obj, "xdp_drop_prog", bind).expect("load");
    jmp.update_elem(&2u32.to_le_bytes(), &drop.fd().to_le_bytes(), 0)
        .expect("slot");
    // The mock array of maps takes the inner map's mock fd and keeps its id.
    outer
        .update_elem(&1u32.to_le_bytes(), &inner_a.mock_fd().to_ne_bytes(), 0)
        .expect("outer[1]");
    inner_a
        .update_elem(&0u32.to_le_bytes(), &2u32.to_le_bytes(), 0)
        .expect("inner");
    let frame = ipv4_frame(17, [1, 2, 3, 4], 0);
    let err = vm
        .run_xdp(entry, &frame)
        .expect_err("the id is unknown to the interpreter");
    assert!(err.to_string().contains("Vm::set_map_id"), "{err}");
    vm.set_map_id(inner_a.id(), &inner_a);
    let out = vm.run_xdp(entry, &frame).expect("run");
    assert_eq!((out.return_value, out.tail_calls), (XDP_DROP as u64, 1));
}

#[test]
fn firewall_runs_on_mock_maps_as_the_docs_show() {
    use crate::MockMap;
    let obj = object("xdp_basic_firewall");
    let matches = MockMap::with_cpus(obj.map("matches").expect("spec"), 2).expect("mock");
    let blacklist = MockMap::with_cpus(obj.map("blacklist").expect("spec"), 2).expect("mock");
    let mut key = 16u32.to_ne_bytes().to_vec();
    key.extend_from_slice(&[10, 1, 0, 0]);
    blacklist
        .update_elem(&key, &3u32.to_ne_bytes(), 0)
        .expect("rule");
    let mut vm = Vm::new();
    let prog = vm
        .load(&obj, "firewall", |name| match name {
            "matches" => Some(&matches as &dyn Map),
            "blacklist" => Some(&blacklist as &dyn Map),
            _ => None,
        })
        .expect("load");
    let mut frame = vec![0u8; 14 + 20];
    frame[12..14].copy_from_slice(&[0x08, 0x00]);
    frame[14] = 0x45;
    frame[26..30].copy_from_slice(&[10, 1, 2, 3]);
    let out = vm.run_xdp(prog, &frame).expect("run");
    assert_eq!(out.return_value, u64::from(XDP_DROP));
    assert_eq!(out.packet, frame);
    let mut value = vec![0u8; matches.value_len()];
    matches
        .lookup_elem(&3u32.to_ne_bytes(), &mut value, 0)
        .expect("lookup");
    assert_eq!(value[..8], 1u64.to_ne_bytes());
    frame[26] = 192;
    assert_eq!(
        vm.run_xdp(prog, &frame).expect("run").return_value,
        u64::from(XDP_PASS)
    );
}

#[test]
fn a_mock_system_runs_its_tail_calls_and_maps_of_maps() {
    use bpf_attach::System;
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/bpf/xdp_init_btf.o");
    let obj = object("xdp_init_btf");
    let mut system = crate::MockSystem::load_elf(&path).expect("mock system");
    system.load_all().expect("load all");
    let mut vm = Vm::new();
    let entry = vm.load_mock(&system, &obj, "xdp_entry").expect("entry");
    for p in ["xdp_pass_prog", "xdp_drop_prog"] {
        vm.load_mock(&system, &obj, p).expect("target");
    }
    let frame = ipv4_frame(17, [1, 2, 3, 4], 0);
    // outer[1] = inner_a (initial slot), which holds 0: slot 0 is xdp_pass_prog.
    let out = vm.run_xdp(entry, &frame).expect("run");
    assert_eq!((out.return_value, out.tail_calls), (XDP_PASS as u64, 1));
    let inner_a = system.mock_map("inner_a").expect("inner_a");
    inner_a
        .update_elem(&0u32.to_le_bytes(), &2u32.to_le_bytes(), 0)
        .expect("inner");
    assert_eq!(
        vm.run_xdp(entry, &frame).expect("run").return_value,
        XDP_DROP as u64
    );
}

#[test]
fn kprobe_counts_per_tgid_and_reports_comm_through_perf() {
    let obj = object("kprobe_btf");
    let maps = maps_of(&obj);
    let mut vm = Vm::new();
    let prog = load(&mut vm, &obj, &maps, "kprobe_execve");
    {
        let env = vm.env_mut();
        env.tgid = 4242;
        env.comm = "bash".to_string();
        env.cpu = 1;
    }
    let regs = PtRegs {
        di: 0x1000,
        ..PtRegs::default()
    };
    for _ in 0..2 {
        let out = vm.run_kprobe(prog, &regs).expect("run");
        assert_eq!(out.return_value, 0);
        assert_eq!(out.perf.len(), 1);
        assert_eq!(out.perf[0].cpu, 1);
        assert!(out.perf[0].data.starts_with(b"bash\0"), "{:?}", out.perf[0]);
    }
    let mut v = [0u8; 8];
    find(&maps, "calls")
        .lookup_elem(&4242u32.to_le_bytes(), &mut v, 0)
        .expect("counted");
    assert_eq!(
        u64::from_le_bytes(v),
        2,
        "inserted, then incremented atomically"
    );
}

#[test]
fn tracepoint_counts_into_its_array() {
    let obj = object("trace_btf");
    let maps = maps_of(&obj);
    let mut vm = Vm::new();
    let prog = load(&mut vm, &obj, &maps, "tp_getpid");
    for _ in 0..3 {
        assert_eq!(
            vm.run_tracepoint(prog, &[0u8; 16])
                .expect("run")
                .return_value,
            0
        );
    }
    let counts = find(&maps, "counts");
    let total: u64 = (0u32..3)
        .map(|k| {
            let mut v = [0u8; 8];
            counts
                .lookup_elem(&k.to_le_bytes(), &mut v, 0)
                .expect("lookup");
            u64::from_le_bytes(v)
        })
        .sum();
    assert_eq!(total, 3);
}
