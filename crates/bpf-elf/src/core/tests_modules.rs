//! CO-RE against split (kernel module) BTF: a hand-built base and module pair.

use std::cell::Cell;
use std::sync::Arc;

use super::*;
use crate::btf::BtfTypeData;
use crate::btf::{BtfBuilder, BtfKind};
use crate::{CoreRelocation, LinkedProgram};

const LDX_W: u8 = 0x61;

fn program(insns: Vec<Instruction>, relos: Vec<(usize, u32, &str)>) -> LinkedProgram {
    let mut insns = insns;
    insns.push(Instruction {
        code: 0x95,
        dst: 0,
        src: 0,
        off: 0,
        imm: 0,
    });
    LinkedProgram {
        name: "p".into(),
        instructions: insns,
        functions: vec![("p".into(), 0)],
        func_info: Vec::new(),
        line_info: Vec::new(),
        core_relocations: relos
            .into_iter()
            .map(|(insn, type_id, access)| CoreRelocation {
                insn,
                type_id,
                access_str_off: 0,
                access: access.into(),
                kind: Kind::FieldByteOffset as u32,
            })
            .collect(),
        map_references: Vec::new(),
        externs: Vec::new(),
        endianness: Endianness::host(),
    }
}

fn ldx(off: i16) -> Instruction {
    Instruction {
        code: LDX_W,
        dst: 0,
        src: 1,
        off,
        imm: 0,
    }
}

/// Base ("vmlinux"): `int`, `long`, `struct task_struct { long state; int pid; }`.
fn base() -> Arc<Btf> {
    let mut b = BtfBuilder::new();
    let int = b.add_int("int", 4, true);
    let long = b.add_int("long", 8, true);
    b.add_struct("task_struct", 16, &[("state", long, 0), ("pid", int, 64)]);
    Arc::new(b.build().unwrap())
}

/// Module "veth" on `base`: `struct veth_priv { long pad; int x; struct task_struct *t; }`
/// and a `task_struct___mod` (which vmlinux's `task_struct` must win over).
fn module(base: &Arc<Btf>) -> (Btf, u32) {
    let int = base.find(BtfKind::Int, "int").unwrap();
    let long = base.find(BtfKind::Int, "long").unwrap();
    let task = base.find(BtfKind::Struct, "task_struct").unwrap();
    let mut b = BtfBuilder::new_split(base);
    let ptr = b.add_ptr(task);
    let priv_ = b.add_struct(
        "veth_priv",
        24,
        &[("pad", long, 0), ("x", int, 64), ("t", ptr, 128)],
    );
    b.add_struct("task_struct___mod", 8, &[("pid", int, 32)]);
    (b.build().unwrap(), priv_)
}

/// Local: `struct veth_priv { int x; }` and `struct task_struct { int pid; }`.
fn local() -> (Btf, u32, u32) {
    let mut b = BtfBuilder::new();
    let int = b.add_int("int", 4, true);
    let priv_ = b.add_struct("veth_priv", 4, &[("x", int, 0)]);
    let task = b.add_struct("task_struct", 4, &[("pid", int, 0)]);
    (b.build().unwrap(), priv_, task)
}

struct Targets {
    vmlinux: Arc<Btf>,
    modules: Vec<ModuleBtf>,
    asked: Cell<usize>,
}

impl CoreTargets for Targets {
    fn vmlinux(&self) -> &Btf {
        &self.vmlinux
    }
    fn modules(&self) -> &[ModuleBtf] {
        self.asked.set(self.asked.get() + 1);
        &self.modules
    }
}

#[test]
fn split_btf_resolves_ids_and_names_across_base_and_module() {
    let base = base();
    let (m, priv_) = module(&base);
    assert_eq!(m.first_id(), base.type_count());
    assert_eq!(priv_, base.type_count() + 1);
    assert_eq!(m.type_count(), base.type_count() + 3);
    // Base ids and names through the split BTF.
    assert_eq!(m.type_by_id(1).unwrap().name, "int");
    assert_eq!(m.find(BtfKind::Struct, "task_struct"), Some(3));
    assert_eq!(m.find(BtfKind::Struct, "veth_priv"), Some(priv_));
    assert_eq!(m.size_of(priv_), Some(24));
    let t = m.type_by_id(priv_).unwrap();
    let BtfTypeData::Members(members) = &t.data else {
        panic!("not a struct: {t:?}");
    };
    let ptr = m.type_by_id(members[2].type_id).unwrap();
    assert_eq!(ptr.kind, BtfKind::Ptr);
    assert_eq!(m.type_by_id(ptr.size_or_type).unwrap().name, "task_struct");
    // Candidates of a module are its own types only.
    assert_eq!(m.ids_by_essential_name("veth_priv"), &[priv_]);
    assert_eq!(m.ids_by_essential_name("task_struct"), &[priv_ + 1]);
    assert!(m.ids_by_essential_name("int").is_empty());
    assert_eq!(m.types().len(), 3);
    // The raw bytes hold only the module's part: its strings continue the base's, so it does
    // not parse alone, and parses again against the base.
    assert!(Btf::parse(m.raw()).is_err());
    let again = Btf::parse_split(m.raw(), &base).unwrap();
    assert_eq!(again.types(), m.types());
    assert_eq!(m.to_bytes(), m.raw());
    assert!(m
        .sanitized(&crate::btf::BtfFeatures {
            float: false,
            ..crate::btf::BtfFeatures::ALL
        })
        .is_err());
    // Truncations never panic.
    for len in 0..m.raw().len() {
        let _ = Btf::parse_split(&m.raw()[..len], &base);
    }
}

