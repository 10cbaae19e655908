//! CO-RE against the real kernel: the kernel's BTF, BTF sanitising, and `core_task.o` (built
//! once against a vmlinux.h) reading the current task's fields from a tracepoint and a uprobe,
//! checked against what this process knows about itself.

use std::os::fd::AsFd;
use std::path::PathBuf;

use ebpf::attach::kernel_btf::{btf_features, kernel_btf, VMLINUX_BTF};
use ebpf::attach::{KernelSystem, LoadOptions, ProgramError};
use ebpf::elf::btf::{BtfBuilder, BtfFeatures, BtfKind};
use ebpf::sys::perf::{self, ProbeKind, ProbeSpec};
use tests::{
    cmd, fail, require_feature, require_root, require_tool, unique_name, BpfFs, TestResult,
};

/// `target/bpf/<stem>.o`, without `..` (the VM's initramfs has no `tests/` folder to go
/// through).
fn object(stem: &str) -> PathBuf {
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .unwrap_or(manifest)
        .join(format!("target/bpf/{stem}.o"))
}

/// `struct task_result` of core_task.c.
#[derive(Debug)]
struct TaskResult {
    hits: u32,
    pid: u32,
    tgid: u32,
    ppid: u32,
    comm: String,
    pid_exists: u32,
    fake_exists: u32,
    task_size: u32,
    fake_type_exists: u32,
}

fn task_result(sys: &KernelSystem, name: &str) -> TestResult<TaskResult> {
    let b = sys.global(name)?;
    if b.len() != 48 {
        return Err(fail(format!("{name} is {} bytes, expected 48", b.len())));
    }
    let u = |o: usize| u32::from_ne_bytes(b[o..o + 4].try_into().expect("4 bytes"));
    let comm = &b[16..32];
    let end = comm.iter().position(|&c| c == 0).unwrap_or(16);
    Ok(TaskResult {
        hits: u(0),
        pid: u(4),
        tgid: u(8),
        ppid: u(12),
        comm: String::from_utf8_lossy(&comm[..end]).into_owned(),
        pid_exists: u(32),
        fake_exists: u(36),
        task_size: u(40),
        fake_type_exists: u(44),
    })
}

fn load_core_task() -> TestResult<(KernelSystem, BpfFs)> {
    load_pinned("core_task")
}

/// `target/bpf/<stem>.o` loaded with a private bpffs as its pin root (returned with it: the
/// system drops first).
fn load_pinned(stem: &str) -> TestResult<(KernelSystem, BpfFs)> {
    let path = object(stem);
    if !path.exists() {
        return Err(fail(format!(
            "{} is missing (cargo xtask build-bpf needs bpftool and {VMLINUX_BTF})",
            path.display()
        )));
    }
    let fs = BpfFs::new()?;
    let sys = KernelSystem::load_elf_with(&path, &LoadOptions::default().pin_root(fs.path()))?;
    Ok((sys, fs))
}

/// Checks what a program recorded against this thread's own view of itself (and the kernel's
/// BTF for the struct size).
fn check_task(r: &TaskResult, tid: u32) -> TestResult {
    let comm = std::fs::read_to_string(format!("/proc/self/task/{tid}/comm"))?;
    let size = kernel_btf()?
        .find(BtfKind::Struct, "task_struct")
        .and_then(|id| kernel_btf().ok()?.size_of(id))
        .ok_or_else(|| fail("no task_struct in the kernel's BTF"))?;
    let want = (
        tid,
        std::process::id(),
        std::os::unix::process::parent_id(),
        comm.trim_end(),
        1,
        0,
        size,
        1,
    );
    let got = (
        r.pid,
        r.tgid,
        r.ppid,
        r.comm.as_str(),
        r.pid_exists,
        r.fake_exists,
        r.task_size,
        r.fake_type_exists,
    );
    if r.hits == 0 || got != want {
        return Err(fail(format!(
            "recorded {r:?}; expected (pid, tgid, ppid, comm, pid exists, fake field exists, size, fake type exists) = {want:?}"
        )));
    }
    Ok(())
}

