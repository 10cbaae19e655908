//! bpf-perf against the real kernel: `PerfEvents`, `PerfReader`, `RingBuf` and `RingBufEvents`
//! fed by socket filters run with `BPF_PROG_TEST_RUN`, each run writing one sequence-numbered
//! record.
//!
//! The programs are hand-assembled. Each CPU has its own record template (a per-CPU array value
//! of `REC` bytes that this test fills with a pattern); a run stamps the template with the CPU's
//! next sequence number (at the start and at the end) and the CPU id, outputs it, counts a
//! failed output in the template, and increments the sequence number. So per CPU the sequence
//! numbers run 0, 1, 2... with a gap for each output the kernel refused, and the sum of the
//! final sequence numbers is the number of runs.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ebpf::perf::{
    Event, EventsError, PerfEvents, PerfReader, PerfRecord, RingBuf, RingBufEvents, Wakeup,
};
use ebpf::sys::map::{self, MapCreateAttr, MapFd};
use ebpf::sys::prog::{self, ProgLoadAttr, TestRunAttr};
use ebpf::sys::uapi;
use ebpf::sys::{cpu, kernel, mmap, MapType, ProgramType};
use tests::asm::{add64_imm, jeq_imm, ldx_dw, mov32_imm, st_w, stx};
use tests::{fail, require_feature, require_root, unique_name, TestResult};

/// Record size: 60 bytes makes a 72-byte perf record (8 header + 4 raw size + 60) and a 72-byte
/// ring buffer record (8 header + 60, padded to 64... + 8): neither divides a page, so records
/// straddle the end of the ring.
const REC: usize = 60;
const OFF_SEQ: i16 = 0;
const OFF_CPU: i16 = 8;
const OFF_MAGIC: usize = 12;
const OFF_FAILS: i16 = 16;
const OFF_PATTERN: usize = 24;
const OFF_SEQ_END: i16 = (REC - 8) as i16;
const MAGIC: u32 = 0xfeed_beef;
/// The perf record of one sample: header, raw size, data (60 + 4 is a multiple of 8: no padding).
const PERF_RECORD: u64 = 8 + 4 + REC as u64;

const R0: u8 = 0;
const R1: u8 = 1;
const R2: u8 = 2;
const R3: u8 = 3;
const R4: u8 = 4;
const R5: u8 = 5;
const R6: u8 = 6;
const R7: u8 = 7;
const R8: u8 = 8;
const R10: u8 = 10;

