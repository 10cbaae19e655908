//! Hand-assembled programs calling helpers: environment, maps, output, packets, tail calls,
//! callbacks.

use bpf_elf::ProgramType;
use bpf_maps::{Map, MapType};

use super::tests::{call, exit, ins, ld64, ld_map, mov, movr};
use super::*;

#[test]
fn environment_helpers_follow_the_test() {
    let mut vm = Vm::new();
    {
        let env = vm.env_mut();
        env.ktime_ns = 500;
        env.clock_step_ns = 10;
        env.cpu = 3;
        env.pid = 7;
        env.tgid = 8;
        env.uid = 1000;
        env.gid = 100;
        env.comm = "curl".to_string();
    }
    // r6 = ktime; r7 = ktime; r0 = (r7 - r6) + cpu * 1000
    let prog = [
        call(5),
        movr(6, 0),
        call(5),
        ins(0x1f, 0, 6, 0, 0),
        movr(6, 0),
        call(8),
        ins(0x27, 0, 0, 0, 1000),
        ins(0x0f, 0, 6, 0, 0),
        exit(),
    ];
    let id = vm
        .load_instructions("env", ProgramType::Tracepoint, &prog)
        .expect("load");
    assert_eq!(vm.run_tracepoint(id, &[]).expect("run").return_value, 3010);
    let id = vm
        .load_instructions("pid", ProgramType::Tracepoint, &[call(14), exit()])
        .expect("load");
    assert_eq!(
        vm.run_tracepoint(id, &[]).expect("run").return_value,
        (8 << 32) | 7
    );
    let id = vm
        .load_instructions("uid", ProgramType::Tracepoint, &[call(15), exit()])
        .expect("load");
    assert_eq!(
        vm.run_tracepoint(id, &[]).expect("run").return_value,
        (100 << 32) | 1000
    );
    // get_current_comm into fp-16, then r0 = the first 8 bytes.
    let comm = [
        movr(1, 10),
        ins(0x07, 1, 0, 0, -16),
        mov(2, 16),
        call(16),
        ins(0x79, 0, 10, -16, 0),
        exit(),
    ];
    let id = vm
        .load_instructions("comm", ProgramType::Tracepoint, &comm)
        .expect("load");
    assert_eq!(
        vm.run_tracepoint(id, &[]).expect("run").return_value,
        u64::from_le_bytes(*b"curl\0\0\0\0")
    );
    // prandom: the same seed gives the same numbers.
    let id = vm
        .load_instructions("rand", ProgramType::Tracepoint, &[call(7), exit()])
        .expect("load");
    vm.env_mut().prandom_state = 42;
    let a = vm.run_tracepoint(id, &[]).expect("run").return_value;
    let b = vm.run_tracepoint(id, &[]).expect("run").return_value;
    vm.env_mut().prandom_state = 42;
    assert_eq!(vm.run_tracepoint(id, &[]).expect("run").return_value, a);
    assert_ne!(a, b);
}

