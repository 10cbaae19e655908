//! The legacy `maps` section: an array of fixed-size records, one per map symbol.
//!
//! Record layouts, told apart by the record size (derived from the section size and its map
//! symbols, never assumed):
//!
//! | size | layout |
//! | --- | --- |
//! | 20 | classic `struct bpf_map_def`: type, key_size, value_size, max_entries, map_flags |
//! | 40 | goebpf's `bpf_map_def`: the five fields, padding, `void *inner_map_def` at 24 and `const char *persistent_path` at 32, both filled by `.relmaps` relocations |
//! | 36 | iproute2's `bpf_elf_map`: the five fields, id, pinning (2 = global namespace), inner_id, inner_idx |
//! | other ≥ 20 | the five fields; any non-zero byte past them is an error |
//!
//! A pointer field is read from its relocation: the target is the symbol's value plus the addend
//! stored in the field itself. That covers both conventions clang has used: the addend in the
//! field with a section symbol (older clang, and string literals), or the symbol's own value with
//! a zero field (clang 14 and later for `&map`).

use crate::elf::{RawElf, RawSection, RawSymbol, R_BPF_64_64, R_BPF_64_ABS64};
use crate::error::{ElfError, Result};
use crate::maps::{map_type, MapOrigin, MapSpec, Pinning};
use crate::name::Name;

const CLASSIC_SIZE: usize = 20;
const GOEBPF_SIZE: usize = 40;
const IPROUTE2_SIZE: usize = 36;
const GOEBPF_INNER: usize = 24;
const GOEBPF_PATH: usize = 32;
/// iproute2's `PIN_GLOBAL_NS`.
const IPROUTE2_PIN_GLOBAL: u32 = 2;

/// Errors are built out of line: the per-load path of a well-formed section stays contiguous.
#[cold]
#[inline(never)]
fn size_err(section: &RawSection<'_>, reason: std::fmt::Arguments<'_>) -> ElfError {
    ElfError::MapRecordSize {
        section: section.name.to_string(),
        reason: reason.to_string(),
    }
}

#[cold]
#[inline(never)]
fn map_err(map: &str, reason: std::fmt::Arguments<'_>) -> ElfError {
    ElfError::InvalidMap {
        map: map.to_string(),
        reason: reason.to_string(),
    }
}

#[cold]
#[inline(never)]
fn truncated(section: &RawSection<'_>, offset: u64, record: usize) -> ElfError {
    ElfError::Truncated {
        section: section.name.to_string(),
        offset,
        needed: record as u64,
        size: section.data.len() as u64,
    }
}

#[cold]
#[inline(never)]
fn misplaced(
    elf: &RawElf<'_>,
    section: &RawSection<'_>,
    s: &RawSymbol,
    i: usize,
    record: usize,
) -> ElfError {
    let name = elf.symbol_name(s);
    size_err(
        section,
        format_args!(
            "map {name} at offset {}, expected {} for {record}-byte records",
            s.value,
            i * record
        ),
    )
}

/// Puts the map symbols of the section in `syms`, sorted by offset (the first name of each
/// offset), and returns the record size.
fn layout<'e>(
    elf: &'e RawElf<'_>,
    section: &RawSection<'_>,
    syms: &mut Vec<&'e RawSymbol>,
) -> Result<usize> {
    syms.clear();
    syms.extend(
        elf.symbols_in(section.index)
            .filter(|s| !s.is_section() && !s.is_func() && !elf.symbol_name_is_empty(s)),
    );
    // Names are read only to order aliases.
    syms.sort_by(|a, b| {
        a.value
            .cmp(&b.value)
            .then_with(|| elf.symbol_name(a).cmp(&elf.symbol_name(b)))
    });
    syms.dedup_by_key(|s| s.value);
    let size = section.size as usize;
    if syms.is_empty() {
        if size == 0 {
            return Ok(0);
        }
        return Err(size_err(
            section,
            format_args!("{size} bytes but no map symbols"),
        ));
    }
    let n = syms.len();
    if size % n != 0 {
        return Err(size_err(
            section,
            format_args!("{size} bytes do not divide into {n} maps"),
        ));
    }
    let record = size / n;
    if record < CLASSIC_SIZE {
        return Err(size_err(
            section,
            format_args!(
                "records of {record} bytes are smaller than the {CLASSIC_SIZE}-byte bpf_map_def"
            ),
        ));
    }
    for (i, s) in syms.iter().enumerate() {
        if s.value != (i * record) as u64 {
            return Err(misplaced(elf, section, s, i, record));
        }
    }
    Ok(record)
}

/// The fields past the classic five of a record that is neither classic nor goebpf's (whose
/// pointers come from relocations): iproute2's, or an unknown layout that must leave them zero.
#[inline(never)]
fn extra_fields(
    spec: &mut MapSpec,
    rec: &[u8],
    record: usize,
    e: crate::insn::Endianness,
) -> Result<()> {
    let name = spec.name.as_str();
    let f = |i: usize| e.read_u32(rec, i * 4).unwrap_or(0);
    if record == IPROUTE2_SIZE {
        let (pinning, inner_id, inner_idx) = (f(6), f(7), f(8));
        if inner_id != 0 || inner_idx != 0 {
            return Err(map_err(
                name,
                format_args!("iproute2 inner map ids are not supported"),
            ));
        }
        match pinning {
            0 => {}
            IPROUTE2_PIN_GLOBAL => {
                spec.pinning = Pinning::Path(format!("/sys/fs/bpf/tc/globals/{name}"))
            }
            other => {
                return Err(map_err(
                    name,
                    format_args!("iproute2 pinning {other} is not supported"),
                ))
            }
        }
    } else if rec
        .get(CLASSIC_SIZE..)
        .unwrap_or_default()
        .iter()
        .any(|&b| b != 0)
    {
        return Err(map_err(
            name,
            format_args!("unknown {record}-byte map definition with non-zero bytes past the {CLASSIC_SIZE}-byte bpf_map_def"),
        ));
    }
    Ok(())
}

