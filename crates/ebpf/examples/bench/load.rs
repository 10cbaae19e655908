//! Object load: `KernelSystem::load_elf` + `load_all` + drop of an object with three maps and
//! two programs, against raw `BPF_MAP_CREATE` x3 + `BPF_PROG_LOAD` x2 of the same instructions.

use std::path::PathBuf;
use std::time::Instant;

use ebpf::attach::KernelSystem;
use ebpf::elf::{encode_all, MapReferenceKind, ObjectSpec};
use ebpf::sys::floor::{ObjectFloor, ProgInput};
use ebpf::sys::map::MapCreateAttr;

use crate::{Bench, Result};

/// `target/bpf/bench_load.o`, or the object named by `BENCH_LOAD_OBJECT` (to try variants, such
/// as the same object without `.BTF`).
pub fn object() -> PathBuf {
    if let Some(p) = std::env::var_os("BENCH_LOAD_OBJECT") {
        return p.into();
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/bpf/bench_load.o")
}

pub fn run(b: &mut Bench) -> Result {
    let g = "object load: 3 maps + 2 programs, create, load, close";
    if !b.wants("load") {
        return Ok(());
    }
    eprintln!("{g}");
    let path = object();
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
    let names: Vec<String> = spec.maps.iter().map(|m| m.name.clone()).collect();
    let attrs: Vec<MapCreateAttr<'_>> = spec
        .maps
        .iter()
        .map(|m| {
            let mut a = MapCreateAttr::new(m.map_type, m.key_size, m.value_size, m.max_entries);
            a.map_flags = m.flags;
            a.name = &m.name;
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
        bytes.push((
            p.program_type,
            p.name.clone(),
            encode_all(&linked.instructions, spec.endianness),
            refs,
        ));
    }
    for (t, name, insns, refs) in &bytes {
        progs.push(ProgInput {
            prog_type: *t,
            name,
            insn_bytes: insns,
            map_refs: refs.clone(),
        });
    }
    let license = std::ffi::CString::new(spec.license.clone())?;
    let mut floor = ObjectFloor::new(&attrs, progs, &license);
    if !floor.run() {
        return Err(format!(
            "the floor could not load {}: {}",
            path.display(),
            std::io::Error::last_os_error()
        )
        .into());
    }
    let reps = b.ops(50);
    b.compare(
        g,
        "load + close",
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
    Ok(())
}