/// Where a program sends its record.
enum Output<'a> {
    Perf(&'a OwnedFd),
    RingBuf(&'a OwnedFd),
}

/// A producer: the per-CPU template map and the socket filter that outputs it.
struct Producer {
    template: MapFd,
    prog: OwnedFd,
}

fn pattern(i: usize) -> u8 {
    (i as u8).wrapping_mul(7).wrapping_add(3)
}

impl Producer {
    fn new(output: Output<'_>) -> TestResult<Self> {
        let mut attr = MapCreateAttr::new(MapType::PerCpuArray, 4, REC as u32, 1);
        let name = unique_name("perftmpl");
        attr.name = &name;
        let template = MapFd::create(&attr)?;
        // Every CPU's template: zero sequence, magic, the pattern.
        let mut one = [0u8; REC];
        one[OFF_MAGIC..OFF_MAGIC + 4].copy_from_slice(&MAGIC.to_ne_bytes());
        for (i, b) in one.iter_mut().enumerate().skip(OFF_PATTERN) {
            *b = pattern(i);
        }
        let stride = REC.next_multiple_of(8);
        let mut all = vec![0u8; template.layout().value_len];
        for chunk in all.chunks_mut(stride) {
            chunk[..REC].copy_from_slice(&one);
        }
        template.update(&0u32.to_ne_bytes(), &all, 0)?;

        let mut insns = vec![
            prog::mov64_reg(R6, R1),
            st_w(R10, -4, 0),
            prog::mov64_reg(R2, R10),
            add64_imm(R2, -4),
        ];
        insns.extend(prog::ld_map_fd(R1, template.fd()));
        insns.push(prog::call_helper(uapi::BPF_FUNC_map_lookup_elem));
        let rest_start = insns.len();
        let mut rest = vec![
            prog::mov64_reg(R7, R0),
            ldx_dw(R8, R7, OFF_SEQ),
            stx(uapi::BPF_DW, R7, R8, OFF_SEQ_END),
            prog::call_helper(uapi::BPF_FUNC_get_smp_processor_id),
            stx(uapi::BPF_W, R7, R0, OFF_CPU),
        ];
        match output {
            Output::Perf(map) => {
                rest.push(prog::mov64_reg(R1, R6));
                rest.extend(prog::ld_map_fd(R2, map.as_fd()));
                // BPF_F_CURRENT_CPU, zero-extended: 0xffffffff.
                rest.push(mov32_imm(R3, uapi::BPF_F_CURRENT_CPU as u32 as i32));
                rest.push(prog::mov64_reg(R4, R7));
                rest.push(prog::mov64_imm(R5, REC as i32));
                rest.push(prog::call_helper(uapi::BPF_FUNC_perf_event_output));
            }
            Output::RingBuf(map) => {
                rest.extend(prog::ld_map_fd(R1, map.as_fd()));
                rest.push(prog::mov64_reg(R2, R7));
                rest.push(prog::mov64_imm(R3, REC as i32));
                rest.push(prog::mov64_imm(R4, 0));
                rest.push(prog::call_helper(uapi::BPF_FUNC_ringbuf_output));
            }
        }
        // if r0 != 0: template.fails += 1
        rest.extend([
            jeq_imm(R0, 0, 3),
            ldx_dw(R1, R7, OFF_FAILS),
            add64_imm(R1, 1),
            stx(uapi::BPF_DW, R7, R1, OFF_FAILS),
            add64_imm(R8, 1),
            stx(uapi::BPF_DW, R7, R8, OFF_SEQ),
            prog::mov64_imm(R0, 0),
            prog::exit(),
        ]);
        // if (!value) return 0
        insns.push(jeq_imm(R0, 0, rest.len() as i16 - 2));
        debug_assert_eq!(rest_start + 1, insns.len());
        insns.extend(rest);

        let mut attr = ProgLoadAttr::new(ProgramType::SocketFilter, &insns, c"GPL");
        let name = unique_name("perfprod");
        attr.name = &name;
        attr.kern_version = kernel::KernelVersion::current()?.code();
        let mut buf = vec![0u8; 64 * 1024];
        let mut log = ebpf::sys::bpf::LogBuf::new(&mut buf, 1);
        let prog = prog::load(&attr, Some(&mut log))
            .map_err(|e| fail(format!("{e}: {:?}\n{}", e.source, log.to_string_lossy())))?;
        Ok(Producer { template, prog })
    }

    /// Runs the program `n` times on the calling thread's CPU.
    fn run(&self, n: u32) -> TestResult {
        let packet = [0u8; 64];
        let mut run = TestRunAttr {
            data_in: &packet,
            repeat: n,
            ..Default::default()
        };
        prog::test_run(&self.prog, &mut run)?;
        Ok(())
    }

    /// Burst `i` of a paced run: 1 to `max` records.
    fn burst_size(i: u32, max: u32) -> u32 {
        1 + (i * 37) % max
    }

    /// `bursts` bursts of 1 to `max` records, 100 µs apart, on the calling thread's CPU: the
    /// reader both falls behind (records committed while it drains) and catches up.
    fn run_paced(&self, bursts: u32, max: u32) -> TestResult {
        for i in 0..bursts {
            self.run(Self::burst_size(i, max))?;
            std::thread::sleep(Duration::from_micros(100));
        }
        Ok(())
    }

    /// How many records [`Producer::run_paced`] makes.
    fn paced_total(bursts: u32, max: u32) -> u64 {
        (0..bursts)
            .map(|i| u64::from(Self::burst_size(i, max)))
            .sum()
    }

    /// Per possible CPU index: (next sequence number, failed outputs).
    fn per_cpu(&self) -> TestResult<Vec<(u64, u64)>> {
        let mut all = vec![0u8; self.template.layout().value_len];
        self.template.lookup(&0u32.to_ne_bytes(), &mut all, 0)?;
        let stride = REC.next_multiple_of(8);
        Ok(all
            .chunks(stride)
            .map(|c| {
                let seq = u64::from_ne_bytes(c[0..8].try_into().unwrap());
                let fails = u64::from_ne_bytes(c[16..24].try_into().unwrap());
                (seq, fails)
            })
            .collect())
    }

    fn runs(&self) -> TestResult<u64> {
        Ok(self.per_cpu()?.iter().map(|(s, _)| s).sum())
    }

    fn fails(&self) -> TestResult<u64> {
        Ok(self.per_cpu()?.iter().map(|(_, f)| f).sum())
    }
}

/// Checks one record: the right size (perf adds no padding to 60 bytes), both sequence numbers
/// equal, the CPU, the magic and the pattern. Returns (cpu, seq).
fn check_record(data: &[u8]) -> TestResult<(u32, u64)> {
    if data.len() != REC {
        return Err(fail(format!(
            "record of {} bytes, expected {REC}",
            data.len()
        )));
    }
    let seq = u64::from_ne_bytes(data[0..8].try_into().unwrap());
    let seq_end = u64::from_ne_bytes(data[REC - 8..].try_into().unwrap());
    let cpu = u32::from_ne_bytes(data[8..12].try_into().unwrap());
    let magic = u32::from_ne_bytes(data[12..16].try_into().unwrap());
    let pattern_ok = (OFF_PATTERN..REC - 8).all(|i| data[i] == pattern(i));
    if seq != seq_end || magic != MAGIC || !pattern_ok {
        return Err(fail(format!("torn record: {data:02x?}")));
    }
    Ok((cpu, seq))
}

/// Per-CPU order: sequence numbers strictly increase (gaps are lost records).
#[derive(Default)]
struct Order {
    next: std::collections::BTreeMap<u32, u64>,
    count: u64,
}

impl Order {
    /// Checks a record from ring `source` (perf: its CPU; `None` for ring buffers).
    fn see(&mut self, source: Option<u32>, data: &[u8], gaps_allowed: bool) -> TestResult {
        let (cpu, seq) = check_record(data)?;
        if let Some(s) = source {
            if s != cpu {
                return Err(fail(format!("record of cpu {cpu} in the ring of cpu {s}")));
            }
        }
        let next = self.next.entry(cpu).or_insert(0);
        if seq < *next || (!gaps_allowed && seq != *next) {
            return Err(fail(format!("cpu {cpu}: seq {seq} after {}", *next)));
        }
        *next = seq + 1;
        self.count += 1;
        Ok(())
    }
}

/// Runs `f` on a new thread pinned to `cpu`.
fn on_cpu<R: Send>(cpu: u32, f: impl FnOnce() -> R + Send) -> TestResult<R> {
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut set = rustix::thread::CpuSet::new();
            set.set(cpu as usize);
            rustix::thread::sched_setaffinity(None, &set)
                .map_err(|e| fail(format!("sched_setaffinity({cpu}): {e}")))?;
            Ok(f())
        })
        .join()
        .map_err(|_| fail("the producer thread panicked"))?
    })
}