/// Parses one legacy maps section, appending its maps (in offset order) to `out`; returns the
/// record size (0 when the section declares no map). `syms` is scratch space.
pub(crate) fn parse<'e>(
    elf: &'e RawElf<'_>,
    section: &RawSection<'_>,
    syms: &mut Vec<&'e RawSymbol>,
    out: &mut Vec<MapSpec>,
) -> Result<usize> {
    let record = layout(elf, section, syms)?;
    let e = elf.endian;
    let data = section.data;
    let first = out.len();
    out.reserve(syms.len());
    let section_name = Name::from(&*section.name);
    for s in syms.iter() {
        let (offset, name) = (s.value, elf.symbol_name(s));
        let name = name.as_ref();
        let base = offset as usize;
        let rec = data
            .get(base..base + record)
            .ok_or_else(|| truncated(section, offset, record))?;
        let f = |i: usize| e.read_u32(rec, i * 4).unwrap_or(0);
        let mut spec = MapSpec::new(name, map_type(name, f(0))?, f(1), f(2), f(3));
        spec.flags = f(4);
        spec.section = section_name.clone();
        spec.origin = MapOrigin::Legacy {
            record_size: record,
        };
        if record != GOEBPF_SIZE && record != CLASSIC_SIZE {
            extra_fields(&mut spec, rec, record, e)?;
        }
        out.push(spec);
    }
    relocate(
        elf,
        section,
        syms,
        record,
        out.get_mut(first..).unwrap_or_default(),
    )?;
    Ok(record)
}

/// Reads the `.relmaps` relocations of goebpf's pointer fields into `maps`, the maps of the
/// section (a section without relocations returns at once).
#[inline(never)]
fn relocate(
    elf: &RawElf<'_>,
    section: &RawSection<'_>,
    syms: &[&RawSymbol],
    record: usize,
    maps: &mut [MapSpec],
) -> Result<()> {
    let mut rels = elf.relocations_for(section.index).peekable();
    if rels.peek().is_none() {
        return Ok(());
    }
    let e = elf.endian;
    let data = section.data;
    let mut inner_names: Vec<(usize, String)> = Vec::new();
    for rel in rels {
        let sym = elf.rel_symbol(&section.name, &rel)?;
        // Only errors name the symbol.
        let symbol = || elf.symbol_display(sym);
        let off = rel.offset as usize;
        if record == 0 || off.checked_add(8).is_none_or(|end| end > data.len()) {
            return Err(ElfError::RelocationOutOfRange {
                section: section.name.to_string(),
                offset: rel.offset,
                size: section.size,
            });
        }
        if rel.r_type != R_BPF_64_ABS64 && rel.r_type != R_BPF_64_64 {
            return Err(ElfError::BadRelocationType {
                section: section.name.to_string(),
                offset: rel.offset,
                symbol: symbol(),
                found: rel.r_type,
                expected: "R_BPF_64_ABS64 (2) or R_BPF_64_64 (1)",
            });
        }
        let (index, field) = (off / record, off % record);
        let unsupported = |reason: String| ElfError::UnsupportedRelocation {
            section: section.name.to_string(),
            offset: rel.offset,
            symbol: symbol(),
            reason,
        };
        if record != GOEBPF_SIZE || (field != GOEBPF_INNER && field != GOEBPF_PATH) {
            return Err(unsupported(format!(
                "field at offset {field} of a {record}-byte map record is not a pointer"
            )));
        }
        let addend = e.read_u64(data, off).unwrap_or(0);
        let target = sym.value.wrapping_add(addend);
        let target_section = sym
            .section
            .and_then(|s| elf.section(s))
            .ok_or_else(|| unsupported("symbol is not defined in this object".into()))?;
        if field == GOEBPF_INNER {
            if target_section.index != section.index {
                return Err(unsupported(
                    "inner map pointer does not point into the maps section".into(),
                ));
            }
            let inner = syms
                .iter()
                .find(|s| s.value == target)
                .ok_or_else(|| unsupported(format!("no map at offset {target}")))?;
            inner_names.push((index, elf.symbol_name(inner).into_owned()));
        } else {
            let path = target_section
                .data
                .get(target as usize..)
                .and_then(|rest| rest.iter().position(|&b| b == 0).map(|end| &rest[..end]))
                .ok_or_else(|| {
                    unsupported(format!(
                        "no string at offset {target} of {}",
                        target_section.name
                    ))
                })?;
            let path = String::from_utf8_lossy(path).into_owned();
            if let Some(m) = maps.get_mut(index) {
                if !path.is_empty() {
                    m.pinning = Pinning::Path(path);
                }
            }
        }
    }
    for (index, inner) in inner_names {
        let spec = maps.iter().find(|m| m.name == inner).cloned();
        if let (Some(m), Some(mut spec)) = (maps.get_mut(index), spec) {
            spec.origin = MapOrigin::Inner;
            spec.pinning = Pinning::None;
            m.inner_map = Some(Box::new(spec));
        }
    }
    Ok(())
}
