//! `ProgramSpec::relocate_alone` against linking and relocating: the same instructions,
//! records and errors for every program of every built object, and for edited copies.

use bpf_sys::uapi::bpf_insn;

use crate::btf::{FuncInfo, LineInfo};
use crate::{ObjectSpec, ProgramSpec, Reference};

/// The fields of an instruction, to compare.
fn fields(i: &bpf_insn) -> (u8, u8, u8, i16, i32) {
    (i.code, i.dst_reg(), i.src_reg(), i.off, i.imm)
}

/// A map's fd by name.
type FdOf<'a> = dyn Fn(&str) -> Option<i32> + 'a;

/// What linking and relocating `p` gives: its instructions and records, or the error.
type Outcome = Result<(Vec<(u8, u8, u8, i16, i32)>, Vec<FuncInfo>, Vec<LineInfo>), String>;

fn linked(obj: &ObjectSpec, p: &ProgramSpec, fd: &dyn Fn(&str) -> Option<i32>) -> Outcome {
    let mut l = p.link(obj).map_err(|e| e.to_string())?;
    l.relocate(fd).map_err(|e| e.to_string())?;
    let insns = l.instructions.iter().map(|i| fields(&i.to_bpf_insn()));
    Ok((insns.collect(), l.func_info, l.line_info))
}

fn alone(p: &ProgramSpec, fd: &dyn Fn(&str) -> Option<i32>) -> Option<Outcome> {
    let r = p.relocate_alone(fd)?;
    Some(r.map_err(|e| e.to_string()).map(|insns| {
        let f = &p.function;
        let insns = insns.iter().map(fields).collect();
        (insns, f.func_info.clone(), f.line_info.clone())
    }))
}

#[test]
fn a_program_alone_relocates_as_linking_it_does() {
    let dir = super::bpf_dir();
    let mut paths = Vec::new();
    for d in [dir.clone(), dir.join("bpfeb")] {
        let entries = std::fs::read_dir(&d).expect("target/bpf: run cargo xtask build-bpf");
        for e in entries.flatten() {
            if e.path().extension().is_some_and(|x| x == "o") {
                paths.push(e.path());
            }
        }
    }
    let (mut same, mut errors, mut linked_only) = (0, 0, 0);
    for path in &paths {
        let Ok(obj) = ObjectSpec::from_path(path) else {
            continue;
        };
        let fd_of = |name: &str| {
            let i = obj.maps.iter().position(|m| m.name == name)?;
            Some(100 + i as i32)
        };
        for (index, p) in obj.programs.iter().enumerate() {
            let mut cases: Vec<(ObjectSpec, Box<FdOf<'_>>)> = vec![(obj.clone(), Box::new(fd_of))];
            if let Some(first) = p.function.relocations.first() {
                // A map without an fd.
                if let Reference::Map { map } | Reference::MapValue { map, .. } = &first.target {
                    let missing = map.clone();
                    let fd = move |name: &str| (name != missing).then_some(7);
                    cases.push((obj.clone(), Box::new(fd)));
                }
                // A reference site that is no longer an `ld_imm64`, and one past the end.
                for at in [first.insn, p.function.instructions.len()] {
                    let mut edited = obj.clone();
                    let f = &mut edited.programs[index].function;
                    if let Some(i) = f.instructions.get_mut(at) {
                        i.code = 0xb7;
                    } else if let Some(r) = f.relocations.first_mut() {
                        r.insn = at;
                    }
                    cases.push((edited, Box::new(|_: &str| Some(9))));
                }
            }
            for (o, fd) in &cases {
                let p = &o.programs[index];
                match alone(p, fd.as_ref()) {
                    Some(a) => {
                        let l = linked(o, p, fd.as_ref());
                        assert_eq!(a, l, "{} in {}", p.name, path.display());
                        if a.is_ok() {
                            same += 1;
                        } else {
                            errors += 1;
                        }
                    }
                    None => linked_only += 1,
                }
            }
        }
    }
    // Both kinds of programs, and the errors, were met.
    assert!(
        same > 20 && errors > 10 && linked_only > 5,
        "{same} {errors} {linked_only}"
    );
}
