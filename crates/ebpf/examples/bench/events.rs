//! Event workloads: perf buffer and BPF ring buffer, 64-byte and 1 KiB records, drain-only and
//! with the producer on the other CPU, for the zero-copy readers and the channel readers, against
//! the hand-written readers of `bpf_sys::floor`; and the perf wakeup comparison.
//!
//! Producers are hand-assembled socket filters run with `BPF_PROG_TEST_RUN` and a repeat count:
//! each run looks up its record (an array value of the record size) and outputs it with
//! `bpf_perf_event_output(BPF_F_CURRENT_CPU)` or `bpf_ringbuf_output`.

use std::cell::Cell;
use std::hint::black_box;
use std::ops::ControlFlow;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ebpf::perf::{PerfEvents, PerfReader, PerfRecord, RingBuf, RingBufEvents, Wakeup};
use ebpf::sys::floor::{pin_current_thread, PerfRingFloor, RingBufFloor};
use ebpf::sys::map::{self, MapCreateAttr, MapFd};
use ebpf::sys::poll::Epoll;
use ebpf::sys::prog::{self, ProgLoadAttr, TestRunAttr};
use ebpf::sys::uapi::{self, bpf_insn};
use ebpf::sys::{cpu, mmap, perf, MapType, ProgramType};
use serde_json::json;

use crate::{Bench, Result};

/// Ring size for the drain-only figures (filled to 90 %).
const DRAIN_RING: usize = 8 << 20;
/// How many times the rounds of the other figures the drain-only figures take.
const DRAIN_ROUND_FACTOR: usize = 3;
/// Ring size with the producer running.
const STREAM_RING: usize = 256 << 10;
/// Runs per `BPF_PROG_TEST_RUN` call of a running producer.
const CHUNK: u32 = 512;
const SIZES: [usize; 2] = [64, 1024];