#[test]
fn map_helpers_and_value_pointer_semantics() {
    let hash = MemMap::new("h", MapType::Hash, 4, 8, 4, 0, 2);
    let mut vm = Vm::new();
    let fd = vm.add_map(&hash);
    let [m0, m1] = ld_map(1, fd);
    let [n0, n1] = ld_map(1, fd);
    let [o0, o1] = ld_map(1, fd);
    // key 7 = 40; update; p = lookup(7); *p += 2; q = lookup(7); r0 = (p == q) * 1000 + *q
    let prog = [
        ins(0x62, 10, 0, -4, 7),
        ins(0x7a, 10, 0, -16, 40),
        m0,
        m1,
        movr(2, 10),
        ins(0x07, 2, 0, 0, -4),
        movr(3, 10),
        ins(0x07, 3, 0, 0, -16),
        mov(4, 0),
        call(2),
        n0,
        n1,
        movr(2, 10),
        ins(0x07, 2, 0, 0, -4),
        call(1),
        movr(6, 0),
        ins(0x79, 1, 6, 0, 0),
        ins(0x07, 1, 0, 0, 2),
        ins(0x7b, 6, 1, 0, 0),
        o0,
        o1,
        movr(2, 10),
        ins(0x07, 2, 0, 0, -4),
        call(1),
        mov(7, 0),
        ins(0x5d, 0, 6, 1, 0),
        mov(7, 1000),
        ins(0x79, 0, 0, 0, 0),
        ins(0x0f, 0, 7, 0, 0),
        exit(),
    ];
    let id = vm
        .load_instructions("maps", ProgramType::Tracepoint, &prog)
        .expect("load");
    assert_eq!(vm.run_tracepoint(id, &[]).expect("run").return_value, 1042);
    let mut v = [0u8; 8];
    hash.lookup_elem(&7u32.to_le_bytes(), &mut v, 0)
        .expect("in the map after the run");
    assert_eq!(u64::from_le_bytes(v), 42);
    // A missing key gives NULL; delete answers -ENOENT.
    let [d0, d1] = ld_map(1, fd);
    let del = [
        ins(0x62, 10, 0, -4, 9),
        d0,
        d1,
        movr(2, 10),
        ins(0x07, 2, 0, 0, -4),
        call(3),
        exit(),
    ];
    let id = vm
        .load_instructions("del", ProgramType::Tracepoint, &del)
        .expect("load");
    assert_eq!(
        vm.run_tracepoint(id, &[]).expect("run").return_value,
        (-2i64) as u64
    );
}

#[test]
fn queue_push_and_pop() {
    let q = MemMap::new("q", MapType::Queue, 0, 4, 4, 0, 1);
    let mut vm = Vm::new();
    let fd = vm.add_map(&q);
    let [a0, a1] = ld_map(1, fd);
    let [b0, b1] = ld_map(1, fd);
    let prog = [
        ins(0x62, 10, 0, -4, 77),
        a0,
        a1,
        movr(2, 10),
        ins(0x07, 2, 0, 0, -4),
        mov(3, 0),
        call(87),
        ins(0x62, 10, 0, -8, 0),
        b0,
        b1,
        movr(2, 10),
        ins(0x07, 2, 0, 0, -8),
        call(88),
        ins(0x61, 0, 10, -8, 0),
        exit(),
    ];
    let id = vm
        .load_instructions("q", ProgramType::Tracepoint, &prog)
        .expect("load");
    assert_eq!(vm.run_tracepoint(id, &[]).expect("run").return_value, 77);
    assert!(q.pop_elem(&mut [0u8; 4]).is_err(), "popped by the program");
}

