//! bpf-sys against the real kernel: perf events and their rings, BPF ring buffers, CPU lists,
//! bpffs and tracefs, the kernel version.

use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use ebpf::sys::map::{self, MapCreateAttr, MapFd};
use ebpf::sys::mmap::{self, PerfRing, RingBufEntry, RingBufRegion};
use ebpf::sys::perf::{self, ProbeKind, ProbeSpec, Wakeup};
use ebpf::sys::prog::{self, ProgLoadAttr, TestRunAttr};
use ebpf::sys::uapi::{self, bpf_insn};
use ebpf::sys::{cpu, fs, kernel, MapType, ProgramType};
use tests::asm::{add64_imm, jeq_imm, mov32_imm, rsh64_imm, st_w, stx_dw};
use tests::{fail, require_feature, require_root, unique_name, TestResult};

// ---- hand-assembled instructions --------------------------------------------------------------

const R0: u8 = 0;
const R1: u8 = 1;
const R2: u8 = 2;
const R3: u8 = 3;
const R4: u8 = 4;
const R5: u8 = 5;
const R6: u8 = 6;
const R10: u8 = 10;

/// The 8 bytes the programs write: 11 22 33 44 55 66 77 88.
const PAYLOAD: [u8; 8] = [0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88];

/// Stores [`PAYLOAD`] at `r10 - 8`.
fn store_payload() -> [bpf_insn; 2] {
    [
        st_w(R10, -8, i32::from_le_bytes([0x11, 0x22, 0x33, 0x44])),
        st_w(R10, -4, i32::from_le_bytes([0x55, 0x66, 0x77, 0x88])),
    ]
}

#[track_caller]
fn load(prog_type: ProgramType, insns: &[bpf_insn]) -> TestResult<OwnedFd> {
    let mut attr = ProgLoadAttr::new(prog_type, insns, c"GPL");
    let name = unique_name("sysperf");
    attr.name = &name;
    attr.kern_version = kernel::KernelVersion::current()?.code();
    let mut buf = vec![0u8; 64 * 1024];
    let mut log = ebpf::sys::bpf::LogBuf::new(&mut buf, 1);
    prog::load(&attr, Some(&mut log))
        .map_err(|e| fail(format!("{e}: {:?}\n{}", e.source, log.to_string_lossy())))
}

/// Runs a socket filter once on a zeroed 64-byte packet; returns its return value.
fn run_socket_filter(prog: &OwnedFd) -> TestResult<i32> {
    let packet = [0u8; 64];
    let mut run = TestRunAttr {
        data_in: &packet,
        ..Default::default()
    };
    Ok(prog::test_run(prog, &mut run)?.retval as i32)
}

fn create_map(map_type: MapType, key: u32, value: u32, max: u32) -> TestResult<OwnedFd> {
    let mut attr = MapCreateAttr::new(map_type, key, value, max);
    let name = unique_name("sysperf");
    attr.name = &name;
    Ok(map::create(&attr)?)
}

// ---- perf rings -------------------------------------------------------------------------------

struct CpuRing {
    cpu: u32,
    fd: OwnedFd,
    ring: PerfRing,
}

/// A BPF output event on each online CPU, mmap'd, its fd stored in a perf event array at the
/// CPU's index.
fn perf_rings(array: &MapFd) -> TestResult<Vec<CpuRing>> {
    let pages = mmap::pages_for(8192);
    assert_eq!(
        pages * mmap::page_size(),
        8192.max(mmap::page_size()).next_power_of_two()
    );
    let mut rings = Vec::new();
    for cpu in cpu::online_cpus()? {
        let fd = perf::open_bpf_output(cpu, Wakeup::Events(1))?;
        let ring = PerfRing::new(fd.as_fd(), pages)?;
        assert_eq!(ring.data_size(), pages * mmap::page_size());
        assert_eq!(ring.data_head(), 0);
        array.update(
            &cpu.to_ne_bytes(),
            &(std::os::fd::AsRawFd::as_raw_fd(&fd) as u32).to_ne_bytes(),
            0,
        )?;
        rings.push(CpuRing { cpu, fd, ring });
    }
    Ok(rings)
}

