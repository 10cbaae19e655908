//! Global data: `.data`, `.rodata`, `.bss` and their `.data.*` / `.rodata.*` variants (string
//! literals land in `.rodata.str1.1` or `.rodata`) become single-entry array maps whose value is
//! the section's bytes.

use bpf_sys::{uapi, MapType};

use crate::btf::{Btf, BtfKind, BtfTypeData};
use crate::elf::RawSection;
use crate::error::{ElfError, Result};
use crate::maps::{MapOrigin, MapSpec, VariableSpec};
use crate::name::Name;
use object::elf;

/// Whether a section holds global data this crate turns into a map.
#[inline]
pub(crate) fn is_data_section(s: &RawSection<'_>) -> bool {
    if !(s.sh_type == elf::SHT_PROGBITS || s.sh_type == elf::SHT_NOBITS) || s.is_exec() {
        return false;
    }
    let n = s.name.as_ref();
    let prefix = match n.as_bytes().get(1) {
        Some(b'd') => ".data",
        Some(b'r') => ".rodata",
        Some(b'b') => ".bss",
        _ => return false,
    };
    // `.data`, `.data.*` (and the same for `.rodata` and `.bss`).
    n.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
}

/// Whether a data section is read-only for programs.
pub(crate) fn is_rodata(name: &str) -> bool {
    name == ".rodata" || name.starts_with(".rodata.")
}

/// The largest data section taken: above any kernel's limit on an array map's value
/// (`KMALLOC_MAX_SIZE`: 4 MiB on x86-64, at most 512 MiB with 64 KiB pages), so a larger one is
/// a malformed object, refused before its zero-filled `.bss` image is allocated.
pub(crate) const MAX_DATA_SECTION: u64 = 512 << 20;

/// The map for one data section (`None` for an empty section, which needs no map).
pub(crate) fn parse(section: &RawSection<'_>, btf: Option<&Btf>) -> Result<Option<MapSpec>> {
    if section.size > MAX_DATA_SECTION {
        return Err(ElfError::InvalidMap {
            map: section.name.to_string(),
            reason: format!(
                "a global data section of {} bytes (at most {MAX_DATA_SECTION} fit in a map value)",
                section.size
            ),
        });
    }
    let Some(size) = u32::try_from(section.size).ok().filter(|s| *s > 0) else {
        return Ok(None);
    };
    let mut spec = MapSpec::new(&section.name, MapType::Array, 4, size, 1);
    spec.section = Name::from(&*section.name);
    spec.origin = MapOrigin::Data;
    spec.data = Some(if section.sh_type == elf::SHT_NOBITS {
        vec![0; size as usize]
    } else {
        section.data.to_vec()
    });
    if is_rodata(&section.name) {
        spec.flags = uapi::BPF_F_RDONLY_PROG;
        spec.freeze = true;
    }
    if let Some(btf) = btf {
        if let Some(ds) = btf.find(BtfKind::DataSec, &section.name) {
            spec.btf_value_type_id = Some(ds);
            if let Some(BtfTypeData::DataSec(vars)) = btf.type_by_id(ds).map(|t| &t.data) {
                for v in vars {
                    let Some(var) = btf.type_by_id(v.type_id).filter(|t| t.kind == BtfKind::Var)
                    else {
                        continue;
                    };
                    let is_static = matches!(var.data, BtfTypeData::Var { linkage: 0 });
                    spec.variables.push(VariableSpec {
                        name: Name::from(&*var.name),
                        offset: v.offset,
                        size: v.size,
                        type_id: var.size_or_type,
                        is_static,
                    });
                }
            }
        }
    }
    Ok(Some(spec))
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;

    #[test]
    fn an_oversized_bss_is_an_error_not_an_allocation() {
        let mut s = RawSection::for_test(Cow::Borrowed(".bss"), elf::SHT_NOBITS, 0);
        s.size = 4 << 30;
        match parse(&s, None) {
            Err(ElfError::InvalidMap { map, reason }) => {
                assert_eq!(map, ".bss");
                assert!(reason.contains("4294967296 bytes"), "{reason}");
            }
            other => panic!("expected InvalidMap, got {other:?}"),
        }
        s.size = 64;
        let spec = parse(&s, None).unwrap().unwrap();
        assert_eq!(spec.data.as_deref(), Some(&[0u8; 64][..]));
        s.size = 0;
        assert!(parse(&s, None).unwrap().is_none());
    }

    #[test]
    fn data_sections_by_name_type_and_flags() {
        let names = [
            ".data",
            ".data.",
            ".data.x",
            ".datax",
            ".rodata",
            ".rodata.str1.1",
            ".rodatas",
            ".bss",
            ".bss.b",
            ".bssx",
            ".debug_info",
            ".rel.data",
            "data",
            ".d",
            "",
            ".",
            ".text",
        ];
        for name in names {
            for (sh_type, flags) in [
                (elf::SHT_PROGBITS, 0),
                (elf::SHT_NOBITS, 0),
                (elf::SHT_PROGBITS, u64::from(elf::SHF_EXECINSTR)),
                (elf::SHT_REL, 0),
            ] {
                let s = RawSection::for_test(Cow::Borrowed(name), sh_type, flags);
                let named = name == ".data"
                    || name == ".rodata"
                    || name == ".bss"
                    || name.starts_with(".data.")
                    || name.starts_with(".rodata.")
                    || name.starts_with(".bss.");
                let want = named
                    && !s.is_exec()
                    && (sh_type == elf::SHT_PROGBITS || sh_type == elf::SHT_NOBITS);
                assert_eq!(is_data_section(&s), want, "{name} {sh_type} {flags}");
            }
        }
    }
}
