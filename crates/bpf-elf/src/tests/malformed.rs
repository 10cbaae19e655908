//! Malformed and unusual input: a typed error for each case, never a panic; and the goebpf
//! loader bugs (goebpf-behaviour.md 1 and 11) not repeated.

use object::read::elf::{FileHeader, SectionHeader};
use object::SectionKind;

use super::object_bytes;
use super::synth::{call, goebpf_record, ld_imm64, ret0, Synth};
use crate::btf::tests::build as build_btf;
use crate::elf::{R_BPF_64_32, R_BPF_64_64, R_BPF_64_ABS64};
use crate::{
    ElfError, Endianness, Instruction, LinkedProgram, MapType, ObjectSpec, Pinning, ProgramType,
    Reference,
};

/// File offset and size of a section of a little-endian object.
fn section_range(bytes: &[u8], name: &str) -> (usize, usize) {
    let h = object::elf::FileHeader64::<object::Endianness>::parse(bytes).unwrap();
    let e = h.endian().unwrap();
    let t = h.sections(e, bytes).unwrap();
    let (_, sh) = t
        .enumerate()
        .find(|(_, s)| t.section_name(e, s).unwrap() == name.as_bytes())
        .unwrap_or_else(|| panic!("no section {name}"));
    (sh.sh_offset(e) as usize, sh.sh_size(e) as usize)
}

/// xdp_legacy.o with its first `.relxdp` record changed.
fn patched_rel(
    offset: Option<u64>,
    sym: Option<u32>,
    r_type: Option<u32>,
) -> Result<ObjectSpec, ElfError> {
    let mut bytes = object_bytes("xdp_legacy", false);
    let (start, _) = section_range(&bytes, ".relxdp");
    let rec = &mut bytes[start..start + 16];
    let old_off = u64::from_le_bytes(rec[0..8].try_into().unwrap());
    let old_info = u64::from_le_bytes(rec[8..16].try_into().unwrap());
    let info = (u64::from(sym.unwrap_or((old_info >> 32) as u32)) << 32)
        | u64::from(r_type.unwrap_or(old_info as u32));
    rec[0..8].copy_from_slice(&offset.unwrap_or(old_off).to_le_bytes());
    rec[8..16].copy_from_slice(&info.to_le_bytes());
    ObjectSpec::parse(&bytes)
}

#[test]
fn relocation_against_the_null_symbol_is_an_error_not_a_panic() {
    let err = patched_rel(None, Some(0), None).unwrap_err();
    assert!(
        matches!(err, ElfError::NullSymbol { ref section, .. } if section == "xdp"),
        "{err}"
    );
}

#[test]
fn relocation_symbol_out_of_range_is_an_error() {
    let err = patched_rel(None, Some(9999), None).unwrap_err();
    assert!(
        matches!(err, ElfError::SymbolOutOfRange { index: 9999, .. }),
        "{err}"
    );
    assert!(err
        .to_string()
        .starts_with("section xdp: relocation at offset"));
}

#[test]
fn relocation_offset_out_of_range_or_misaligned_is_an_error() {
    for off in [0xfff_fff0, 3, u64::MAX] {
        let err = patched_rel(Some(off), None, None).unwrap_err();
        assert!(
            matches!(err, ElfError::RelocationOutOfRange { .. }),
            "{off}: {err}"
        );
    }
}

#[test]
fn relocation_type_is_checked() {
    let err = patched_rel(None, None, Some(R_BPF_64_32)).unwrap_err();
    assert!(
        matches!(err, ElfError::BadRelocationType { found: 10, .. }),
        "{err}"
    );
}

#[test]
fn wrong_instruction_at_a_relocation_site_is_an_error() {
    // Instruction 0 of xdp0 is not a 64-bit load.
    let err = patched_rel(Some(0), None, None).unwrap_err();
    assert!(
        matches!(err, ElfError::BadInstruction { ref symbol, .. } if symbol == "txcnt"),
        "{err}"
    );
}

