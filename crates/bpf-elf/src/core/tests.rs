//! CO-RE against hand-built target BTF: no kernel, no compiler.

use super::externs::{KconfigExtern, KconfigType};
use super::*;
use crate::btf::{BtfBuilder, BtfKind};
use crate::{CoreRelocation, LinkedProgram};

const LDX_W: u8 = 0x61;
const LDX_DW: u8 = 0x79;
const MOV64_IMM: u8 = 0xb7;

fn ins(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Instruction {
    Instruction {
        code,
        dst,
        src,
        off,
        imm,
    }
}

fn program(insns: Vec<Instruction>, relos: Vec<(usize, u32, &str, Kind)>) -> LinkedProgram {
    let mut insns = insns;
    insns.push(ins(0x95, 0, 0, 0, 0));
    LinkedProgram {
        name: "p".into(),
        instructions: insns,
        functions: vec![("p".into(), 0)],
        func_info: Vec::new(),
        line_info: Vec::new(),
        core_relocations: relos
            .into_iter()
            .map(|(insn, type_id, access, kind)| CoreRelocation {
                insn,
                type_id,
                access_str_off: 0,
                access: access.into(),
                kind: kind as u32,
            })
            .collect(),
        map_references: Vec::new(),
        externs: Vec::new(),
        endianness: Endianness::host(),
    }
}

/// Local: `struct task_struct { int pid; int tgid; }`, and the same with a flavor and an extra
/// field that the target lacks.
fn local() -> (Btf, u32, u32) {
    let mut b = BtfBuilder::new();
    let int = b.add_int("int", 4, true);
    let task = b.add_struct("task_struct", 8, &[("pid", int, 0), ("tgid", int, 32)]);
    let old = b.add_struct(
        "task_struct___old",
        12,
        &[("pid", int, 0), ("gone", int, 32), ("tgid", int, 64)],
    );
    (b.build().unwrap(), task, old)
}

/// Target: fields moved behind a `long`, `tgid` inside an anonymous struct.
fn target() -> Btf {
    let mut b = BtfBuilder::new();
    let int = b.add_int("int", 4, true);
    let long = b.add_int("long", 8, true);
    let anon = b.add_struct("", 8, &[("pad", int, 0), ("tgid", int, 32)]);
    b.add_struct(
        "task_struct",
        24,
        &[("state", long, 0), ("pid", int, 64), ("", anon, 128)],
    );
    b.build().unwrap()
}

#[test]
fn field_offsets_follow_moved_fields_and_anonymous_members() {
    let (l, task, _) = local();
    let mut p = program(
        vec![ins(LDX_W, 0, 1, 0, 0), ins(LDX_W, 2, 1, 4, 0)],
        vec![
            (0, task, "0:0", Kind::FieldByteOffset),
            (1, task, "0:1", Kind::FieldByteOffset),
        ],
    );
    let report = p.relocate_core(&l, &target()).unwrap();
    assert_eq!(p.instructions[0].off, 8, "pid moved to byte 8");
    assert_eq!(
        p.instructions[1].off, 20,
        "tgid is at 16 + 4 in the anonymous struct"
    );
    assert!(p.core_relocations.is_empty());
    assert_eq!(report.outcomes.len(), 2);
    assert_eq!(
        (
            report.outcomes[0].local_value,
            report.outcomes[0].target_value
        ),
        (0, 8)
    );
    assert_eq!(report.poisoned().count(), 0);
    // The records are consumed: the map step no longer refuses the program.
    p.relocate(|_| None).unwrap();
}

#[test]
fn a_flavored_local_type_matches_the_target_without_its_suffix() {
    let (l, _, old) = local();
    let mut p = program(
        vec![ins(LDX_W, 0, 1, 8, 0)],
        vec![(0, old, "0:2", Kind::FieldByteOffset)],
    );
    let report = p.relocate_core(&l, &target()).unwrap();
    assert_eq!(p.instructions[0].off, 20);
    assert_eq!(report.outcomes[0].type_name, "task_struct___old");
    assert_eq!(report.outcomes[0].candidates, 1);
}

#[test]
fn a_missing_field_reads_as_absent_and_poisons_its_access() {
    let (l, _, old) = local();
    let mut p = program(
        vec![ins(MOV64_IMM, 0, 0, 0, 1), ins(LDX_W, 0, 1, 4, 0)],
        vec![
            (0, old, "0:1", Kind::FieldExists),
            (1, old, "0:1", Kind::FieldByteOffset),
        ],
    );
    let report = p.relocate_core(&l, &target()).unwrap();
    assert_eq!(p.instructions[0].imm, 0, "bpf_core_field_exists is 0");
    assert_eq!(
        p.instructions[1].code,
        (uapi::BPF_JMP | uapi::BPF_CALL) as u8
    );
    assert_eq!(p.instructions[1].imm, POISON_HELPER);
    let poisoned = report.poisoned_at(1).expect("the access is poisoned");
    assert_eq!(poisoned.relocation.access, "0:1");
    assert!(
        poisoned.to_string().contains("task_struct___old"),
        "{poisoned}"
    );
}

#[test]
fn existence_of_a_present_field_is_one() {
    let (l, task, _) = local();
    let mut p = program(
        vec![ins(MOV64_IMM, 0, 0, 0, 1)],
        vec![(0, task, "0:1", Kind::FieldExists)],
    );
    p.relocate_core(&l, &target()).unwrap();
    assert_eq!(p.instructions[0].imm, 1);
}

fn bitfields(target: bool) -> (Btf, u32) {
    let mut b = BtfBuilder::new();
    let uint = b.add_int("unsigned int", 4, false);
    let int = b.add_int("int", 4, true);
    let id = if target {
        b.add_struct_bitfields(
            "flags",
            8,
            &[("x", uint, 0, 0), ("a", uint, 32, 3), ("b", int, 35, 7)],
        )
    } else {
        b.add_struct_bitfields("flags", 4, &[("a", uint, 0, 3), ("b", int, 3, 5)])
    };
    (b.build().unwrap(), id)
}

#[test]
fn bitfield_offsets_sizes_shifts_and_signedness_follow_the_target() {
    let (l, flags) = bitfields(false);
    let (t, _) = bitfields(true);
    // What clang emits for BPF_CORE_READ_BITFIELD: byte offset, byte size, lshift, rshift,
    // and whether to shift arithmetically.
    let kinds = [
        Kind::FieldByteOffset,
        Kind::FieldByteSize,
        Kind::FieldLshiftU64,
        Kind::FieldRshiftU64,
        Kind::FieldSigned,
    ];
    // The local values: b is bits 3..8 of a 4-byte load at 0.
    let local_lshift = match Endianness::host() {
        Endianness::Little => 64 - 8,
        Endianness::Big => 32 + 3,
    };
    let insns = [0, 4, local_lshift, 64 - 5, 1]
        .iter()
        .map(|&v| ins(MOV64_IMM, 0, 0, 0, v))
        .collect();
    let relos = kinds
        .iter()
        .enumerate()
        .map(|(i, k)| (i, flags, "0:1", *k))
        .collect();
    let mut p = program(insns, relos);
    p.relocate_core(&l, &t).unwrap();
    let got: Vec<i32> = p.instructions[..5].iter().map(|i| i.imm).collect();
    // b: bits 35..42 of an 8-byte struct; a 4-byte load at byte 4 holds bits 32..64.
    let lshift = match Endianness::host() {
        Endianness::Little => 64 - (35 + 7 - 32),
        Endianness::Big => 32 + 3,
    };
    assert_eq!(got, vec![4, 4, lshift, 64 - 7, 1]);
}

fn enums(target: bool) -> (Btf, u32) {
    let mut b = BtfBuilder::new();
    let id = if target {
        b.add_enum(
            "state",
            4,
            false,
            &[("RUNNING", 0), ("ZOMBIE", 1), ("STOPPED", 4)],
        )
    } else {
        b.add_enum(
            "state",
            4,
            false,
            &[("RUNNING", 0), ("STOPPED", 1), ("GONE", 2)],
        )
    };
    (b.build().unwrap(), id)
}

#[test]
fn enum_values_are_taken_from_the_target_and_missing_ones_do_not_exist() {
    let (l, state) = enums(false);
    let (t, _) = enums(true);
    let ld = |v: i32| [ins(0x18, 1, 0, 0, v), ins(0, 0, 0, 0, 0)];
    let mut insns = vec![ins(MOV64_IMM, 0, 0, 0, 1), ins(MOV64_IMM, 0, 0, 0, 1)];
    insns.extend(ld(1));
    insns.extend(ld(2));
    let mut p = program(
        insns,
        vec![
            (0, state, "1", Kind::EnumvalExists),
            (1, state, "2", Kind::EnumvalExists),
            (2, state, "1", Kind::EnumvalValue),
            (4, state, "2", Kind::EnumvalValue),
        ],
    );
    let report = p.relocate_core(&l, &t).unwrap();
    assert_eq!(p.instructions[0].imm, 1, "STOPPED exists");
    assert_eq!(p.instructions[1].imm, 0, "GONE does not");
    assert_eq!(p.instructions[2].imm, 4, "STOPPED is 4 in the target");
    assert_eq!(
        (p.instructions[4].imm, p.instructions[5].imm),
        (POISON_HELPER, POISON_HELPER)
    );
    assert_eq!(report.poisoned().count(), 1);
}

#[test]
fn enum64_values_take_both_halves_of_an_ldimm64() {
    let (l, state) = enums(false);
    let mut b = BtfBuilder::new();
    b.add_enum("state", 8, false, &[("STOPPED", 0x1_0000_0002)]);
    let t = b.build().unwrap();
    let mut p = program(
        vec![ins(0x18, 1, 0, 0, 1), ins(0, 0, 0, 0, 0)],
        vec![(0, state, "1", Kind::EnumvalValue)],
    );
    p.relocate_core(&l, &t).unwrap();
    assert_eq!((p.instructions[0].imm, p.instructions[1].imm), (2, 1));
}

#[test]
fn type_relocations_exist_size_and_target_id() {
    let (l, task, old) = local();
    let t = target();
    let tid = t.find(BtfKind::Struct, "task_struct").unwrap();
    let mut p = program(
        vec![
            ins(MOV64_IMM, 0, 0, 0, 1),
            ins(MOV64_IMM, 0, 0, 0, 8),
            ins(0x18, 1, 0, 0, task as i32),
            ins(0, 0, 0, 0, 0),
            ins(MOV64_IMM, 0, 0, 0, 1),
            ins(MOV64_IMM, 0, 0, 0, 1),
        ],
        vec![
            (0, task, "0", Kind::TypeExists),
            (1, task, "0", Kind::TypeSize),
            (2, task, "0", Kind::TypeIdTarget),
            (4, old, "0", Kind::TypeMatches),
            (5, task, "0", Kind::TypeMatches),
        ],
    );
    p.relocate_core(&l, &t).unwrap();
    assert_eq!(p.instructions[0].imm, 1);
    assert_eq!(p.instructions[1].imm, 24);
    assert_eq!(p.instructions[2].imm as u32, tid);
    assert_eq!(p.instructions[4].imm, 0, "the target has no field `gone`");
    assert_eq!(
        p.instructions[5].imm, 0,
        "`tgid` is inside an anonymous member, not a direct one"
    );
}

#[test]
fn type_matches_when_every_local_member_has_a_match() {
    let mut b = BtfBuilder::new();
    let int = b.add_int("int", 4, true);
    let s = b.add_struct("pair", 8, &[("b", int, 32)]);
    let l = b.build().unwrap();
    let mut b = BtfBuilder::new();
    let int = b.add_int("int", 4, true);
    b.add_struct("pair", 8, &[("a", int, 0), ("b", int, 32)]);
    let t = b.build().unwrap();
    let mut p = program(
        vec![ins(MOV64_IMM, 0, 0, 0, 1)],
        vec![(0, s, "0", Kind::TypeMatches)],
    );
    p.relocate_core(&l, &t).unwrap();
    assert_eq!(p.instructions[0].imm, 1);
}

#[test]
fn candidates_that_disagree_are_an_ambiguity_error() {
    let (l, task, _) = local();
    let mut b = BtfBuilder::new();
    let int = b.add_int("int", 4, true);
    b.add_struct("task_struct", 8, &[("pid", int, 0)]);
    b.add_struct("task_struct___v2", 8, &[("x", int, 0), ("pid", int, 32)]);
    let t = b.build().unwrap();
    let mut p = program(
        vec![ins(LDX_W, 0, 1, 0, 0)],
        vec![(0, task, "0:0", Kind::FieldByteOffset)],
    );
    let before = p.clone();
    let err = p.relocate_core(&l, &t).unwrap_err();
    assert!(err.to_string().contains("ambiguity"), "{err}");
    assert_eq!(p, before, "nothing changes on error");
}

#[test]
fn candidates_that_agree_are_not_ambiguous() {
    let (l, task, _) = local();
    let mut b = BtfBuilder::new();
    let int = b.add_int("int", 4, true);
    b.add_struct("task_struct", 8, &[("pid", int, 32)]);
    b.add_struct("task_struct___v2", 8, &[("x", int, 0), ("pid", int, 32)]);
    let t = b.build().unwrap();
    let mut p = program(
        vec![ins(LDX_W, 0, 1, 0, 0)],
        vec![(0, task, "0:0", Kind::FieldByteOffset)],
    );
    let report = p.relocate_core(&l, &t).unwrap();
    assert_eq!(report.outcomes[0].candidates, 2);
    assert_eq!(p.instructions[0].off, 4);
}

#[test]
fn incompatible_field_types_do_not_match() {
    let (l, task, _) = local();
    let mut b = BtfBuilder::new();
    let int = b.add_int("int", 4, true);
    let inner = b.add_struct("inner", 4, &[("x", int, 0)]);
    b.add_struct("task_struct", 8, &[("pid", inner, 0)]);
    let t = b.build().unwrap();
    let mut p = program(
        vec![ins(LDX_W, 0, 1, 0, 0)],
        vec![(0, task, "0:0", Kind::FieldByteOffset)],
    );
    let report = p.relocate_core(&l, &t).unwrap();
    assert!(
        report.outcomes[0].poisoned,
        "an int is not read from a struct"
    );
}

#[test]
fn loads_of_unsigned_fields_are_resized_and_signed_ones_poisoned() {
    let mut b = BtfBuilder::new();
    let u32_ = b.add_int("unsigned int", 4, false);
    let int = b.add_int("int", 4, true);
    let s = b.add_struct("s", 8, &[("u", u32_, 0), ("i", int, 32)]);
    let l = b.build().unwrap();
    let mut b = BtfBuilder::new();
    let u64_ = b.add_int("unsigned long", 8, false);
    let long = b.add_int("long", 8, true);
    b.add_struct("s", 16, &[("u", u64_, 0), ("i", long, 64)]);
    let t = b.build().unwrap();
    let mut p = program(
        vec![ins(LDX_W, 0, 1, 0, 0), ins(LDX_W, 0, 1, 4, 0)],
        vec![
            (0, s, "0:0", Kind::FieldByteOffset),
            (1, s, "0:1", Kind::FieldByteOffset),
        ],
    );
    let report = p.relocate_core(&l, &t).unwrap();
    assert_eq!(
        p.instructions[0].code, LDX_DW,
        "a u32 read becomes a u64 read"
    );
    assert_eq!(
        p.instructions[1].imm, POISON_HELPER,
        "a signed int cannot be widened"
    );
    assert!(report.outcomes[1].poisoned);
}

#[test]
fn a_mismatch_between_instruction_and_local_btf_is_an_error() {
    let (l, task, _) = local();
    let mut p = program(
        vec![ins(LDX_W, 0, 1, 3, 0)],
        vec![(0, task, "0:1", Kind::FieldByteOffset)],
    );
    let err = p.relocate_core(&l, &target()).unwrap_err();
    assert!(
        matches!(
            err,
            ElfError::CoreRelocation {
                index: 0,
                insn: 0,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn malformed_records_are_errors_not_panics() {
    let (l, task, _) = local();
    for (access, kind, type_id) in [
        ("0:9", Kind::FieldByteOffset, task),
        ("x", Kind::FieldByteOffset, task),
        ("0:0", Kind::FieldByteOffset, 999),
        ("0:0", Kind::TypeSize, task),
        ("7", Kind::EnumvalValue, task),
    ] {
        let mut p = program(
            vec![ins(LDX_W, 0, 1, 0, 0)],
            vec![(0, type_id, access, kind)],
        );
        assert!(p.relocate_core(&l, &target()).is_err(), "{access} {kind:?}");
    }
    let mut p = program(
        vec![ins(LDX_W, 0, 1, 0, 0)],
        vec![(5, task, "0:0", Kind::FieldByteOffset)],
    );
    assert!(
        p.relocate_core(&l, &target()).is_err(),
        "instruction out of range"
    );
}

#[test]
fn type_id_local_keeps_the_local_id() {
    let (l, task, _) = local();
    let mut p = program(
        vec![ins(0x18, 1, 0, 0, task as i32), ins(0, 0, 0, 0, 0)],
        vec![(0, task, "0", Kind::TypeIdLocal)],
    );
    p.relocate_core(&l, &BtfBuilder::new().build().unwrap())
        .unwrap();
    assert_eq!(p.instructions[0].imm as u32, task);
}

// ---- .kconfig and __ksym externs (core_kconfig.o) --------------------------------------------

#[test]
fn kconfig_externs_are_laid_out_at_their_alignment_with_weakness() {
    let obj = crate::tests::object("core_kconfig");
    let (externs, size) = obj.kconfig_externs().unwrap();
    let got: Vec<_> = externs
        .iter()
        .map(|e| (e.name.as_str(), e.offset, e.size, e.ty, e.weak))
        .collect();
    use externs::KconfigType::*;
    assert_eq!(
        got,
        vec![
            ("LINUX_KERNEL_VERSION", 0, 4, Int { signed: false }, false),
            ("CONFIG_HZ", 4, 4, Int { signed: true }, false),
            ("CONFIG_BPF_SYSCALL", 8, 1, Bool, false),
            ("CONFIG_EBPF_TEST_NO_SUCH_OPTION", 9, 1, Bool, true),
            ("LINUX_HAS_SYSCALL_WRAPPER", 10, 1, Bool, false),
            ("LINUX_HAS_BPF_COOKIE", 11, 1, Bool, false),
        ]
    );
    assert_eq!(size, 16);
}

#[test]
fn the_kconfig_map_holds_the_values_and_weak_ones_may_be_missing() {
    let obj = crate::tests::object("core_kconfig");
    let value = |n: &str| match n {
        "LINUX_KERNEL_VERSION" => Some("393472".to_string()),
        "CONFIG_HZ" => Some("250".to_string()),
        "CONFIG_BPF_SYSCALL" | "LINUX_HAS_SYSCALL_WRAPPER" => Some("y".to_string()),
        "LINUX_HAS_BPF_COOKIE" => Some("n".to_string()),
        _ => None,
    };
    let map = obj.kconfig_map(value).unwrap().expect("a .kconfig map");
    assert_eq!(
        (
            map.name.as_str(),
            map.value_size,
            map.max_entries,
            map.freeze
        ),
        (KCONFIG_MAP, 16, 1, true)
    );
    let data = map.data.unwrap();
    let u32_at = |o: usize| u32::from_ne_bytes(data[o..o + 4].try_into().unwrap());
    assert_eq!(
        (u32_at(0), u32_at(4), data[8], data[9], data[10], data[11]),
        (393472, 250, 1, 0, 1, 0)
    );
    // A strong one missing is an error naming it.
    let err = obj
        .kconfig_map(|n| (n != "CONFIG_HZ").then(|| "y".to_string()))
        .unwrap_err();
    assert!(err.to_string().contains("CONFIG_HZ"), "{err}");
    // A value that does not fit its type is an error too.
    assert!(obj.kconfig_map(|_| Some("\"str\"".into())).is_err());
}

#[test]
fn kconfig_values_encode_by_type() {
    let e = |ty, size| KconfigExtern {
        name: "X".into(),
        offset: 0,
        size,
        ty,
        weak: false,
    };
    let le = Endianness::Little;
    assert_eq!(
        e(KconfigType::Tristate, 4).encode("m", le).unwrap(),
        vec![2, 0, 0, 0]
    );
    assert_eq!(
        e(KconfigType::Chars, 4).encode("\"ab\"", le).unwrap(),
        b"ab\0\0".to_vec()
    );
    assert!(
        e(KconfigType::Chars, 2).encode("\"ab\"", le).is_err(),
        "no room for the NUL"
    );
    assert_eq!(
        e(KconfigType::Int { signed: true }, 2)
            .encode("-2", le)
            .unwrap(),
        vec![0xfe, 0xff]
    );
    assert_eq!(
        e(KconfigType::Int { signed: false }, 2)
            .encode("0x1234", Endianness::Big)
            .unwrap(),
        vec![0x12, 0x34]
    );
    assert!(e(KconfigType::Int { signed: false }, 1)
        .encode("256", le)
        .is_err());
    assert!(e(KconfigType::Bool, 1).encode("2", le).is_err());
}

#[test]
fn ksyms_resolve_to_btf_ids_and_addresses_and_kconfig_reads_to_the_map() {
    let obj = crate::tests::object("core_kconfig");
    let mut kernel = BtfBuilder::new();
    let int = kernel.add_int("int", 4, true);
    let var = kernel.add_var("ebpf_test_no_such_var", int, 1);
    let kernel = kernel.build().unwrap();
    let mut p = obj.link("core_kconfig_getpid").unwrap();
    let externs = p.externs.clone();
    p.resolve_externs(&obj, Some(&kernel), |s| {
        (s == "schedule").then_some(0xffff_ffff_8220_0010)
    })
    .unwrap();
    assert!(p.externs.is_empty());
    for e in &externs {
        let (i, next) = (p.instructions[e.insn], p.instructions[e.insn + 1]);
        match e.symbol.as_str() {
            // Typed: found in this kernel BTF (in the real one it is missing, and weak).
            "ebpf_test_no_such_var" => {
                assert_eq!(
                    (i.src, i.imm, next.imm),
                    (uapi::BPF_PSEUDO_BTF_ID as u8, var as i32, 0)
                )
            }
            "schedule" => assert_eq!(
                (i.src, i.imm as u32, next.imm as u32),
                (0, 0x8220_0010, 0xffff_ffff)
            ),
            "ebpf_test_no_such_symbol" => assert_eq!((i.src, i.imm, next.imm), (0, 0, 0)),
            name => {
                let r = p
                    .map_references
                    .iter()
                    .find(|r| r.insn == e.insn)
                    .unwrap_or_else(|| panic!("{name}"));
                assert_eq!(r.map, KCONFIG_MAP);
            }
        }
    }
    // Weak ones missing read as 0; a strong one missing is an error.
    let mut p = obj.link("core_kconfig_getpid").unwrap();
    let empty = BtfBuilder::new().build().unwrap();
    p.resolve_externs(&obj, Some(&empty), |s| (s == "schedule").then_some(1))
        .unwrap();
    let mut p = obj.link("core_kconfig_getpid").unwrap();
    let err = p.resolve_externs(&obj, Some(&empty), |_| None).unwrap_err();
    assert!(err.to_string().contains("schedule"), "{err}");
}

#[test]
fn extern_sections_become_allocated_variables_in_the_btf_for_the_kernel() {
    let obj = crate::tests::object("core_kconfig");
    let btf = obj.btf_for_kernel().unwrap().unwrap();
    let before = obj.btf.as_ref().unwrap();
    for name in [KCONFIG_MAP, ".ksyms"] {
        let ds = btf.find(BtfKind::DataSec, name).unwrap();
        let t = btf.type_by_id(ds).unwrap();
        let crate::btf::BtfTypeData::DataSec(vars) = &t.data else {
            panic!("{name}")
        };
        for v in vars {
            let var = btf.type_by_id(v.type_id).unwrap();
            assert_eq!(
                var.data,
                crate::btf::BtfTypeData::Var { linkage: 1 },
                "{name} {}",
                var.name
            );
            assert!(v.offset + v.size <= t.size_or_type, "{name} {}", var.name);
        }
        assert!(t.size_or_type > 0, "{name}");
    }
    assert_eq!(
        btf.size_of(btf.find(BtfKind::DataSec, KCONFIG_MAP).unwrap()),
        Some(16)
    );
    // Type ids are kept.
    assert_eq!(
        &btf.types()[..before.types().len()].len(),
        &before.types().len()
    );
    assert_eq!(
        btf.find(BtfKind::Var, "CONFIG_HZ"),
        before.find(BtfKind::Var, "CONFIG_HZ")
    );
}

#[test]
fn kfuncs_become_global_functions_with_named_parameters_in_the_btf_for_the_kernel() {
    let obj = crate::tests::object("core_kfunc");
    let before = obj.btf.as_ref().unwrap();
    let btf = obj.btf_for_kernel().unwrap().unwrap();
    for name in ["bpf_task_from_pid", "bpf_task_release"] {
        let id = before.find(BtfKind::Func, name).unwrap();
        // clang writes the declaration as an extern function.
        assert_eq!(before.type_by_id(id).unwrap().vlen, 2, "{name}");
        let f = btf
            .type_by_id(btf.find(BtfKind::Func, name).unwrap())
            .unwrap();
        assert_eq!(f.vlen, 1, "{name}: not global");
        let crate::btf::BtfTypeData::Params(params) = &btf.type_by_id(f.size_or_type).unwrap().data
        else {
            panic!("{name}: no prototype")
        };
        assert!(!params.is_empty() && params.iter().all(|p| !p.name.is_empty()));
    }
    // An unnamed parameter gets a name: a hand-made copy with the names removed.
    let mut types = before.types().to_vec();
    let proto =
        types[before.find(BtfKind::Func, "bpf_task_release").unwrap() as usize].size_or_type;
    if let crate::btf::BtfTypeData::Params(p) = &mut types[proto as usize].data {
        p[0].name = crate::name::Name::from("");
    }
    let mut unnamed = obj.clone();
    unnamed.btf = Some(before.with_types(&types).unwrap());
    let btf = unnamed.btf_for_kernel().unwrap().unwrap();
    let crate::btf::BtfTypeData::Params(p) = &btf.type_by_id(proto).unwrap().data else {
        panic!("no prototype")
    };
    assert_eq!(&*p[0].name, "__ksym_placeholder");
}

/// A kernel BTF with `core_kfunc.o`'s two kfuncs, `bpf_task_from_pid` taking `from_pid_params`
/// `s32` parameters.
fn task_kfuncs_kernel(from_pid_params: usize) -> Btf {
    let mut k = BtfBuilder::new();
    let s32 = k.add_int("int", 4, true);
    let task = k.add_struct("task_struct", 8, &[("pid", s32, 0)]);
    let ptr = k.add_ptr(task);
    let params: Vec<(&str, u32)> = (0..from_pid_params).map(|_| ("pid", s32)).collect();
    let from_pid = k.add_func_proto(ptr, &params);
    k.add_func("bpf_task_from_pid", from_pid, 1);
    let release = k.add_func_proto(0, &[("p", ptr)]);
    k.add_func("bpf_task_release", release, 1);
    k.build().unwrap()
}

#[test]
fn a_ksym_whose_type_differs_from_the_kernels_is_refused() {
    let obj = crate::tests::object("core_kfunc");
    let good = task_kfuncs_kernel(1);
    let mut p = obj.link("core_kfunc_task_pid").unwrap();
    p.resolve_externs(&obj, Some(&good), |_| None).unwrap();
    assert!(p.externs.is_empty());
    // The kernel's function takes two arguments: the call would pass garbage in the second.
    let mut p = obj.link("core_kfunc_task_pid").unwrap();
    let err = p
        .resolve_externs(&obj, Some(&task_kfuncs_kernel(2)), |_| None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("bpf_task_from_pid")
            && err.contains("prototype")
            && err.contains("incompatible"),
        "{err}"
    );
    // A typed variable (`int` in the object) that is a struct in the kernel: refused, weak or
    // not (as libbpf).
    let obj = crate::tests::object("core_kconfig");
    let mut k = BtfBuilder::new();
    let int = k.add_int("int", 4, true);
    let s = k.add_struct("ebpf_test_s", 4, &[("x", int, 0)]);
    k.add_var("ebpf_test_no_such_var", s, 1);
    let kernel = k.build().unwrap();
    let mut p = obj.link("core_kconfig_getpid").unwrap();
    let err = p
        .resolve_externs(&obj, Some(&kernel), |_| Some(1))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("ebpf_test_no_such_var") && err.contains("struct ebpf_test_s"),
        "{err}"
    );
}
