//! Access specs: the local one parsed from the access string (`"0:1:2"`), a target one matched
//! by member name in a candidate type, and the values a field relocation yields from a spec.

use super::types::{fields_compat, is_any_enum, is_composite, resolve};
use super::Kind;
use crate::btf::{essential_name, Btf, BtfKind, BtfTypeData};
use crate::insn::Endianness;

/// Bound on the length of an access string (libbpf's `BPF_CORE_SPEC_MAX_LEN`).
const MAX_SPEC_LEN: usize = 64;

/// One step of an access: a named member of a struct or union, or an array element (and the
/// root's "element" 0).
#[derive(Debug, Clone)]
pub(super) struct Accessor {
    /// For a member: the struct or union (after modifiers); for an array element: the element
    /// type (after modifiers); for an enumerator: the enum.
    pub type_id: u32,
    /// Member, element or enumerator index.
    pub idx: u32,
    /// The member or enumerator's name; `None` for array elements.
    pub name: Option<String>,
}

/// A resolved access in one BTF.
#[derive(Debug, Clone)]
pub(super) struct Spec {
    /// The type the relocation names (not resolved through typedefs).
    pub root_type_id: u32,
    /// Named members and array elements; anonymous members are folded into `raw`.
    pub accessors: Vec<Accessor>,
    /// Every index, anonymous members included (the access string of this BTF).
    pub raw: Vec<u32>,
    /// Offset of the accessed field from the root, in bits.
    pub bit_offset: u64,
}

/// A spec error: the local access string does not fit the local BTF.
pub(super) type SpecResult<T> = Result<T, String>;

/// `is_flex_arr`: an array of 0 elements that is the last member of its struct.
fn is_flex(btf: &Btf, prev: Option<&Accessor>, nelems: u32) -> bool {
    let Some(prev) = prev else { return false };
    if prev.name.is_none() || nelems != 0 {
        return false;
    }
    match btf.type_by_id(prev.type_id).map(|t| &t.data) {
        Some(BtfTypeData::Members(m)) => prev.idx as usize + 1 == m.len(),
        _ => false,
    }
}

/// `bpf_core_parse_spec`: the local spec of a relocation.
pub(super) fn parse_local(btf: &Btf, type_id: u32, access: &str, kind: Kind) -> SpecResult<Spec> {
    let raw: Vec<u32> = access
        .split(':')
        .map(|s| s.parse::<u32>())
        .collect::<Result<_, _>>()
        .map_err(|_| format!("bad access string {access:?}"))?;
    if raw.is_empty() || raw.len() > MAX_SPEC_LEN {
        return Err(format!("bad access string {access:?}"));
    }
    let (mut id, t) = resolve(btf, type_id).ok_or("the local type does not resolve")?;
    let mut spec = Spec {
        root_type_id: type_id,
        accessors: vec![Accessor {
            type_id: id,
            idx: raw[0],
            name: None,
        }],
        raw: raw.clone(),
        bit_offset: 0,
    };
    if kind.is_type_based() {
        if access != "0" {
            return Err(format!("type relocation with access string {access:?}"));
        }
        return Ok(spec);
    }
    if kind.is_enumval_based() {
        let BtfTypeData::Enum(values) = &t.data else {
            return Err("enum value relocation on a type that is not an enum".into());
        };
        if raw.len() > 1 {
            return Err(format!(
                "enum value relocation with access string {access:?}"
            ));
        }
        let (name, _) = values
            .get(raw[0] as usize)
            .ok_or("enumerator index out of range")?;
        spec.accessors[0].name = Some(name.to_string());
        return Ok(spec);
    }
    let size = btf.size_of(id).ok_or("the local type has no size")?;
    spec.bit_offset = u64::from(raw[0]) * u64::from(size) * 8;
    for &idx in &raw[1..] {
        let (rid, t) = resolve(btf, id).ok_or("a local type does not resolve")?;
        id = rid;
        match &t.data {
            BtfTypeData::Members(members) if is_composite(t) => {
                let m = members
                    .get(idx as usize)
                    .ok_or("member index out of range")?;
                spec.bit_offset += u64::from(m.bit_offset);
                if !m.name.is_empty() {
                    spec.accessors.push(Accessor {
                        type_id: id,
                        idx,
                        name: Some(m.name.to_string()),
                    });
                }
                id = m.type_id;
            }
            BtfTypeData::Array { elem, nelems, .. } => {
                let flex = is_flex(btf, spec.accessors.last(), *nelems);
                let (eid, _) = resolve(btf, *elem).ok_or("an array element does not resolve")?;
                if !flex && idx >= *nelems {
                    return Err("array index out of range".into());
                }
                spec.accessors.push(Accessor {
                    type_id: eid,
                    idx,
                    name: None,
                });
                let size = btf.size_of(eid).ok_or("an array element has no size")?;
                spec.bit_offset += u64::from(idx) * u64::from(size) * 8;
                id = eid;
            }
            _ => return Err(format!("access through a {:?}", t.kind)),
        }
    }
    Ok(spec)
}

