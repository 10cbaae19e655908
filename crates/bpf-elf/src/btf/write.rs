//! The BTF writer: types back to the bytes `BPF_BTF_LOAD` takes, so BTF can be edited (the
//! loader's sanitiser) or built from scratch ([`super::BtfBuilder`], CO-RE tests).

use std::collections::HashMap;

use super::{Btf, BtfKind, BtfType, BtfTypeData, BTF_MAGIC, HEADER_LEN};
use crate::error::Result;
use crate::insn::Endianness;

fn raw_kind(k: BtfKind) -> u32 {
    use bpf_sys::uapi;
    match k {
        BtfKind::Void => uapi::BTF_KIND_UNKN,
        BtfKind::Int => uapi::BTF_KIND_INT,
        BtfKind::Ptr => uapi::BTF_KIND_PTR,
        BtfKind::Array => uapi::BTF_KIND_ARRAY,
        BtfKind::Struct => uapi::BTF_KIND_STRUCT,
        BtfKind::Union => uapi::BTF_KIND_UNION,
        BtfKind::Enum => uapi::BTF_KIND_ENUM,
        BtfKind::Fwd => uapi::BTF_KIND_FWD,
        BtfKind::Typedef => uapi::BTF_KIND_TYPEDEF,
        BtfKind::Volatile => uapi::BTF_KIND_VOLATILE,
        BtfKind::Const => uapi::BTF_KIND_CONST,
        BtfKind::Restrict => uapi::BTF_KIND_RESTRICT,
        BtfKind::Func => uapi::BTF_KIND_FUNC,
        BtfKind::FuncProto => uapi::BTF_KIND_FUNC_PROTO,
        BtfKind::Var => uapi::BTF_KIND_VAR,
        BtfKind::DataSec => uapi::BTF_KIND_DATASEC,
        BtfKind::Float => uapi::BTF_KIND_FLOAT,
        BtfKind::DeclTag => uapi::BTF_KIND_DECL_TAG,
        BtfKind::TypeTag => uapi::BTF_KIND_TYPE_TAG,
        BtfKind::Enum64 => uapi::BTF_KIND_ENUM64,
    }
}

/// Collects strings once each; offset 0 is the empty string.
struct Strings {
    bytes: Vec<u8>,
    seen: HashMap<String, u32>,
    /// Added to every non-empty string's offset (split BTF: the base's string section size).
    offset_base: u32,
}

impl Strings {
    fn add(&mut self, s: &str) -> u32 {
        if s.is_empty() {
            return 0;
        }
        if let Some(&o) = self.seen.get(s) {
            return o;
        }
        let o = self.offset_base + self.bytes.len() as u32;
        self.bytes.extend_from_slice(s.as_bytes());
        self.bytes.push(0);
        self.seen.insert(s.to_string(), o);
        o
    }
}

/// Encodes `types` (index 0, `void`, is skipped) with a fresh string table, or with `base`
/// (an existing string section, kept byte for byte so that offsets into it, such as line
/// info's, stay valid) followed by the strings it lacks.
pub(super) fn marshal(types: &[BtfType], endian: Endianness, base: Option<&[u8]>) -> Vec<u8> {
    marshal_at(types, endian, base, 0)
}