fn kernel_btf_is_parsed_once_and_agrees_with_bpftool() -> TestResult {
    require_root()?;
    require_feature(VMLINUX_BTF, std::path::Path::new(VMLINUX_BTF).exists())?;
    require_tool("bpftool")?;
    let start = std::time::Instant::now();
    let btf = kernel_btf()?;
    let first = start.elapsed();
    let again = kernel_btf()?;
    if !std::sync::Arc::ptr_eq(&btf, &again) {
        return Err(fail("kernel_btf() parsed the file twice"));
    }
    let id = btf
        .find(BtfKind::Struct, "task_struct")
        .ok_or_else(|| fail("no task_struct"))?;
    let t = btf.type_by_id(id).ok_or_else(|| fail("bad id"))?;
    let text = cmd("bpftool", &["btf", "dump", "file", VMLINUX_BTF])?;
    let want = format!(
        "[{id}] STRUCT 'task_struct' size={} vlen={}",
        t.size_or_type, t.vlen
    );
    if !text.lines().any(|l| l == want) {
        return Err(fail(format!("bpftool has no line {want:?}")));
    }
    let count = text.lines().filter(|l| l.starts_with('[')).count();
    if count + 1 != btf.types().len() {
        return Err(fail(format!(
            "bpftool lists {count} types, we parsed {}",
            btf.types().len() - 1
        )));
    }
    eprintln!(
        "kernel btf: {} types, {} bytes, parsed in {first:?}",
        btf.types().len(),
        btf.raw().len()
    );
    Ok(())
}

fn sanitised_object_btf_loads_with_every_feature_rewritten() -> TestResult {
    require_root()?;
    let features = btf_features();
    require_feature("BTF FUNC and DATASEC", features.func && features.datasec)?;
    let spec = ebpf::elf::ObjectSpec::from_path(object("globals_btf"))?;
    let btf = spec
        .btf
        .as_ref()
        .ok_or_else(|| fail("globals_btf has no BTF"))?;
    for f in [BtfFeatures::NONE, features] {
        let raw = btf.sanitized(&f)?;
        if let Err(e) = ebpf::sys::btf::load(raw.raw(), None) {
            return Err(fail(format!(
                "the kernel refused BTF sanitised for {f:?}: {e}"
            )));
        }
    }
    Ok(())
}

fn tracepoint_reads_task_fields_through_core() -> TestResult {
    require_root()?;
    require_feature(VMLINUX_BTF, std::path::Path::new(VMLINUX_BTF).exists())?;
    let tracefs = tests::tracefs()?;
    let id_path = tracefs.join("events/syscalls/sys_enter_getpid/id");
    require_feature("syscall tracepoints", id_path.exists())?;
    let id: u64 = std::fs::read_to_string(&id_path)?
        .trim()
        .parse()
        .map_err(|e| fail(format!("{e}")))?;
    let (mut sys, _fs) = load_core_task()?;
    let tid = rustix::thread::gettid().as_raw_nonzero().get() as u32;
    sys.set_global_as("target_pid", &tid)?;
    let p = sys
        .program_mut("core_tp_getpid")
        .ok_or_else(|| fail("no core_tp_getpid"))?;
    p.load()?;
    let report = p.core_report().ok_or_else(|| fail("no CO-RE report"))?;
    if report.outcomes.is_empty() || report.poisoned().count() != 1 {
        return Err(fail(format!(
            "expected CO-RE relocations with one poisoned (the dead read of a missing field): {:?}",
            report.poisoned().collect::<Vec<_>>()
        )));
    }
    let fd = p.fd().ok_or_else(|| fail("not loaded"))?;
    let event = perf::open_tracepoint(id)?;
    perf::set_bpf(event.as_fd(), fd)?;
    perf::enable(event.as_fd())?;
    std::hint::black_box(std::process::id());
    drop(event);
    check_task(&task_result(&sys, "tp_result")?, tid)
}

/// The function the uprobe test probes.
#[no_mangle]
#[inline(never)]
pub extern "C" fn core_uprobe_target(x: u64) -> u64 {
    std::hint::black_box(x).wrapping_add(1)
}

/// The file and file offset that hold `addr`, from `/proc/self/maps`.
fn file_offset_of(addr: usize) -> TestResult<(String, u64)> {
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
            return Ok((f[5].to_owned(), (addr - start) as u64 + off));
        }
    }
    Err(fail(format!("{addr:#x} is in no mapping")))
}

