//! Tracing attachments against the real kernel: tracepoints, raw tracepoints, uprobes and
//! uretprobes (host and VM), kprobes and kretprobes (VM; on a kernel without kprobes, the typed
//! unsupported error), the tracefs probe events and their cleanup.
//!
//! The programs are `trace_btf`/`trace_legacy` (`counts[0]` tracepoint, `[1]` uprobe, `[2]`
//! raw tracepoint) and `kprobe_legacy` (`calls[tgid]`). `bpftool perf` and `bpftool link` give
//! an independent view of each attachment, `kprobe_events`/`uprobe_events` of the probe events
//! made through tracefs, and of their removal.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ebpf::attach::kprobe::{self, KprobeOptions, ProbeMechanism};
use ebpf::attach::perf_link::PerfMechanism;
use ebpf::attach::probe_events::{self, ProbeFile};
use ebpf::attach::tracepoint::{self, TracepointOptions};
use ebpf::attach::uprobe::{self, UprobeOptions};
use ebpf::attach::{
    elf_sym, AttachError, AttachTarget, KernelProgram, KernelSystem, PerfLink, ProgramAttachError,
};
use ebpf::maps::MapExt;
use ebpf::sys::probe::{self as sysprobe, LinkKind};
use tests::{fail, require_root, require_tool, TestResult};

const TRACEPOINT: u32 = 0;
const UPROBE: u32 = 1;
const RAW_TRACEPOINT: u32 = 2;
/// Calls each trigger makes.
const N: u64 = 20;

/// `target/bpf/<stem>.o`; the workspace root is found lexically (inside the VM only
/// `target/bpf` exists of the workspace, so `tests/..` would not resolve).
fn object(stem: &str) -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .unwrap_or(manifest)
        .join(format!("target/bpf/{stem}.o"))
}

/// Loads an object and all its programs.
fn load(stem: &str) -> TestResult<KernelSystem> {
    let mut sys = KernelSystem::load_elf(object(stem))?;
    sys.load_all()?;
    Ok(sys)
}

fn prog<'a>(sys: &'a KernelSystem, name: &str) -> TestResult<&'a KernelProgram> {
    sys.program(name)
        .ok_or_else(|| fail(format!("no program {name}")))
}

fn count(sys: &KernelSystem, index: u32) -> TestResult<u64> {
    let map = sys.map("counts").ok_or_else(|| fail("no counts map"))?;
    Ok(map.lookup_u64(&index)?)
}

fn getpid_n(n: u64) {
    for _ in 0..n {
        // glibc does not cache getpid: each call is a system call.
        std::hint::black_box(std::process::id());
    }
}