/// [`marshal`], with string offsets starting at `offset_base` (split BTF: after its base's
/// string section); `types` still starts with a placeholder that is not written.
pub(super) fn marshal_at(
    types: &[BtfType],
    endian: Endianness,
    base: Option<&[u8]>,
    offset_base: u32,
) -> Vec<u8> {
    let mut strings = Strings {
        bytes: vec![0],
        seen: HashMap::new(),
        offset_base,
    };
    if let Some(base) = base.filter(|b| b.first() == Some(&0)) {
        strings.bytes = base.to_vec();
        if strings.bytes.last() != Some(&0) {
            strings.bytes.push(0);
        }
        let mut start = 0;
        for (i, &c) in base.iter().enumerate() {
            if c == 0 {
                if i > start {
                    let s = String::from_utf8_lossy(&base[start..i]).into_owned();
                    strings.seen.entry(s).or_insert(start as u32);
                }
                start = i + 1;
            }
        }
    }
    let mut out: Vec<u8> = Vec::new();
    let w = |out: &mut Vec<u8>, v: u32| out.extend_from_slice(&endian.u32_bytes(v));
    for t in types.iter().skip(1) {
        let vlen = match &t.data {
            BtfTypeData::Members(m) => m.len() as u32,
            BtfTypeData::DataSec(v) => v.len() as u32,
            BtfTypeData::Enum(v) => v.len() as u32,
            BtfTypeData::Params(p) => p.len() as u32,
            _ => u32::from(t.vlen),
        } & 0xffff;
        let info = (u32::from(t.kind_flag) << 31) | (raw_kind(t.kind) << 24) | vlen;
        let name = strings.add(&t.name);
        w(&mut out, name);
        w(&mut out, info);
        w(&mut out, t.size_or_type);
        match &t.data {
            BtfTypeData::Int(v) => w(&mut out, *v),
            BtfTypeData::Array {
                elem,
                index,
                nelems,
            } => {
                w(&mut out, *elem);
                w(&mut out, *index);
                w(&mut out, *nelems);
            }
            BtfTypeData::Members(members) => {
                for m in members {
                    let n = strings.add(&m.name);
                    w(&mut out, n);
                    w(&mut out, m.type_id);
                    let off = if t.kind_flag {
                        (m.bitfield_size << 24) | (m.bit_offset & 0xff_ffff)
                    } else {
                        m.bit_offset
                    };
                    w(&mut out, off);
                }
            }
            BtfTypeData::Var { linkage } => w(&mut out, *linkage),
            BtfTypeData::DataSec(vars) => {
                for v in vars {
                    w(&mut out, v.type_id);
                    w(&mut out, v.offset);
                    w(&mut out, v.size);
                }
            }
            BtfTypeData::Enum(values) => {
                for (n, v) in values {
                    let n = strings.add(n);
                    w(&mut out, n);
                    w(&mut out, *v as u32);
                    if t.kind == BtfKind::Enum64 {
                        w(&mut out, (*v >> 32) as u32);
                    }
                }
            }
            BtfTypeData::Params(params) => {
                for p in params {
                    let n = strings.add(&p.name);
                    w(&mut out, n);
                    w(&mut out, p.type_id);
                }
            }
            BtfTypeData::DeclTag { component_idx } => w(&mut out, *component_idx as u32),
            BtfTypeData::None | BtfTypeData::Opaque => {}
        }
    }
    let mut raw = Vec::with_capacity(HEADER_LEN + out.len() + strings.bytes.len());
    raw.extend_from_slice(&match endian {
        Endianness::Little => BTF_MAGIC.to_le_bytes(),
        Endianness::Big => BTF_MAGIC.to_be_bytes(),
    });
    raw.extend_from_slice(&[1, 0]);
    let type_len = out.len() as u32;
    for v in [
        HEADER_LEN as u32,
        0,
        type_len,
        type_len,
        strings.bytes.len() as u32,
    ] {
        raw.extend_from_slice(&endian.u32_bytes(v));
    }
    raw.extend_from_slice(&out);
    raw.extend_from_slice(&strings.bytes);
    raw
}

impl Btf {
    /// Builds BTF from types (index 0 must be `void`; it is not written): encodes them with a
    /// fresh string table and parses the result, so the raw bytes and the types agree.
    pub fn from_types(types: &[BtfType], endian: Endianness) -> Result<Btf> {
        Btf::parse(&marshal(types, endian, None))
    }

    /// Encodes the types again (with a fresh, deduplicated string table); equal to
    /// [`Btf::raw`] in meaning, not necessarily in bytes.
    /// Split BTF is returned as read (its strings continue its base's).
    pub fn to_bytes(&self) -> Vec<u8> {
        if self.base.is_some() {
            return self.raw.clone();
        }
        marshal(self.types(), self.endian, None)
    }

    /// Encodes `types` keeping this BTF's string section first, so string offsets into it stay
    /// valid.
    pub(crate) fn with_types(&self, types: &[BtfType]) -> Result<Btf> {
        let strings = self.string_section().unwrap_or_default();
        Btf::parse(&marshal(types, self.endian, Some(strings)))
    }
}