/// The socket filter: `return bpf_perf_event_output(skb, &array, BPF_F_CURRENT_CPU, &PAYLOAD, 8)`.
fn perf_output_prog(array: &MapFd) -> TestResult<OwnedFd> {
    let mut insns = vec![prog::mov64_reg(R6, R1)];
    insns.extend(store_payload());
    insns.push(prog::mov64_reg(R1, R6));
    insns.extend(prog::ld_map_fd(R2, array.fd()));
    insns.push(mov32_imm(R3, uapi::BPF_F_CURRENT_CPU as i32));
    insns.push(prog::mov64_reg(R4, R10));
    insns.push(add64_imm(R4, -8));
    insns.push(prog::mov64_imm(R5, 8));
    insns.push(prog::call_helper(uapi::BPF_FUNC_perf_event_output));
    insns.push(prog::exit());
    load(ProgramType::SocketFilter, &insns)
}

fn perf_output_records_appear_in_the_ring_of_the_cpu_that_ran() -> TestResult {
    require_root()?;
    let possible = cpu::num_possible_cpus()? as u32;
    let array = MapFd::create(&MapCreateAttr::new(MapType::PerfEventArray, 4, 4, possible))?;
    let mut rings = perf_rings(&array)?;
    let prog = perf_output_prog(&array)?;
    let ret = run_socket_filter(&prog)?;
    if ret != 0 {
        return Err(fail(format!("bpf_perf_event_output returned {ret}")));
    }
    let mut found = 0;
    for r in &mut rings {
        let readable = r.ring.readable()?;
        if readable.is_empty() {
            continue;
        }
        found += 1;
        // struct perf_event_header { u32 type; u16 misc; u16 size; }, then u32 raw size, raw data.
        let mut hdr = [0u8; 8];
        readable
            .copy_to(0, &mut hdr)
            .ok_or_else(|| fail("record shorter than its header"))?;
        let ty = u32::from_ne_bytes(hdr[0..4].try_into().unwrap());
        let size = u16::from_ne_bytes(hdr[6..8].try_into().unwrap()) as usize;
        assert_eq!(ty, uapi::PERF_RECORD_SAMPLE, "cpu {}", r.cpu);
        assert_eq!(size, readable.len(), "one record fills the readable bytes");
        let (a, b) = readable.get(8, 4).unwrap();
        assert!(b.is_empty());
        let raw_size = u32::from_ne_bytes(a.try_into().unwrap()) as usize;
        // The raw area is padded so that size field + data is 8-byte aligned.
        assert_eq!(raw_size, 12);
        assert_eq!(size, 8 + 4 + raw_size);
        let (data, _) = readable.get(12, 8).unwrap();
        assert_eq!(data, PAYLOAD);
        let head = readable.head();
        r.ring.set_data_tail(head)?;
        assert_eq!(r.ring.data_tail(), head);
        assert!(r.ring.readable()?.is_empty());
        // Moving past the head that was read is refused.
        assert!(r.ring.set_data_tail(head + 8).is_err());
    }
    assert_eq!(found, 1, "exactly one CPU's ring holds the record");
    Ok(())
}

fn disabled_perf_event_takes_no_records_until_enabled() -> TestResult {
    require_root()?;
    let possible = cpu::num_possible_cpus()? as u32;
    let array = MapFd::create(&MapCreateAttr::new(MapType::PerfEventArray, 4, 4, possible))?;
    let rings = perf_rings(&array)?;
    let prog = perf_output_prog(&array)?;
    for r in &rings {
        perf::disable(r.fd.as_fd())?;
    }
    let ret = run_socket_filter(&prog)?;
    assert!(ret < 0, "output into a disabled event fails (got {ret})");
    assert!(rings.iter().all(|r| r.ring.data_head() == 0));
    for r in &rings {
        perf::enable(r.fd.as_fd())?;
    }
    assert_eq!(run_socket_filter(&prog)?, 0);
    assert_eq!(rings.iter().filter(|r| r.ring.data_head() > 0).count(), 1);
    Ok(())
}

fn perf_ring_rejects_a_data_size_that_is_not_a_power_of_two() -> TestResult {
    require_root()?;
    let fd = perf::open_bpf_output(cpu::online_cpus()?[0], Wakeup::Watermark(1))?;
    for pages in [0, 3, 6] {
        match PerfRing::new(fd.as_fd(), pages) {
            Err(mmap::RingError::NotPowerOfTwoPages { pages: p }) => assert_eq!(p, pages),
            other => return Err(fail(format!("{pages} pages: {other:?}"))),
        }
    }
    PerfRing::new(fd.as_fd(), 4)?;
    Ok(())
}