fn perf_array() -> TestResult<OwnedFd> {
    let possible = cpu::num_possible_cpus()? as u32;
    let mut attr = MapCreateAttr::new(MapType::PerfEventArray, 4, 4, possible);
    let name = unique_name("perfarr");
    attr.name = &name;
    Ok(map::create(&attr)?)
}

fn ringbuf_map(size: usize) -> TestResult<OwnedFd> {
    let mut attr = MapCreateAttr::new(MapType::RingBuf, 0, 0, size as u32);
    let name = unique_name("perfrb");
    attr.name = &name;
    Ok(map::create(&attr)?)
}

fn ringbuf_supported() -> bool {
    ringbuf_map(mmap::page_size()).is_ok()
}

/// Receives events until `done` says so or `deadline` passes.
fn receive_until(
    rx: &ebpf::perf::Receiver<Event>,
    deadline: Duration,
    mut each: impl FnMut(&Event) -> TestResult,
    mut done: impl FnMut() -> TestResult<bool>,
) -> TestResult {
    let end = Instant::now() + deadline;
    loop {
        match rx.recv_timeout(Duration::from_millis(20)) {
            Ok(ev) => each(&ev)?,
            Err(ebpf::perf::RecvTimeoutError::Timeout) => {}
            Err(e) => return Err(fail(format!("channel: {e}"))),
        }
        while let Ok(ev) = rx.try_recv() {
            each(&ev)?;
        }
        if done()? {
            return Ok(());
        }
        if Instant::now() > end {
            return Err(fail("timed out waiting for the records"));
        }
    }
}

// ---- perf ---------------------------------------------------------------------------------------

fn perf_events_refuse_other_map_types() -> TestResult {
    require_root()?;
    let mut attr = MapCreateAttr::new(MapType::Hash, 4, 4, 4);
    let name = unique_name("perfhash");
    attr.name = &name;
    let hash = map::create(&attr)?;
    match PerfEvents::new(&hash) {
        Err(EventsError::WrongMapType {
            expected: MapType::PerfEventArray,
            found: Some(MapType::Hash),
            ..
        }) => {}
        other => return Err(fail(format!("{other:?}"))),
    }
    match RingBuf::new(&hash) {
        Err(EventsError::WrongMapType {
            expected: MapType::RingBuf,
            ..
        }) => {}
        other => return Err(fail(format!("{other:?}"))),
    }
    let array = perf_array()?;
    assert!(matches!(
        RingBufEvents::new().add(&array),
        Err(EventsError::WrongMapType { .. })
    ));
    Ok(())
}

/// Every online CPU produces; received + lost == runs, every record intact and in order per CPU,
/// with a ring small enough that records straddle its end (4096 / 72 is not whole).
fn perf_events_receive_every_record_or_count_it_lost() -> TestResult {
    require_root()?;
    let array = perf_array()?;
    let producer = Producer::new(Output::Perf(&array))?;
    let mut events = PerfEvents::new(&array)?;
    // Any size: rounded up to a power of two of pages.
    let rx = events.start(3000)?;
    let counters = events.counters();
    let online = cpu::online_cpus()?;
    let mut order = Order::default();
    for round in 0..20 {
        for &c in &online {
            on_cpu(c, || producer.run(200))??;
        }
        // A full ring reports its losses in a PERF_RECORD_LOST written before the next record
        // that fits: once the rings are drained, one more run on each CPU flushes them.
        let mut last_flush = Instant::now();
        receive_until(
            &rx,
            Duration::from_secs(10),
            |ev| order.see(Some(ev.source), &ev.data, true),
            || {
                if counters.received() + counters.lost() == producer.runs()? {
                    return Ok(true);
                }
                if last_flush.elapsed() > Duration::from_millis(50) {
                    for &c in &online {
                        on_cpu(c, || producer.run(1))??;
                    }
                    last_flush = Instant::now();
                }
                Ok(false)
            },
        )
        .map_err(|e| fail(format!("round {round}: {e:?}")))?;
    }
    events.stop()?;
    let runs = producer.runs()?;
    assert!(runs >= 20 * 200 * online.len() as u64);
    assert_eq!(counters.received(), order.count);
    assert_eq!(counters.received() + counters.lost(), runs);
    assert_eq!(
        counters.lost(),
        producer.fails()?,
        "lost == outputs the kernel refused"
    );
    assert_eq!(counters.unknown(), 0);
    assert_eq!(counters.errors(), 0);
    assert!(rx.recv().is_err(), "the channel is closed after stop");
    // The slots were deleted: output now fails instead of filling a dead ring.
    let before = producer.fails()?;
    on_cpu(online[0], || producer.run(1))??;
    assert_eq!(producer.fails()?, before + 1);
    Ok(())
}

/// A zero-copy reader on one CPU: records straddle the end of the ring and come out whole, and
/// only those are copied.
fn perf_reader_records_straddling_the_end_come_out_whole() -> TestResult {
    require_root()?;
    let array = perf_array()?;
    let producer = Producer::new(Output::Perf(&array))?;
    let cpu = cpu::online_cpus()?[0];
    let mut reader = PerfReader::open(cpu, 1, Wakeup::Events(1))?;
    reader.register(&array)?;
    let size = reader.ring_size() as u64;
    assert_eq!(size, mmap::page_size() as u64);
    let mut order = Order::default();
    let (mut pos, mut straddled, mut total) = (0u64, 0u64, 0u64);
    // Three laps, 20 records at a time (fewer than fit).
    while pos < 3 * size {
        on_cpu(cpu, || producer.run(20))??;
        let stats = reader.for_each(|r| match r {
            PerfRecord::Sample(data) => {
                order.see(Some(cpu), data, false).unwrap();
                let start = pos % size;
                if start + PERF_RECORD > size {
                    straddled += 1;
                }
                pos += PERF_RECORD;
            }
            other => panic!("unexpected {other:?}"),
        })?;
        assert_eq!(stats.samples, 20);
        assert_eq!(stats.bytes, 20 * PERF_RECORD);
        total += stats.samples;
        assert_eq!(reader.pending_bytes(), 0);
    }
    assert!(straddled >= 3, "{straddled} records straddled the end");
    assert_eq!(order.count, total);
    assert_eq!(reader.totals().samples, total);
    assert_eq!(producer.fails()?, 0);
    reader.unregister(&array)?;
    Ok(())
}