#[test]
fn truncated_sections_and_files_are_errors() {
    let bytes = object_bytes("xdp_legacy", false);
    for len in (0..bytes.len()).step_by(7) {
        assert!(
            ObjectSpec::parse(&bytes[..len]).is_err(),
            "prefix of {len} bytes parsed"
        );
    }
    let err = ObjectSpec::parse(b"not an elf file at all").unwrap_err();
    assert!(matches!(err, ElfError::InvalidElf { .. }), "{err}");
    // A section whose size runs past the end of the file.
    let mut bytes = bytes;
    let h = object::elf::FileHeader64::<object::Endianness>::parse(&*bytes).unwrap();
    let shoff = h.e_shoff.get(object::Endianness::Little) as usize;
    // Section 3's sh_size (offset 32 in a 64-byte section header).
    let at = shoff + 3 * 64 + 32;
    bytes[at..at + 8].copy_from_slice(&0x7fff_ffffu64.to_le_bytes());
    let err = ObjectSpec::parse(&bytes).unwrap_err();
    assert!(
        matches!(
            err,
            ElfError::Truncated { .. } | ElfError::InvalidElf { .. }
        ),
        "{err}"
    );
}

#[test]
fn non_bpf_elf_files_are_rejected() {
    let mut s = Synth::le();
    s.obj = object::write::Object::new(
        object::BinaryFormat::Elf,
        object::Architecture::X86_64,
        object::Endianness::Little,
    );
    s.section("xdp", vec![0x95, 0, 0, 0, 0, 0, 0, 0], SectionKind::Text);
    let err = ObjectSpec::parse(&s.build()).unwrap_err();
    assert!(matches!(err, ElfError::NotBpf { .. }), "{err}");
    assert!(err.to_string().contains("EM_BPF"));
}

fn legacy_maps(records: Vec<u8>, symbols: &[(&str, u64)]) -> Result<ObjectSpec, ElfError> {
    let mut s = Synth::le();
    let maps = s.section("maps", records, SectionKind::Data);
    for (name, off) in symbols {
        s.data_sym(name, maps, *off, 0);
    }
    let code = s.code("xdp", &ret0());
    s.func("prog", code, 0, 2, true);
    ObjectSpec::parse(&s.build())
}

#[test]
fn legacy_map_record_size_is_derived_and_checked() {
    let e = Endianness::Little;
    // 20-byte classic records.
    let mut classic = Vec::new();
    for v in [1u32, 4, 8, 16, 0, 2, 4, 4, 1, 0] {
        classic.extend_from_slice(&v.to_le_bytes());
    }
    let obj = legacy_maps(classic.clone(), &[("h", 0), ("a", 20)]).unwrap();
    assert_eq!(obj.maps.len(), 2);
    assert_eq!(
        (obj.maps[0].map_type, obj.maps[0].max_entries),
        (MapType::Hash, 16)
    );
    assert_eq!(
        (obj.maps[1].map_type, obj.maps[1].value_size),
        (MapType::Array, 4)
    );
    // A size that does not divide into the map symbols (goebpf issue #88 gave a bare
    // "invalid binary representation").
    let err = legacy_maps(classic[..35].to_vec(), &[("h", 0), ("a", 20)]).unwrap_err();
    assert!(matches!(err, ElfError::MapRecordSize { .. }), "{err}");
    // Records smaller than bpf_map_def.
    let err = legacy_maps(classic[..32].to_vec(), &[("h", 0), ("a", 16)]).unwrap_err();
    assert!(matches!(err, ElfError::MapRecordSize { .. }), "{err}");
    // A symbol off the record grid.
    let err = legacy_maps(classic.clone(), &[("h", 0), ("a", 12)]).unwrap_err();
    assert!(matches!(err, ElfError::MapRecordSize { .. }), "{err}");
    // Unknown map type.
    let mut bad = goebpf_record(e, 999, 4, 4, 1, 0, 0);
    bad.truncate(40);
    let err = legacy_maps(bad, &[("m", 0)]).unwrap_err();
    assert!(
        matches!(err, ElfError::UnknownMapType { value: 999, .. }),
        "{err}"
    );
    // Map data without symbols.
    let err = legacy_maps(classic, &[]).unwrap_err();
    assert!(matches!(err, ElfError::MapRecordSize { .. }), "{err}");
}

