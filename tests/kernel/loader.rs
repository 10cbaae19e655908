//! The object loader (`bpf_attach::KernelSystem`) against the real kernel: every object of
//! `target/bpf` loads, pins stay under a private bpffs, initial slots make tail calls work,
//! global variables are read and written by name, and a failure half-way leaves nothing behind.

use std::collections::BTreeSet;
use std::path::PathBuf;

use ebpf::attach::globals::set_spec_global;
use ebpf::attach::{
    map_ids, GlobalError, KernelSystem, LoadError, LoadOptions, ProgramType, TestRun,
};
use ebpf::elf::ObjectSpec;
use ebpf::maps::{Map, MapExt, Pinning};
use ebpf::sys::probe;
use tests::{fail, require_root, unique_name, BpfFs, TestResult};

/// `target/bpf/<stem>.o`.
fn object(stem: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../target/bpf/{stem}.o"))
}

/// Every little-endian object `cargo xtask build-bpf` made.
fn all_objects() -> TestResult<Vec<PathBuf>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/bpf");
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| {
            fail(format!(
                "{}: {e} (run cargo xtask build-bpf)",
                dir.display()
            ))
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "o"))
        .collect();
    out.sort();
    if out.is_empty() {
        return Err(fail("no objects in target/bpf (run cargo xtask build-bpf)"));
    }
    Ok(out)
}

fn options(fs: &BpfFs) -> LoadOptions {
    LoadOptions::default().pin_root(fs.path())
}

/// A packet long enough for every test program (Ethernet + IPv4 + TCP headers, zeroed).
const PACKET: [u8; 64] = [0; 64];

fn every_program_of_every_object_loads() -> TestResult {
    require_root()?;
    let mut failures = Vec::new();
    let mut loaded = 0;
    for path in all_objects()? {
        let fs = BpfFs::new()?;
        let stem = path
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let mut sys = match KernelSystem::load_elf_with(&path, &options(&fs)) {
            Ok(s) => s,
            Err(e) => {
                failures.push(format!("{stem}: {}", chain(&e)));
                continue;
            }
        };
        if sys.spec().btf.is_some() && !sys.btf_loaded() {
            failures.push(format!("{stem}: the kernel refused the object's BTF"));
        }
        if sys.maps().count() != sys.spec().maps.len() {
            failures.push(format!("{stem}: not every map was created"));
        }
        let names: Vec<String> = sys.programs().map(|p| p.name().to_string()).collect();
        for name in names {
            let p = sys.program_mut(&name).expect("listed");
            if !probe::program_type_supported(p.program_type()) {
                continue;
            }
            // globals_btf calls bpf_loop (Linux 5.17): a kernel without it rejects the callback.
            if stem == "globals_btf" && !bpf_loop_supported() {
                eprintln!("skip {stem}/{name}: the kernel lacks bpf_loop (probed)");
                continue;
            }
            // core_ksym reads the typed ksym `runqueues`: a VAR in the kernel's BTF, whose
            // address the kernel finds only with CONFIG_KALLSYMS_ALL.
            if stem == "core_ksym" && !tests::typed_ksym_var_loadable("runqueues") {
                eprintln!(
                    "skip {stem}/{name}: no `runqueues` VAR in the kernel's BTF or in \
                     /proc/kallsyms (probed)"
                );
                continue;
            }
            // core_kfunc_ct calls nf_conntrack's kfuncs (5.18), in vmlinux or in its module.
            if stem == "core_kfunc_ct" && !kfunc_anywhere("bpf_xdp_ct_lookup") {
                eprintln!(
                    "skip {stem}/{name}: no BTF of the kernel has bpf_xdp_ct_lookup (probed)"
                );
                continue;
            }
            // core_kfunc calls kfuncs of Linux 6.2.
            if stem == "core_kfunc"
                && !tests::kernel_btf_has(ebpf::elf::btf::BtfKind::Func, "bpf_task_from_pid")
            {
                eprintln!("skip {stem}/{name}: the kernel's BTF lacks bpf_task_from_pid (probed)");
                continue;
            }
            match p.load() {
                Ok(()) if p.loaded_without_btf() => {
                    failures.push(format!("{stem}/{name}: loaded only without BTF"))
                }
                Ok(()) => loaded += 1,
                Err(e) => failures.push(format!("{stem}/{name}: {}", chain(&e))),
            }
        }
    }
    if failures.is_empty() && loaded > 40 {
        Ok(())
    } else {
        Err(fail(format!(
            "{loaded} loaded; failures:\n{}",
            failures.join("\n")
        )))
    }
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(x) = src {
        s.push_str(": ");
        s.push_str(&x.to_string());
        src = x.source();
    }
    s
}

