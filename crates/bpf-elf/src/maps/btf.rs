//! BTF-defined maps: the `.maps` section.
//!
//! Each variable of the `.maps` `DATASEC` is a struct whose members encode the definition the
//! way libbpf's `__uint`, `__type` and `__array` macros do: `int (*name)[N]` for a number,
//! `T *name` for a type, and a zero-length array of pointers for `values` (inner map template or
//! program array slots). Initial slots come from the `.rel.maps` relocations into `values`.

use bpf_sys::MapType;

use crate::btf::{Btf, BtfKind, MemberView, RawName, TypeIndex};
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
fn number(types: &TypeIndex<'_>, map: &str, m: &MemberView<'_>) -> Result<u64> {
    let bad = || {
        invalid(
            map,
            format!("member {} is not a __uint() number", m.name.to_name()),
        )
    };
    let ptr = types.get(m.type_id).ok_or_else(bad)?;
    if ptr.kind != BtfKind::Ptr {
        return Err(bad());
    }
    let (_, target) = types.resolve(ptr.size_or_type).ok_or_else(bad)?;
    match target.array() {
        Some((_, nelems)) => Ok(u64::from(nelems)),
        None => target.first_enum_value().ok_or_else(bad),
    }
}

fn number32(types: &TypeIndex<'_>, map: &str, m: &MemberView<'_>) -> Result<u32> {
    let v = number(types, map, m)?;
    u32::try_from(v).map_err(|_| {
        invalid(
            map,
            format!("{} = {v} does not fit 32 bits", m.name.to_name()),
        )
    })
}

