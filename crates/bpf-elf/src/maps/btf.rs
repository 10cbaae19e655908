//! BTF-defined maps: the `.maps` section.
//!
//! Each variable of the `.maps` `DATASEC` is a struct whose members encode the definition the
//! way libbpf's `__uint`, `__type` and `__array` macros do: `int (*name)[N]` for a number,
//! `T *name` for a type, and a zero-length array of pointers for `values` (inner map template or
//! program array slots). Initial slots come from the `.rel.maps` relocations into `values`.

use bpf_sys::MapType;

use crate::btf::{Btf, BtfKind, BtfMember, BtfTypeData};
use crate::elf::{RawElf, RawSection, R_BPF_64_64, R_BPF_64_ABS64};
use crate::error::{ElfError, Result};
use crate::maps::{map_type, MapOrigin, MapSlot, MapSpec, Pinning, SlotValue};
use crate::name::Name;

/// libbpf's `LIBBPF_PIN_BY_NAME`.
const PIN_BY_NAME: u64 = 1;
/// Nesting bound for inner map templates.
const MAX_INNER_DEPTH: usize = 4;

fn invalid(map: &str, reason: impl Into<String>) -> ElfError {
    ElfError::InvalidMap {
        map: map.to_string(),
        reason: reason.into(),
    }
}

/// The number encoded by `__uint(name, N)` (`int (*name)[N]`) or `__ulong(name, N)` (a pointer to
/// an enum whose value is N).
fn number(btf: &Btf, map: &str, m: &BtfMember) -> Result<u64> {
    let bad = || invalid(map, format!("member {} is not a __uint() number", m.name));
    let ptr = btf.type_by_id(m.type_id).ok_or_else(bad)?;
    if ptr.kind != BtfKind::Ptr {
        return Err(bad());
    }
    let target = btf.skip_modifiers(ptr.size_or_type).ok_or_else(bad)?;
    match &btf.type_by_id(target).ok_or_else(bad)?.data {
        BtfTypeData::Array { nelems, .. } => Ok(u64::from(*nelems)),
        BtfTypeData::Enum(values) => values.first().map(|v| v.1).ok_or_else(bad),
        _ => Err(bad()),
    }
}

fn number32(btf: &Btf, map: &str, m: &BtfMember) -> Result<u32> {
    let v = number(btf, map, m)?;
    u32::try_from(v).map_err(|_| invalid(map, format!("{} = {v} does not fit 32 bits", m.name)))
}

/// The pointee of `__type(name, T)` and its size.
fn typed(btf: &Btf, map: &str, m: &BtfMember) -> Result<(u32, u32)> {
    let bad = || invalid(map, format!("member {} is not a __type() pointer", m.name));
    let ptr = btf.type_by_id(m.type_id).ok_or_else(bad)?;
    if ptr.kind != BtfKind::Ptr {
        return Err(bad());
    }
    let id = ptr.size_or_type;
    let size = btf
        .size_of(id)
        .ok_or_else(|| invalid(map, format!("the type of {} has no size", m.name)))?;
    Ok((id, size))
}

/// What `values` holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ValuesKind {
    None,
    Maps,
    Programs,
}

/// A parsed `.maps` struct: the spec, and where its `values` array starts.
pub(crate) struct Parsed {
    pub spec: MapSpec,
    pub values_offset: Option<u32>,
    pub values_kind: ValuesKind,
}