fn goebpf_persistent_paths_resolve_under_the_pin_root() -> TestResult {
    require_root()?;
    let fs = BpfFs::new()?;
    let machine_pin = std::path::Path::new("/sys/fs/bpf/match_maps_rx");
    let existed = machine_pin.exists();
    let sys = KernelSystem::load_elf_with(object("xdp_legacy"), &options(&fs))?;
    for name in ["txcnt", "match_maps_rx"] {
        let pinned = fs.path().join(name);
        let map = sys
            .map(name)
            .ok_or_else(|| fail(format!("no map {name}")))?;
        if map.pin_path() != Some(pinned.as_path()) {
            return Err(fail(format!("{name} pinned at {:?}", map.pin_path())));
        }
        if !pinned.exists() {
            return Err(fail(format!("{} missing", pinned.display())));
        }
    }
    if !existed && machine_pin.exists() {
        return Err(fail("the machine's /sys/fs/bpf was written"));
    }
    // A second load reuses the compatible pinned maps: same ids.
    let again = KernelSystem::load_elf_with(object("xdp_legacy"), &options(&fs))?;
    for name in ["txcnt", "match_maps_rx"] {
        let (a, b) = (sys.map(name), again.map(name));
        if a.map(|m| m.id()) != b.map(|m| m.id()) {
            return Err(fail(format!("{name} was not reused")));
        }
    }
    if sys.map("rxcnt").map(|m| m.id()) == again.map("rxcnt").map(|m| m.id()) {
        return Err(fail("an unpinned map was shared between two loads"));
    }
    Ok(())
}

fn initial_prog_array_slots_make_the_tail_call_work() -> TestResult {
    require_root()?;
    let fs = BpfFs::new()?;
    let mut sys = KernelSystem::load_elf_with(object("xdp_init_btf"), &options(&fs))?;
    sys.load_all()?;
    let entry = sys
        .program("xdp_entry")
        .ok_or_else(|| fail("no xdp_entry"))?;
    let run = |want: u32, what: &str| -> TestResult {
        let out = entry.test_run(&TestRun::with_data(&PACKET))?;
        if out.return_value != want {
            return Err(fail(format!(
                "{what}: returned {}, want {want}",
                out.return_value
            )));
        }
        Ok(())
    };
    run(2, "slot 0 (xdp_pass_prog)")?;
    let inner = sys.map("inner_a").ok_or_else(|| fail("no inner_a"))?;
    inner.upsert(&0u32, &2u32)?;
    run(1, "slot 2 (xdp_drop_prog)")?;
    inner.upsert(&0u32, &1u32)?;
    run(0, "empty slot 1")?;
    Ok(())
}

