//! Prints what a clang-built BPF object declares: its maps and programs.
//!
//! ```text
//! cargo run -p ebpf --example inspect -- OBJ.o [--json]
//! ```
//!
//! Works on any object (legacy goebpf maps, BTF maps, global data); needs no kernel and no root.

use std::path::Path;
use std::process::ExitCode;

use ebpf::elf::{MapSpec, ObjectSpec, ProgramSpec};
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
        "name": m.name,
        "type": m.map_type.kernel_name(),
        "key_size": m.key_size,
        "value_size": m.value_size,
        "max_entries": m.max_entries,
        "flags": m.flags,
        "pin_path": pin_path(m),
        "inner_map": m.inner_map.as_ref().map(|i| i.name.clone()),
    })
}

fn program_json(obj: &ObjectSpec, p: &ProgramSpec) -> Value {
    json!({
        "name": p.name,
        "section": p.section,
        "type": p.program_type.kernel_name(),
        "attach_type": p.expected_attach_type.map(|a| a.kernel_name()),
        "attach_to": p.attach_to,
        "insns": insns(obj, p),
        "license": p.license,
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
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--json" => as_json = true,
            "-h" | "--help" => {
                println!("usage: inspect OBJ.o [--json]");
                return ExitCode::SUCCESS;
            }
            _ if path.is_none() => path = Some(arg),
            _ => {
                eprintln!("usage: inspect OBJ.o [--json]");
                return ExitCode::from(2);
            }
        }
    }
    let Some(path) = path else {
        eprintln!("usage: inspect OBJ.o [--json]");
        return ExitCode::from(2);
    };
    let obj = match ObjectSpec::from_path(&path) {
        Ok(obj) => obj,
        Err(e) => {
            eprintln!("inspect: {path}: {e}");
            return ExitCode::FAILURE;
        }
    };
    if as_json {
        let out = json!({
            "maps": obj.maps.iter().map(map_json).collect::<Vec<_>>(),
            "programs": obj.programs.iter().map(|p| program_json(&obj, p)).collect::<Vec<_>>(),
        });
        println!("{out}");
    } else {
        print_text(&obj);
    }
    ExitCode::SUCCESS
}