#[test]
fn printk_perf_and_ringbuf_outputs_are_captured() {
    let perf = MemMap::new("events", MapType::PerfEventArray, 4, 4, 4, 0, 1);
    let ring = MemMap::new("ring", MapType::RingBuf, 0, 0, 4096, 0, 1);
    let mut vm = Vm::new();
    let pfd = vm.add_map(&perf);
    let rfd = vm.add_map(&ring);
    vm.env_mut().cpu = 1;
    let [p0, p1] = ld_map(2, pfd);
    let [r0_, r1_] = ld_map(1, rfd);
    let [s0, s1] = ld_map(1, rfd);
    let fmt = u64::from_le_bytes(*b"n=%d %s\0");
    let [f0, f1] = ld64(1, fmt);
    let prog = [
        // "hi\0" at fp-24, the format at fp-16
        ins(0x62, 10, 0, -24, 0x6968),
        f0,
        f1,
        ins(0x7b, 10, 1, -16, 0),
        movr(1, 10),
        ins(0x07, 1, 0, 0, -16),
        mov(2, 8),
        mov(3, -5),
        movr(4, 10),
        ins(0x07, 4, 0, 0, -24),
        call(6),
        // perf_event_output(ctx, events, BPF_F_CURRENT_CPU, fp-24, 2)
        movr(1, 6),
        p0,
        p1,
        ld64(3, 0xffff_ffff)[0],
        ld64(3, 0xffff_ffff)[1],
        movr(4, 10),
        ins(0x07, 4, 0, 0, -24),
        mov(5, 2),
        call(25),
        // ringbuf_output(ring, fp-24, 2, 0)
        r0_,
        r1_,
        movr(2, 10),
        ins(0x07, 2, 0, 0, -24),
        mov(3, 2),
        mov(4, 0),
        call(130),
        // p = ringbuf_reserve(ring, 4, 0); *p = 0xabcd; submit(p)
        s0,
        s1,
        mov(2, 4),
        mov(3, 0),
        call(131),
        ins(0x15, 0, 0, 4, 0),
        ins(0x62, 0, 0, 0, 0xabcd),
        movr(1, 0),
        mov(2, 0),
        call(132),
        mov(0, 0),
        exit(),
    ];
    let mut prog = prog.to_vec();
    prog.insert(0, movr(6, 1));
    let id = vm
        .load_instructions("out", ProgramType::Tracepoint, &prog)
        .expect("load");
    let out = vm.run_tracepoint(id, &[]).expect("run");
    assert_eq!(out.trace, vec!["n=-5 hi".to_string()]);
    assert_eq!(
        out.perf,
        vec![PerfRecord {
            map: "events".into(),
            cpu: 1,
            data: b"hi".to_vec()
        }]
    );
    assert_eq!(
        out.ringbuf,
        vec![
            RingbufRecord {
                map: "ring".into(),
                data: b"hi".to_vec()
            },
            RingbufRecord {
                map: "ring".into(),
                data: 0xabcdu32.to_le_bytes().to_vec()
            },
        ]
    );
}

#[test]
fn xdp_adjust_head_tail_and_meta_move_the_packet() {
    let mut vm = Vm::new();
    // adjust_head(+14); adjust_tail(-2); adjust_meta(-4); *(u32 *)meta = 0x11223344
    let prog = [
        movr(6, 1),
        mov(2, 14),
        call(44),
        movr(1, 6),
        mov(2, -2),
        call(65),
        movr(1, 6),
        mov(2, -4),
        call(54),
        ins(0x61, 2, 6, 8, 0),
        ins(0x62, 2, 0, 0, 0x11223344),
        mov(0, 2),
        exit(),
    ];
    let id = vm
        .load_instructions("adj", ProgramType::Xdp, &prog)
        .expect("load");
    let pkt: Vec<u8> = (0..40).collect();
    let out = vm.run_xdp(id, &pkt).expect("run");
    assert_eq!(out.packet, pkt[14..38].to_vec());
    assert_eq!(out.metadata, 0x11223344u32.to_le_bytes().to_vec());
    // Shrinking below an Ethernet header fails with -EINVAL.
    let id = vm
        .load_instructions("bad", ProgramType::Xdp, &[mov(2, -30), call(65), exit()])
        .expect("load");
    assert_eq!(
        vm.run_xdp(id, &pkt).expect("run").return_value,
        (-22i64) as u64
    );
}