/// A flood into an unread ring: the reader gets what fit, and the lost count equals the outputs
/// the kernel refused, exactly.
fn perf_flood_overruns_the_ring_and_the_lost_count_is_exact() -> TestResult {
    require_root()?;
    let array = perf_array()?;
    let producer = Producer::new(Output::Perf(&array))?;
    let cpu = cpu::online_cpus()?[0];
    let mut reader = PerfReader::open(cpu, 0, Wakeup::Watermark(2048))?;
    reader.register(&array)?;
    let flood = 5000;
    on_cpu(cpu, || producer.run(flood))??;
    let fails = producer.fails()?;
    let fit = reader.ring_size() as u64 / PERF_RECORD;
    assert!(fails >= flood as u64 - fit, "only {fails} outputs refused");
    let mut order = Order::default();
    let mut lost = 0;
    let mut seen_lost_record = false;
    let mut drain = |reader: &mut PerfReader, order: &mut Order| -> TestResult {
        reader.for_each(|r| match r {
            PerfRecord::Sample(d) => order.see(Some(cpu), d, true).unwrap(),
            PerfRecord::Lost(n) => {
                lost += n;
                seen_lost_record = true;
            }
            PerfRecord::Unknown { record_type } => panic!("record type {record_type}"),
        })?;
        Ok(())
    };
    drain(&mut reader, &mut order)?;
    // The kernel writes its PERF_RECORD_LOST before the next record that fits.
    on_cpu(cpu, || producer.run(1))??;
    drain(&mut reader, &mut order)?;
    assert!(seen_lost_record);
    assert_eq!(lost, fails, "lost records report every refused output");
    assert_eq!(order.count + lost, u64::from(flood) + 1);
    assert_eq!(reader.totals().lost, lost);
    reader.unregister(&array)?;
    Ok(())
}

/// With a wakeup every 64 records, the rest arrives by the poll timeout.
fn perf_events_wakeup_every_n_records_delivers_the_remainder_at_the_timeout() -> TestResult {
    require_root()?;
    let array = perf_array()?;
    let producer = Producer::new(Output::Perf(&array))?;
    let mut events = PerfEvents::new(&array)?;
    events
        .set_wakeup(Wakeup::Events(64))
        .set_poll_timeout(Duration::from_millis(50));
    let rx = events.start(64 * 1024)?;
    let cpu = cpu::online_cpus()?[0];
    on_cpu(cpu, || producer.run(100))??;
    let mut order = Order::default();
    let counters = events.counters();
    receive_until(
        &rx,
        Duration::from_secs(5),
        |ev| order.see(Some(ev.source), &ev.data, false),
        || Ok(counters.received() == 100),
    )?;
    events.stop()?;
    assert_eq!(counters.lost(), 0);
    Ok(())
}

/// stop() returns at once: right after start, during production, with a consumer that never
/// reads a full channel.
fn perf_events_stop_returns_promptly() -> TestResult {
    require_root()?;
    let array = perf_array()?;
    let producer = Producer::new(Output::Perf(&array))?;
    let mut events = PerfEvents::new(&array)?;
    // Stop before start, then right after start.
    events.stop()?;
    let t = Instant::now();
    let rx = events.start(4096)?;
    events.stop()?;
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "{:?}",
        t.elapsed()
    );
    assert!(!events.is_running());
    drop(rx);

    // During production, with a consumer that never reads a channel of one slot.
    events
        .set_channel_capacity(1)
        .set_poll_timeout(Duration::from_secs(10));
    let rx = events.start(4096)?;
    let producing = Arc::new(AtomicBool::new(true));
    let online = cpu::online_cpus()?;
    std::thread::scope(|s| -> TestResult {
        let producers: Vec<_> = online
            .iter()
            .map(|&c| {
                let (producing, producer) = (&producing, &producer);
                s.spawn(move || {
                    on_cpu(c, || {
                        while producing.load(Ordering::Relaxed) {
                            producer.run(500)?;
                        }
                        Ok::<_, tests::Outcome>(())
                    })
                })
            })
            .collect();
        // Let the channel fill and the poll thread block on its send.
        let end = Instant::now() + Duration::from_secs(5);
        while rx.is_empty() && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(50));
        let t = Instant::now();
        let stopped = events.stop();
        let took = t.elapsed();
        producing.store(false, Ordering::Relaxed);
        for p in producers {
            p.join().map_err(|_| fail("producer panicked"))???;
        }
        stopped?;
        assert!(took < Duration::from_millis(500), "stop took {took:?}");
        Ok(())
    })?;
    // What was on the channel is still there, then the channel is closed.
    assert_eq!(rx.try_iter().count(), 1);
    assert!(rx.recv().is_err());
    let c = events.counters();
    assert_eq!(c.received(), 1);
    Ok(())
}

// ---- ring buffer -------------------------------------------------------------------------------

