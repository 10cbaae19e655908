//! Global data: `.data`, `.rodata`, `.bss` and their `.data.*` / `.rodata.*` variants (string
//! literals land in `.rodata.str1.1` or `.rodata`) become single-entry array maps whose value is
//! the section's bytes.

use bpf_sys::{uapi, MapType};

use crate::btf::{Btf, BtfKind, BtfTypeData};
use crate::elf::RawSection;
use crate::maps::{MapOrigin, MapSpec, VariableSpec};
use object::elf;

/// Whether a section holds global data this crate turns into a map.
pub(crate) fn is_data_section(s: &RawSection<'_>) -> bool {
    let n = s.name.as_ref();
    let named = n == ".data"
        || n == ".rodata"
        || n == ".bss"
        || n.starts_with(".data.")
        || n.starts_with(".rodata.")
        || n.starts_with(".bss.");
    named && !s.is_exec() && (s.sh_type == elf::SHT_PROGBITS || s.sh_type == elf::SHT_NOBITS)
}

/// Whether a data section is read-only for programs.
pub(crate) fn is_rodata(name: &str) -> bool {
    name == ".rodata" || name.starts_with(".rodata.")
}

/// The map for one data section (`None` for an empty section, which needs no map).
pub(crate) fn parse(section: &RawSection<'_>, btf: Option<&Btf>) -> Option<MapSpec> {
    let size = u32::try_from(section.size).ok().filter(|s| *s > 0)?;
    let mut spec = MapSpec::new(&section.name, MapType::Array, 4, size, 1);
    spec.section = section.name.to_string();
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
                        name: var.name.to_string(),
                        offset: v.offset,
                        size: v.size,
                        type_id: var.size_or_type,
                        is_static,
                    });
                }
            }
        }
    }
    Some(spec)
}
