//! Programs (`bpf_attach::KernelProgram`) against the real kernel: verifier rejections as
//! values, the log of a successful load, the expected-attach-type fallback, info against
//! bpftool, pins, enumeration, test runs.

use std::path::PathBuf;

use ebpf::attach::{
    loaded_maps, loaded_programs, AttachType, KernelProgram, KernelSystem, LoadOptions, LogLimits,
    ProgramError, ProgramInfo, ProgramType, TestRun,
};
use ebpf::elf::{Instruction, ObjectSpec};
use rustix::io::Errno;
use tests::{bpftool, fail, require_root, unique_name, BpfFs, TestResult};

const EACCES: i32 = Errno::ACCESS.raw_os_error();

fn object(stem: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../target/bpf/{stem}.o"))
}

fn mov64_imm(dst: u8, imm: i32) -> Instruction {
    Instruction {
        code: 0xb7,
        dst,
        src: 0,
        off: 0,
        imm,
    }
}

fn exit() -> Instruction {
    Instruction {
        code: 0x95,
        ..Default::default()
    }
}

/// `dst = *(u64 *)(src + off)`.
fn ldx_dw(dst: u8, src: u8, off: i16) -> Instruction {
    Instruction {
        code: 0x79,
        dst,
        src,
        off,
        imm: 0,
    }
}

fn xdp_returning(name: &str, r0: i32) -> KernelProgram {
    KernelProgram::new(name, ProgramType::Xdp, &[mov64_imm(0, r0), exit()], "GPL")
}

fn a_rejected_program_is_a_verifier_error_with_its_log() -> TestResult {
    require_root()?;
    let name = unique_name("bad");
    // r0 = *(u64 *)(r2 + 0) with r2 never written.
    let mut p = KernelProgram::new(
        name.clone(),
        ProgramType::Xdp,
        &[mov64_imm(0, 0), ldx_dw(0, 2, 0), exit()],
        "GPL",
    );
    let err = match p.load() {
        Err(ProgramError::Verifier(v)) => v,
        other => return Err(fail(format!("expected a verifier error, got {other:?}"))),
    };
    if err.program() != name || err.errno() != Some(EACCES) {
        return Err(fail(format!(
            "name {} errno {:?}",
            err.program(),
            err.errno()
        )));
    }
    if !err.log().contains("R2 !read_ok") || err.failing_insn() != Some(1) {
        return Err(fail(format!(
            "log {:?}, insn {:?}",
            err.log(),
            err.failing_insn()
        )));
    }
    let shown = err.to_string();
    if !shown.starts_with(&format!("verifier rejected program {name}: ")) {
        return Err(fail(format!("display {shown:?}")));
    }
    // The relevant lines end the message, then the count of lines left out.
    let tail = shown
        .rsplit_once(" (")
        .map(|(head, _)| head)
        .unwrap_or(&shown);
    if !tail.ends_with("R2 !read_ok") || !shown.contains("lines omitted)") {
        return Err(fail(format!("display {shown:?}")));
    }
    let all = format!("{err:#}");
    if !all.contains(err.log().trim_end()) {
        return Err(fail("{:#} does not hold the whole log"));
    }
    if p.is_loaded() {
        return Err(fail("a rejected program has an fd"));
    }
    Ok(())
}

fn a_rejection_points_at_the_source_line_through_btf() -> TestResult {
    require_root()?;
    let mut spec = ObjectSpec::from_path(object("globals_btf"))?;
    let prog = spec
        .program_mut("globals_xdp")
        .ok_or_else(|| fail("no globals_xdp"))?;
    // Break the first instruction that is neither half of a 64-bit load nor a call: a write
    // to the read-only frame pointer, which the verifier refuses wherever it is.
    let insns = &mut prog.function.instructions;
    let at = (0..insns.len())
        .find(|&i| {
            let ld = |j: usize| insns[j].is_ld_imm64();
            !ld(i) && (i == 0 || !ld(i - 1)) && insns[i].code & 0x07 != 0x05
        })
        .ok_or_else(|| fail("no instruction to break"))?;
    insns[at] = mov64_imm(10, 0);
    let fs = BpfFs::new()?;
    let mut sys = KernelSystem::from_spec(spec, &LoadOptions::default().pin_root(fs.path()))?;
    let p = sys.program_mut("globals_xdp").ok_or_else(|| fail("gone"))?;
    let err = match p.load() {
        Err(ProgramError::Verifier(v)) => v,
        other => return Err(fail(format!("expected a verifier error, got {other:?}"))),
    };
    let loc = err
        .source_location()
        .ok_or_else(|| fail(format!("no source location in {err}")))?;
    if !loc.file.ends_with("globals_btf.c") || loc.line == 0 {
        return Err(fail(format!("location {loc:?}")));
    }
    if !err
        .to_string()
        .contains(&format!(" at {}:{}: ", loc.file, loc.line))
    {
        return Err(fail(format!("display {err}")));
    }
    Ok(())
}