fn legacy_prog_array_tail_call_checked_through_test_run() -> TestResult {
    require_root()?;
    let fs = BpfFs::new()?;
    let mut sys = KernelSystem::load_elf_with(object("xdp_legacy"), &options(&fs))?;
    sys.load_all()?;
    let root = sys
        .program("xdp_root3")
        .ok_or_else(|| fail("no xdp_root3"))?;
    let out = root.test_run(&TestRun::with_data(&PACKET))?;
    if out.return_value != 1 {
        return Err(fail(format!(
            "empty array: returned {}, want XDP_DROP",
            out.return_value
        )));
    }
    let xdp0 = sys
        .program("xdp0")
        .and_then(|p| p.fd())
        .ok_or_else(|| fail("xdp0 not loaded"))?;
    let programs = sys.map("programs").ok_or_else(|| fail("no programs map"))?;
    let fd = std::os::fd::AsRawFd::as_raw_fd(&xdp0) as u32;
    programs.upsert(&0u32, &fd)?;
    let out = root.test_run(&TestRun::with_data(&PACKET))?;
    if out.return_value != 2 {
        return Err(fail(format!(
            "xdp0 in slot 0: returned {}, want XDP_PASS",
            out.return_value
        )));
    }
    Ok(())
}

fn globals_are_read_set_before_load_and_written_after() -> TestResult {
    require_root()?;
    if !probe::helper_supported(ProgramType::SocketFilter, ebpf::sys::uapi::BPF_FUNC_loop) {
        // bpf_loop (Linux 5.17).
        return tests::require_feature("bpf_loop helper", false);
    }
    let fs = BpfFs::new()?;
    let sys = KernelSystem::load_elf_with(object("globals_btf"), &options(&fs))?;
    let check = |what: &str, got: u64, want: u64| -> TestResult {
        if got == want {
            Ok(())
        } else {
            Err(fail(format!("{what}: {got}, want {want}")))
        }
    };
    check(
        "loop_rounds",
        u64::from(sys.global_as::<u32>("loop_rounds")?),
        10,
    )?;
    check("data_counter", sys.global_as::<u64>("data_counter")?, 7)?;
    check(
        "counter_b",
        sys.global_as::<u64>(".data.counters/counter_b")?,
        2,
    )?;
    let greeting = sys.global("greeting")?;
    if !greeting.starts_with(b"hello from .rodata") {
        return Err(fail(format!("greeting {greeting:?}")));
    }
    // Before load: .rodata is not frozen yet.
    sys.set_global_as("loop_rounds", &5u32)?;
    let mut sys = sys;
    let p = sys
        .program_mut("globals_socket")
        .ok_or_else(|| fail("no globals_socket"))?;
    p.load()?;
    let out = p.test_run(&TestRun::with_data(&PACKET))?;
    // A socket filter sees the packet after its Ethernet header: 64 - 14 bytes.
    check("return value", u64::from(out.return_value), 50)?;
    check(
        "loop_sum (5 rounds)",
        u64::from(sys.global_as::<u32>("loop_sum")?),
        10,
    )?;
    check(
        "data_counter after a run",
        sys.global_as::<u64>("data_counter")?,
        8,
    )?;
    // After load: .data is written, .rodata refused.
    sys.set_global_as("data_counter", &100u64)?;
    let p = sys.program("globals_socket").ok_or_else(|| fail("gone"))?;
    p.test_run(&TestRun::with_data(&PACKET))?;
    check(
        "data_counter written after load",
        sys.global_as::<u64>("data_counter")?,
        101,
    )?;
    match sys.set_global_as("loop_rounds", &3u32) {
        Err(GlobalError::Frozen { .. }) => {}
        other => return Err(fail(format!("set .rodata after load: {other:?}"))),
    }
    match sys.set_global("data_counter", &[1, 2]) {
        Err(GlobalError::Size {
            got: 2,
            expected: 8,
            ..
        }) => {}
        other => return Err(fail(format!("short value: {other:?}"))),
    }

    // On the spec, before anything is created.
    let mut spec = ObjectSpec::from_path(object("globals_btf"))?;
    set_spec_global(&mut spec, "loop_rounds", &3u32.to_ne_bytes())?;
    let mut sys = KernelSystem::from_spec(spec, &options(&fs))?;
    let p = sys
        .program_mut("globals_socket")
        .ok_or_else(|| fail("no globals_socket"))?;
    p.load()?;
    p.test_run(&TestRun::with_data(&PACKET))?;
    check(
        "loop_sum (3 rounds)",
        u64::from(sys.global_as::<u32>("loop_sum")?),
        3,
    )?;
    Ok(())
}