#[test]
fn checksum_helpers_match_a_recomputed_checksum() {
    // An IPv4 header whose checksum is right; the program rewrites the TTL byte pair with
    // l3_csum_replace(skb, 24, old, new, 2) and skb_store_bytes.
    let mut frame = super::tests_objects::ipv4_frame(6, [10, 0, 0, 1], 0);
    let csum = |h: &[u8]| {
        let sum: u32 = h
            .chunks(2)
            .map(|w| u16::from_be_bytes([w[0], w[1]]) as u32)
            .sum();
        let s = (sum & 0xffff) + (sum >> 16);
        !(((s & 0xffff) + (s >> 16)) as u16)
    };
    let c = csum(&frame[14..34]);
    frame[24..26].copy_from_slice(&c.to_be_bytes());
    let old = u16::from_ne_bytes([frame[22], frame[23]]);
    let new = u16::from_ne_bytes([frame[22] - 1, frame[23]]);
    let prog = [
        movr(6, 1),
        ins(0x6a, 10, 0, -2, new as i32),
        movr(1, 6),
        mov(2, 22),
        movr(3, 10),
        ins(0x07, 3, 0, 0, -2),
        mov(4, 2),
        mov(5, 0),
        call(9),
        movr(1, 6),
        mov(2, 24),
        mov(3, old as i32),
        mov(4, new as i32),
        mov(5, 2),
        call(10),
        exit(),
    ];
    let mut vm = Vm::new();
    let id = vm
        .load_instructions("csum", ProgramType::SchedCls, &prog)
        .expect("load");
    let out = vm.run_skb(id, &frame).expect("run");
    assert_eq!(out.return_value, 0);
    assert_eq!(out.packet[22], 63);
    let mut check = out.packet[14..34].to_vec();
    check[10..12].fill(0);
    assert_eq!(
        u16::from_be_bytes([out.packet[24], out.packet[25]]),
        csum(&check)
    );
    // csum_diff of nothing to 4 bytes is their sum.
    assert_eq!(
        packet::csum_diff_for_tests(&[], &[1, 0, 2, 0], 0),
        0x0002_0001
    );
    assert_eq!(packet::csum_fold_for_tests(0xffff), 0);
}

#[test]
fn tail_calls_stop_after_the_kernel_limit() {
    let progs = MemMap::new("jmp", MapType::ProgArray, 4, 4, 1, 0, 1);
    let counter = MemMap::new("n", MapType::Array, 4, 8, 1, 0, 1);
    let mut vm = Vm::new();
    let pfd = vm.add_map(&progs);
    let cfd = vm.add_map(&counter);
    let [c0, c1] = ld_map(1, cfd);
    let [p0, p1] = ld_map(2, pfd);
    // n[0] += 1; tail_call(ctx, jmp, 0); return 7
    let prog = [
        movr(6, 1),
        ins(0x62, 10, 0, -4, 0),
        c0,
        c1,
        movr(2, 10),
        ins(0x07, 2, 0, 0, -4),
        call(1),
        ins(0x15, 0, 0, 2, 0),
        mov(1, 1),
        ins(0xdb, 0, 1, 0, 0),
        movr(1, 6),
        p0,
        p1,
        mov(3, 0),
        call(12),
        mov(0, 7),
        exit(),
    ];
    let id = vm
        .load_instructions("self", ProgramType::Xdp, &prog)
        .expect("load");
    progs
        .update_elem(&0u32.to_le_bytes(), &id.fd().to_le_bytes(), 0)
        .expect("slot");
    let out = vm.run_xdp(id, &[0u8; 20]).expect("run");
    assert_eq!((out.return_value, out.tail_calls), (7, MAX_TAIL_CALLS));
    let mut v = [0u8; 8];
    counter
        .lookup_elem(&0u32.to_le_bytes(), &mut v, 0)
        .expect("lookup");
    assert_eq!(u64::from_le_bytes(v), 34, "the first run and 33 tail calls");
}