fn a_log_level_keeps_the_log_of_a_successful_load() -> TestResult {
    require_root()?;
    let mut p = xdp_returning(&unique_name("logged"), 2);
    p.set_log_limits(LogLimits {
        level: 1,
        initial_size: 128,
        ..LogLimits::default()
    });
    p.load()?;
    let log = p.verifier_log().ok_or_else(|| fail("no log kept"))?;
    if !log.contains("processed") {
        return Err(fail(format!("log {log:?}")));
    }
    let mut quiet = xdp_returning(&unique_name("quiet"), 2);
    quiet.load()?;
    if quiet.verifier_log().is_some() {
        return Err(fail("a log without a level"));
    }
    Ok(())
}

fn a_refused_expected_attach_type_falls_back_to_none() -> TestResult {
    require_root()?;
    // cgroup_skb takes only the cgroup inet attach types: BPF_XDP is EINVAL.
    let mut p = KernelProgram::new(
        unique_name("cg"),
        ProgramType::CgroupSkb,
        &[mov64_imm(0, 1), exit()],
        "GPL",
    );
    p.set_expected_attach_type(Some(AttachType::Xdp));
    p.load()?;
    if !p.loaded_without_attach_type() {
        return Err(fail("loaded with an attach type the kernel refuses?"));
    }
    let mut xdp = xdp_returning(&unique_name("x"), 2);
    xdp.set_expected_attach_type(Some(AttachType::Xdp));
    xdp.load()?;
    if xdp.loaded_without_attach_type() {
        return Err(fail("BPF_XDP was dropped for an XDP program"));
    }
    Ok(())
}

fn loading_twice_is_refused_and_close_frees_the_fd() -> TestResult {
    require_root()?;
    let mut p = xdp_returning(&unique_name("twice"), 2);
    p.load()?;
    match p.load() {
        Err(ProgramError::AlreadyLoaded { .. }) => {}
        other => return Err(fail(format!("second load: {other:?}"))),
    }
    p.close()?;
    if p.is_loaded() || !matches!(p.close(), Err(ProgramError::NotLoaded { .. })) {
        return Err(fail("close did not unload"));
    }
    p.load()?;
    Ok(())
}

fn program_info_matches_bpftool() -> TestResult {
    require_root()?;
    let fs = BpfFs::new()?;
    let mut sys = KernelSystem::load_elf_with(
        object("sock_btf"),
        &LoadOptions::default().pin_root(fs.path()),
    )?;
    sys.load_all()?;
    let p = sys
        .program("count_packets")
        .ok_or_else(|| fail("no program"))?;
    let info = p.info()?;
    let map_id = sys
        .map("packets")
        .map(|m| m.id())
        .ok_or_else(|| fail("no map"))?;
    if info.name != "count_packets"
        || info.program_type != Some(ProgramType::SocketFilter)
        || info.map_ids != [map_id]
        || info.xlated_size == 0
    {
        return Err(fail(format!("info {info:?}")));
    }
    let id = info.id.to_string();
    let view = bpftool(&["prog", "show", "id", &id])?;
    let want = |k: &str| view.get(k).cloned().unwrap_or_default();
    let checks = [
        ("name", serde_json::json!(info.name)),
        ("tag", serde_json::json!(info.tag_hex())),
        ("type", serde_json::json!("socket_filter")),
        ("id", serde_json::json!(info.id)),
        ("map_ids", serde_json::json!(info.map_ids)),
        ("bytes_xlated", serde_json::json!(info.xlated_size)),
        ("uid", serde_json::json!(info.created_by_uid)),
    ];
    for (k, ours) in checks {
        if want(k) != ours {
            return Err(fail(format!("{k}: bpftool {} ours {ours}", want(k))));
        }
    }
    // By id and by the maps' own description.
    let again = ProgramInfo::from_id(info.id)?;
    if again.tag != info.tag {
        return Err(fail("info by id differs"));
    }
    let maps = info.maps()?;
    if maps.len() != 1 || maps[0].name != "packets" {
        return Err(fail(format!("maps {maps:?}")));
    }
    let age = std::time::SystemTime::now()
        .duration_since(info.load_time)
        .map_err(|_| fail("load time in the future"))?;
    if age.as_secs() > 600 {
        return Err(fail(format!("load time {age:?} ago")));
    }
    Ok(())
}