// ---- BPF ring buffer --------------------------------------------------------------------------

fn ringbuf_supported() -> bool {
    // The map type is the probe: ENOTSUP/EINVAL on kernels before 5.8.
    create_map(MapType::RingBuf, 0, 0, mmap::page_size() as u32).is_ok()
}

/// Calls `bpf_ringbuf_reserve(&rb, 8, 0)` and discards the record, then
/// `bpf_ringbuf_output(&rb, &PAYLOAD, 8, 0)`; returns the output's result.
fn ringbuf_prog(rb: &OwnedFd) -> TestResult<OwnedFd> {
    let mut insns = Vec::new();
    insns.extend(prog::ld_map_fd(R1, rb.as_fd()));
    insns.push(prog::mov64_imm(R2, 8));
    insns.push(prog::mov64_imm(R3, 0));
    insns.push(prog::call_helper(uapi::BPF_FUNC_ringbuf_reserve));
    insns.push(jeq_imm(R0, 0, 3));
    insns.push(prog::mov64_reg(R1, R0));
    insns.push(prog::mov64_imm(R2, 0));
    insns.push(prog::call_helper(uapi::BPF_FUNC_ringbuf_discard));
    insns.extend(store_payload());
    insns.extend(prog::ld_map_fd(R1, rb.as_fd()));
    insns.push(prog::mov64_reg(R2, R10));
    insns.push(add64_imm(R2, -8));
    insns.push(prog::mov64_imm(R3, 8));
    insns.push(prog::mov64_imm(R4, 0));
    insns.push(prog::call_helper(uapi::BPF_FUNC_ringbuf_output));
    insns.push(prog::exit());
    load(ProgramType::SocketFilter, &insns)
}

fn ringbuf_records_are_read_in_place_and_consumed() -> TestResult {
    require_root()?;
    require_feature("BPF_MAP_TYPE_RINGBUF", ringbuf_supported())?;
    let size = 4 * mmap::page_size();
    let rb = create_map(MapType::RingBuf, 0, 0, size as u32)?;
    let mut region = RingBufRegion::new(rb.as_fd(), size)?;
    assert_eq!(region.producer_pos(), 0);
    assert_eq!(region.consumer_pos(), 0);
    assert!(matches!(region.read(region.first())?, RingBufEntry::Empty));
    let prog = ringbuf_prog(&rb)?;
    // Enough runs to wrap around the ring several times (32 bytes a run).
    let runs = 3 * size / 32 + 5;
    for i in 0..runs {
        assert_eq!(run_socket_filter(&prog)?, 0);
        // Discarded 8-byte record (16) + sample record (16).
        assert_eq!(region.producer_pos(), region.consumer_pos() + 32, "run {i}");
        let first = region.first();
        let next = match region.read(first)? {
            RingBufEntry::Discarded { next } => next,
            other => {
                return Err(fail(format!(
                    "run {i}: expected a discarded record, got {other:?}"
                )))
            }
        };
        assert_eq!(next.get(), first.get() + 16);
        let after = match region.read(next)? {
            RingBufEntry::Sample { data, next } => {
                assert_eq!(data, PAYLOAD);
                next
            }
            other => return Err(fail(format!("run {i}: expected a sample, got {other:?}"))),
        };
        assert!(matches!(region.read(after)?, RingBufEntry::Empty));
        region.set_consumer_pos(after)?;
        region.full_fence();
        assert_eq!(region.available(), 0);
        // A position the consumer has passed is refused.
        assert!(region.read(first).is_err());
        assert!(region.set_consumer_pos(first).is_err());
    }
    assert_eq!(region.consumer_pos(), (runs * 32) as u64);
    Ok(())
}