/// Reads one map definition struct.
pub(crate) fn parse_def(btf: &Btf, name: &str, type_id: u32, depth: usize) -> Result<Parsed> {
    if depth > MAX_INNER_DEPTH {
        return Err(invalid(name, "inner maps nested too deeply"));
    }
    let id = btf
        .skip_modifiers(type_id)
        .ok_or_else(|| invalid(name, "bad btf type"))?;
    let t = btf
        .type_by_id(id)
        .ok_or_else(|| invalid(name, "bad btf type"))?;
    let (BtfKind::Struct, BtfTypeData::Members(members)) = (t.kind, &t.data) else {
        return Err(invalid(name, "definition is not a struct"));
    };
    let mut raw_type = None;
    let mut spec = MapSpec::new(name, MapType::Unspec, 0, 0, 0);
    let mut key_size = None;
    let mut value_size = None;
    let mut values_offset = None;
    let mut values_kind = ValuesKind::None;
    for m in members {
        match m.name.as_str() {
            "type" => raw_type = Some(number32(btf, name, m)?),
            "max_entries" => spec.max_entries = number32(btf, name, m)?,
            "map_flags" => spec.flags = number32(btf, name, m)?,
            "numa_node" => spec.numa_node = Some(number32(btf, name, m)?),
            "map_extra" => spec.map_extra = number(btf, name, m)?,
            "key_size" => key_size = Some(number32(btf, name, m)?),
            "value_size" => value_size = Some(number32(btf, name, m)?),
            "pinning" => {
                spec.pinning = match number(btf, name, m)? {
                    0 => Pinning::None,
                    PIN_BY_NAME => Pinning::ByName,
                    other => return Err(invalid(name, format!("unsupported pinning {other}"))),
                }
            }
            "key" => {
                let (tid, size) = typed(btf, name, m)?;
                if key_size.is_some_and(|k| k != size) {
                    return Err(invalid(name, "key and key_size disagree"));
                }
                spec.btf_key_type_id = Some(tid);
                key_size = Some(size);
            }
            "value" => {
                let (tid, size) = typed(btf, name, m)?;
                if value_size.is_some_and(|v| v != size) {
                    return Err(invalid(name, "value and value_size disagree"));
                }
                spec.btf_value_type_id = Some(tid);
                value_size = Some(size);
            }
            "values" => {
                let bad = || invalid(name, "values is not an array of pointers");
                let arr = btf
                    .skip_modifiers(m.type_id)
                    .and_then(|i| btf.type_by_id(i))
                    .ok_or_else(bad)?;
                let BtfTypeData::Array { elem, .. } = arr.data else {
                    return Err(bad());
                };
                let ptr = btf
                    .skip_modifiers(elem)
                    .and_then(|i| btf.type_by_id(i))
                    .ok_or_else(bad)?;
                if ptr.kind != BtfKind::Ptr {
                    return Err(bad());
                }
                let target_id = btf.skip_modifiers(ptr.size_or_type).ok_or_else(bad)?;
                let target = btf.type_by_id(target_id).ok_or_else(bad)?;
                values_offset = Some(m.bit_offset / 8);
                match target.kind {
                    BtfKind::Struct => {
                        let inner_name = format!("{name}.inner");
                        let mut inner = parse_def(btf, &inner_name, target_id, depth + 1)?.spec;
                        inner.origin = MapOrigin::Inner;
                        spec.inner_map = Some(Box::new(inner));
                        values_kind = ValuesKind::Maps;
                    }
                    BtfKind::FuncProto => values_kind = ValuesKind::Programs,
                    _ => return Err(bad()),
                }
                // Slots hold fds.
                if value_size.is_some_and(|v| v != 4) {
                    return Err(invalid(name, "values needs a 4-byte value_size"));
                }
                value_size = Some(4);
            }
            other => return Err(invalid(name, format!("unknown member {other}"))),
        }
    }
    let raw_type = raw_type.ok_or_else(|| invalid(name, "no type member"))?;
    spec.map_type = map_type(name, raw_type)?;
    if values_kind == ValuesKind::Programs && spec.map_type != MapType::ProgArray {
        return Err(invalid(
            name,
            "program slots in a map that is not a prog array",
        ));
    }
    if values_kind == ValuesKind::Maps && !spec.is_map_of_maps() {
        return Err(invalid(name, "inner map in a map that is not a map-in-map"));
    }
    spec.key_size = key_size.unwrap_or(0);
    spec.value_size = value_size.unwrap_or(0);
    spec.origin = MapOrigin::Btf;
    Ok(Parsed {
        spec,
        values_offset,
        values_kind,
    })
}

/// A `.maps` map and its byte range in the section, for relocation lookups.
pub(crate) struct Placed {
    pub offset: u64,
    pub size: u64,
    pub parsed: Parsed,
}