#[test]
fn module_candidates_are_searched_only_when_vmlinux_has_none() {
    let base = base();
    let (m, priv_) = module(&base);
    let (l, lpriv, ltask) = local();
    let targets = Targets {
        vmlinux: base.clone(),
        modules: vec![ModuleBtf::new("veth", Arc::new(m), Some(42))],
        asked: Cell::new(0),
    };

    // vmlinux has task_struct: the module's task_struct___mod is not a candidate.
    let mut p = program(vec![ldx(0)], vec![(0, ltask, "0:0")]);
    let report = p.relocate_core_with(&l, &targets).unwrap();
    let o = &report.outcomes[0];
    assert_eq!(
        targets.asked.get(),
        0,
        "modules read although vmlinux had a candidate"
    );
    assert_eq!((o.candidates, o.target_value), (1, 8));
    assert_eq!(o.target_type_id, Some(3));
    assert_eq!(o.target_origin, Some(CoreTargetOrigin::Vmlinux));
    assert_eq!(p.instructions[0].off, 8);

    // veth_priv only exists in the module.
    let mut p = program(vec![ldx(0)], vec![(0, lpriv, "0:0")]);
    let report = p.relocate_core_with(&l, &targets).unwrap();
    let o = &report.outcomes[0];
    assert_eq!(targets.asked.get(), 1);
    assert!(!o.poisoned);
    assert_eq!((o.candidates, o.target_value), (1, 8));
    assert_eq!(o.target_type_id, Some(priv_));
    assert_eq!(
        o.target_origin,
        Some(CoreTargetOrigin::Module {
            name: "veth".into(),
            btf_obj_id: Some(42)
        })
    );
    assert_eq!(p.instructions[0].off, 8);

    // Against vmlinux alone it has no target.
    let mut p = program(vec![ldx(0)], vec![(0, lpriv, "0:0")]);
    let report = p.relocate_core(&l, &base).unwrap();
    assert!(report.outcomes[0].poisoned);
    assert_eq!(report.outcomes[0].target_origin, None);
}

#[test]
fn candidates_in_two_modules_must_agree() {
    let base = base();
    let (m1, _) = module(&base);
    let int = base.find(BtfKind::Int, "int").unwrap();
    let mut b = BtfBuilder::new_split(&base);
    b.add_struct("veth_priv", 4, &[("x", int, 0)]);
    let m2 = b.build().unwrap();
    let (l, lpriv, _) = local();
    let targets = Targets {
        vmlinux: base,
        modules: vec![
            ModuleBtf::new("veth", Arc::new(m1), None),
            ModuleBtf::new("other", Arc::new(m2), None),
        ],
        asked: Cell::new(0),
    };
    let mut p = program(vec![ldx(0)], vec![(0, lpriv, "0:0")]);
    let e = p.relocate_core_with(&l, &targets).unwrap_err().to_string();
    assert!(e.contains("ambiguity"), "{e}");
}

/// `core_kfunc.o`'s kfuncs in a module's BTF (on a vmlinux without them): each call gets the
/// module's FUNC id and `off` 1, the module's slot in `fd_array`, which the result names.
#[test]
fn kfuncs_found_in_a_module_call_through_its_fd_array_slot() {
    let obj = crate::tests::object("core_kfunc");
    let mut v = BtfBuilder::new();
    let s32 = v.add_int("int", 4, true);
    let task = v.add_struct("task_struct", 8, &[("pid", s32, 0)]);
    let vmlinux = Arc::new(v.build().unwrap());
    let mut m = BtfBuilder::new_split(&vmlinux);
    let ptr = m.add_ptr(task);
    let from_pid = m.add_func_proto(ptr, &[("pid", s32)]);
    let from_pid = m.add_func("bpf_task_from_pid", from_pid, 1);
    let release = m.add_func_proto(0, &[("p", ptr)]);
    let release = m.add_func("bpf_task_release", release, 1);
    let module = Arc::new(m.build().unwrap());
    let targets = |obj_id| Targets {
        vmlinux: vmlinux.clone(),
        modules: vec![ModuleBtf::new("kfuncs", module.clone(), obj_id)],
        asked: Cell::new(0),
    };
    let mut p = obj.link("core_kfunc_task_pid").unwrap();
    let calls: Vec<usize> = p.externs.iter().map(|e| e.insn).collect();
    let used = p
        .resolve_externs_with(&obj, Some(&targets(Some(77))), |_| None)
        .unwrap();
    assert_eq!(used, [77]);
    let got: Vec<(u8, i32, i16)> = calls
        .iter()
        .map(|&i| {
            (
                p.instructions[i].src,
                p.instructions[i].imm,
                p.instructions[i].off,
            )
        })
        .collect();
    let call = bpf_sys::uapi::BPF_PSEUDO_KFUNC_CALL as u8;
    let mut want = vec![(call, from_pid as i32, 1), (call, release as i32, 1)];
    want.sort();
    let mut got_sorted = got.clone();
    got_sorted.sort();
    assert_eq!(got_sorted, want);
    // Without the module's BTF object id there is no fd to pass: an error naming the module.
    let mut p = obj.link("core_kfunc_task_pid").unwrap();
    let err = p
        .resolve_externs_with(&obj, Some(&targets(None)), |_| None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("kfuncs") && err.contains("object id"), "{err}");
}