fn ringbuf_region_rejects_a_bad_size() -> TestResult {
    require_root()?;
    require_feature("BPF_MAP_TYPE_RINGBUF", ringbuf_supported())?;
    let size = mmap::page_size();
    let rb = create_map(MapType::RingBuf, 0, 0, size as u32)?;
    assert!(matches!(
        RingBufRegion::new(rb.as_fd(), size * 3),
        Err(mmap::RingError::BadRingBufSize { .. })
    ));
    assert!(matches!(
        RingBufRegion::new(rb.as_fd(), 100),
        Err(mmap::RingError::BadRingBufSize { .. })
    ));
    // A region larger than the map: the kernel refuses the mapping.
    assert!(matches!(
        RingBufRegion::new(rb.as_fd(), size * 4),
        Err(mmap::RingError::Mmap(_))
    ));
    Ok(())
}

// ---- tracepoint and uprobe events with SET_BPF --------------------------------------------------

/// A program for tracing types: `bpf_ringbuf_output(&rb, &(pid_tgid >> 32), 8, 0)`.
fn tgid_to_ringbuf(prog_type: ProgramType, rb: &OwnedFd) -> TestResult<OwnedFd> {
    let mut insns = vec![
        prog::call_helper(uapi::BPF_FUNC_get_current_pid_tgid),
        rsh64_imm(R0, 32),
        stx_dw(R10, R0, -8),
    ];
    insns.extend(prog::ld_map_fd(R1, rb.as_fd()));
    insns.push(prog::mov64_reg(R2, R10));
    insns.push(add64_imm(R2, -8));
    insns.push(prog::mov64_imm(R3, 8));
    insns.push(prog::mov64_imm(R4, 0));
    insns.push(prog::call_helper(uapi::BPF_FUNC_ringbuf_output));
    insns.push(prog::mov64_imm(R0, 0));
    insns.push(prog::exit());
    load(prog_type, &insns)
}

/// Drains the region; returns how many records carry this process's tgid.
fn count_own_records(region: &mut RingBufRegion) -> TestResult<usize> {
    let me = u64::from(std::process::id());
    let mut n = 0;
    let mut pos = region.first();
    loop {
        match region.read(pos)? {
            RingBufEntry::Sample { data, next } => {
                if data.len() == 8 && u64::from_ne_bytes(data.try_into().unwrap()) == me {
                    n += 1;
                }
                pos = next;
            }
            RingBufEntry::Discarded { next } => pos = next,
            RingBufEntry::Busy | RingBufEntry::Empty => break,
        }
    }
    region.set_consumer_pos(pos)?;
    Ok(n)
}