fn a_pinned_program_comes_back_by_path() -> TestResult {
    require_root()?;
    let fs = BpfFs::new()?;
    let mut p = xdp_returning(&unique_name("pinned"), 1);
    p.load()?;
    let path = fs.path().join("prog");
    p.pin(&path)?;
    let id = p.info()?.id;
    if ProgramInfo::from_path(&path)?.id != id {
        return Err(fail("info by path names another program"));
    }
    let back = KernelProgram::from_pin(&path)?;
    let out = back.test_run(&TestRun::with_data(&[0u8; 64]))?;
    if back.info()?.id != id || out.return_value != 1 || back.name() != p.name() {
        return Err(fail("the pinned program is not ours"));
    }
    // It outlives our fds while pinned.
    p.close()?;
    drop(back);
    let back = KernelProgram::from_id(id)?;
    drop(back);
    KernelProgram::unpin(&path)?;
    match p.pin(fs.path().join("again")) {
        Err(ProgramError::NotLoaded { .. }) => Ok(()),
        other => Err(fail(format!("pin of a closed program: {other:?}"))),
    }
}

fn pinning_off_bpffs_names_the_path_and_errno() -> TestResult {
    require_root()?;
    let mut p = xdp_returning(&unique_name("offfs"), 2);
    p.load()?;
    let path = std::env::temp_dir().join(unique_name("notbpffs"));
    match p.pin(&path) {
        Err(ProgramError::Pin {
            path: got, source, ..
        }) if got == path && source.errno().is_some() => Ok(()),
        other => Err(fail(format!("pin off bpffs: {other:?}"))),
    }
}

fn enumeration_finds_our_programs_and_maps() -> TestResult {
    require_root()?;
    let fs = BpfFs::new()?;
    let mut sys = KernelSystem::load_elf_with(
        object("sock_legacy"),
        &LoadOptions::default().pin_root(fs.path()),
    )?;
    sys.load_all()?;
    let prog_id = sys
        .program("count_packets")
        .ok_or_else(|| fail("no program"))?
        .info()?
        .id;
    let map_id = sys
        .map("packets")
        .map(|m| m.id())
        .ok_or_else(|| fail("no map"))?;
    let progs: Vec<ProgramInfo> = loaded_programs().collect::<Result<_, _>>()?;
    if !progs
        .iter()
        .any(|p| p.id == prog_id && p.name == "count_packets")
    {
        return Err(fail("our program is not in the walk"));
    }
    let maps: Vec<_> = loaded_maps().collect::<Result<_, _>>()?;
    if !maps
        .iter()
        .any(|m| m.id == map_id && m.name == "packets" && m.value_size == 8)
    {
        return Err(fail("our map is not in the walk"));
    }
    Ok(())
}

fn test_run_gives_return_value_data_and_duration() -> TestResult {
    require_root()?;
    let mut p = xdp_returning(&unique_name("run"), 2);
    p.load()?;
    let packet: Vec<u8> = (0..64).collect();
    let out = p.test_run(&TestRun::with_data(&packet).repeat(10))?;
    if out.return_value != 2 || out.data != packet || out.data_size != 64 {
        return Err(fail(format!("{out:?}")));
    }
    // xdp_head_meta2 reserves 8 bytes of metadata and grows the head by 8 bytes.
    let fs = BpfFs::new()?;
    let mut sys = KernelSystem::load_elf_with(
        object("xdp_btf"),
        &LoadOptions::default().pin_root(fs.path()),
    )?;
    let p = sys
        .program_mut("xdp_head_meta2")
        .ok_or_else(|| fail("no xdp_head_meta2"))?;
    p.load()?;
    let out = p.test_run(&TestRun::with_data(&packet))?;
    // Output: the 8 new head bytes (112) then the packet; 6.1 and later also return the 8 bytes
    // of metadata (also 112) first, 5.10 leaves them out.
    let u64_at = |o: usize| out.data.get(o..o + 8).map(|b| b.to_vec());
    let want = Some(112u64.to_ne_bytes().to_vec());
    let meta = out.data.len().saturating_sub(packet.len() + 8);
    if out.return_value != 2
        || !(meta == 0 || meta == 8)
        || (meta == 8 && u64_at(0) != want)
        || u64_at(meta) != want
        || out.data[meta + 8..] != packet[..]
    {
        return Err(fail(format!("head grow: {out:?}")));
    }
    let not_loaded = xdp_returning("idle", 2);
    match not_loaded.test_run(&TestRun::with_data(&packet)) {
        Err(ProgramError::NotLoaded { .. }) => Ok(()),
        other => Err(fail(format!("test run of an unloaded program: {other:?}"))),
    }
}

tests::tests![
    a_rejected_program_is_a_verifier_error_with_its_log,
    a_rejection_points_at_the_source_line_through_btf,
    a_log_level_keeps_the_log_of_a_successful_load,
    a_refused_expected_attach_type_falls_back_to_none,
    loading_twice_is_refused_and_close_frees_the_fd,
    program_info_matches_bpftool,
    a_pinned_program_comes_back_by_path,
    pinning_off_bpffs_names_the_path_and_errno,
    enumeration_finds_our_programs_and_maps,
    test_run_gives_return_value_data_and_duration,
];