fn uprobe_reads_task_fields_through_core() -> TestResult {
    require_root()?;
    require_feature(VMLINUX_BTF, std::path::Path::new(VMLINUX_BTF).exists())?;
    require_feature("the uprobe perf PMU", ProbeKind::Uprobe.pmu_type().is_ok())?;
    let (path, offset) = file_offset_of(core_uprobe_target as *const () as usize)?;
    let (mut sys, _fs) = load_core_task()?;
    let tid = rustix::thread::gettid().as_raw_nonzero().get() as u32;
    sys.set_global_as("target_pid", &tid)?;
    let p = sys
        .program_mut("core_uprobe")
        .ok_or_else(|| fail("no core_uprobe"))?;
    p.load()?;
    let fd = p.fd().ok_or_else(|| fail("not loaded"))?;
    let spec = ProbeSpec {
        kind: ProbeKind::Uprobe,
        target: &path,
        offset,
        retprobe: false,
        pid: -1,
    };
    let event = perf::open_probe(&spec)?;
    perf::set_bpf(event.as_fd(), fd)?;
    perf::enable(event.as_fd())?;
    assert_eq!(core_uprobe_target(1), 2);
    drop(event);
    check_task(&task_result(&sys, "up_result")?, tid)
}

fn a_missing_field_read_unguarded_names_the_relocation_and_source_line() -> TestResult {
    require_root()?;
    // A custom target BTF (btfhub-style) where task_struct has `pid` only: the program's
    // unguarded read of `tgid` is poisoned and the verifier reaches it.
    let mut b = BtfBuilder::new();
    let int = b.add_int("int", 4, true);
    b.add_struct("task_struct", 8, &[("pid", int, 0)]);
    let btf = b.build()?;
    let file = std::env::temp_dir().join(unique_name("core-btf"));
    std::fs::write(&file, btf.raw())?;
    let fs = BpfFs::new()?;
    let options = LoadOptions::default().pin_root(fs.path()).core_btf(&file);
    let result = KernelSystem::load_elf_with(object("core_task"), &options).map(|mut sys| {
        sys.program_mut("core_tp_getpid")
            .map(|p| p.load())
            .ok_or_else(|| fail("no core_tp_getpid"))
    });
    std::fs::remove_file(&file)?;
    match result?? {
        Err(ProgramError::CoreRelocation {
            relocation,
            location,
            source,
            ..
        }) => {
            let loc = location.ok_or_else(|| fail("no source location"))?;
            if relocation.type_name != "task_struct"
                || !relocation.poisoned
                || !loc.file.ends_with("core_task.c")
                || relocation.kind != ebpf::elf::CoreRelocationKind::FieldByteOffset
                || !source.log().contains("195896080")
            {
                return Err(fail(format!("{relocation:?} at {loc:?}")));
            }
            Ok(())
        }
        other => Err(fail(format!(
            "expected a CO-RE relocation error, got {other:?}"
        ))),
    }
}

fn a_missing_custom_btf_file_is_named_when_the_program_loads() -> TestResult {
    require_root()?;
    let fs = BpfFs::new()?;
    let missing = std::env::temp_dir().join(unique_name("no-such-btf"));
    let options = LoadOptions::default()
        .pin_root(fs.path())
        .core_btf(&missing);
    let mut sys = KernelSystem::load_elf_with(object("core_task"), &options)?;
    let p = sys
        .program_mut("core_uprobe")
        .ok_or_else(|| fail("no core_uprobe"))?;
    match p.load() {
        Err(e) => {
            let mut text = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                text.push_str(&format!(": {s}"));
                src = s.source();
            }
            if !text.contains(&missing.display().to_string()) {
                return Err(fail(format!("error does not name the file: {text}")));
            }
            Ok(())
        }
        Ok(()) => Err(fail("loaded without its target BTF")),
    }
}