/// Two ring buffers behind one epoll: every record received (the producer waits for the consumer
/// between bursts, so none is refused), intact, in order per CPU, over many laps of each ring.
fn ringbuf_events_receive_every_record_from_several_rings() -> TestResult {
    require_root()?;
    require_feature("BPF_MAP_TYPE_RINGBUF", ringbuf_supported())?;
    let size = 16 * mmap::page_size();
    let (a, b) = (ringbuf_map(size)?, ringbuf_map(size)?);
    let producers = [
        Producer::new(Output::RingBuf(&a))?,
        Producer::new(Output::RingBuf(&b))?,
    ];
    let mut events = RingBufEvents::new();
    assert_eq!(events.add(&a)?, 0);
    assert_eq!(events.add(&b)?, 1);
    let rx = events.start()?;
    let counters = events.counters();
    let online = cpu::online_cpus()?;
    let mut orders = [Order::default(), Order::default()];
    // 72 bytes a record, 500 per burst (36000 bytes) into 64 KiB: 10 laps each.
    let burst = 500;
    let rounds = (10 * size) / (72 * burst as usize) + 1;
    for round in 0..rounds {
        let c = online[round % online.len()];
        for p in &producers {
            on_cpu(c, || p.run(burst))??;
        }
        let want: u64 = producers
            .iter()
            .map(|p| p.runs())
            .sum::<TestResult<u64>>()?;
        receive_until(
            &rx,
            Duration::from_secs(10),
            |ev| orders[ev.source as usize].see(None, &ev.data, false),
            || Ok(counters.received() == want),
        )?;
    }
    events.stop()?;
    for (p, o) in producers.iter().zip(&orders) {
        assert_eq!(p.fails()?, 0);
        assert_eq!(o.count, p.runs()?);
    }
    assert_eq!(counters.lost(), 0);
    assert_eq!(counters.errors(), 0);
    Ok(())
}

/// The zero-copy reader: records straddling the end (contiguous thanks to the double mapping),
/// discarded records skipped, the consumer position at the producer's after a drain.
fn ringbuf_reader_reads_in_place_across_the_end() -> TestResult {
    require_root()?;
    require_feature("BPF_MAP_TYPE_RINGBUF", ringbuf_supported())?;
    let size = mmap::page_size();
    let map = ringbuf_map(size)?;
    let producer = Producer::new(Output::RingBuf(&map))?;
    let mut rb = RingBuf::new(&map)?;
    assert_eq!(rb.ring_size(), size);
    let cpu = cpu::online_cpus()?[0];
    let mut order = Order::default();
    let mut pos = 0u64;
    let mut straddled = 0;
    while pos < 3 * size as u64 {
        on_cpu(cpu, || producer.run(20))??;
        let stats = rb.for_each(|d| {
            order.see(None, d, false).unwrap();
            // 8-byte header + 60 bytes, padded to 8: 72 bytes.
            if pos % size as u64 + 72 > size as u64 {
                straddled += 1;
            }
            pos += 72;
        })?;
        assert_eq!(stats.samples, 20);
        assert_eq!(stats.bytes, 20 * 72);
        assert_eq!(rb.pending_bytes(), 0);
    }
    assert!(straddled >= 3);
    // Full ring: outputs are refused, nothing is "lost" on this side.
    on_cpu(cpu, || producer.run(200))??;
    let fails = producer.fails()?;
    assert!(fails > 0);
    let stats = rb.for_each(|d| order.see(None, d, true).unwrap())?;
    assert_eq!(stats.samples + fails, 200);
    Ok(())
}