/// `bpf_core_match_member`: finds the local member's name in target type `targ_id`, looking
/// through anonymous members; updates `spec` and returns the member's type.
fn match_member(
    lb: &Btf,
    local: &Accessor,
    tb: &Btf,
    targ_id: u32,
    spec: &mut Spec,
    depth: usize,
) -> Option<u32> {
    let lt = lb.type_by_id(local.type_id)?;
    let BtfTypeData::Members(lm) = &lt.data else {
        return None;
    };
    let local_member = lm.get(local.idx as usize)?;
    let (targ_id, tt) = resolve(tb, targ_id)?;
    let BtfTypeData::Members(tm) = &tt.data else {
        return None;
    };
    if !is_composite(tt) || depth > MAX_SPEC_LEN {
        return None;
    }
    for (i, m) in tm.iter().enumerate() {
        if spec.raw.len() >= MAX_SPEC_LEN {
            return None;
        }
        spec.bit_offset += u64::from(m.bit_offset);
        spec.raw.push(i as u32);
        if m.name.is_empty() {
            if let Some(found) = match_member(lb, local, tb, m.type_id, spec, depth + 1) {
                return Some(found);
            }
        } else if m.name == local_member.name {
            if !fields_compat(lb, local_member.type_id, tb, m.type_id) {
                return None;
            }
            spec.accessors.push(Accessor {
                type_id: targ_id,
                idx: i as u32,
                name: Some(m.name.to_string()),
            });
            return Some(m.type_id);
        }
        spec.bit_offset -= u64::from(m.bit_offset);
        spec.raw.pop();
    }
    None
}

/// `bpf_core_spec_match` for field and enum value relocations: the target spec of candidate
/// `targ_id`, or `None` when it does not match.
pub(super) fn match_target(
    local: &Spec,
    lb: &Btf,
    tb: &Btf,
    targ_id: u32,
    kind: Kind,
) -> Option<Spec> {
    let mut spec = Spec {
        root_type_id: targ_id,
        accessors: Vec::new(),
        raw: Vec::new(),
        bit_offset: 0,
    };
    if kind.is_enumval_based() {
        let (id, t) = resolve(tb, targ_id)?;
        let BtfTypeData::Enum(values) = &t.data else {
            return None;
        };
        if !is_any_enum(t) {
            return None;
        }
        let want = essential_name(local.accessors.first()?.name.as_deref()?);
        let i = values.iter().position(|(n, _)| essential_name(n) == want)?;
        spec.accessors.push(Accessor {
            type_id: id,
            idx: i as u32,
            name: Some(values[i].0.to_string()),
        });
        spec.raw.push(i as u32);
        return Some(spec);
    }
    let mut id = targ_id;
    for (i, acc) in local.accessors.iter().enumerate() {
        let (rid, t) = resolve(tb, id)?;
        id = rid;
        if acc.name.is_some() {
            id = match_member(lb, acc, tb, id, &mut spec, 0)?;
        } else {
            if i > 0 {
                let BtfTypeData::Array { elem, nelems, .. } = t.data else {
                    return None;
                };
                if t.kind != BtfKind::Array {
                    return None;
                }
                let flex = is_flex(tb, spec.accessors.last(), nelems);
                if !flex && acc.idx >= nelems {
                    return None;
                }
                id = resolve(tb, elem)?.0;
            }
            if spec.raw.len() >= MAX_SPEC_LEN {
                return None;
            }
            spec.accessors.push(Accessor {
                type_id: id,
                idx: acc.idx,
                name: None,
            });
            spec.raw.push(acc.idx);
            let size = tb.size_of(id)?;
            spec.bit_offset += u64::from(acc.idx) * u64::from(size) * 8;
        }
    }
    Some(spec)
}