#[test]
fn goebpf_pointer_fields_resolve_in_both_clang_conventions() {
    for e in [Endianness::Little, Endianness::Big] {
        let mut s = Synth::new(e);
        let strings = b"/sys/fs/bpf/b\0/sys/fs/bpf/a\0".to_vec();
        let rodata = s.section(".rodata.str1.1", strings, SectionKind::ReadOnlyString);
        // outer's inner pointer: section symbol + addend 40 stored in the field (older clang);
        // outer's path: a symbol whose value is the offset, field 0 (clang >= 14);
        // inner's path: section symbol + addend 0.
        let mut records = goebpf_record(e, 12, 4, 4, 8, 40, 0);
        records.extend(goebpf_record(e, 2, 4, 8, 1, 0, 0));
        let maps = s.section("maps", records, SectionKind::Data);
        s.data_sym("outer", maps, 0, 40);
        s.data_sym("inner", maps, 40, 40);
        let maps_sym = s.section_sym(maps);
        let path_a = s.data_sym("path_a", rodata, 14, 14);
        let ro_sym = s.section_sym(rodata);
        s.reloc(maps, 24, maps_sym, R_BPF_64_ABS64);
        s.reloc(maps, 32, path_a, R_BPF_64_ABS64);
        s.reloc(maps, 72, ro_sym, R_BPF_64_ABS64);
        let mut code = Vec::from(ld_imm64(0));
        code.extend(ret0());
        let text = s.code("xdp", &code);
        s.func("prog", text, 0, 4, true);
        s.reloc(text, 0, maps_sym, R_BPF_64_64);
        let obj = ObjectSpec::parse(&s.build()).unwrap();
        assert_eq!(obj.endianness, e);
        let outer = obj.map("outer").unwrap();
        assert_eq!(outer.map_type, MapType::ArrayOfMaps);
        assert_eq!(outer.inner_map.as_ref().unwrap().name, "inner");
        assert_eq!(outer.pinning, Pinning::Path("/sys/fs/bpf/a".into()));
        assert_eq!(
            obj.map("inner").unwrap().pinning,
            Pinning::Path("/sys/fs/bpf/b".into())
        );
        // No map for the pin path strings; the program refers to `outer` through the section
        // symbol.
        assert_eq!(obj.maps.len(), 2);
        let linked = obj.link("prog").unwrap();
        assert_eq!(linked.maps(), ["outer"]);
    }
}

#[test]
fn a_pointer_relocation_in_a_classic_record_is_an_error() {
    let mut s = Synth::le();
    let maps = s.section("maps", vec![0; 20], SectionKind::Data);
    let m = s.data_sym("m", maps, 0, 20);
    s.reloc(maps, 8, m, R_BPF_64_ABS64);
    let err = ObjectSpec::parse(&s.build()).unwrap_err();
    assert!(
        matches!(err, ElfError::UnsupportedRelocation { .. }),
        "{err}"
    );
}

#[test]
fn btf_maps_without_btf_are_an_error() {
    let mut s = Synth::le();
    let maps = s.section(".maps", vec![0; 32], SectionKind::Data);
    s.data_sym("m", maps, 0, 32);
    let err = ObjectSpec::parse(&s.build()).unwrap_err();
    assert!(
        matches!(err, ElfError::MissingBtf { ref section } if section == ".maps"),
        "{err}"
    );
}