/// The zero-copy reader behind an edge-triggered epoll with the producer on another CPU. A
/// drain reads the batch that was there when it started; records committed meanwhile may raise
/// no wakeup, and `needs_drain` says so. A reader that drains until it is false before waiting
/// gets every record, intact and in order, and is never left waiting with records pending that
/// raised no event (until the producer's end or the 5 s timeout wakes it), nor sleeps through a
/// burst that starts while it waits (the producer checks that it woke).
fn ringbuf_reader_misses_no_wakeup_behind_an_edge_triggered_epoll() -> TestResult {
    use rustix::event::epoll::{self, CreateFlags, EventData, EventFlags};
    require_root()?;
    require_feature("BPF_MAP_TYPE_RINGBUF", ringbuf_supported())?;
    let map = ringbuf_map(64 * mmap::page_size())?;
    let producer = Producer::new(Output::RingBuf(&map))?;
    let mut rb = RingBuf::new(&map)?;
    let ep = epoll::create(CreateFlags::CLOEXEC)?;
    epoll::add(
        &ep,
        rb.as_fd(),
        EventData::new_u64(0),
        EventFlags::IN | EventFlags::ET,
    )?;
    // Written by the producer thread when it is done, so that the last wait returns.
    let finished_fd = rustix::event::eventfd(0, rustix::event::EventfdFlags::CLOEXEC)?;
    epoll::add(&ep, &finished_fd, EventData::new_u64(1), EventFlags::IN)?;
    let online = cpu::online_cpus()?;
    let (consumer_cpu, producer_cpu) = (online[0], online[online.len() - 1]);
    let bursts = 400;
    let done = AtomicBool::new(false);
    // Set by the reader while it waits, and its count of waits: every other burst starts only
    // while it waits and ends when it has woken, so the reader both sleeps through the start of
    // bursts and falls behind within them (records committed while it drains), however the
    // scheduler runs the two threads.
    let waiting = AtomicBool::new(false);
    let woken = std::sync::atomic::AtomicU64::new(0);
    let mut order = Order::default();
    let (mut waits, mut drains) = (0u64, 0u64);
    std::thread::scope(|s| -> TestResult {
        let produce = s.spawn(|| {
            let r = on_cpu(producer_cpu, || -> TestResult {
                // Bursts of 1 to 500 records with pauses.
                let until = |ready: &dyn Fn() -> bool, what: &str| -> TestResult {
                    let give_up = Instant::now() + Duration::from_secs(5);
                    while !ready() {
                        if Instant::now() > give_up {
                            return Err(fail(format!("the reader never {what}")));
                        }
                        std::thread::sleep(Duration::from_micros(20));
                    }
                    Ok(())
                };
                for i in 0..bursts {
                    let handshake = i % 2 == 0;
                    let mut before = 0;
                    if handshake {
                        until(&|| waiting.load(Ordering::Acquire), "waited")?;
                        before = woken.load(Ordering::Acquire);
                    }
                    producer.run(Producer::burst_size(i, 500))?;
                    if handshake {
                        until(&|| woken.load(Ordering::Acquire) != before, "woke up")?;
                    }
                    std::thread::sleep(Duration::from_micros(100));
                }
                Ok(())
            });
            done.store(true, Ordering::Release);
            rustix::io::write(&finished_fd, &1u64.to_ne_bytes())?;
            r
        });
        let consumed = on_cpu(consumer_cpu, || -> TestResult {
            let mut events = [epoll::Event {
                flags: EventFlags::empty(),
                data: EventData::new_u64(0),
            }; 4];
            let timeout = rustix::event::Timespec {
                tv_sec: 5,
                tv_nsec: 0,
            };
            loop {
                let finished = done.load(Ordering::Acquire);
                let mut result = Ok(());
                loop {
                    rb.for_each(|d| {
                        if result.is_ok() {
                            result = order.see(None, d, true);
                        }
                    })?;
                    drains += 1;
                    if !rb.needs_drain() {
                        break;
                    }
                }
                result?;
                if finished && rb.pending_bytes() == 0 {
                    return Ok(());
                }
                waiting.store(true, Ordering::Release);
                let n = epoll::wait(&ep, &mut events[..], Some(&timeout));
                waiting.store(false, Ordering::Release);
                woken.fetch_add(1, Ordering::AcqRel);
                let n = n?;
                waits += 1;
                // Woken by the timeout or by the producer's end, not by the ring, with records
                // in it: their wakeup never came.
                let ring_woke = events[..n].iter().any(|e| e.data.u64() == 0);
                if !ring_woke && rb.pending_bytes() > 0 {
                    return Err(fail(format!(
                        "missed wakeup: {} bytes pending, the ring raised no event",
                        rb.pending_bytes()
                    )));
                }
            }
        })?;
        produce
            .join()
            .map_err(|_| fail("the producer thread panicked"))???;
        consumed
    })?;
    let fails = producer.fails()?;
    assert_eq!(order.count + fails, producer.runs()?);
    assert_eq!(producer.runs()?, Producer::paced_total(bursts, 500));
    // The reader waited at least once per handshake burst.
    assert!(waits >= u64::from(bursts / 2), "{waits} waits");
    eprintln!(
        "  {} records ({fails} refused by a full ring), {drains} drains, {waits} waits",
        order.count
    );
    Ok(())
}

/// Runs `consume` on a current-thread tokio runtime pinned to `consumer_cpu` while `produce`
/// runs on `producer_cpu`; `consume` gets the "producer done" flag.
fn with_async_consumer(
    producer_cpu: u32,
    consumer_cpu: u32,
    produce: impl FnOnce() -> TestResult + Send,
    consume: impl AsyncFnOnce(&AtomicBool) -> TestResult + Send,
) -> TestResult {
    let done = AtomicBool::new(false);
    std::thread::scope(|s| -> TestResult {
        let producer = s.spawn(|| {
            let r = on_cpu(producer_cpu, produce);
            done.store(true, Ordering::Release);
            r
        });
        let consumed = on_cpu(consumer_cpu, || -> TestResult {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .enable_time()
                .build()?;
            rt.block_on(consume(&done))
        })?;
        producer
            .join()
            .map_err(|_| fail("the producer thread panicked"))???;
        consumed
    })
}

/// How long an async reader may wait with records pending before that counts as a missed
/// wakeup. A wakeup comes within microseconds of the record on the host (and the producer's
/// program runs with preemption off, so no record stays half-written); under qemu's
/// single-threaded TCG a vCPU may wait 100 ms for its turn.
const ASYNC_STALL: Duration = Duration::from_secs(5);

/// How often an async reader's loop looks at whether the producer has finished: each drain
/// runs under this timeout.
const ASYNC_TICK: Duration = Duration::from_millis(20);

/// Watches an async reader for a missed wakeup: a reader whose drains keep timing out while
/// records are pending for [`ASYNC_STALL`] missed one.
#[derive(Default)]
struct StallWatch {
    stalled: Duration,
}

impl StallWatch {
    /// What a drain run under [`ASYNC_TICK`] tells, with the bytes the ring holds after it:
    /// `Ok(true)` when the reader is done (nothing pending, the producer finished before the
    /// drain), an error for a failed drain or a missed wakeup, `Ok(false)` to go on.
    fn after(
        &mut self,
        drained: Result<Result<ebpf::perf::DrainStats, EventsError>, tokio::time::error::Elapsed>,
        pending: u64,
        finished: bool,
    ) -> TestResult<bool> {
        match drained {
            Ok(stats) => {
                stats?;
                self.stalled = Duration::ZERO;
                Ok(finished && pending == 0)
            }
            Err(_) if pending > 0 => {
                self.stalled += ASYNC_TICK;
                if self.stalled >= ASYNC_STALL {
                    return Err(fail(format!(
                        "missed wakeup: {pending} bytes pending for {ASYNC_STALL:?}"
                    )));
                }
                Ok(false)
            }
            Err(_) => {
                self.stalled = Duration::ZERO;
                Ok(finished)
            }
        }
    }
}