#[test]
fn bpf_loop_and_for_each_map_elem_call_back() {
    let arr = MemMap::new("a", MapType::Array, 4, 8, 3, 0, 1);
    for (k, v) in [(0u32, 5u64), (1, 6), (2, 7)] {
        arr.update_elem(&k.to_le_bytes(), &v.to_le_bytes(), 0)
            .expect("fill");
    }
    let mut vm = Vm::new();
    let fd = vm.add_map(&arr);
    let [m0, m1] = ld_map(1, fd);
    // for_each_map_elem(a, cb, fp-8 (sum), 0); r0 = sum * 100 + elements
    // cb(map, key, value, ctx): *ctx += *value; *value *= 2; return 0
    let main = [
        ins(0x7a, 10, 0, -8, 0),
        m0,
        m1,
        ins(0x18, 2, 4, 0, 9),
        ins(0, 0, 0, 0, 0),
        movr(3, 10),
        ins(0x07, 3, 0, 0, -8),
        mov(4, 0),
        call(164),
        ins(0x79, 1, 10, -8, 0),
        ins(0x27, 1, 0, 0, 100),
        ins(0x0f, 0, 1, 0, 0),
        exit(),
        // cb at 13
        ins(0x79, 5, 3, 0, 0),
        ins(0x79, 1, 4, 0, 0),
        ins(0x0f, 1, 5, 0, 0),
        ins(0x7b, 4, 1, 0, 0),
        ins(0x27, 5, 0, 0, 2),
        ins(0x7b, 3, 5, 0, 0),
        mov(0, 0),
        exit(),
    ];
    let id = vm
        .load_instructions("each", ProgramType::Tracepoint, &main)
        .expect("load");
    assert_eq!(
        vm.run_tracepoint(id, &[]).expect("run").return_value,
        18 * 100 + 3
    );
    let mut v = [0u8; 8];
    arr.lookup_elem(&2u32.to_le_bytes(), &mut v, 0)
        .expect("lookup");
    assert_eq!(
        u64::from_le_bytes(v),
        14,
        "the callback's writes landed in the map"
    );
    // bpf_loop(5, cb, 0, 0) where cb stops at index 2: returns 3.
    let lp = [
        mov(1, 5),
        ins(0x18, 2, 4, 0, 5),
        ins(0, 0, 0, 0, 0),
        mov(3, 0),
        mov(4, 0),
        call(181),
        exit(),
        mov(0, 0),
        ins(0x55, 1, 0, 1, 2),
        mov(0, 1),
        exit(),
    ];
    let id = vm
        .load_instructions("loop", ProgramType::Tracepoint, &lp)
        .expect("load");
    assert_eq!(vm.run_tracepoint(id, &[]).expect("run").return_value, 3);
}

#[test]
fn ld_abs_reads_big_endian_and_ends_the_program_past_the_data() {
    let mut vm = Vm::new();
    let prog = [ins(0x28, 0, 0, 0, 2), exit()];
    let id = vm
        .load_instructions("abs", ProgramType::SocketFilter, &prog)
        .expect("load");
    assert_eq!(
        vm.run_skb(id, &[0x45, 0, 0x01, 0x02])
            .expect("run")
            .return_value,
        0x0102
    );
    let prog = [mov(0, 9), ins(0x20, 0, 0, 0, 2), mov(0, 9), exit()];
    let id = vm
        .load_instructions("abs2", ProgramType::SocketFilter, &prog)
        .expect("load");
    assert_eq!(
        vm.run_skb(id, &[0x45, 0, 0x01]).expect("run").return_value,
        0
    );
}

#[test]
fn skb_context_fields_and_writes() {
    let mut vm = Vm::new();
    // mark = len + protocol; r0 = mark
    let prog = [
        ins(0x61, 2, 1, 0, 0),
        ins(0x61, 3, 1, 16, 0),
        ins(0x0f, 2, 3, 0, 0),
        ins(0x63, 1, 2, 8, 0),
        ins(0x61, 0, 1, 8, 0),
        exit(),
    ];
    let id = vm
        .load_instructions("skb", ProgramType::SchedCls, &prog)
        .expect("load");
    let frame = super::tests_objects::ipv4_frame(6, [1, 1, 1, 1], 0);
    let out = vm.run_skb(id, &frame).expect("run");
    assert_eq!(out.return_value, 34 + 0x0008);
    assert_eq!(out.context[8..12], ((34 + 8) as u32).to_le_bytes());
    let bad = [mov(2, 1), ins(0x63, 1, 2, 0, 0), exit()];
    let id = vm
        .load_instructions("len", ProgramType::SchedCls, &bad)
        .expect("load");
    let err = vm.run_skb(id, &frame).expect_err("len is read-only");
    assert!(err.to_string().contains("read-only"), "{err}");
}