#[test]
fn function_bounds_come_from_the_symbol_size_and_are_checked() {
    // goebpf sliced a program up to the next symbol; here `a` is 2 instructions even though `b`
    // starts at 4.
    let mut code = ret0();
    code.extend(
        [Instruction {
            code: 0xb7,
            imm: 9,
            ..Default::default()
        }; 2],
    );
    code.extend(ret0());
    let mut s = Synth::le();
    let text = s.code("xdp", &code);
    s.func("a", text, 0, 2, true);
    s.func("b", text, 4, 2, true);
    let obj = ObjectSpec::parse(&s.build()).unwrap();
    assert_eq!(obj.program("a").unwrap().instructions().len(), 2);
    assert_eq!(obj.program("b").unwrap().instructions().len(), 2);

    let mut s = Synth::le();
    let text = s.code("xdp", &ret0());
    s.func("past_end", text, 0, 3, true);
    let err = ObjectSpec::parse(&s.build()).unwrap_err();
    assert!(
        matches!(err, ElfError::BadFunctionBounds { ref symbol, .. } if symbol == "past_end"),
        "{err}"
    );
}

#[test]
fn unknown_sections_give_unspec_programs_and_goebpf_quirks_are_not_repeated() {
    let mut s = Synth::le();
    s.license("Dual BSD/GPL");
    let a = s.code("my_section", &ret0());
    s.func("custom", a, 0, 2, true);
    // A kprobe without a target and with a non-"GPL" license still parses (goebpf stored a nil
    // program), and two programs of the same name in different sections are both kept.
    let k = s.code("kprobe", &ret0());
    s.func("probe", k, 0, 2, true);
    let x = s.code("XDP", &ret0());
    s.func("upper", x, 0, 2, true);
    let mut obj = ObjectSpec::parse(&s.build()).unwrap();
    assert_eq!(obj.license, "Dual BSD/GPL");
    let custom = obj.program_mut("custom").unwrap();
    assert_eq!(custom.program_type, ProgramType::Unspec);
    custom.program_type = ProgramType::SchedCls;
    assert_eq!(
        obj.program("probe").unwrap().program_type,
        ProgramType::Kprobe
    );
    assert_eq!(obj.program("probe").unwrap().attach_to, None);
    assert_eq!(obj.program("upper").unwrap().program_type, ProgramType::Xdp);
}

#[test]
fn same_section_static_calls_and_cross_section_calls_link() {
    // xdp: prog calls static helper in its own section (no relocation) and `shared` in .text
    // (relocation against the symbol, imm -1).
    let mut s = Synth::le();
    let text = s.code(".text", &ret0());
    let shared = s.func("shared", text, 0, 2, true);
    let mut code = vec![call(1, 3), call(1, -1)];
    code.extend(ret0()); // 2..4
    code.extend(ret0()); // helper at 4
    let x = s.code("xdp", &code);
    s.func("prog", x, 0, 4, true);
    s.func("helper", x, 4, 2, false);
    s.reloc(x, 8, shared, R_BPF_64_32);
    let obj = ObjectSpec::parse(&s.build()).unwrap();
    assert_eq!(
        obj.programs.len(),
        1,
        "static helper and .text are not programs"
    );
    let subs: Vec<_> = obj.subprograms().map(|f| f.name.as_str()).collect();
    assert_eq!(subs, ["shared", "helper"]);
    let linked = obj.link("prog").unwrap();
    let names: Vec<_> = linked
        .functions
        .iter()
        .map(|f| (f.0.as_str(), f.1))
        .collect();
    assert_eq!(names, [("prog", 0), ("helper", 4), ("shared", 6)]);
    assert_eq!(linked.instructions[0].imm, 3); // 0 + 3 + 1 = 4
    assert_eq!(linked.instructions[1].imm, 4); // 1 + 4 + 1 = 6
}

#[test]
fn calls_into_the_middle_of_a_function_are_an_error() {
    let mut s = Synth::le();
    let mut code = vec![call(1, 1)];
    code.extend(ret0());
    let x = s.code("xdp", &code);
    s.func("prog", x, 0, 3, true);
    let err = ObjectSpec::parse(&s.build()).unwrap_err();
    assert!(
        matches!(err, ElfError::BadCallTarget { target: 2, .. }),
        "{err}"
    );
}