#[derive(Clone, Copy)]
enum Out<'a> {
    Perf(&'a OwnedFd),
    RingBuf(&'a OwnedFd),
}

struct Producer {
    _template: MapFd,
    prog: OwnedFd,
}

fn ins(code: u32, dst: u8, src: u8, off: i16, imm: i32) -> bpf_insn {
    prog::insn(code as u8, dst, src, off, imm)
}

impl Producer {
    fn new(out: Out<'_>, size: usize) -> Result<Self> {
        let mut attr = MapCreateAttr::new(MapType::Array, 4, size as u32, 1);
        attr.name = "bench_rec";
        let template = MapFd::create(&attr)?;
        let rec: Vec<u8> = (0..size).map(|i| i as u8).collect();
        template.update(&0u32.to_ne_bytes(), &rec, 0)?;
        let mut insns = vec![
            prog::mov64_reg(6, 1),
            ins(uapi::BPF_ST | uapi::BPF_W | uapi::BPF_MEM, 10, 0, -4, 0),
            prog::mov64_reg(2, 10),
            ins(uapi::BPF_ALU64 | uapi::BPF_ADD | uapi::BPF_K, 2, 0, 0, -4),
        ];
        insns.extend(prog::ld_map_fd(1, template.fd()));
        insns.push(prog::call_helper(uapi::BPF_FUNC_map_lookup_elem));
        let mut rest = Vec::new();
        match out {
            Out::Perf(m) => {
                rest.push(prog::mov64_reg(1, 6));
                rest.extend(prog::ld_map_fd(2, m.as_fd()));
                let cur = uapi::BPF_F_CURRENT_CPU as u32 as i32;
                rest.push(ins(
                    uapi::BPF_ALU | uapi::BPF_MOV | uapi::BPF_K,
                    3,
                    0,
                    0,
                    cur,
                ));
                rest.push(prog::mov64_reg(4, 0));
                rest.push(prog::mov64_imm(5, size as i32));
                rest.push(prog::call_helper(uapi::BPF_FUNC_perf_event_output));
            }
            Out::RingBuf(m) => {
                rest.extend(prog::ld_map_fd(1, m.as_fd()));
                rest.push(prog::mov64_reg(2, 0));
                rest.push(prog::mov64_imm(3, size as i32));
                rest.push(prog::mov64_imm(4, 0));
                rest.push(prog::call_helper(uapi::BPF_FUNC_ringbuf_output));
            }
        }
        let jeq = uapi::BPF_JMP | uapi::BPF_JEQ | uapi::BPF_K;
        insns.push(ins(jeq, 0, 0, rest.len() as i16, 0));
        insns.extend(rest);
        insns.push(prog::mov64_imm(0, 0));
        insns.push(prog::exit());
        let mut attr = ProgLoadAttr::new(ProgramType::SocketFilter, &insns, c"GPL");
        attr.name = "bench_prod";
        let prog = prog::load(&attr, None)?;
        Ok(Producer {
            _template: template,
            prog,
        })
    }

    /// Runs the program `n` times on the calling thread's CPU.
    fn run(&self, n: u32) -> Result {
        let packet = [0u8; 64];
        let mut run = TestRunAttr {
            data_in: &packet,
            repeat: n,
            ..Default::default()
        };
        prog::test_run(&self.prog, &mut run)?;
        Ok(())
    }
}

fn perf_array() -> Result<OwnedFd> {
    let n = cpu::num_possible_cpus()? as u32;
    let mut attr = MapCreateAttr::new(MapType::PerfEventArray, 4, 4, n);
    attr.name = "bench_perf";
    Ok(map::create(&attr)?)
}

fn ringbuf(size: usize) -> Result<OwnedFd> {
    let mut attr = MapCreateAttr::new(MapType::RingBuf, 0, 0, size as u32);
    attr.name = "bench_rb";
    Ok(map::create(&attr)?)
}

/// Bytes of one perf record of a `size`-byte sample, and of one ring buffer record.
fn perf_rec(size: usize) -> usize {
    (8 + 4 + size).next_multiple_of(8)
}
fn rb_rec(size: usize) -> usize {
    (8 + size).next_multiple_of(8)
}

/// What every consumer does with a record: reads its first byte and length.
#[inline(always)]
fn consume(acc: &mut u64, d: &[u8]) {
    *acc = acc.wrapping_add(d.len() as u64 + d.first().copied().unwrap_or(0) as u64);
}

/// The group names, which `--only WORD` matches (any part of them: `perf`, `ring`, `drain`,
/// `other CPU`, `64-byte`...).
fn drain_group(kind: &str, size: usize) -> String {
    format!("{kind}, {size}-byte records, drain-only")
}
fn stream_group(kind: &str, size: usize) -> String {
    format!("{kind}, {size}-byte records, producer on the other CPU")
}

pub fn run(b: &mut Bench) -> Result {
    let wanted = |b: &Bench, g: fn(&str, usize) -> String| {
        SIZES
            .iter()
            .any(|&s| b.wants(&g("perf buffer", s)) || b.wants(&g("ring buffer", s)))
    };
    if !wanted(b, drain_group) && !wanted(b, stream_group) && !b.wants("wakeup") {
        return Ok(());
    }
    let online = cpu::online_cpus()?;
    // The producer runs on `p`; with a second CPU, consumers run on `c`.
    let p = *online.first().ok_or("no online CPU")?;
    let c = online.get(1).copied();
    pin_current_thread(p)?;
    // Drain-only figures take more rounds: one drain lasts well under a millisecond, so a single
    // interrupt moves a round's ratio by several per cent (over eight runs of seven rounds the
    // 1 KiB perf figure ranged from 0.63 to 1.03).
    let rounds = b.rounds;
    b.rounds = rounds * DRAIN_ROUND_FACTOR;
    let drains = (|| -> Result {
        for size in SIZES {
            if b.wants(&drain_group("perf buffer", size)) {
                drain_perf(b, p, c, size)?;
            }
            if b.wants(&drain_group("ring buffer", size)) {
                drain_ringbuf(b, size)?;
            }
        }
        Ok(())
    })();
    b.rounds = rounds;
    drains?;
    match c {
        Some(c) => {
            for size in SIZES {
                if b.wants(&stream_group("perf buffer", size)) || b.wants("wakeup") {
                    stream_perf(b, p, c, size)?;
                }
                if b.wants(&stream_group("ring buffer", size)) {
                    stream_ringbuf(b, p, c, size)?;
                }
            }
        }
        None => eprintln!("one online CPU: no figures with the producer on the other CPU"),
    }
    Ok(())
}

/// Which of two maps a side of a drain-only figure uses this round (its calls alternate):
/// `k` counts its calls.
fn turn(k: &Cell<usize>) -> usize {
    let i = k.get() % 2;
    k.set(k.get() + 1);
    i
}

fn drain_perf(b: &mut Bench, p: u32, c: Option<u32>, size: usize) -> Result {
    let g = drain_group("perf buffer", size);
    eprintln!("{g}");
    let arrays = [perf_array()?, perf_array()?];
    let producers = [
        Producer::new(Out::Perf(&arrays[0]), size)?,
        Producer::new(Out::Perf(&arrays[1]), size)?,
    ];
    let (arr_a, prod_a) = (&arrays[0], &producers[0]);
    let n = (DRAIN_RING * 9 / 10 / perf_rec(size)) as u32;
    let n = b.ops(n as u64) as u32;
    let quiet = Wakeup::Events(1 << 20);
    let pages = mmap::pages_for(DRAIN_RING);
    // Each round opens and maps a ring for each side (outside the timing) on one of the two
    // arrays, the sides swapping arrays every round, as in the ring buffer figures: with one
    // ring each for the whole run, the 1 KiB figure moved between runs from 0.88 to 1.03.
    let floor_on = |i: usize| -> Result<Duration> {
        let event = perf::open_bpf_output(p, quiet)?;
        let fd = std::os::fd::AsRawFd::as_raw_fd(&event) as u32;
        MapFd::new(arrays[i].as_fd())?.update(&p.to_ne_bytes(), &fd.to_ne_bytes(), 0)?;
        let mut fl = PerfRingFloor::new(event.as_fd(), pages)?;
        producers[i].run(n)?;
        let mut acc = 0;
        let t = Instant::now();
        let (got, lost) = fl.drain(|d| consume(&mut acc, d));
        let d = t.elapsed();
        black_box(acc);
        MapFd::new(arrays[i].as_fd())?.delete(&p.to_ne_bytes())?;
        if got != n as u64 || lost != 0 {
            return Err(
                format!("floor perf drain: {got} records, {lost} lost, expected {n}").into(),
            );
        }
        Ok(d)
    };
    let (ours_turn, floor_turn) = (Cell::new(0), Cell::new(1));
    b.compare(
        &g,
        "drain",
        "PerfReader::for_each (zero-copy)",
        Some(0.9),
        n as u64,
        || {
            let i = turn(&ours_turn);
            let mut ours = PerfReader::open(p, DRAIN_RING, quiet)?;
            ours.register(&arrays[i])?;
            producers[i].run(n)?;
            let mut acc = 0;
            let t = Instant::now();
            let stats = ours.for_each(|r| {
                if let PerfRecord::Sample(d) = r {
                    consume(&mut acc, d)
                }
            })?;
            let d = t.elapsed();
            black_box(acc);
            ours.unregister(&arrays[i])?;
            if stats.samples != n as u64 {
                return Err(format!("perf drain: {} records, expected {n}", stats.samples).into());
            }
            Ok(d)
        },
        || floor_on(turn(&floor_turn)),
    )?;

    // The channel reader: its poll thread is started from the other CPU (it inherits that
    // affinity) and woken at the last record of each fill. A wakeup every `n` events does that
    // exactly, fill after fill; a byte watermark does not: the kernel moves its wakeup mark by the
    // watermark, not to the head, so the mark drifts one record a fill, the wakeup comes before
    // the last records, and they waited for the poll timeout (which raced the receiver's).
    if let Some(c) = c {
        let mut events = PerfEvents::new(arr_a)?;
        events
            .set_wakeup(Wakeup::Events(n))
            .set_poll_timeout(Duration::from_secs(5));
        pin_current_thread(c)?;
        let rx = events.start(DRAIN_RING);
        pin_current_thread(p)?;
        let rx = rx?;
        b.compare(
            &g,
            "drain",
            "PerfEvents channel",
            None,
            n as u64,
            || {
                prod_a.run(n)?;
                let t = Instant::now();
                let mut acc = 0;
                for _ in 0..n {
                    let ev = rx.recv_timeout(Duration::from_secs(5))?;
                    consume(&mut acc, &ev.data);
                }
                black_box(acc);
                Ok(t.elapsed())
            },
            // The channel reader holds `arr_a`'s slots: the floor keeps to the other array.
            || floor_on(1),
        )?;
        events.stop()?;
    }
    Ok(())
}

fn drain_ringbuf(b: &mut Bench, size: usize) -> Result {
    let g = drain_group("ring buffer", size);
    eprintln!("{g}");
    let rings = [ringbuf(DRAIN_RING)?, ringbuf(DRAIN_RING)?];
    let producers = [
        Producer::new(Out::RingBuf(&rings[0]), size)?,
        Producer::new(Out::RingBuf(&rings[1]), size)?,
    ];
    let (rb_a, prod_a) = (&rings[0], &producers[0]);
    let n = (DRAIN_RING * 9 / 10 / rb_rec(size)) as u32;
    let n = b.ops(n as u64) as u32;
    // The two sides swap rings every round, each with a reader mapped for the round (outside the
    // timing): with a ring each for the whole run, the figure moved between runs by as much as
    // 0.8 to 1.3, as if one ring's pages sat better in the caches and TLB than the other's.
    let (ours_turn, floor_turn) = (Cell::new(0), Cell::new(1));
    let floor = std::cell::RefCell::new(|| -> Result<Duration> {
        let i = turn(&floor_turn);
        let mut fl = RingBufFloor::new(rings[i].as_fd(), DRAIN_RING)?;
        producers[i].run(n)?;
        let mut acc = 0;
        let t = Instant::now();
        let got = fl.drain(|d| consume(&mut acc, d));
        let d = t.elapsed();
        black_box(acc);
        if got != n as u64 {
            return Err(format!("floor ring buffer drain: {got} records, expected {n}").into());
        }
        Ok(d)
    });
    b.compare(
        &g,
        "drain",
        "RingBuf::for_each (zero-copy)",
        Some(0.9),
        n as u64,
        || {
            let i = turn(&ours_turn);
            let mut ours = RingBuf::new(&rings[i])?;
            producers[i].run(n)?;
            let mut acc = 0;
            let t = Instant::now();
            let stats = ours.for_each(|d| consume(&mut acc, d))?;
            let d = t.elapsed();
            black_box(acc);
            if stats.samples != n as u64 {
                return Err(
                    format!("ring buffer drain: {} records, expected {n}", stats.samples).into(),
                );
            }
            Ok(d)
        },
        || (floor.borrow_mut())(),
    )?;
    // The channel reader: the ring is filled before `start`, whose poll thread finds it readable.
    let mut events = RingBufEvents::new();
    events.add(rb_a)?;
    b.compare(
        &g,
        "drain",
        "RingBufEvents channel (incl. start/stop)",
        None,
        n as u64,
        || {
            prod_a.run(n)?;
            let t = Instant::now();
            let rx = events.start()?;
            let mut acc = 0;
            for _ in 0..n {
                let ev = rx.recv_timeout(Duration::from_secs(5))?;
                consume(&mut acc, &ev.data);
            }
            let d = t.elapsed();
            events.stop()?;
            black_box(acc);
            Ok(d)
        },
        || (floor.borrow_mut())(),
    )?;
    Ok(())
}

/// Runs `produce` (CHUNK runs per call) on CPU `p` until `total` runs, while `consume` (on the
/// calling thread) drains; `consume` is called with the "producer done" flag and returns the
/// records it got this time. Returns (elapsed until the last record arrived, records received).
fn stream(
    p: u32,
    total: u32,
    prod: &Producer,
    mut consume: impl FnMut(bool) -> Result<u64>,
) -> Result<(Duration, u64)> {
    let done = AtomicBool::new(false);
    let start = Instant::now();
    std::thread::scope(|s| -> Result<(Duration, u64)> {
        let producer = s.spawn(|| -> std::result::Result<(), String> {
            let r = (|| -> Result {
                pin_current_thread(p)?;
                let mut left = total;
                while left > 0 {
                    let k = left.min(CHUNK);
                    prod.run(k)?;
                    left -= k;
                }
                Ok(())
            })();
            done.store(true, Ordering::Release);
            r.map_err(|e| e.to_string())
        });
        let mut got = 0;
        let mut last = start;
        let mut idle_after_done = 0;
        loop {
            let finished = done.load(Ordering::Acquire);
            let k = consume(finished)?;
            if k > 0 {
                got += k;
                last = Instant::now();
            } else if finished {
                idle_after_done += 1;
                if idle_after_done > 20 || got >= total as u64 {
                    break;
                }
            }
            if start.elapsed() > Duration::from_secs(30) {
                return Err("a streaming run took more than 30 s".into());
            }
        }
        producer.join().map_err(|_| "producer panicked")??;
        Ok((last - start, got))
    })
}

/// The duration per received record, scaled to `total` (so ns/op is time per record carried).
fn per_carried(d: Duration, got: u64, total: u32) -> Duration {
    d.mul_f64(total as f64 / got.max(1) as f64)
}

const POLL: Duration = Duration::from_millis(1);

fn stream_perf(b: &mut Bench, p: u32, c: u32, size: usize) -> Result {
    pin_current_thread(c)?;
    let g = stream_group("perf buffer", size);
    eprintln!("{g}");
    let (arr_a, arr_b) = (perf_array()?, perf_array()?);
    let (prod_a, prod_b) = (
        Producer::new(Out::Perf(&arr_a), size)?,
        Producer::new(Out::Perf(&arr_b), size)?,
    );
    let total = b.ops(if size <= 64 { 200_000 } else { 50_000 }) as u32;
    let mut rates = Vec::new();
    for every in [1u32, 64] {
        let wakeup = Wakeup::Events(every);
        let floor = || -> Result<Duration> {
            let ev = perf::open_bpf_output(p, wakeup)?;
            let fd = std::os::fd::AsRawFd::as_raw_fd(&ev) as u32;
            MapFd::new(arr_b.as_fd())?.update(&p.to_ne_bytes(), &fd.to_ne_bytes(), 0)?;
            let mut fl = PerfRingFloor::new(ev.as_fd(), mmap::pages_for(STREAM_RING))?;
            let ep = Epoll::new()?;
            ep.add(ev.as_fd(), 0)?;
            let mut tokens = Vec::new();
            let mut acc = 0;
            let (d, got) = stream(p, total, &prod_b, |_| {
                ep.wait(&mut tokens, Some(POLL))?;
                Ok(fl.drain(|d| consume(&mut acc, d)).0)
            })?;
            black_box(acc);
            MapFd::new(arr_b.as_fd())?.delete(&p.to_ne_bytes())?;
            Ok(per_carried(d, got, total))
        };
        let api = format!("PerfReader (zero-copy), wakeup every {every}");
        let zc = b.compare(
            &g,
            "stream",
            &api,
            None,
            total as u64,
            || {
                let mut r = PerfReader::open(p, STREAM_RING, wakeup)?;
                r.register(&arr_a)?;
                let ep = Epoll::new()?;
                ep.add(r.as_fd(), 0)?;
                let mut tokens = Vec::new();
                let mut acc = 0;
                let (d, got) = stream(p, total, &prod_a, |_| {
                    ep.wait(&mut tokens, Some(POLL))?;
                    Ok(r.for_each(|rec| {
                        if let PerfRecord::Sample(d) = rec {
                            consume(&mut acc, d)
                        }
                    })?
                    .samples)
                })?;
                black_box(acc);
                r.unregister(&arr_a)?;
                Ok(per_carried(d, got, total))
            },
            floor,
        )?;
        let api = format!("PerfEvents channel, wakeup every {every}");
        let ch = b.compare(
            &g,
            "stream",
            &api,
            None,
            total as u64,
            || {
                let mut events = PerfEvents::new(&arr_a)?;
                events.set_wakeup(wakeup).set_poll_timeout(POLL);
                let rx = events.start(STREAM_RING)?;
                let mut acc = 0;
                let (d, got) = stream(p, total, &prod_a, |_| {
                    let mut k = 0;
                    if let Ok(ev) = rx.recv_timeout(POLL) {
                        consume(&mut acc, &ev.data);
                        k += 1;
                        while let Ok(ev) = rx.try_recv() {
                            consume(&mut acc, &ev.data);
                            k += 1;
                        }
                    }
                    Ok(k)
                })?;
                events.stop()?;
                black_box(acc);
                Ok(per_carried(d, got, total))
            },
            floor,
        )?;
        rates.push((zc.0, ch.0, zc.1));
    }
    if size == 64 {
        let (e1, e64) = (rates[0], rates[1]);
        for (api, r1, r64) in [
            ("PerfReader (zero-copy)", e1.0, e64.0),
            ("PerfEvents channel", e1.1, e64.1),
            ("floor", e1.2, e64.2),
        ] {
            let ratio = r1 / r64;
            eprintln!("  wakeup every 64 vs every record, {api}: {ratio:.1}x the records/s");
            b.emit(json!({"kind": "wakeup", "api": api, "size": size,
                "per_record_ns_every_1": r1, "per_record_ns_every_64": r64,
                "ratio": ratio, "target": if api == "floor" { None } else { Some(10.0) }}));
        }
    }
    pin_current_thread(p)?;
    Ok(())
}

fn stream_ringbuf(b: &mut Bench, p: u32, c: u32, size: usize) -> Result {
    pin_current_thread(c)?;
    let g = stream_group("ring buffer", size);
    eprintln!("{g}");
    let total = b.ops(if size <= 64 { 200_000 } else { 50_000 }) as u32;
    let (rb_a, rb_b) = (ringbuf(STREAM_RING)?, ringbuf(STREAM_RING)?);
    let (prod_a, prod_b) = (
        Producer::new(Out::RingBuf(&rb_a), size)?,
        Producer::new(Out::RingBuf(&rb_b), size)?,
    );
    let floor = || -> Result<Duration> {
        let mut fl = RingBufFloor::new(rb_b.as_fd(), STREAM_RING)?;
        let ep = Epoll::new()?;
        ep.add(rb_b.as_fd(), 0)?;
        let mut tokens = Vec::new();
        let mut acc = 0;
        let (d, got) = stream(p, total, &prod_b, |_| {
            ep.wait(&mut tokens, Some(POLL))?;
            Ok(fl.drain(|d| consume(&mut acc, d)))
        })?;
        black_box(acc);
        Ok(per_carried(d, got, total))
    };
    b.compare(
        &g,
        "stream",
        "RingBuf (zero-copy)",
        None,
        total as u64,
        || {
            let mut r = RingBuf::new(&rb_a)?;
            let ep = Epoll::new()?;
            ep.add(r.as_fd(), 0)?;
            let mut tokens = Vec::new();
            let mut acc = 0;
            let (d, got) = stream(p, total, &prod_a, |_| {
                ep.wait(&mut tokens, Some(POLL))?;
                Ok(r.try_for_each(|d| {
                    consume(&mut acc, d);
                    ControlFlow::Continue(())
                })?
                .samples)
            })?;
            black_box(acc);
            Ok(per_carried(d, got, total))
        },
        floor,
    )?;
    b.compare(
        &g,
        "stream",
        "RingBufEvents channel",
        None,
        total as u64,
        || {
            let mut events = RingBufEvents::new();
            events.add(&rb_a)?;
            events.set_poll_timeout(POLL);
            let rx = events.start()?;
            let mut acc = 0;
            let (d, got) = stream(p, total, &prod_a, |_| {
                let mut k = 0;
                if let Ok(ev) = rx.recv_timeout(POLL) {
                    consume(&mut acc, &ev.data);
                    k += 1;
                    while let Ok(ev) = rx.try_recv() {
                        consume(&mut acc, &ev.data);
                        k += 1;
                    }
                }
                Ok(k)
            })?;
            events.stop()?;
            black_box(acc);
            Ok(per_carried(d, got, total))
        },
        floor,
    )?;
    pin_current_thread(p)?;
    Ok(())
}