/// The text of a tracefs probe events file ("" when the kernel has none).
fn events_file(file: ProbeFile) -> TestResult<String> {
    let path = tests::tracefs()?.join(file.file_name());
    match std::fs::read_to_string(&path) {
        Ok(t) => Ok(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(fail(format!("{}: {e}", path.display()))),
    }
}

/// Whether `bpftool perf` shows program `prog_id` attached by this process with `field` =
/// `value` (`tracepoint`/`sys_enter_getpid`, `func`/`__x64_sys_getpid`).
fn bpftool_perf_has(prog_id: u32, field: &str, value: &str) -> TestResult<bool> {
    let v = tests::bpftool(&["perf", "show"])?;
    let me = u64::from(std::process::id());
    Ok(v.as_array().into_iter().flatten().any(|e| {
        e["pid"].as_u64() == Some(me)
            && e["prog_id"].as_u64() == Some(u64::from(prog_id))
            && e[field].as_str() == Some(value)
    }))
}

/// Calls `trigger` until `read` stops changing (a copy of a closed fd held by a concurrent
/// fork goes away at that child's exec), at most a second.
fn settles(mut trigger: impl FnMut(), mut read: impl FnMut() -> TestResult<u64>) -> TestResult {
    for _ in 0..50 {
        let before = read()?;
        trigger();
        if read()? == before {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(fail("a detached program still runs after a second"))
}

/// The tracefs event of a link is listed while it lives and gone once it is detached.
fn detach_removes_event(link: PerfLink, file: ProbeFile) -> TestResult {
    let event = link.tracefs_event();
    if let Some(ev) = &event {
        if !events_file(file)?.contains(ev.as_str()) {
            return Err(fail(format!("{ev} is not in {}", file.file_name())));
        }
    }
    link.detach()?;
    if let Some(ev) = event {
        if events_file(file)?.contains(ev.as_str()) {
            return Err(fail(format!(
                "{ev} is still in {} after detach",
                file.file_name()
            )));
        }
    }
    Ok(())
}

/// An error and its sources, as one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}

// ---- tracepoints ------------------------------------------------------------------------------

fn tracepoint_on_sys_enter_getpid_counts_in_a_map() -> TestResult {
    require_root()?;
    require_tool("bpftool")?;
    for stem in ["trace_btf", "trace_legacy"] {
        let mut sys = load(stem)?;
        let id = prog(&sys, "tp_getpid")?.info()?.id;
        // goebpf-style: the section names the target, the program holds the link.
        {
            let p = sys
                .program_mut("tp_getpid")
                .ok_or_else(|| fail("no tp_getpid"))?;
            p.attach(AttachTarget::Section)?;
            assert!(p.is_attached());
            let again = p.attach(AttachTarget::Section).unwrap_err();
            assert!(
                matches!(again, ProgramAttachError::AlreadyAttached { .. }),
                "{again}"
            );
        }
        let before = count(&sys, TRACEPOINT)?;
        getpid_n(N);
        let after = count(&sys, TRACEPOINT)?;
        if after < before + N {
            return Err(fail(format!(
                "{stem}: {N} getpid() counted {}",
                after - before
            )));
        }
        if !bpftool_perf_has(id, "tracepoint", "sys_enter_getpid")? {
            return Err(fail("bpftool perf does not show the tracepoint attachment"));
        }
        sys.program_mut("tp_getpid")
            .ok_or_else(|| fail("no tp_getpid"))?
            .detach()?;
        settles(|| getpid_n(N), || count(&sys, TRACEPOINT))?;
        if bpftool_perf_has(id, "tracepoint", "sys_enter_getpid")? {
            return Err(fail("bpftool perf still shows the tracepoint after detach"));
        }
    }
    Ok(())
}

fn tracepoint_attaches_through_the_ioctl_and_a_perf_link() -> TestResult {
    require_root()?;
    let sys = load("trace_btf")?;
    let p = prog(&sys, "tp_getpid")?;
    let mut mechanisms = vec![PerfMechanism::Ioctl];
    if sysprobe::link_type_supported(LinkKind::PerfEvent) {
        mechanisms.push(PerfMechanism::Link);
    }
    for m in mechanisms {
        let opts = TracepointOptions::default().perf(m);
        let link = tracepoint::attach(p.fd().unwrap(), "syscalls", "sys_enter_getpid", &opts)?;
        assert_eq!(link.is_bpf_link(), m == PerfMechanism::Link);
        let before = count(&sys, TRACEPOINT)?;
        getpid_n(N);
        assert!(count(&sys, TRACEPOINT)? >= before + N, "{m:?}");
        if let Some(fd) = link.link_fd() {
            let info = ebpf::sys::obj::link_info(fd)?;
            assert_eq!(info.prog_id, p.info()?.id);
        }
        link.detach()?;
        settles(|| getpid_n(N), || count(&sys, TRACEPOINT))?;
    }
    Ok(())
}

// ---- raw tracepoints --------------------------------------------------------------------------

fn raw_tracepoint_sys_enter_counts_every_syscall() -> TestResult {
    require_root()?;
    require_tool("bpftool")?;
    let mut sys = load("trace_btf")?;
    let id = prog(&sys, "raw_sys_enter")?.info()?.id;
    sys.program_mut("raw_sys_enter")
        .ok_or_else(|| fail("no raw_sys_enter"))?
        .attach(AttachTarget::Section)?;
    let before = count(&sys, RAW_TRACEPOINT)?;
    getpid_n(N);
    assert!(count(&sys, RAW_TRACEPOINT)? >= before + N);
    let links = tests::bpftool(&["link", "show"])?;
    let shown = links.as_array().into_iter().flatten().any(|l| {
        l["prog_id"].as_u64() == Some(u64::from(id)) && l["type"].as_str() == Some("raw_tracepoint")
    });
    if !shown {
        return Err(fail("bpftool link does not show the raw tracepoint link"));
    }
    sys.program_mut("raw_sys_enter")
        .ok_or_else(|| fail("no raw_sys_enter"))?
        .detach()?;
    settles(|| getpid_n(N), || count(&sys, RAW_TRACEPOINT))
}

// ---- uprobes ----------------------------------------------------------------------------------

/// The function the uprobe tests probe.
#[no_mangle]
#[inline(never)]
pub extern "C" fn tracing_uprobe_target(x: u64) -> u64 {
    std::hint::black_box(x).wrapping_add(5)
}

fn call_target(n: u64) {
    for i in 0..n {
        assert_eq!(tracing_uprobe_target(i), i + 5);
    }
}

/// The file offset of `addr` in its mapping, from `/proc/self/maps`: an independent view of
/// what the ELF resolver computes.
fn maps_offset_of(addr: usize) -> TestResult<u64> {
    let maps = std::fs::read_to_string("/proc/self/maps")?;
    for line in maps.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let Some((start, end)) = f.first().and_then(|r| r.split_once('-')) else {
            continue;
        };
        let (Ok(start), Ok(end)) = (
            usize::from_str_radix(start, 16),
            usize::from_str_radix(end, 16),
        ) else {
            continue;
        };
        if (start..end).contains(&addr) {
            let off = u64::from_str_radix(f[2], 16).map_err(|e| fail(e.to_string()))?;
            return Ok((addr - start) as u64 + off);
        }
    }
    Err(fail(format!("{addr:#x} is in no mapping")))
}

fn elf_resolver_agrees_with_the_process_mappings() -> TestResult {
    let exe = std::env::current_exe()?;
    let r = elf_sym::resolve(&exe, "tracing_uprobe_target")?;
    let mapped = maps_offset_of(tracing_uprobe_target as *const () as usize)?;
    assert_eq!(
        r.file_offset, mapped,
        "symbol table and /proc/self/maps disagree"
    );
    // A library by short name, through ld.so.cache or the standard directories.
    let libc = elf_sym::find_library("c")?;
    assert!(
        libc.to_string_lossy().contains("libc.so"),
        "{}",
        libc.display()
    );
    elf_sym::resolve(&libc, "getpid")?;
    Ok(())
}

fn uprobe_and_uretprobe_count_calls_of_a_test_function() -> TestResult {
    require_root()?;
    let exe = std::env::current_exe()?;
    let (pmu, events) = (
        ebpf::sys::perf::ProbeKind::Uprobe.pmu_type().is_ok(),
        tests::tracefs()?.join("uprobe_events").exists(),
    );
    let mut mechanisms = Vec::new();
    if pmu {
        mechanisms.push(ProbeMechanism::Pmu);
    }
    if events {
        mechanisms.push(ProbeMechanism::Tracefs);
    }
    tests::require_feature("uprobes (PMU or uprobe_events)", !mechanisms.is_empty())?;
    for stem in ["trace_btf", "trace_legacy"] {
        let sys = load(stem)?;
        let p = prog(&sys, "uprobe_hit")?;
        for &m in &mechanisms {
            let entry = uprobe::attach(
                p.fd().unwrap(),
                &exe,
                Some("tracing_uprobe_target"),
                &UprobeOptions::default().mechanism(m),
            )?;
            let ret = uprobe::attach(
                p.fd().unwrap(),
                &exe,
                Some("tracing_uprobe_target"),
                &UprobeOptions::retprobe()
                    .mechanism(m)
                    .pid(std::process::id()),
            )?;
            assert_eq!(
                entry.tracefs_event().is_some(),
                m == ProbeMechanism::Tracefs
            );
            let before = count(&sys, UPROBE)?;
            call_target(N);
            // Only this process calls the function: exactly one entry and one return each.
            assert_eq!(count(&sys, UPROBE)? - before, 2 * N, "{stem} {m:?}");
            detach_removes_event(entry, ProbeFile::Uprobe)?;
            detach_removes_event(ret, ProbeFile::Uprobe)?;
            settles(|| call_target(N), || count(&sys, UPROBE))?;
        }
    }
    // goebpf-style, through the program.
    let mut sys = load("trace_btf")?;
    let p = sys
        .program_mut("uprobe_hit")
        .ok_or_else(|| fail("no uprobe_hit"))?;
    p.attach(AttachTarget::uprobe(&exe, "tracing_uprobe_target"))?;
    let before = count(&sys, UPROBE)?;
    call_target(N);
    assert_eq!(count(&sys, UPROBE)? - before, N);
    sys.program_mut("uprobe_hit").unwrap().detach()?;
    Ok(())
}

// ---- kprobes ----------------------------------------------------------------------------------

/// On a kernel without kprobes: the typed unsupported error, for the module and the program.
fn kprobes_unsupported_is_typed(sys: &mut KernelSystem) -> TestResult {
    let p = prog(sys, "uprobe_hit")?;
    for m in [
        ProbeMechanism::Auto,
        ProbeMechanism::Pmu,
        ProbeMechanism::Tracefs,
    ] {
        match kprobe::attach(
            p.fd().unwrap(),
            "guess_getpid",
            &KprobeOptions::entry().mechanism(m),
        ) {
            Err(AttachError::Unsupported { feature, reason }) => {
                assert!(reason.contains("CONFIG_KPROBES"), "{feature}: {reason}");
                if m == ProbeMechanism::Auto {
                    assert_eq!(feature, "kprobes");
                }
            }
            other => return Err(fail(format!("{m:?}: expected unsupported, got {other:?}"))),
        }
    }
    let mut legacy = load("kprobe_legacy")?;
    let k = legacy
        .program_mut("kprobe0")
        .ok_or_else(|| fail("no kprobe0"))?;
    let e = k.attach(AttachTarget::Section).unwrap_err();
    match e.attach_error() {
        Some(AttachError::Unsupported { reason, .. }) if reason.contains("CONFIG_KPROBES") => {}
        _ => return Err(fail(format!("expected unsupported, got {e:?}"))),
    }
    assert!(!k.is_attached());
    Ok(())
}

fn kprobe_and_kretprobe_on_getpid_count_in_a_map() -> TestResult {
    require_root()?;
    let mut sys = load("trace_btf")?;
    let (pmu, events) = kprobe::available_mechanisms();
    if !pmu && !events {
        // This host (CONFIG_KPROBES unset): not a skip, the error is what is tested.
        return kprobes_unsupported_is_typed(&mut sys);
    }
    require_tool("bpftool")?;
    let p = prog(&sys, "uprobe_hit")?;
    let id = p.info()?.id;
    let symbol = kprobe::resolve_symbol("guess_getpid");
    let mut mechanisms = Vec::new();
    if pmu {
        mechanisms.push(ProbeMechanism::Pmu);
    }
    if events {
        mechanisms.push(ProbeMechanism::Tracefs);
    }
    for m in mechanisms {
        for perf in [PerfMechanism::Auto, PerfMechanism::Ioctl] {
            let entry = kprobe::attach(
                p.fd().unwrap(),
                "guess_getpid",
                &KprobeOptions::entry().mechanism(m).perf(perf),
            )?;
            let mut ret_opts = KprobeOptions::retprobe().mechanism(m).perf(perf);
            if m == ProbeMechanism::Tracefs {
                ret_opts = ret_opts.maxactive(64);
            }
            let ret = kprobe::attach(p.fd().unwrap(), &symbol, &ret_opts)?;
            if let Some(ev) = ret.tracefs_event() {
                let text = events_file(ProbeFile::Kprobe)?;
                let line = text
                    .lines()
                    .find(|l| l.contains(ev.as_str()))
                    .ok_or_else(|| fail(format!("{ev} not in kprobe_events")))?;
                assert!(line.starts_with("r64:ebpf/"), "{line}");
            }
            let before = count(&sys, UPROBE)?;
            getpid_n(N);
            let got = count(&sys, UPROBE)? - before;
            if got < 2 * N {
                return Err(fail(format!("{m:?}/{perf:?}: {N} getpid() counted {got}")));
            }
            if !bpftool_perf_has(id, "func", &symbol)? {
                return Err(fail(format!(
                    "bpftool perf does not show the kprobe on {symbol}"
                )));
            }
            detach_removes_event(entry, ProbeFile::Kprobe)?;
            detach_removes_event(ret, ProbeFile::Kprobe)?;
            settles(|| getpid_n(N), || count(&sys, UPROBE))?;
        }
    }
    // goebpf-style: kprobe/guess_execve and kretprobe/guess_execve from their sections.
    let mut legacy = load("kprobe_legacy")?;
    for name in ["kprobe0", "kprobe1"] {
        legacy
            .program_mut(name)
            .ok_or_else(|| fail(format!("no {name}")))?
            .attach(AttachTarget::Section)?;
    }
    // By absolute path: a PATH search tries execve in each directory, every try a hit.
    let status = std::process::Command::new(true_path()?).spawn()?;
    let child = status.id();
    let mut status = status;
    status.wait()?;
    let calls = legacy.map("calls").ok_or_else(|| fail("no calls map"))?;
    assert_eq!(
        calls.lookup_u64(&child)?,
        2,
        "one entry and one return of execve"
    );
    for name in ["kprobe0", "kprobe1"] {
        legacy.program_mut(name).unwrap().detach()?;
    }
    Ok(())
}

// ---- probe events -----------------------------------------------------------------------------

/// The absolute path of `true`.
fn true_path() -> TestResult<PathBuf> {
    let paths = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&paths)
        .map(|d| d.join("true"))
        .find(|p| p.is_file())
        .ok_or_else(|| fail("no `true` on PATH"))
}

/// A pid that no process has (a child that has exited and been reaped).
fn dead_pid() -> TestResult<u32> {
    let mut child = std::process::Command::new("true").spawn()?;
    let pid = child.id();
    child.wait()?;
    if Path::new("/proc").join(pid.to_string()).exists() {
        return Err(fail("the reaped child's pid is in use again"));
    }
    Ok(pid)
}

fn cleanup_probes_removes_only_events_of_dead_processes() -> TestResult {
    require_root()?;
    let tracefs = tests::tracefs()?;
    let exe = std::env::current_exe()?;
    let offset = elf_sym::resolve(&exe, "tracing_uprobe_target")?.file_offset;
    let target = format!("{}:{offset:#x}", exe.display());
    let dead = dead_pid()?;
    let me = std::process::id();
    let mut files = Vec::new();
    if tracefs.join("uprobe_events").exists() {
        files.push((ProbeFile::Uprobe, target.clone()));
    }
    if tracefs.join("kprobe_events").exists() {
        files.push((ProbeFile::Kprobe, kprobe::resolve_symbol("guess_getpid")));
    }
    tests::require_feature("uprobe_events or kprobe_events", !files.is_empty())?;
    for (file, target) in &files {
        let stale = probe_events::event_name(dead, 0, "stale");
        let live = probe_events::event_name(me, 999_999, "live");
        let path = tracefs.join(file.file_name());
        for name in [&stale, &live] {
            let line = probe_events::definition(false, None, probe_events::GROUP, name, target);
            std::fs::OpenOptions::new()
                .append(true)
                .open(&path)
                .and_then(|mut f| std::io::Write::write_all(&mut f, line.as_bytes()))
                .map_err(|e| fail(format!("writing {line:?}: {e}")))?;
        }
        let listed: Vec<String> = probe_events::list_probes()?
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert!(
            listed.contains(&stale) && listed.contains(&live),
            "{listed:?}"
        );
        let removed = probe_events::cleanup_probes()?;
        assert!(removed.iter().any(|e| e.name == stale), "{removed:?}");
        assert!(removed.iter().all(|e| e.pid != Some(me)), "{removed:?}");
        let text = events_file(*file)?;
        assert!(
            !text.contains(stale.as_str()),
            "the stale event is still there"
        );
        assert!(
            text.contains(live.as_str()),
            "the live process's event was removed"
        );
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .and_then(|mut f| {
                std::io::Write::write_all(
                    &mut f,
                    format!("-:{}/{live}", probe_events::GROUP).as_bytes(),
                )
            })?;
        assert!(!events_file(*file)?.contains(live.as_str()));
    }
    Ok(())
}

fn tracing_errors_are_typed() -> TestResult {
    require_root()?;
    let sys = load("trace_btf")?;
    let up = prog(&sys, "uprobe_hit")?;
    let tp = prog(&sys, "tp_getpid")?;
    let exe = std::env::current_exe()?;
    // A symbol the binary does not have: the resolver's error, in the source chain.
    let e = uprobe::attach(
        up.fd().unwrap(),
        &exe,
        Some("no_such_function_here"),
        &UprobeOptions::default(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("resolve uprobe target"), "{e}");
    let chain = error_chain(&e);
    assert!(
        chain.contains("no symbol \"no_such_function_here\""),
        "{chain}"
    );
    // A tracepoint the kernel does not have.
    let e = tracepoint::attach(
        tp.fd().unwrap(),
        "syscalls",
        "sys_enter_nothing",
        &TracepointOptions::default(),
    )
    .unwrap_err();
    assert_eq!(e.errno(), Some(2), "{e}");
    // A tracepoint program is not a uprobe, a kprobe program not a tracepoint.
    let e = uprobe::attach(
        tp.fd().unwrap(),
        &exe,
        Some("tracing_uprobe_target"),
        &UprobeOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(e, AttachError::WrongProgramType { .. }), "{e}");
    let e = tracepoint::attach(
        up.fd().unwrap(),
        "syscalls",
        "sys_enter_getpid",
        &TracepointOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(e, AttachError::WrongProgramType { .. }), "{e}");
    let e = tracepoint::attach_raw(up.fd().unwrap(), "sys_enter").unwrap_err();
    assert!(matches!(e, AttachError::WrongProgramType { .. }), "{e}");
    // The section "uprobe" names no target.
    let mut sys = sys;
    let p = sys.program_mut("uprobe_hit").unwrap();
    let e = p.attach(AttachTarget::Section).unwrap_err();
    assert!(matches!(e, ProgramAttachError::NoTarget { .. }), "{e}");
    assert!(matches!(
        p.detach(),
        Err(ProgramAttachError::NotAttached { .. })
    ));
    Ok(())
}

/// libbpf's `BPF_KSYSCALL` on `ksyscall/kill` (`core_ksyscall.o`): attached from its section
/// name to the system call's entry point, it reads the arguments through the kernel's `pt_regs`
/// wrapper when the loader's `LINUX_HAS_SYSCALL_WRAPPER` says there is one, so it records the
/// pid and signal this thread passes only if that value is right.
fn bpf_ksyscall_reads_the_system_call_arguments() -> TestResult {
    require_root()?;
    let (pmu, events) = kprobe::available_mechanisms();
    tests::require_feature("kprobes", pmu || events)?;
    let mut sys = KernelSystem::load_elf(object("core_ksyscall"))?;
    let recorded = std::thread::scope(|s| {
        s.spawn(|| -> TestResult<(u64, i32, i32)> {
            let tid = rustix::thread::gettid().as_raw_nonzero().get() as u32;
            sys.set_global_as("target_tid", &tid)?;
            let p = sys
                .program_mut("ksyscall_kill")
                .ok_or_else(|| fail("no ksyscall_kill"))?;
            p.load()?;
            p.attach(AttachTarget::Section)?;
            // kill(getpid(), 0): checks that the process exists, sends nothing.
            let me = rustix::process::getpid();
            for _ in 0..3 {
                rustix::process::test_kill_process(me)
                    .map_err(|e| fail(format!("kill(pid, 0): {e}")))?;
            }
            p.detach()?;
            Ok((
                sys.global_as("hits")?,
                sys.global_as("last_pid_arg")?,
                sys.global_as("last_sig_arg")?,
            ))
        })
        .join()
        .map_err(|_| fail("the probing thread panicked"))?
    })?;
    let me = rustix::process::getpid().as_raw_nonzero().get();
    if recorded != (3, me, 0) {
        return Err(fail(format!(
            "recorded (hits, pid, signal) = {recorded:?}, expected (3, {me}, 0)"
        )));
    }
    Ok(())
}

tests::tests![
    tracepoint_on_sys_enter_getpid_counts_in_a_map,
    tracepoint_attaches_through_the_ioctl_and_a_perf_link,
    raw_tracepoint_sys_enter_counts_every_syscall,
    elf_resolver_agrees_with_the_process_mappings,
    uprobe_and_uretprobe_count_calls_of_a_test_function,
    kprobe_and_kretprobe_on_getpid_count_in_a_map,
    bpf_ksyscall_reads_the_system_call_arguments,
    cleanup_probes_removes_only_events_of_dead_processes,
    tracing_errors_are_typed,
];