/// Parses a `.maps` section (BTF `DATASEC` already fixed up).
pub(crate) fn parse(
    elf: &RawElf<'_>,
    section: &RawSection<'_>,
    btf: Option<&Btf>,
) -> Result<Vec<MapSpec>> {
    let btf = btf.ok_or_else(|| ElfError::MissingBtf {
        section: section.name.to_string(),
    })?;
    let mut placed = Vec::new();
    if let Some(ds) = btf.find(BtfKind::DataSec, &section.name) {
        let vars = match btf.type_by_id(ds).map(|t| &t.data) {
            Some(BtfTypeData::DataSec(v)) => v.as_slice(),
            _ => &[],
        };
        placed.reserve_exact(vars.len());
        for v in vars {
            let var = btf
                .type_by_id(v.type_id)
                .filter(|t| t.kind == BtfKind::Var)
                .ok_or(ElfError::InvalidBtf {
                    offset: 0,
                    reason: "datasec entry is not a var",
                })?;
            let mut parsed = parse_def(btf, &var.name, var.size_or_type, 0)?;
            parsed.spec.section = Name::from(&*section.name);
            placed.push(Placed {
                offset: u64::from(v.offset),
                size: u64::from(v.size),
                parsed,
            });
        }
    } else if section.size != 0 {
        return Err(ElfError::MissingBtf {
            section: section.name.to_string(),
        });
    }

    // Initial slots.
    for rel in elf.relocations_for(section.index) {
        let sym = elf.rel_symbol(&section.name, &rel)?;
        // Only errors name the symbol.
        let symbol = || elf.symbol_display(sym);
        let unsupported = |reason: String| ElfError::UnsupportedRelocation {
            section: section.name.to_string(),
            offset: rel.offset,
            symbol: symbol(),
            reason,
        };
        if rel.r_type != R_BPF_64_ABS64 && rel.r_type != R_BPF_64_64 {
            return Err(ElfError::BadRelocationType {
                section: section.name.to_string(),
                offset: rel.offset,
                symbol: symbol(),
                found: rel.r_type,
                expected: "R_BPF_64_ABS64 (2) or R_BPF_64_64 (1)",
            });
        }
        let p = placed
            .iter_mut()
            .find(|p| rel.offset >= p.offset && rel.offset < p.offset + p.size)
            .ok_or_else(|| ElfError::RelocationOutOfRange {
                section: section.name.to_string(),
                offset: rel.offset,
                size: section.size,
            })?;
        let start = p.parsed.values_offset.map(|v| p.offset + u64::from(v));
        let Some(start) = start.filter(|s| rel.offset >= *s && (rel.offset - *s) % 8 == 0) else {
            return Err(unsupported(format!(
                "not a slot of the values of map {}",
                p.parsed.spec.name
            )));
        };
        let index = u32::try_from((rel.offset - start) / 8)
            .map_err(|_| unsupported("slot index overflow".into()))?;
        if index >= p.parsed.spec.max_entries {
            return Err(unsupported(format!(
                "slot {index} is past max_entries {} of map {}",
                p.parsed.spec.max_entries, p.parsed.spec.name
            )));
        }
        let target = elf.section(sym.section.unwrap_or(0));
        let value = match p.parsed.values_kind {
            ValuesKind::Programs if sym.is_func() && target.is_some_and(|s| s.is_exec()) => {
                SlotValue::Program(Name::from(&*elf.symbol_name(sym)))
            }
            ValuesKind::Maps if sym.section == Some(section.index) && !sym.is_section() => {
                SlotValue::Map(Name::from(&*elf.symbol_name(sym)))
            }
            _ => {
                return Err(unsupported(format!(
                    "symbol does not fit the values of map {}",
                    p.parsed.spec.name
                )))
            }
        };
        p.parsed.spec.values.push(MapSlot { index, value });
    }
    Ok(placed
        .into_iter()
        .map(|p| {
            let mut spec = p.parsed.spec;
            spec.values.sort_by_key(|s| s.index);
            spec
        })
        .collect())
}