fn kconfig_and_ksym_externs_read_the_running_kernel() -> TestResult {
    require_root()?;
    require_feature(VMLINUX_BTF, std::path::Path::new(VMLINUX_BTF).exists())?;
    let id_path = tests::tracefs()?.join("events/syscalls/sys_enter_getpid/id");
    require_feature("syscall tracepoints", id_path.exists())?;
    let id: u64 = std::fs::read_to_string(&id_path)?
        .trim()
        .parse()
        .map_err(|e| fail(format!("{e}")))?;
    let (mut sys, _fs) = load_pinned("core_kconfig")?;
    if sys.map(".kconfig").is_none() {
        return Err(fail("no .kconfig map"));
    }
    if !sys.btf_loaded() {
        return Err(fail(
            "the kernel refused the BTF with its extern sections rewritten",
        ));
    }
    let tid = rustix::thread::gettid().as_raw_nonzero().get() as u32;
    sys.set_global_as("target_pid", &tid)?;
    let p = sys
        .program_mut("core_kconfig_getpid")
        .ok_or_else(|| fail("no core_kconfig_getpid"))?;
    p.load()?;
    let fd = p.fd().ok_or_else(|| fail("not loaded"))?;
    let event = perf::open_tracepoint(id)?;
    perf::set_bpf(event.as_fd(), fd)?;
    perf::enable(event.as_fd())?;
    std::hint::black_box(std::process::id());
    drop(event);
    let b = sys.global("kconfig_result")?;
    if b.len() != 56 {
        return Err(fail(format!("kconfig_result is {} bytes", b.len())));
    }
    let u = |o: usize| u32::from_ne_bytes(b[o..o + 4].try_into().expect("4 bytes"));
    let u64_at = |o: usize| u64::from_ne_bytes(b[o..o + 8].try_into().expect("8 bytes"));
    // Independent views: the version bpf-sys computes, the config and kallsyms files.
    let version = ebpf::sys::kernel::KernelVersion::current()
        .map_err(|e| fail(e.to_string()))?
        .code();
    let hz: u32 = ebpf::attach::kernel_config::kernel_config()?
        .get("CONFIG_HZ")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| fail("no CONFIG_HZ in the kernel config"))?;
    let kallsyms = std::fs::read_to_string("/proc/kallsyms")?;
    let schedule = kallsyms
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.get(2) == Some(&"schedule")).then(|| u64::from_str_radix(f[0], 16).ok())?
        })
        .ok_or_else(|| fail("no schedule in /proc/kallsyms"))?;
    // libbpf's computed values, from views of our own: the wrapper of bpf(2) in kallsyms, and
    // bpf_get_attach_cookie among the helper ids of the kernel's BTF.
    let wrapper = kallsyms.lines().any(|l| {
        let name = l.split_whitespace().nth(2).unwrap_or("");
        name.strip_suffix("_sys_bpf")
            .is_some_and(|arch| arch.starts_with("__") && arch != "__se" && arch != "__do")
    });
    let vmlinux = kernel_btf()?;
    let cookie = vmlinux
        .find(BtfKind::Enum, "bpf_func_id")
        .and_then(|id| vmlinux.type_by_id(id))
        .is_some_and(|t| match &t.data {
            ebpf::elf::btf::BtfTypeData::Enum(values) => values
                .iter()
                .any(|(name, _)| &**name == "BPF_FUNC_get_attach_cookie"),
            _ => false,
        });
    let got = (
        u(4),
        u(8),
        u(12),
        u(16),
        u64_at(24),
        u64_at(32),
        u64_at(40),
        u(20),
        u(48),
    );
    let want = (
        version,
        hz,
        1,
        0,
        schedule,
        0,
        0,
        u32::from(wrapper),
        u32::from(cookie),
    );
    if u(0) == 0 || got != want {
        return Err(fail(format!(
            "recorded (version, hz, bpf_syscall, missing option, &schedule, &missing, &missing typed, LINUX_HAS_SYSCALL_WRAPPER, LINUX_HAS_BPF_COOKIE) = {got:?}, expected {want:?} (hits {})",
            u(0)
        )));
    }
    Ok(())
}