fn a_failure_half_way_leaves_no_map_and_no_pin() -> TestResult {
    require_root()?;
    let fs = BpfFs::new()?;
    let mut spec = ObjectSpec::from_path(object("xdp_btf"))?;
    let first = unique_name("half");
    let second = unique_name("bad");
    spec.maps[0].name = first.clone().into();
    spec.maps[0].pinning = Pinning::ByName;
    spec.maps[1].name = second.clone().into();
    spec.maps[1].max_entries = 0; // EINVAL from BPF_MAP_CREATE
    let before: BTreeSet<u32> = map_ids().collect::<Result<_, _>>()?;
    match KernelSystem::from_spec(spec, &options(&fs)) {
        Err(LoadError::Map { map, .. }) if map == second => {}
        Err(e) => return Err(fail(format!("wrong error: {}", chain(&e)))),
        Ok(_) => return Err(fail("a map with max_entries 0 was created")),
    }
    // No map of ours is left: walk every id that appeared and look at its name. The kernel
    // frees a closed map asynchronously (older kernels visibly so), so give it a second.
    let mut survivor = None;
    for _ in 0..50 {
        survivor = None;
        for id in map_ids() {
            let id = id?;
            if before.contains(&id) {
                continue;
            }
            if let Ok(m) = ebpf::attach::MapSummary::from_id(id) {
                if m.name == first || m.name == second {
                    survivor = Some((m.name, id));
                }
            }
        }
        if survivor.is_none() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    if let Some((name, id)) = survivor {
        return Err(fail(format!(
            "map {name} (id {id}) survived the failed load"
        )));
    }
    if fs.path().join(&first).exists() {
        return Err(fail("the pin made before the failure is still there"));
    }
    Ok(())
}

fn each_load_is_its_own_system() -> TestResult {
    require_root()?;
    let fs = BpfFs::new()?;
    let a = KernelSystem::load_elf_with(object("sock_btf"), &options(&fs))?;
    let b = KernelSystem::load(std::fs::File::open(object("sock_btf")).map_err(fail)?)?;
    let (ma, mb) = (a.map("packets"), b.map("packets"));
    match (ma, mb) {
        (Some(x), Some(y)) if x.id() != y.id() => {}
        _ => return Err(fail("two loads should have two maps")),
    }
    // The first system's maps are still there.
    if a.map("packets").map(|m| m.max_entries()) != Some(1) {
        return Err(fail("first system lost its map"));
    }
    Ok(())
}

tests::tests![
    every_program_of_every_object_loads,
    goebpf_persistent_paths_resolve_under_the_pin_root,
    initial_prog_array_slots_make_the_tail_call_work,
    legacy_prog_array_tail_call_checked_through_test_run,
    globals_are_read_set_before_load_and_written_after,
    a_failure_half_way_leaves_no_map_and_no_pin,
    each_load_is_its_own_system,
];

/// Whether the kernel has the `bpf_loop` helper (id 181, Linux 5.17), probed.
/// Whether vmlinux's BTF or a loaded module's has the kfunc `name`.
fn kfunc_anywhere(name: &str) -> bool {
    use ebpf::elf::btf::BtfKind;
    tests::kernel_btf_has(BtfKind::Func, name)
        || ebpf::attach::kernel_btf::module_btfs()
            .unwrap_or_default()
            .iter()
            .any(|m| m.btf.find(BtfKind::Func, name).is_some())
}

fn bpf_loop_supported() -> bool {
    probe::helper_supported(ebpf::sys::ProgramType::Xdp, 181)
}