#[test]
fn kconfig_and_ksym_externs_fail_at_relocation_with_a_clear_error() {
    // BTF: [1] int, [2] VAR CONFIG_HZ extern, [3] DATASEC .kconfig.
    let strings = b"\0int\0CONFIG_HZ\0.kconfig\0";
    let btf = build_btf(
        &[
            1,
            1 << 24,
            4,
            32,
            5,
            14 << 24,
            1,
            2,
            15,
            (15 << 24) | 1,
            0,
            2,
            0,
            4,
        ],
        strings,
    );
    let mut s = Synth::le();
    s.section(".BTF", btf, SectionKind::Metadata);
    let mut code = Vec::from(ld_imm64(0));
    code.extend(ld_imm64(0));
    code.extend(ret0());
    let x = s.code("xdp", &code);
    s.func("prog", x, 0, 6, true);
    let hz = s.extern_sym("CONFIG_HZ");
    let ksym = s.extern_sym("bpf_prog_active");
    s.reloc(x, 0, hz, R_BPF_64_64);
    s.reloc(x, 16, ksym, R_BPF_64_64);
    let obj = ObjectSpec::parse(&s.build()).unwrap();
    let mut linked = obj.link("prog").unwrap();
    assert_eq!(linked.externs.len(), 2);
    let err = linked.relocate(|_| Some(1)).unwrap_err();
    assert!(
        matches!(err, ElfError::KconfigUnsupported { ref symbol, .. } if symbol == "CONFIG_HZ"),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "program prog: kconfig extern CONFIG_HZ is not supported yet"
    );
    linked.externs.remove(0);
    let err = linked.relocate(|_| Some(1)).unwrap_err();
    assert!(matches!(err, ElfError::ExternUnsupported { .. }), "{err}");
    let refs: Vec<_> = obj.programs[0]
        .function
        .relocations
        .iter()
        .map(|r| &r.target)
        .collect();
    assert!(matches!(
        refs[0],
        Reference::Extern {
            kind: crate::ExternKind::Kconfig,
            ..
        }
    ));
    assert!(matches!(
        refs[1],
        Reference::Extern {
            kind: crate::ExternKind::Ksym,
            ..
        }
    ));
}

#[test]
fn core_relocations_fail_at_relocation_with_a_clear_error() {
    let mut linked = LinkedProgram {
        name: "p".into(),
        instructions: ret0(),
        functions: vec![("p".into(), 0)],
        func_info: Vec::new(),
        line_info: Vec::new(),
        core_relocations: vec![crate::CoreRelocation {
            insn: 0,
            type_id: 1,
            access_str_off: 0,
            access: "0:1".into(),
            kind: 0,
        }],
        map_references: Vec::new(),
        externs: Vec::new(),
        endianness: Endianness::Little,
    };
    let err = linked.relocate(|_| None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "program p: needs 1 co-re relocations, which are not supported yet"
    );
}

#[test]
fn relocation_rejects_a_site_that_is_no_longer_a_load() {
    let obj = super::object("xdp_legacy");
    let mut linked = obj.link("xdp0").unwrap();
    let at = linked.map_references[0].insn;
    linked.instructions[at].code = 0xb7;
    let err = linked.relocate(|_| Some(3)).unwrap_err();
    assert!(
        matches!(err, ElfError::NotLoadImm64 { opcode: 0xb7, .. }),
        "{err}"
    );
}

#[test]
fn a_version_section_gives_the_kernel_version() {
    let mut s = Synth::le();
    s.section(
        "version",
        0x0005_0a00u32.to_le_bytes().to_vec(),
        SectionKind::Data,
    );
    let x = s.code("kprobe/f", &ret0());
    s.func("p", x, 0, 2, true);
    let obj = ObjectSpec::parse(&s.build()).unwrap();
    assert_eq!(obj.kernel_version, Some(0x0005_0a00));
    assert_eq!(obj.programs[0].kernel_version, Some(0x0005_0a00));
    let mut s = Synth::le();
    s.section("version", vec![1, 2], SectionKind::Data);
    let err = ObjectSpec::parse(&s.build()).unwrap_err();
    assert!(
        matches!(err, ElfError::Truncated { ref section, .. } if section == "version"),
        "{err}"
    );
}