/// A typed `__ksym` loaded and run: `core_ksym.o` reads the per-CPU `runqueues` (a
/// `BPF_PSEUDO_BTF_ID` load of the kernel's `VAR`) from a raw tracepoint on a thread pinned to
/// one CPU, through `bpf_this_cpu_ptr` and `bpf_per_cpu_ptr(.., 0)`: each runqueue's `cpu`
/// field names the CPU it belongs to.
fn typed_ksym_reads_the_per_cpu_runqueue() -> TestResult {
    use ebpf::attach::AttachTarget;
    require_root()?;
    require_feature(VMLINUX_BTF, std::path::Path::new(VMLINUX_BTF).exists())?;
    require_feature(
        "a `runqueues` VAR in its BTF and `runqueues` in /proc/kallsyms (CONFIG_KALLSYMS_ALL)",
        tests::typed_ksym_var_loadable("runqueues"),
    )?;
    let (mut sys, _fs) = load_pinned("core_ksym")?;
    let cpus = ebpf::sys::cpu::online_cpus()?;
    let cpu = cpus[cpus.len() - 1];
    let recorded = std::thread::scope(|s| {
        s.spawn(|| -> TestResult<Vec<u8>> {
            let mut set = rustix::thread::CpuSet::new();
            set.set(cpu as usize);
            rustix::thread::sched_setaffinity(None, &set)
                .map_err(|e| fail(format!("sched_setaffinity({cpu}): {e}")))?;
            let tid = rustix::thread::gettid().as_raw_nonzero().get() as u32;
            sys.set_global_as("target_pid", &tid)?;
            let p = sys
                .program_mut("core_ksym_sys_enter")
                .ok_or_else(|| fail("no core_ksym_sys_enter"))?;
            p.load()?;
            p.attach(AttachTarget::Section)?;
            for _ in 0..10 {
                std::hint::black_box(rustix::process::getppid());
            }
            p.detach()?;
            Ok(sys.global("ksym_result")?)
        })
        .join()
        .map_err(|_| fail("the pinned thread panicked"))?
    })?;
    if recorded.len() != 16 {
        return Err(fail(format!("ksym_result is {} bytes", recorded.len())));
    }
    let word = |i: usize| u32::from_ne_bytes(recorded[4 * i..4 * i + 4].try_into().expect("4"));
    let (hits, this_rq_cpu, rq0_cpu, smp_cpu) = (word(0), word(1), word(2), word(3));
    if hits == 0 || (this_rq_cpu, rq0_cpu, smp_cpu) != (cpu, 0, cpu) {
        return Err(fail(format!(
            "recorded (this_rq->cpu, rq0->cpu, smp id) = ({this_rq_cpu}, {rq0_cpu}, \
             {smp_cpu}) in {hits} hits, expected ({cpu}, 0, {cpu})"
        )));
    }
    Ok(())
}

/// kfunc calls loaded and run: `core_kfunc.o`'s TC program takes a reference to the task
/// `target_pid` with `bpf_task_from_pid` (Linux 6.2), reads its pid through it and hands it back
/// with `bpf_task_release`; run with `BPF_PROG_TEST_RUN`, it returns that pid (this process's),
/// or -1 for a pid no task has.
fn kfunc_calls_take_and_release_a_task_reference() -> TestResult {
    use ebpf::attach::TestRun;
    require_root()?;
    require_feature(VMLINUX_BTF, std::path::Path::new(VMLINUX_BTF).exists())?;
    require_feature(
        "the kfunc bpf_task_from_pid (Linux 6.2)",
        tests::kernel_btf_has(BtfKind::Func, "bpf_task_from_pid"),
    )?;
    let (mut sys, _fs) = load_pinned("core_kfunc")?;
    // Extern FUNCs rewritten as global ones with named parameters, as the kernel wants.
    if !sys.btf_loaded() {
        return Err(fail("the kernel refused the object's BTF"));
    }
    let me = std::process::id();
    sys.program_mut("core_kfunc_task_pid")
        .ok_or_else(|| fail("no core_kfunc_task_pid"))?
        .load()?;
    // Above PID_MAX_LIMIT (4 Mi): no task has it.
    for (pid, want) in [(me, me as i32), (1 << 30, -1)] {
        sys.set_global_as("target_pid", &pid)?;
        let p = sys
            .program("core_kfunc_task_pid")
            .ok_or_else(|| fail("no core_kfunc_task_pid"))?;
        let got = p.test_run(&TestRun::with_data(&[0u8; 64]))?.return_value as i32;
        if got != want {
            return Err(fail(format!("task {pid}: returned {got}, expected {want}")));
        }
    }
    Ok(())
}