/// `AsyncRingBuf` (tokio's edge-triggered `AsyncFd`) with the producer on another CPU, in
/// bursts with pauses: every record arrives, intact and in order, and the reader is never left
/// waiting with records pending.
fn async_ringbuf_receives_every_record_from_a_producer_on_another_cpu() -> TestResult {
    use ebpf::perf::tokio::AsyncRingBuf;
    require_root()?;
    require_feature("BPF_MAP_TYPE_RINGBUF", ringbuf_supported())?;
    let map = ringbuf_map(64 * mmap::page_size())?;
    let producer = Producer::new(Output::RingBuf(&map))?;
    let online = cpu::online_cpus()?;
    let bursts = 300u32;
    let mut order = Order::default();
    let mut waits = 0u64;
    with_async_consumer(
        online[online.len() - 1],
        online[0],
        || producer.run_paced(bursts, 500),
        async |done: &AtomicBool| {
            let mut rb = AsyncRingBuf::new(RingBuf::new(&map)?)?;
            let mut watch = StallWatch::default();
            loop {
                let finished = done.load(Ordering::Acquire);
                let mut result = Ok(());
                let drained = tokio::time::timeout(
                    ASYNC_TICK,
                    rb.for_each(|d| {
                        if result.is_ok() {
                            result = order.see(None, d, true);
                        }
                    }),
                )
                .await;
                waits += 1;
                result?;
                if watch.after(drained, rb.get_ref().pending_bytes(), finished)? {
                    return Ok(());
                }
            }
        },
    )?;
    let fails = producer.fails()?;
    assert_eq!(order.count + fails, producer.runs()?);
    assert_eq!(producer.runs()?, Producer::paced_total(bursts, 500));
    assert!(order.count > 0 && waits > 1);
    Ok(())
}

/// `AsyncPerfReader` on one CPU's ring, a wakeup per record, the producer pinned to that CPU
/// from another thread: every record arrives in order, or the kernel refused it.
fn async_perf_reader_receives_every_record_or_counts_it_lost() -> TestResult {
    use ebpf::perf::tokio::AsyncPerfReader;
    require_root()?;
    let array = perf_array()?;
    let producer = Producer::new(Output::Perf(&array))?;
    let online = cpu::online_cpus()?;
    let (producer_cpu, consumer_cpu) = (online[online.len() - 1], online[0]);
    let reader = PerfReader::open(producer_cpu, 64 * 1024, Wakeup::Events(1))?;
    reader.register(&array)?;
    let bursts = 200u32;
    let mut order = Order::default();
    let mut lost = 0u64;
    let mut reader = Some(reader);
    with_async_consumer(
        producer_cpu,
        consumer_cpu,
        || producer.run_paced(bursts, 300),
        async |done: &AtomicBool| {
            let reader = reader.take().ok_or_else(|| fail("no reader"))?;
            let mut rd = AsyncPerfReader::new(reader)?;
            let mut watch = StallWatch::default();
            let result = async {
                loop {
                    let finished = done.load(Ordering::Acquire);
                    let mut result = Ok(());
                    let drained = tokio::time::timeout(
                        ASYNC_TICK,
                        rd.for_each(|r| match r {
                            PerfRecord::Sample(d) if result.is_ok() => {
                                result = order.see(Some(producer_cpu), d, true);
                            }
                            PerfRecord::Lost(n) => lost += n,
                            _ => {}
                        }),
                    )
                    .await;
                    result?;
                    if watch.after(drained, rd.get_ref().pending_bytes(), finished)? {
                        return Ok(());
                    }
                }
            }
            .await;
            rd.into_inner().unregister(&array)?;
            result
        },
    )?;
    // Every output the program made arrived, or the kernel refused it (a full ring: the VM's
    // slow reader falls behind). The kernel reports refusals in a lost record written before the
    // next sample that fits, so the refusals after the last such sample are not reported (the
    // exact count is `perf_flood_overruns_the_ring_and_the_lost_count_is_exact`'s).
    let fails = producer.fails()?;
    assert_eq!(order.count + fails, producer.runs()?);
    assert!(lost <= fails, "{lost} lost reported, {fails} refused");
    assert_eq!(producer.runs()?, Producer::paced_total(bursts, 300));
    Ok(())
}

fn ringbuf_events_stop_returns_with_a_consumer_that_never_reads() -> TestResult {
    require_root()?;
    require_feature("BPF_MAP_TYPE_RINGBUF", ringbuf_supported())?;
    let map = ringbuf_map(4 * mmap::page_size())?;
    let producer = Producer::new(Output::RingBuf(&map))?;
    let mut events = RingBufEvents::new();
    events.add(&map)?;
    events
        .set_channel_capacity(2)
        .set_poll_timeout(Duration::from_secs(10));
    let rx = events.start()?;
    let cpu = cpu::online_cpus()?[0];
    on_cpu(cpu, || producer.run(100))??;
    let end = Instant::now() + Duration::from_secs(5);
    while rx.len() < 2 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(5));
    }
    let t = Instant::now();
    events.stop()?;
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "stop took {:?}",
        t.elapsed()
    );
    assert_eq!(rx.try_iter().count(), 2);
    // The records not delivered stay in the ring: a new reader gets them, in order.
    let mut rb = RingBuf::new(&map)?;
    let mut order = Order::default();
    order.next.insert(cpu, 2);
    let stats = rb.for_each(|d| order.see(None, d, false).unwrap())?;
    assert_eq!(stats.samples, 98);
    Ok(())
}

