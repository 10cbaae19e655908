//! Object load: `KernelSystem::load_elf` + `load_all` + drop of an object with three maps and
//! two programs, against the same kernel work done raw: read the file, `BPF_BTF_LOAD` of the
//! BTF our loader sends (when it sends one), `BPF_MAP_CREATE` x3, `BPF_PROG_LOAD` x2 of the same
//! instructions with the same func_info and line_info, close. The floor does not parse: its
//! inputs come from one parse before the timed loop, so the parse is our overhead. Two objects
//! with the same programs: legacy (goebpf) maps and BTF-defined maps. A second figure per object,
//! without a target, gives the cost of `ObjectSpec::parse` alone, for scale, and a third the
//! cost of the same parse in the loop (right after a floor load) against the same parse hot.

use std::path::{Path, PathBuf};
use std::time::Instant;

use ebpf::attach::KernelSystem;
use ebpf::elf::{encode_all, MapReferenceKind, ObjectSpec};
use ebpf::sys::floor::{ObjectFloor, ProgInput};
use ebpf::sys::map::MapCreateAttr;

use crate::{Bench, Result};

/// The objects of the workload, with the map style they declare: `target/bpf/bench_load.o`
/// (legacy maps) and `bench_load_btf.o` (BTF maps), or only the object named by
/// `BENCH_LOAD_OBJECT` (to try a variant).
pub fn objects() -> Vec<(&'static str, PathBuf)> {
    if let Some(p) = std::env::var_os("BENCH_LOAD_OBJECT") {
        return vec![("BENCH_LOAD_OBJECT", p.into())];
    }
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/bpf");
    vec![
        ("legacy maps", dir.join("bench_load.o")),
        ("BTF maps", dir.join("bench_load_btf.o")),
    ]
}

pub fn run(b: &mut Bench) -> Result {
    if !b.wants("load") {
        return Ok(());
    }
    for (style, path) in objects() {
        run_object(b, style, &path)?;
    }
    Ok(())
}