/// Kfuncs wherever the kernel has them: `core_kfunc_ct.o` calls nf_conntrack's
/// `bpf_xdp_ct_lookup` and `bpf_ct_release`. Built in (this machine), they are vmlinux's; in a
/// module (Debian's kernels: the VM tests load nf_conntrack), the loader finds them in the
/// module's BTF and loads the program with an `fd_array` holding that BTF object. Run with
/// `BPF_PROG_TEST_RUN`, the lookup of a connection nobody made reports ENOENT.
fn kfuncs_in_vmlinux_or_a_module_are_called() -> TestResult {
    use ebpf::attach::kernel_btf::module_btfs;
    use ebpf::attach::TestRun;
    require_root()?;
    require_feature(VMLINUX_BTF, std::path::Path::new(VMLINUX_BTF).exists())?;
    let in_vmlinux = tests::kernel_btf_has(BtfKind::Func, "bpf_xdp_ct_lookup");
    let module = if in_vmlinux {
        None
    } else {
        module_btfs()
            .unwrap_or_default()
            .into_iter()
            .find(|m| m.btf.find(BtfKind::Func, "bpf_xdp_ct_lookup").is_some())
            .map(|m| m.name)
    };
    require_feature(
        "the kfunc bpf_xdp_ct_lookup (nf_conntrack, Linux 5.18) in vmlinux or a loaded module",
        in_vmlinux || module.is_some(),
    )?;
    let (mut sys, _fs) = load_pinned("core_kfunc_ct")?;
    let p = sys
        .program_mut("core_kfunc_ct_lookup")
        .ok_or_else(|| fail("no core_kfunc_ct_lookup"))?;
    p.load()
        .map_err(|e| fail(format!("kfuncs in {module:?} (None: vmlinux): {e:#}")))?;
    let got = p.test_run(&TestRun::with_data(&[0u8; 64]))?.return_value;
    if got != 2 {
        return Err(fail(format!(
            "returned {got}, expected 2 (ENOENT) from the kfuncs in {}",
            module.as_deref().unwrap_or("vmlinux")
        )));
    }
    eprintln!(
        "  the kfuncs were in {}",
        module.as_deref().unwrap_or("vmlinux")
    );
    Ok(())
}

/// Module-only structs of modules the VM loads (`veth`, `sch_ingress`, `cls_bpf`).
const MODULE_STRUCTS: &[(&str, &str)] = &[
    ("veth", "veth_priv"),
    ("sch_ingress", "ingress_sched_data"),
    ("cls_bpf", "cls_bpf_prog"),
];