/// The pointee of `__type(name, T)` and its size.
fn typed(types: &TypeIndex<'_>, map: &str, m: &MemberView<'_>) -> Result<(u32, u32)> {
    let bad = || {
        invalid(
            map,
            format!("member {} is not a __type() pointer", m.name.to_name()),
        )
    };
    let ptr = types.get(m.type_id).ok_or_else(bad)?;
    if ptr.kind != BtfKind::Ptr {
        return Err(bad());
    }
    let id = ptr.size_or_type;
    let size = types
        .size_of(id)
        .ok_or_else(|| invalid(map, format!("the type of {} has no size", m.name.to_name())))?;
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

/// Reads one map definition struct, from the raw BTF (`types`).
pub(crate) fn parse_def(
    types: &TypeIndex<'_>,
    name: &str,
    type_id: u32,
    depth: usize,
) -> Result<Parsed> {
    if depth > MAX_INNER_DEPTH {
        return Err(invalid(name, "inner maps nested too deeply"));
    }
    let (_, t) = types
        .resolve(type_id)
        .ok_or_else(|| invalid(name, "bad btf type"))?;
    if t.kind != BtfKind::Struct {
        return Err(invalid(name, "definition is not a struct"));
    }
    let mut raw_type = None;
    let mut spec = MapSpec::new(name, MapType::Unspec, 0, 0, 0);
    let mut key_size = None;
    let mut value_size = None;
    let mut values_offset = None;
    let mut values_kind = ValuesKind::None;
    for m in t.members() {
        let m = &m;
        // Compared as bytes: a name that is not UTF-8 reads with a U+FFFD, as none of these.
        match m.name.0 {
            b"type" => raw_type = Some(number32(types, name, m)?),
            b"max_entries" => spec.max_entries = number32(types, name, m)?,
            b"map_flags" => spec.flags = number32(types, name, m)?,
            b"numa_node" => spec.numa_node = Some(number32(types, name, m)?),
            b"map_extra" => spec.map_extra = number(types, name, m)?,
            b"key_size" => key_size = Some(number32(types, name, m)?),
            b"value_size" => value_size = Some(number32(types, name, m)?),
            b"pinning" => {
                spec.pinning = match number(types, name, m)? {
                    0 => Pinning::None,
                    PIN_BY_NAME => Pinning::ByName,
                    other => return Err(invalid(name, format!("unsupported pinning {other}"))),
                }
            }
            b"key" => {
                let (tid, size) = typed(types, name, m)?;
                if key_size.is_some_and(|k| k != size) {
                    return Err(invalid(name, "key and key_size disagree"));
                }
                spec.btf_key_type_id = Some(tid);
                key_size = Some(size);
            }
            b"value" => {
                let (tid, size) = typed(types, name, m)?;
                if value_size.is_some_and(|v| v != size) {
                    return Err(invalid(name, "value and value_size disagree"));
                }
                spec.btf_value_type_id = Some(tid);
                value_size = Some(size);
            }
            b"values" => {
                let bad = || invalid(name, "values is not an array of pointers");
                let (_, arr) = types.resolve(m.type_id).ok_or_else(bad)?;
                let Some((elem, _)) = arr.array() else {
                    return Err(bad());
                };
                let (_, ptr) = types.resolve(elem).ok_or_else(bad)?;
                if ptr.kind != BtfKind::Ptr {
                    return Err(bad());
                }
                let (target_id, target) = types.resolve(ptr.size_or_type).ok_or_else(bad)?;
                values_offset = Some(m.bit_offset / 8);
                match target.kind {
                    BtfKind::Struct => {
                        let inner_name = format!("{name}.inner");
                        let mut inner = parse_def(types, &inner_name, target_id, depth + 1)?.spec;
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
            other => {
                let other = RawName(other).to_name();
                return Err(invalid(name, format!("unknown member {other}")));
            }
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

/// Where a `.maps` map is in the section (its variable's byte range), for relocation lookups,
/// and where its `values` start.
pub(crate) struct Placed {
    pub offset: u64,
    pub size: u64,
    values_offset: Option<u32>,
    values_kind: ValuesKind,
}

/// Parses a `.maps` section (BTF `DATASEC` already fixed up): appends its maps to `maps`, and
/// returns where each is in the section, in the same order.
pub(crate) fn parse(
    elf: &RawElf<'_>,
    section: &RawSection<'_>,
    btf: Option<&Btf>,
    maps: &mut Vec<MapSpec>,
) -> Result<Vec<Placed>> {
    let btf = btf.ok_or_else(|| ElfError::MissingBtf {
        section: section.name.to_string(),
    })?;
    let first = maps.len();
    let mut placed = Vec::new();
    if let Some(ds) = btf.find(BtfKind::DataSec, &section.name) {
        // Read from the raw bytes: building every type would cost more than the rest.
        let types = TypeIndex::new(btf);
        let vars = types.get(ds).map(|t| t.datasec());
        let n = vars.as_ref().map_or(0, |v| v.len());
        maps.reserve(n);
        placed.reserve_exact(n);
        for (type_id, offset, size) in vars.into_iter().flatten() {
            let var = types
                .get(type_id)
                .filter(|t| t.kind == BtfKind::Var)
                .ok_or(ElfError::InvalidBtf {
                    offset: 0,
                    reason: "datasec entry is not a var",
                })?;
            let var_name = var.name().to_name();
            let mut parsed = parse_def(&types, &var_name, var.size_or_type, 0)?;
            parsed.spec.section = Name::from(&*section.name);
            maps.push(parsed.spec);
            placed.push(Placed {
                offset: u64::from(offset),
                size: u64::from(size),
                values_offset: parsed.values_offset,
                values_kind: parsed.values_kind,
            });
        }
    } else if section.size != 0 {
        return Err(ElfError::MissingBtf {
            section: section.name.to_string(),
        });
    }

    // Initial slots.
    let mut sort = false;
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
        let (p, spec) = placed
            .iter()
            .zip(maps.get_mut(first..).unwrap_or_default())
            .find(|(p, _)| rel.offset >= p.offset && rel.offset < p.offset + p.size)
            .ok_or_else(|| ElfError::RelocationOutOfRange {
                section: section.name.to_string(),
                offset: rel.offset,
                size: section.size,
            })?;
        let start = p.values_offset.map(|v| p.offset + u64::from(v));
        let Some(start) = start.filter(|s| rel.offset >= *s && (rel.offset - *s) % 8 == 0) else {
            return Err(unsupported(format!(
                "not a slot of the values of map {}",
                spec.name
            )));
        };
        let index = u32::try_from((rel.offset - start) / 8)
            .map_err(|_| unsupported("slot index overflow".into()))?;
        if index >= spec.max_entries {
            return Err(unsupported(format!(
                "slot {index} is past max_entries {} of map {}",
                spec.max_entries, spec.name
            )));
        }
        let target = elf.section(sym.section.unwrap_or(0));
        let value = match p.values_kind {
            ValuesKind::Programs if sym.is_func() && target.is_some_and(|s| s.is_exec()) => {
                SlotValue::Program(Name::from(&*elf.symbol_name(sym)))
            }
            ValuesKind::Maps if sym.section == Some(section.index) && !sym.is_section() => {
                SlotValue::Map(Name::from(&*elf.symbol_name(sym)))
            }
            _ => {
                return Err(unsupported(format!(
                    "symbol does not fit the values of map {}",
                    spec.name
                )))
            }
        };
        spec.values.push(MapSlot { index, value });
        sort = true;
    }
    // Slots in index order (only relocations add them).
    if sort {
        for spec in maps.get_mut(first..).unwrap_or_default() {
            spec.values.sort_by_key(|s| s.index);
        }
    }
    Ok(placed)
}