// ---- objects loaded by the loader ----------------------------------------------------------------

/// `target/bpf/<stem>.o` (built by `cargo xtask build-bpf`).
fn object(stem: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../target/bpf/{stem}.o"))
}

/// Records of `bpf-progs/include/test_events.h`: a u64 sequence number, then zeros (64 bytes by
/// default; perf adds 4 bytes of padding, which the kernel skips without writing: not checked).
fn check_test_events_record(data: &[u8], next: &mut u64, gaps_allowed: bool) -> TestResult {
    if data.len() < 64 || data[8..64].iter().any(|&b| b != 0) {
        return Err(fail(format!("torn record: {data:02x?}")));
    }
    let seq = u64::from_ne_bytes(data[..8].try_into().unwrap());
    if seq < *next || (!gaps_allowed && seq != *next) {
        return Err(fail(format!("seq {seq} after {next}")));
    }
    *next = seq + 1;
    Ok(())
}

/// The loader's handles work as they are: `PerfEvents::new(sys.map("events"))` on
/// `sock_perf_btf.o`, whose program counts its refused outputs in a global.
fn perf_events_read_the_perf_array_of_a_loaded_object() -> TestResult {
    use ebpf::attach::{KernelSystem, LoadOptions, TestRun};
    require_root()?;
    let cpu = cpu::online_cpus()?[0];
    // One CPU: the object's sequence counter is a plain global.
    on_cpu(cpu, || -> TestResult {
        let fs = tests::BpfFs::new()?;
        let options = LoadOptions::default().pin_root(fs.path());
        let mut sys = KernelSystem::load_elf_with(object("sock_perf_btf"), &options)?;
        sys.load_all()?;
        let map = sys.map("events").ok_or_else(|| fail("no map `events`"))?;
        let mut events = PerfEvents::new(map)?;
        let rx = events.start(4096)?;
        let counters = events.counters();
        let prog = sys
            .program("perf_seq")
            .ok_or_else(|| fail("no program `perf_seq`"))?;
        let packet = [0u8; 64];
        prog.test_run(&TestRun {
            data: &packet,
            repeat: 2000,
            ..TestRun::default()
        })?;
        let mut next = 0;
        let mut last_flush = Instant::now();
        receive_until(
            &rx,
            Duration::from_secs(10),
            |ev| check_test_events_record(&ev.data, &mut next, true),
            || {
                let runs = sys.global_as::<u64>("next_seq")?;
                if counters.received() + counters.lost() == runs {
                    return Ok(true);
                }
                if last_flush.elapsed() > Duration::from_millis(50) {
                    prog.test_run(&TestRun::with_data(&packet))?;
                    last_flush = Instant::now();
                }
                Ok(false)
            },
        )?;
        events.stop()?;
        assert_eq!(counters.lost(), sys.global_as::<u64>("lost")?);
        Ok(())
    })?
}

/// `RingBuf` on `sock_ringbuf_btf.o`'s 1 MiB ring: every record, in order.
fn ringbuf_reads_the_ring_buffer_of_a_loaded_object() -> TestResult {
    use ebpf::attach::{KernelSystem, LoadOptions, TestRun};
    require_root()?;
    require_feature("BPF_MAP_TYPE_RINGBUF", ringbuf_supported())?;
    let cpu = cpu::online_cpus()?[0];
    on_cpu(cpu, || -> TestResult {
        let fs = tests::BpfFs::new()?;
        let options = LoadOptions::default().pin_root(fs.path());
        let mut sys = KernelSystem::load_elf_with(object("sock_ringbuf_btf"), &options)?;
        sys.load_all()?;
        let map = sys.map("events").ok_or_else(|| fail("no map `events`"))?;
        let mut rb = RingBuf::new(map)?;
        let prog = sys
            .program("ringbuf_seq")
            .ok_or_else(|| fail("no program `ringbuf_seq`"))?;
        let packet = [0u8; 64];
        let mut next = 0;
        for _ in 0..5 {
            prog.test_run(&TestRun {
                data: &packet,
                repeat: 3000,
                ..TestRun::default()
            })?;
            let mut result = Ok(());
            rb.for_each(|d| {
                if result.is_ok() {
                    result = check_test_events_record(d, &mut next, false);
                }
            })?;
            result?;
        }
        assert_eq!(next, 15000);
        assert_eq!(sys.global_as::<u64>("next_seq")?, 15000);
        assert_eq!(sys.global_as::<u64>("lost")?, 0);
        Ok(())
    })?
}

tests::tests![
    perf_events_read_the_perf_array_of_a_loaded_object,
    ringbuf_reads_the_ring_buffer_of_a_loaded_object,
    perf_events_refuse_other_map_types,
    perf_events_receive_every_record_or_count_it_lost,
    perf_reader_records_straddling_the_end_come_out_whole,
    perf_flood_overruns_the_ring_and_the_lost_count_is_exact,
    perf_events_wakeup_every_n_records_delivers_the_remainder_at_the_timeout,
    perf_events_stop_returns_promptly,
    ringbuf_events_receive_every_record_from_several_rings,
    ringbuf_reader_reads_in_place_across_the_end,
    ringbuf_reader_misses_no_wakeup_behind_an_edge_triggered_epoll,
    async_ringbuf_receives_every_record_from_a_producer_on_another_cpu,
    async_perf_reader_receives_every_record_or_counts_it_lost,
    ringbuf_events_stop_returns_with_a_consumer_that_never_reads,
];