fn tracepoint_event_runs_the_program_set_with_set_bpf() -> TestResult {
    require_root()?;
    require_feature("BPF_MAP_TYPE_RINGBUF", ringbuf_supported())?;
    let tracefs = fs::mount_tracefs()?;
    let id_path = tracefs.join("events/syscalls/sys_enter_getppid/id");
    require_feature("syscall tracepoints", id_path.exists())?;
    let id: u64 = std::fs::read_to_string(&id_path)?
        .trim()
        .parse()
        .map_err(|e| fail(format!("{e}")))?;
    let size = 16 * mmap::page_size();
    let rb = create_map(MapType::RingBuf, 0, 0, size as u32)?;
    let mut region = RingBufRegion::new(rb.as_fd(), size)?;
    let prog = tgid_to_ringbuf(ProgramType::Tracepoint, &rb)?;
    let event = perf::open_tracepoint(id)?;
    perf::set_bpf(event.as_fd(), prog.as_fd())?;
    perf::enable(event.as_fd())?;
    std::hint::black_box(std::os::unix::process::parent_id());
    let seen = count_own_records(&mut region)?;
    if seen == 0 {
        return Err(fail(
            "no record from the tracepoint program after getppid()",
        ));
    }
    // A program attached to a tracepoint runs whenever the tracepoint fires, enabled event or
    // not; closing the perf event detaches it.
    drop(event);
    // As for uprobes: a concurrent fork may hold the event fd until its exec.
    for _ in 0..50 {
        std::hint::black_box(std::os::unix::process::parent_id());
        if count_own_records(&mut region)? == 0 {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    Err(fail("a closed event still runs the program after a second"))
}

/// The function the uprobe test probes.
#[no_mangle]
#[inline(never)]
pub extern "C" fn sys_perf_uprobe_target(x: u64) -> u64 {
    std::hint::black_box(x).wrapping_mul(3)
}

/// The file and file offset that hold `addr`, from `/proc/self/maps`.
fn file_offset_of(addr: usize) -> TestResult<(PathBuf, u64)> {
    let maps = std::fs::read_to_string("/proc/self/maps")?;
    for line in maps.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 6 {
            continue;
        }
        let (start, end) = f[0].split_once('-').ok_or_else(|| fail(line.to_owned()))?;
        let start = usize::from_str_radix(start, 16).map_err(|e| fail(e.to_string()))?;
        let end = usize::from_str_radix(end, 16).map_err(|e| fail(e.to_string()))?;
        if (start..end).contains(&addr) {
            let off = u64::from_str_radix(f[2], 16).map_err(|e| fail(e.to_string()))?;
            return Ok((PathBuf::from(f[5]), (addr - start) as u64 + off));
        }
    }
    Err(fail(format!("{addr:#x} is in no mapping")))
}

fn uprobe_pmu_events_run_the_program_on_entry_and_return() -> TestResult {
    require_root()?;
    require_feature("BPF_MAP_TYPE_RINGBUF", ringbuf_supported())?;
    require_feature("the uprobe perf PMU", ProbeKind::Uprobe.pmu_type().is_ok())?;
    let (path, offset) = file_offset_of(sys_perf_uprobe_target as *const () as usize)?;
    let path = path
        .to_str()
        .ok_or_else(|| fail("non-UTF-8 executable path"))?
        .to_owned();
    let size = 4 * mmap::page_size();
    let rb = create_map(MapType::RingBuf, 0, 0, size as u32)?;
    let mut region = RingBufRegion::new(rb.as_fd(), size)?;
    let prog = tgid_to_ringbuf(ProgramType::Kprobe, &rb)?;
    let mut events = Vec::new();
    for retprobe in [false, true] {
        let spec = ProbeSpec {
            kind: ProbeKind::Uprobe,
            target: &path,
            offset,
            retprobe,
            pid: -1,
        };
        let event = perf::open_probe(&spec)?;
        perf::set_bpf(event.as_fd(), prog.as_fd())?;
        perf::enable(event.as_fd())?;
        events.push(event);
    }
    assert_eq!(sys_perf_uprobe_target(7), 21);
    assert_eq!(
        count_own_records(&mut region)?,
        2,
        "one record on entry, one on return"
    );
    drop(events);
    // Another test's fork may hold a copy of the event fds until its exec (CLOEXEC closes them
    // only then), so the probes go away shortly after the close, not at once.
    for _ in 0..50 {
        assert_eq!(sys_perf_uprobe_target(1), 3);
        if count_own_records(&mut region)? == 0 {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    Err(fail("closed events still run the program after a second"))
}

fn open_probe_names_a_missing_pmu_or_bad_target() -> TestResult {
    require_root()?;
    let spec = ProbeSpec {
        kind: ProbeKind::Uprobe,
        target: "/nonexistent/binary",
        offset: 0,
        retprobe: false,
        pid: -1,
    };
    match perf::open_probe(&spec) {
        Err(perf::PerfError::Sys(e)) => assert_eq!(e.call, "perf_event_open"),
        Err(perf::PerfError::PmuUnavailable { pmu, .. }) => assert_eq!(pmu, "uprobe"),
        other => return Err(fail(format!("unexpected {other:?}"))),
    }
    Ok(())
}

// ---- system facts -----------------------------------------------------------------------------

fn cpu_lists_equal_the_sysfs_files() -> TestResult {
    let possible = std::fs::read_to_string("/sys/devices/system/cpu/possible")?;
    let online = std::fs::read_to_string("/sys/devices/system/cpu/online")?;
    assert_eq!(cpu::format_cpu_list(cpu::possible_cpus()?), possible.trim());
    assert_eq!(cpu::format_cpu_list(&cpu::online_cpus()?), online.trim());
    assert_eq!(cpu::num_possible_cpus()?, cpu::possible_cpus()?.len());
    let possible = cpu::possible_cpus()?;
    assert!(cpu::online_cpus()?.iter().all(|c| possible.contains(c)));
    let nprocs = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    assert!(possible.len() >= nprocs.min(cpu::online_cpus()?.len()));
    Ok(())
}

fn kernel_version_is_what_uname_says() -> TestResult {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")?;
    let version = std::fs::read_to_string("/proc/sys/kernel/version")?;
    let v = kernel::KernelVersion::current()?;
    let nums: Vec<u32> = release
        .trim()
        .split(|c: char| !c.is_ascii_digit())
        .take(3)
        .map(|s| s.parse().unwrap_or(0))
        .collect();
    assert_eq!(
        (v.major, v.minor),
        (nums[0], nums[1]),
        "release {release:?}"
    );
    // Debian's release says x.y.0; its version string names the upstream patch level.
    let debian_patch = version
        .split_whitespace()
        .skip_while(|w| *w != "Debian")
        .nth(1)
        .and_then(|w| w.split(|c: char| !c.is_ascii_digit()).nth(2))
        .and_then(|p| p.parse::<u32>().ok());
    let ubuntu = std::path::Path::new("/proc/version_signature").exists();
    if !ubuntu {
        assert_eq!(
            v.patch,
            debian_patch.unwrap_or(nums[2]),
            "release {release:?}, version {version:?}"
        );
    }
    assert_eq!(
        v.code(),
        (v.major << 16) + (v.minor << 8) + v.patch.min(255)
    );
    Ok(())
}

/// A directory with a bpffs mounted by `fs::mount_bpffs`; unmounted and removed on drop.
struct PrivateBpffs(PathBuf);

impl Drop for PrivateBpffs {
    fn drop(&mut self) {
        let _ = fs::unmount(&self.0);
        let _ = std::fs::remove_dir(&self.0);
    }
}

fn mount_bpffs_makes_a_bpffs_that_is_recognised_and_found() -> TestResult {
    require_root()?;
    let dir = std::env::temp_dir().join(unique_name("sysbpffs"));
    std::fs::create_dir_all(&dir)?;
    assert!(!fs::is_bpffs(&dir)?);
    let guard = PrivateBpffs(dir.clone());
    fs::mount_bpffs(&dir)?;
    assert!(fs::is_bpffs(&dir)?);
    assert!(fs::mounts()?
        .iter()
        .any(|m| m.target == dir && m.fstype == "bpf"));
    let found = fs::find_bpffs()?.ok_or_else(|| fail("no bpffs found with one mounted"))?;
    assert!(fs::is_bpffs(&found)?);
    // The harness's own private bpffs is one too.
    let other = tests::BpfFs::new()?;
    assert!(fs::is_bpffs(other.path())?);
    fs::unmount(&dir)?;
    assert!(!fs::is_bpffs(&dir)?);
    drop(guard);
    assert!(!dir.exists());
    Ok(())
}

fn tracefs_is_mounted_and_discovered() -> TestResult {
    require_root()?;
    let path = fs::mount_tracefs()?;
    assert!(fs::is_tracefs(path)? || path.ends_with("debug/tracing"));
    assert_eq!(fs::find_tracefs()?, Some(path));
    assert!(path.join("events").is_dir());
    let harness = tests::tracefs()?;
    assert!(fs::is_tracefs(&harness)?);
    Ok(())
}

fn ktime_converts_to_the_current_wall_clock() -> TestResult {
    use ebpf::sys::time::{self, KernelClock};
    let now = std::time::SystemTime::now();
    let t = time::ktime_to_system_time(KernelClock::Monotonic.now_ns());
    let diff = t.duration_since(now).unwrap_or_else(|e| e.duration());
    assert!(diff < std::time::Duration::from_millis(100), "{diff:?}");
    Ok(())
}

tests::tests![
    perf_output_records_appear_in_the_ring_of_the_cpu_that_ran,
    disabled_perf_event_takes_no_records_until_enabled,
    perf_ring_rejects_a_data_size_that_is_not_a_power_of_two,
    ringbuf_records_are_read_in_place_and_consumed,
    ringbuf_region_rejects_a_bad_size,
    tracepoint_event_runs_the_program_set_with_set_bpf,
    uprobe_pmu_events_run_the_program_on_entry_and_return,
    open_probe_names_a_missing_pmu_or_bad_target,
    cpu_lists_equal_the_sysfs_files,
    kernel_version_is_what_uname_says,
    mount_bpffs_makes_a_bpffs_that_is_recognised_and_found,
    tracefs_is_mounted_and_discovered,
    ktime_converts_to_the_current_wall_clock,
];
