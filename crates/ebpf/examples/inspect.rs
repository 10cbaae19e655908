//! Prints what a clang-built BPF object declares: its maps and programs.
//!
//! ```text
//! cargo run -p ebpf --example inspect -- OBJ.o [--json] [--load]
//! ```
//!
//! Works on any object (legacy goebpf maps, BTF maps, global data); needs no kernel and no root.
//! With `--load` (root, a BPF-capable kernel) it also creates the maps (unpinned) and loads every
//! program, and prints their kernel ids (JSON field `id`) and, for a program the verifier
//! rejects, its error (JSON field `error`).

use std::path::Path;
use std::process::ExitCode;

use ebpf::attach::{KernelSystem, LoadOptions};
use ebpf::elf::{MapSpec, ObjectSpec, Pinning, ProgramSpec};
use ebpf::maps::Map;
use serde_json::{json, Value};

const PIN_ROOT: &str = "/sys/fs/bpf";

fn pin_path(m: &MapSpec) -> Option<String> {
    m.pin_path(Path::new(PIN_ROOT))
        .map(|p| p.display().to_string())
}

/// Instruction count including subprograms; the program's own count if linking fails.
fn insns(obj: &ObjectSpec, p: &ProgramSpec) -> usize {
    p.link(obj)
        .map(|l| l.instructions.len())
        .unwrap_or(p.instructions().len())
}

fn map_json(m: &MapSpec) -> Value {
    json!({
        "name": m.name.as_str(),
        "type": m.map_type.kernel_name(),
        "key_size": m.key_size,
        "value_size": m.value_size,
        "max_entries": m.max_entries,
        "flags": m.flags,
        "pin_path": pin_path(m),
        "inner_map": m.inner_map.as_ref().map(|i| i.name.as_str()),
    })
}

fn program_json(obj: &ObjectSpec, p: &ProgramSpec) -> Value {
    json!({
        "name": p.name.as_str(),
        "section": p.section.as_str(),
        "type": p.program_type.kernel_name(),
        "attach_type": p.expected_attach_type.map(|a| a.kernel_name()),
        "attach_to": p.attach_to.as_deref(),
        "insns": insns(obj, p),
        "license": p.license.as_str(),
    })
}

fn print_text(obj: &ObjectSpec) {
    println!("maps ({}):", obj.maps.len());
    for m in &obj.maps {
        print!(
            "  {:<24} {:<18} key {:>4}  value {:>6}  max_entries {:>8}  flags {:#x}",
            m.name,
            m.map_type.kernel_name(),
            m.key_size,
            m.value_size,
            m.max_entries,
            m.flags
        );
        if let Some(p) = pin_path(m) {
            print!("  pin {p}");
        }
        if let Some(i) = &m.inner_map {
            print!(
                "  inner {} ({} {}/{}/{})",
                i.name,
                i.map_type.kernel_name(),
                i.key_size,
                i.value_size,
                i.max_entries
            );
        }
        println!();
    }
    println!("programs ({}):", obj.programs.len());
    for p in &obj.programs {
        println!(
            "  {:<24} {:<36} {:<16} attach_type {:<22} attach_to {:<20} insns {:>5}  license {:?}",
            p.name,
            p.section,
            p.program_type.kernel_name(),
            p.expected_attach_type.map_or("-", |a| a.kernel_name()),
            p.attach_to.as_deref().unwrap_or("-"),
            insns(obj, p),
            p.license
        );
    }
}

fn main() -> ExitCode {
    let mut path = None;
    let mut as_json = false;
    let mut load = false;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--json" => as_json = true,
            "--load" => load = true,
            "-h" | "--help" => {
                println!("usage: inspect OBJ.o [--json] [--load]");
                return ExitCode::SUCCESS;
            }
            _ if path.is_none() => path = Some(arg),
            _ => {
                eprintln!("usage: inspect OBJ.o [--json] [--load]");
                return ExitCode::from(2);
            }
        }
    }
    let Some(path) = path else {
        eprintln!("usage: inspect OBJ.o [--json] [--load]");
        return ExitCode::from(2);
    };
    let obj = match ObjectSpec::from_path(&path) {
        Ok(obj) => obj,
        Err(e) => {
            eprintln!("inspect: {path}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let loaded = if load {
        match load_object(&obj) {
            Ok(l) => Some(l),
            Err(e) => {
                eprintln!("inspect: {path}: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        None
    };
    if as_json {
        let mut out = json!({
            "maps": obj.maps.iter().map(map_json).collect::<Vec<_>>(),
            "programs": obj.programs.iter().map(|p| program_json(&obj, p)).collect::<Vec<_>>(),
        });
        if let Some(l) = &loaded {
            add_kernel_json(&mut out, l);
        }
        println!("{out}");
    } else {
        print_text(&obj);
        if let Some(l) = &loaded {
            print_kernel_text(l);
        }
    }
    match loaded {
        Some(l) if l.programs.iter().any(|(_, r)| r.is_err()) => ExitCode::FAILURE,
        _ => ExitCode::SUCCESS,
    }
}

/// What `--load` found: kernel ids of maps, and of programs or their load error.
struct Loaded {
    maps: Vec<(String, u32)>,
    programs: Vec<(String, Result<u32, String>)>,
}

/// Creates the object's maps (without pins: inspecting must not touch the machine's bpffs) and
/// loads every program.
fn load_object(obj: &ObjectSpec) -> Result<Loaded, String> {
    let mut spec = obj.clone();
    for m in &mut spec.maps {
        m.pinning = Pinning::None;
    }
    let mut sys = KernelSystem::from_spec(spec, &LoadOptions::default()).map_err(|e| chain(&e))?;
    let maps = sys.maps().map(|m| (m.name().to_string(), m.id())).collect();
    let mut programs = Vec::new();
    for p in sys.programs_mut() {
        let r = p
            .load()
            .and_then(|()| p.info())
            .map(|i| i.id)
            .map_err(|e| chain(&e));
        programs.push((p.name().to_string(), r));
    }
    Ok(Loaded { maps, programs })
}

/// An error with its sources, on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(c) = source {
        s.push_str(": ");
        s.push_str(&c.to_string());
        source = c.source();
    }
    s
}

fn add_kernel_json(out: &mut Value, l: &Loaded) {
    let set = |list: Option<&mut Vec<Value>>, name: &str, key: &str, v: Value| {
        for item in list.into_iter().flatten() {
            if item["name"] == name {
                item[key] = v.clone();
            }
        }
    };
    for (name, id) in &l.maps {
        set(out["maps"].as_array_mut(), name, "id", json!(id));
    }
    for (name, r) in &l.programs {
        match r {
            Ok(id) => set(out["programs"].as_array_mut(), name, "id", json!(id)),
            Err(e) => {
                set(out["programs"].as_array_mut(), name, "id", Value::Null);
                set(out["programs"].as_array_mut(), name, "error", json!(e));
            }
        }
    }
}

fn print_kernel_text(l: &Loaded) {
    println!("loaded:");
    for (name, id) in &l.maps {
        println!("  map     {name:<24} id {id}");
    }
    for (name, r) in &l.programs {
        match r {
            Ok(id) => println!("  program {name:<24} id {id}"),
            Err(e) => println!("  program {name:<24} error: {e}"),
        }
    }
}