/// What a field relocation yields from one spec: the value, and the memory size and type of a
/// load or store of the field (for size adjustment).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct FieldValue {
    pub value: u64,
    pub mem_size: u32,
    pub mem_type: u32,
    /// Whether the instruction's original value must equal the local value.
    pub validate: bool,
}

/// `bpf_core_calc_field_relo` for a found field.
pub(super) fn field_value(
    btf: &Btf,
    spec: &Spec,
    kind: Kind,
    endian: Endianness,
) -> Result<FieldValue, String> {
    let acc = spec.accessors.last().ok_or("empty spec")?;
    let mut out = FieldValue {
        validate: true,
        ..FieldValue::default()
    };
    let Some(name) = &acc.name else {
        // An array element (or the root itself).
        let size = btf
            .size_of(acc.type_id)
            .ok_or("array element without a size")?;
        match kind {
            Kind::FieldByteOffset => {
                out.value = spec.bit_offset / 8;
                out.mem_size = size;
                out.mem_type = acc.type_id;
            }
            Kind::FieldByteSize => out.value = u64::from(size),
            _ => {
                return Err(format!(
                    "{} cannot be applied to an array access",
                    kind.name()
                ))
            }
        }
        return Ok(out);
    };
    let t = btf.type_by_id(acc.type_id).ok_or("bad accessor type")?;
    let BtfTypeData::Members(members) = &t.data else {
        return Err("accessor type is not a struct or union".into());
    };
    let m = members
        .get(acc.idx as usize)
        .ok_or_else(|| format!("no member {name}"))?;
    let (field_type, mt) = resolve(btf, m.type_id).ok_or("member type does not resolve")?;
    let bit_off = spec.bit_offset;
    let mut bit_sz = u64::from(m.bitfield_size);
    let bitfield = bit_sz > 0;
    let (byte_off, byte_sz);
    if bitfield {
        let mut sz = u64::from(mt.size_or_type).max(1);
        let mut off = bit_off / 8 / sz * sz;
        while bit_off + bit_sz - off * 8 > sz * 8 {
            if sz >= 8 {
                return Err("bitfield cannot be read with a 64-bit load".into());
            }
            sz *= 2;
            off = bit_off / 8 / sz * sz;
        }
        byte_sz = sz;
        byte_off = off;
    } else {
        byte_sz = u64::from(btf.size_of(field_type).ok_or("field without a size")?);
        byte_off = bit_off / 8;
        bit_sz = byte_sz * 8;
    }
    out.validate = !bitfield;
    match kind {
        Kind::FieldByteOffset => {
            out.value = byte_off;
            if !bitfield {
                let mut elem = field_type;
                for _ in 0..super::types::MAX_LEVEL {
                    match btf.type_by_id(elem).map(|t| &t.data) {
                        Some(BtfTypeData::Array { elem: e, .. }) => {
                            elem = resolve(btf, *e).ok_or("array element does not resolve")?.0
                        }
                        _ => break,
                    }
                }
                out.mem_size = btf.size_of(elem).ok_or("field without a size")?;
                out.mem_type = field_type;
            }
        }
        Kind::FieldSigned => {
            out.value = u64::from(
                (is_any_enum(mt) && mt.kind_flag)
                    || mt.int_encoding().is_some_and(|e| e.0 & 1 != 0),
            );
            out.validate = true;
        }
        Kind::FieldByteSize => out.value = byte_sz,
        Kind::FieldLshiftU64 => {
            out.value = match endian {
                Endianness::Little => 64u64.wrapping_sub(bit_off + bit_sz - byte_off * 8),
                Endianness::Big => {
                    (8u64.wrapping_sub(byte_sz)).wrapping_mul(8) + (bit_off - byte_off * 8)
                }
            }
        }
        Kind::FieldRshiftU64 => {
            out.value = 64u64.wrapping_sub(bit_sz);
            out.validate = true;
        }
        _ => return Err(format!("{} is not a field relocation", kind.name())),
    }
    Ok(out)
}