fn run_object(b: &mut Bench, style: &str, path: &Path) -> Result {
    let g = "object load: 3 maps + 2 programs, create, load, close";
    eprintln!("{g} ({style})");
    // Canonical, so neither side pays for `..` in the path.
    let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let spec = ObjectSpec::from_path(&path)
        .map_err(|e| format!("{}: {e} (run `cargo xtask build-bpf`)", path.display()))?;
    if spec.maps.len() != 3 || spec.programs.len() != 2 {
        return Err(format!(
            "{} has {} maps and {} programs, expected 3 and 2",
            path.display(),
            spec.maps.len(),
            spec.programs.len()
        )
        .into());
    }
    // Whether our loader gets the kernel to take the object's BTF: then the floor loads the same
    // BTF and names it where the loader does (programs, and maps with BTF key/value types).
    let ours_btf = KernelSystem::load_elf(&path)?.btf_loaded();
    let names: Vec<String> = spec.maps.iter().map(|m| m.name.to_string()).collect();
    let attrs: Vec<MapCreateAttr<'_>> = spec
        .maps
        .iter()
        .map(|m| {
            let mut a = MapCreateAttr::new(m.map_type, m.key_size, m.value_size, m.max_entries);
            a.map_flags = m.flags;
            a.name = &m.name;
            if ours_btf {
                a.btf_key_type_id = m.btf_key_type_id.unwrap_or(0);
                a.btf_value_type_id = m.btf_value_type_id.unwrap_or(0);
            }
            a
        })
        .collect();
    let mut progs = Vec::new();
    let mut bytes = Vec::new();
    for p in &spec.programs {
        let linked = p.link(&spec)?;
        let mut refs = Vec::new();
        for r in &linked.map_references {
            if r.kind != MapReferenceKind::Fd {
                return Err(format!("{}: a map value reference", p.name).into());
            }
            let m = names
                .iter()
                .position(|n| *n == r.map)
                .ok_or("unknown map")?;
            refs.push((r.insn, m));
        }
        let mut func_info = Vec::new();
        for f in &linked.func_info {
            func_info.extend_from_slice(&(f.insn as u32).to_ne_bytes());
            func_info.extend_from_slice(&f.type_id.to_ne_bytes());
        }
        let mut line_info = Vec::new();
        for l in &linked.line_info {
            for v in [l.insn as u32, l.file_name_off, l.line_off, l.line_col] {
                line_info.extend_from_slice(&v.to_ne_bytes());
            }
        }
        bytes.push((
            p.program_type,
            p.name.clone(),
            encode_all(&linked.instructions, spec.endianness),
            refs,
            func_info,
            line_info,
        ));
    }
    for (t, name, insns, refs, func_info, line_info) in &bytes {
        progs.push(ProgInput {
            prog_type: *t,
            name,
            insn_bytes: insns,
            map_refs: refs.clone(),
            func_info,
            line_info,
        });
    }
    let license = std::ffi::CString::new(spec.license.as_str())?;
    let mut floor = ObjectFloor::new(&attrs, progs, &license).with_file(&path);
    // The same BTF, sanitised for this kernel, when our loader gets the kernel to take it.
    if ours_btf {
        let btf = spec
            .btf
            .as_ref()
            .ok_or("the loader loaded BTF the object lacks")?;
        let raw = ebpf::attach::kernel_btf::sanitize_for_kernel(btf)?;
        floor = floor.with_btf(&raw);
    }
    eprintln!(
        "  the loader {} the object's BTF; the floor does the same",
        if ours_btf { "loads" } else { "does not load" }
    );
    if !floor.run() {
        return Err(format!(
            "the floor could not load {}: {}",
            path.display(),
            std::io::Error::last_os_error()
        )
        .into());
    }
    // 400 loads per pass (~65 ms). With 50 (~8 ms) the ratio of three consecutive runs on a
    // quiet machine was 0.83, 0.95 and 0.89; with 400, 0.90, 0.92 and 0.93.
    let reps = b.ops(400);
    b.compare(
        g,
        &format!("load + close, {style}"),
        "KernelSystem::load_elf + load_all",
        Some(0.95),
        reps,
        || {
            let t = Instant::now();
            for _ in 0..reps {
                let mut sys = KernelSystem::load_elf(&path)?;
                sys.load_all()?;
                drop(sys);
            }
            Ok(t.elapsed())
        },
        || {
            let t = Instant::now();
            for _ in 0..reps {
                if !floor.run() {
                    return Err("floor load failed".into());
                }
            }
            Ok(t.elapsed())
        },
    )?;

    // For scale: the parse alone (the floor has none), against reading the file.
    let data = std::fs::read(&path)?;
    let parses = b.ops(2_000);
    b.compare(
        g,
        &format!("parse only, {style}"),
        "ObjectSpec::parse (vs reading the file)",
        None,
        parses,
        || {
            let t = Instant::now();
            for _ in 0..parses {
                std::hint::black_box(ObjectSpec::parse(std::hint::black_box(&data))?);
            }
            Ok(t.elapsed())
        },
        || {
            let t = Instant::now();
            for _ in 0..parses {
                std::hint::black_box(std::fs::read(&path)?);
            }
            Ok(t.elapsed())
        },
    )?;

    // The same parse where the loader runs it: right after the kernel work of a load (the
    // floor's), which leaves the caches cold. Both sides time each parse alone, so each pays
    // the clock reads equally.
    let in_loop = b.ops(400);
    b.compare(
        g,
        &format!("parse in the loop, {style}"),
        "ObjectSpec::parse after a floor load (vs the same parse hot)",
        None,
        in_loop,
        || {
            let mut spent = std::time::Duration::ZERO;
            for _ in 0..in_loop {
                if !floor.run() {
                    return Err("floor load failed".into());
                }
                let t = Instant::now();
                std::hint::black_box(ObjectSpec::parse(std::hint::black_box(&data))?);
                spent += t.elapsed();
            }
            Ok(spent)
        },
        || {
            let mut spent = std::time::Duration::ZERO;
            for _ in 0..in_loop {
                let t = Instant::now();
                std::hint::black_box(ObjectSpec::parse(std::hint::black_box(&data))?);
                spent += t.elapsed();
            }
            Ok(spent)
        },
    )?;
    Ok(())
}