fn module_btf_parses_and_core_finds_module_only_structs() -> TestResult {
    use ebpf::attach::kernel_btf::{module_btf, module_names, KernelTargets};
    use ebpf::elf::btf::BtfTypeData;
    use ebpf::elf::{CoreRelocation, CoreTargetOrigin, Endianness, Instruction, LinkedProgram};
    require_root()?;
    require_feature(VMLINUX_BTF, std::path::Path::new(VMLINUX_BTF).exists())?;
    require_feature(
        "kernel modules (/proc/modules)",
        std::path::Path::new("/proc/modules").exists(),
    )?;
    let vmlinux = kernel_btf()?;
    let names = module_names()?;
    // Modules carry BTF only with CONFIG_DEBUG_INFO_BTF_MODULES (Debian's 5.10 has none).
    require_feature("kernel module BTF in /sys/kernel/btf", !names.is_empty())?;
    for n in &names {
        let m = module_btf(n)?;
        let again = module_btf(n)?;
        if !std::sync::Arc::ptr_eq(&m.btf, &again.btf) {
            return Err(fail(format!("module {n}: btf parsed twice")));
        }
        if m.btf.first_id() != vmlinux.type_count() {
            return Err(fail(format!(
                "module {n}: first id {} after {} vmlinux types",
                m.btf.first_id(),
                vmlinux.type_count()
            )));
        }
        // Every type a module type refers to resolves, in vmlinux or the module.
        for t in m.btf.types() {
            let refs: Vec<u32> = match &t.data {
                BtfTypeData::Members(ms) => ms.iter().map(|m| m.type_id).collect(),
                BtfTypeData::Params(ps) => ps.iter().map(|p| p.type_id).collect(),
                BtfTypeData::Array { elem, index, .. } => vec![*elem, *index],
                _ => Vec::new(),
            };
            for id in refs {
                if m.btf.type_by_id(id).is_none() {
                    return Err(fail(format!(
                        "module {n}: {} refers to missing type {id}",
                        t.name
                    )));
                }
            }
        }
    }
    eprintln!("module btf: {} modules parsed: {names:?}", names.len());
    let Some((module, name)) = MODULE_STRUCTS
        .iter()
        .find(|(m, _)| names.iter().any(|n| n == m))
    else {
        return Err(fail(format!(
            "none of {MODULE_STRUCTS:?} is loaded (modules with btf: {names:?})"
        )));
    };
    if vmlinux.find(BtfKind::Struct, name).is_some() {
        return Err(fail(format!(
            "vmlinux defines {name}: not module-only here"
        )));
    }
    let m = module_btf(module)?;
    let id = m
        .btf
        .find(BtfKind::Struct, name)
        .ok_or_else(|| fail(format!("module {module} has no struct {name}")))?;
    let t = m.btf.type_by_id(id).ok_or_else(|| fail("bad id"))?;
    let BtfTypeData::Members(members) = &t.data else {
        return Err(fail(format!("{name} has no members")));
    };
    // The last pointer member (not at offset 0, so the patch shows): any pointer is
    // compatible, so the local type is simply `void *`.
    let member = members
        .iter()
        .rev()
        .find(|mb| {
            !mb.name.is_empty()
                && m.btf
                    .skip_modifiers(mb.type_id)
                    .and_then(|i| m.btf.type_by_id(i))
                    .is_some_and(|t| t.kind == BtfKind::Ptr)
        })
        .ok_or_else(|| fail(format!("{name} has no named pointer member")))?;
    let mut b = BtfBuilder::new();
    let ptr = b.add_ptr(0);
    let local_id = b.add_struct(name, 8, &[(&member.name, ptr, 0)]);
    let local = b.build()?;
    let insn = |code, off| Instruction {
        code,
        dst: 0,
        src: 1,
        off,
        imm: 0,
    };
    let mut p = LinkedProgram {
        name: "module_core".into(),
        instructions: vec![insn(0x79, 0), insn(0x95, 0)],
        functions: vec![("module_core".into(), 0)],
        func_info: Vec::new(),
        line_info: Vec::new(),
        core_relocations: vec![CoreRelocation {
            insn: 0,
            type_id: local_id,
            access_str_off: 0,
            access: "0:0".into(),
            kind: 0,
        }],
        map_references: Vec::new(),
        externs: Vec::new(),
        endianness: Endianness::host(),
    };
    let report = p.relocate_core_with(&local, &KernelTargets::new()?)?;
    let o = &report.outcomes[0];
    let want_off = u64::from(member.bit_offset / 8);
    if o.poisoned || o.target_value != want_off || o.target_type_id != Some(id) {
        return Err(fail(format!(
            "{name}.{}: {o:?}, want offset {want_off}",
            member.name
        )));
    }
    if i64::from(p.instructions[0].off) as u64 != want_off {
        return Err(fail(format!(
            "instruction not patched: {:?}",
            p.instructions[0]
        )));
    }
    let Some(CoreTargetOrigin::Module {
        name: got,
        btf_obj_id,
    }) = &o.target_origin
    else {
        return Err(fail(format!(
            "origin {:?}, want module {module}",
            o.target_origin
        )));
    };
    if got != module || btf_obj_id.is_none() {
        return Err(fail(format!(
            "origin {:?}, want module {module} with an id",
            o.target_origin
        )));
    }
    // Independent view: bpftool lists the module's BTF object under that id.
    if cmd("sh", &["-c", "command -v bpftool"]).is_ok() {
        let list = tests::bpftool(&["btf", "show"])?;
        let found = list.as_array().is_some_and(|a| {
            a.iter().any(|e| {
                e["id"].as_u64() == btf_obj_id.map(u64::from) && e["name"].as_str() == Some(module)
            })
        });
        if !found {
            return Err(fail(format!(
                "bpftool btf show has no {module} with id {btf_obj_id:?}"
            )));
        }
    }
    eprintln!(
        "{name}.{} at {want_off} from module {module} (btf id {btf_obj_id:?})",
        member.name
    );
    Ok(())
}

tests::tests![
    kernel_btf_is_parsed_once_and_agrees_with_bpftool,
    sanitised_object_btf_loads_with_every_feature_rewritten,
    tracepoint_reads_task_fields_through_core,
    uprobe_reads_task_fields_through_core,
    a_missing_field_read_unguarded_names_the_relocation_and_source_line,
    a_missing_custom_btf_file_is_named_when_the_program_loads,
    kconfig_and_ksym_externs_read_the_running_kernel,
    typed_ksym_reads_the_per_cpu_runqueue,
    kfunc_calls_take_and_release_a_task_reference,
    kfuncs_in_vmlinux_or_a_module_are_called,
    module_btf_parses_and_core_finds_module_only_structs,
];
