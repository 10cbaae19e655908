//! The minimal BTF reader this crate needs: the type table (to read `.maps` definitions and the
//! variables of global data sections) and `.BTF.ext` (func_info, line_info, CO-RE records).
//!
//! The raw bytes are kept for the loader, with the fix-ups the kernel needs already applied:
//! clang leaves `DATASEC` sizes and global variables' offsets at zero, and the linker that would
//! fill them does not run for BPF objects.

mod builder;
mod ext;
mod name;
mod sanitize;
mod write;

pub use builder::BtfBuilder;
pub use ext::{BtfExt, CoreRelocation, FuncInfo, LineInfo};
pub use name::BtfName;
pub use sanitize::BtfFeatures;

use bpf_sys::uapi;

use crate::error::{ElfError, Result};
use crate::insn::Endianness;

const BTF_MAGIC: u16 = 0xeb9f;
const HEADER_LEN: usize = 24;
/// Bound on chains of modifiers, typedefs and pointers, so a cyclic type graph cannot loop.
const MAX_RESOLVE_DEPTH: usize = 32;

/// The kind of a BTF type (`BTF_KIND_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[allow(missing_docs)]
pub enum BtfKind {
    Void,
    Int,
    Ptr,
    Array,
    Struct,
    Union,
    Enum,
    Fwd,
    Typedef,
    Volatile,
    Const,
    Restrict,
    Func,
    FuncProto,
    Var,
    DataSec,
    Float,
    DeclTag,
    TypeTag,
    Enum64,
}

impl BtfKind {
    fn from_raw(v: u32) -> Option<Self> {
        Some(match v {
            uapi::BTF_KIND_UNKN => BtfKind::Void,
            uapi::BTF_KIND_INT => BtfKind::Int,
            uapi::BTF_KIND_PTR => BtfKind::Ptr,
            uapi::BTF_KIND_ARRAY => BtfKind::Array,
            uapi::BTF_KIND_STRUCT => BtfKind::Struct,
            uapi::BTF_KIND_UNION => BtfKind::Union,
            uapi::BTF_KIND_ENUM => BtfKind::Enum,
            uapi::BTF_KIND_FWD => BtfKind::Fwd,
            uapi::BTF_KIND_TYPEDEF => BtfKind::Typedef,
            uapi::BTF_KIND_VOLATILE => BtfKind::Volatile,
            uapi::BTF_KIND_CONST => BtfKind::Const,
            uapi::BTF_KIND_RESTRICT => BtfKind::Restrict,
            uapi::BTF_KIND_FUNC => BtfKind::Func,
            uapi::BTF_KIND_FUNC_PROTO => BtfKind::FuncProto,
            uapi::BTF_KIND_VAR => BtfKind::Var,
            uapi::BTF_KIND_DATASEC => BtfKind::DataSec,
            uapi::BTF_KIND_FLOAT => BtfKind::Float,
            uapi::BTF_KIND_DECL_TAG => BtfKind::DeclTag,
            uapi::BTF_KIND_TYPE_TAG => BtfKind::TypeTag,
            uapi::BTF_KIND_ENUM64 => BtfKind::Enum64,
            _ => return None,
        })
    }
}

/// A struct or union member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BtfMember {
    /// Its name (empty for anonymous members).
    pub name: BtfName,
    /// Its type.
    pub type_id: u32,
    /// Offset from the start of the struct, in bits.
    pub bit_offset: u32,
    /// The bitfield's size in bits when the struct has `kind_flag` set and the member is a
    /// bitfield; 0 otherwise.
    pub bitfield_size: u32,
}

/// A parameter of a `FUNC_PROTO`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BtfParam {
    /// Its name (often empty in kernel BTF).
    pub name: BtfName,
    /// Its type (0 for the `...` of a variadic function).
    pub type_id: u32,
}

/// One variable of a `DATASEC`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BtfSecInfo {
    /// The `VAR` type.
    pub type_id: u32,
    /// Offset in the section, in bytes.
    pub offset: u32,
    /// Size in bytes.
    pub size: u32,
    /// Where the `offset` field sits in the raw BTF (for fix-ups).
    pub(crate) offset_pos: usize,
}

impl BtfSecInfo {
    /// A `DATASEC` entry, for [`BtfBuilder`].
    pub fn new(type_id: u32, offset: u32, size: u32) -> BtfSecInfo {
        BtfSecInfo {
            type_id,
            offset,
            size,
            offset_pos: 0,
        }
    }
}

/// What a type carries beyond its header.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BtfTypeData {
    /// Nothing more.
    None,
    /// An `INT`'s encoding word.
    Int(u32),
    /// An `ARRAY`.
    Array {
        /// Element type.
        elem: u32,
        /// Index type.
        index: u32,
        /// Number of elements.
        nelems: u32,
    },
    /// A `STRUCT` or `UNION`'s members.
    Members(Vec<BtfMember>),
    /// A `VAR`'s linkage.
    Var {
        /// 0 static, 1 global, 2 extern.
        linkage: u32,
    },
    /// A `DATASEC`'s variables.
    DataSec(Vec<BtfSecInfo>),
    /// An `ENUM` or `ENUM64`'s values (`ENUM` values are sign-extended when the type is
    /// signed).
    Enum(Vec<(BtfName, u64)>),
    /// Not produced by the parser any more; kept for compatibility.
    Opaque,
    /// A `FUNC_PROTO`'s parameters (the return type is `size_or_type`).
    Params(Vec<BtfParam>),
    /// A `DECL_TAG`'s component: -1 for the type itself, else the member or parameter index.
    DeclTag {
        /// The member or parameter index, or -1.
        component_idx: i32,
    },
}

/// One BTF type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BtfType {
    /// Its kind.
    pub kind: BtfKind,
    /// Its name (empty when anonymous).
    pub name: BtfName,
    /// `size` for sized kinds, `type` for referring kinds.
    pub size_or_type: u32,
    /// `vlen` from the info word (a `FUNC`'s linkage).
    pub vlen: u16,
    /// `kind_flag` from the info word: bitfield sizes in a struct's member offsets, a signed
    /// enum, a forward declaration of a union, a decl tag that is an attribute.
    pub kind_flag: bool,
    /// What follows the header.
    pub data: BtfTypeData,
    /// Where the `size` field sits in the raw BTF (for fix-ups).
    size_pos: usize,
}

/// A `.BTF` section (an object's, or the kernel's), parsed.
#[derive(Debug, Clone)]
pub struct Btf {
    raw: Vec<u8>,
    endian: Endianness,
    /// This BTF's own types: for a base BTF, index = type id and type 0 is `void`; for split
    /// BTF, index = type id - `first_id`.
    types: Vec<BtfType>,
    /// The BTF this one extends (split BTF, such as a kernel module's), if any.
    base: Option<std::sync::Arc<Btf>>,
    /// The id of `types[0]`: 0, or the number of types of `base`.
    first_id: u32,
    /// The length of the string sections before this one's (split BTF), 0 otherwise.
    str_base: u32,
    /// Type ids by essential name (the name up to `___`), built on first use.
    by_name: std::sync::OnceLock<std::collections::HashMap<String, Vec<u32>>>,
}

fn err(offset: usize, reason: &'static str) -> ElfError {
    ElfError::InvalidBtf { offset, reason }
}

/// The NUL-terminated name at `offset` of a string section.
pub(crate) fn read_name(strings: &[u8], offset: u32) -> Option<BtfName> {
    let rest = strings.get(offset as usize..)?;
    let name = std::ffi::CStr::from_bytes_until_nul(rest).ok()?;
    Some(BtfName::from_bytes(name.to_bytes()))
}

impl Btf {
    /// Parses a `.BTF` section.
    pub fn parse(raw: &[u8]) -> Result<Btf> {
        Btf::parse_inner(raw, None)
    }

    /// Parses split BTF (a kernel module's `/sys/kernel/btf/<module>`) on top of `base`
    /// (usually `/sys/kernel/btf/vmlinux`): its type ids continue after `base`'s and its string
    /// offsets after `base`'s string section, so ids and names resolve across both.
    ///
    /// [`Btf::type_by_id`], [`Btf::find`], [`Btf::size_of`] see base and split types;
    /// [`Btf::types`] and [`Btf::ids_by_essential_name`] only the split part (as libbpf
    /// searches a module's own types for CO-RE candidates).
    pub fn parse_split(raw: &[u8], base: &std::sync::Arc<Btf>) -> Result<Btf> {
        Btf::parse_inner(raw, Some(base))
    }

    fn parse_inner(raw: &[u8], base: Option<&std::sync::Arc<Btf>>) -> Result<Btf> {
        let endian = match raw.get(..2) {
            Some([0x9f, 0xeb]) => Endianness::Little,
            Some([0xeb, 0x9f]) => Endianness::Big,
            _ => return Err(err(0, "bad magic")),
        };
        debug_assert_eq!(endian.read_u16(raw, 0), Some(BTF_MAGIC));
        let r = |o: usize| {
            endian
                .read_u32(raw, o)
                .ok_or_else(|| err(o, "truncated header"))
        };
        let hdr_len = r(4)? as usize;
        if hdr_len < HEADER_LEN {
            return Err(err(4, "header too short"));
        }
        let (type_off, type_len, str_off, str_len) = (r(8)?, r(12)?, r(16)?, r(20)?);
        let range = |off: u32, len: u32, what| {
            let start = hdr_len
                .checked_add(off as usize)
                .ok_or_else(|| err(8, what))?;
            let end = start
                .checked_add(len as usize)
                .ok_or_else(|| err(8, what))?;
            if end > raw.len() {
                return Err(err(start, what));
            }
            Ok(start..end)
        };
        let type_range = range(type_off, type_len, "type section out of bounds")?;
        let str_range = range(str_off, str_len, "string section out of bounds")?;
        let strings = raw.get(str_range).unwrap_or_default();
        if let Some(b) = base {
            if b.endian != endian {
                return Err(err(0, "split btf and its base differ in byte order"));
            }
        }
        let str_base = base.map_or(0, |b| b.strings_end());
        let name = |off: u32, at: usize| {
            match base {
                Some(b) if off < str_base => b.name_at(off),
                _ => read_name(strings, off - str_base),
            }
            .ok_or_else(|| err(at, "bad string offset"))
        };

        // Most types are a 12-byte header and one or two small records: a quarter of the
        // section's length in bytes / 12 is rarely exceeded, and saves the early regrowths.
        let mut types = Vec::with_capacity((type_range.len() / 24).min(1 << 20) + 1);
        if base.is_none() {
            types.push(BtfType {
                kind: BtfKind::Void,
                name: BtfName::empty(),
                size_or_type: 0,
                vlen: 0,
                kind_flag: false,
                data: BtfTypeData::None,
                size_pos: 0,
            });
        }
        let mut pos = type_range.start;
        let end = type_range.end;
        let u32_at = |o: usize| {
            if o + 4 > end {
                return Err(err(o, "truncated type"));
            }
            endian
                .read_u32(raw, o)
                .ok_or_else(|| err(o, "truncated type"))
        };
        while pos < end {
            let name_off = u32_at(pos)?;
            let info = u32_at(pos + 4)?;
            let size_or_type = u32_at(pos + 8)?;
            let kind_raw = (info >> 24) & 0x1f;
            let kind = BtfKind::from_raw(kind_raw).ok_or_else(|| err(pos + 4, "unknown kind"))?;
            let vlen = (info & 0xffff) as u16;
            let type_name = name(name_off, pos)?;
            let size_pos = pos + 8;
            pos += 12;
            let n = usize::from(vlen);
            let data = match kind {
                BtfKind::Int => {
                    let v = u32_at(pos)?;
                    pos += 4;
                    BtfTypeData::Int(v)
                }
                BtfKind::Array => {
                    let d = BtfTypeData::Array {
                        elem: u32_at(pos)?,
                        index: u32_at(pos + 4)?,
                        nelems: u32_at(pos + 8)?,
                    };
                    pos += 12;
                    d
                }
                BtfKind::Struct | BtfKind::Union => {
                    let mut members = Vec::with_capacity(n.min(1024));
                    for _ in 0..n {
                        let m_name = name(u32_at(pos)?, pos)?;
                        let type_id = u32_at(pos + 4)?;
                        let raw_off = u32_at(pos + 8)?;
                        // With kind_flag, the offset's top 8 bits are a bitfield size.
                        let (bit_offset, bitfield_size) = if info >> 31 == 1 {
                            (raw_off & 0xff_ffff, raw_off >> 24)
                        } else {
                            (raw_off, 0)
                        };
                        members.push(BtfMember {
                            name: m_name,
                            type_id,
                            bit_offset,
                            bitfield_size,
                        });
                        pos += 12;
                    }
                    BtfTypeData::Members(members)
                }
                BtfKind::Var => {
                    let linkage = u32_at(pos)?;
                    pos += 4;
                    BtfTypeData::Var { linkage }
                }
                BtfKind::DataSec => {
                    let mut vars = Vec::with_capacity(n.min(1024));
                    for _ in 0..n {
                        vars.push(BtfSecInfo {
                            type_id: u32_at(pos)?,
                            offset: u32_at(pos + 4)?,
                            size: u32_at(pos + 8)?,
                            offset_pos: pos + 4,
                        });
                        pos += 12;
                    }
                    BtfTypeData::DataSec(vars)
                }
                BtfKind::Enum | BtfKind::Enum64 => {
                    let rec = if kind == BtfKind::Enum { 8 } else { 12 };
                    let signed = info >> 31 == 1;
                    let mut values = Vec::with_capacity(n.min(1024));
                    for _ in 0..n {
                        let v_name = name(u32_at(pos)?, pos)?;
                        let lo = u32_at(pos + 4)?;
                        let value = if kind == BtfKind::Enum64 {
                            u64::from(lo) | (u64::from(u32_at(pos + 8)?) << 32)
                        } else if signed {
                            lo as i32 as i64 as u64
                        } else {
                            u64::from(lo)
                        };
                        values.push((v_name, value));
                        pos += rec;
                    }
                    BtfTypeData::Enum(values)
                }
                BtfKind::FuncProto => {
                    let mut params = Vec::with_capacity(n.min(1024));
                    for _ in 0..n {
                        params.push(BtfParam {
                            name: name(u32_at(pos)?, pos)?,
                            type_id: u32_at(pos + 4)?,
                        });
                        pos += 8;
                    }
                    BtfTypeData::Params(params)
                }
                BtfKind::DeclTag => {
                    let component_idx = u32_at(pos)? as i32;
                    pos += 4;
                    BtfTypeData::DeclTag { component_idx }
                }
                _ => BtfTypeData::None,
            };
            if pos > end {
                return Err(err(pos, "truncated type"));
            }
            types.push(BtfType {
                kind,
                name: type_name,
                size_or_type,
                vlen,
                kind_flag: info >> 31 == 1,
                data,
                size_pos,
            });
        }
        Ok(Btf {
            raw: raw.to_vec(),
            endian,
            types,
            base: base.cloned(),
            first_id: base.map_or(0, |b| b.type_count()),
            str_base,
            by_name: std::sync::OnceLock::new(),
        })
    }

    /// The number of types, `void` included: one more than the largest id (for split BTF,
    /// base types included).
    pub fn type_count(&self) -> u32 {
        self.first_id + self.types.len() as u32
    }

    /// The id of the first of [`Btf::types`]: 0 (`void`), or for split BTF the number of types
    /// of its base.
    pub fn first_id(&self) -> u32 {
        self.first_id
    }

    /// The BTF this split BTF extends, if any.
    pub fn base(&self) -> Option<&std::sync::Arc<Btf>> {
        self.base.as_ref()
    }

    /// Where this BTF's string offsets end (split BTF: its base's included).
    pub(crate) fn strings_end(&self) -> u32 {
        let own = self.string_section().map_or(0, |s| s.len() as u32);
        self.str_base + own
    }

    /// The string at `off`, looking in the base for offsets below its end.
    fn str_at(&self, off: u32) -> Option<String> {
        self.name_at(off).map(String::from)
    }

    /// [`Btf::str_at`] as a [`BtfName`].
    fn name_at(&self, off: u32) -> Option<BtfName> {
        match &self.base {
            Some(b) if off < self.str_base => b.name_at(off),
            _ => read_name(self.string_section()?, off.checked_sub(self.str_base)?),
        }
    }

    /// The raw section, with `DATASEC` sizes and variable offsets fixed up; what the loader
    /// passes to `BPF_BTF_LOAD`.
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// The byte order of the BTF data.
    pub fn endianness(&self) -> Endianness {
        self.endian
    }

    /// This BTF's own types: all of them, index = type id, 0 is `void`; for split BTF only
    /// the split part, index = type id - [`Btf::first_id`].
    pub fn types(&self) -> &[BtfType] {
        &self.types
    }

    /// The type with this id (split BTF: in the base or the split part).
    pub fn type_by_id(&self, id: u32) -> Option<&BtfType> {
        if id < self.first_id {
            return self.base.as_ref()?.type_by_id(id);
        }
        self.types.get((id - self.first_id) as usize)
    }

    /// The id of the first type of this kind and name (split BTF: the base first).
    pub fn find(&self, kind: BtfKind, name: &str) -> Option<u32> {
        if let Some(id) = self.base.as_ref().and_then(|b| b.find(kind, name)) {
            return Some(id);
        }
        self.types
            .iter()
            .position(|t| t.kind == kind && t.name == name)
            .map(|i| self.first_id + i as u32)
    }

    /// The ids of every type whose essential name (the name up to a `___flavor` suffix) is
    /// `name`, in id order; the index is built on first use. Split BTF: only its own types,
    /// not its base's.
    pub fn ids_by_essential_name(&self, name: &str) -> &[u32] {
        let index = self.by_name.get_or_init(|| {
            let mut m: std::collections::HashMap<String, Vec<u32>> =
                std::collections::HashMap::new();
            for (i, t) in self.types.iter().enumerate() {
                if !t.name.is_empty() {
                    m.entry(essential_name(&t.name).to_string())
                        .or_default()
                        .push(self.first_id + i as u32);
                }
            }
            m
        });
        index.get(name).map(Vec::as_slice).unwrap_or_default()
    }

    /// Follows typedefs and modifiers (`const`, `volatile`, `restrict`, type tags) to the
    /// underlying type.
    pub fn skip_modifiers(&self, mut id: u32) -> Option<u32> {
        for _ in 0..MAX_RESOLVE_DEPTH {
            let t = self.type_by_id(id)?;
            match t.kind {
                BtfKind::Typedef
                | BtfKind::Volatile
                | BtfKind::Const
                | BtfKind::Restrict
                | BtfKind::TypeTag => id = t.size_or_type,
                _ => return Some(id),
            }
        }
        None
    }

    /// The size in bytes of a type, or `None` for unsized or malformed types.
    pub fn size_of(&self, id: u32) -> Option<u32> {
        self.size_of_depth(id, 0)
    }

    fn size_of_depth(&self, id: u32, depth: usize) -> Option<u32> {
        if depth > MAX_RESOLVE_DEPTH {
            return None;
        }
        let id = self.skip_modifiers(id)?;
        let t = self.type_by_id(id)?;
        match (&t.kind, &t.data) {
            (BtfKind::Int | BtfKind::Struct | BtfKind::Union | BtfKind::Enum, _)
            | (BtfKind::Enum64 | BtfKind::Float | BtfKind::DataSec, _) => Some(t.size_or_type),
            (BtfKind::Ptr, _) => Some(8),
            (BtfKind::Func | BtfKind::FuncProto, _) => None,
            (BtfKind::Var, _) => self.size_of_depth(t.size_or_type, depth + 1),
            (BtfKind::Array, BtfTypeData::Array { elem, nelems, .. }) => {
                self.size_of_depth(*elem, depth + 1)?.checked_mul(*nelems)
            }
            _ => None,
        }
    }

    /// Sets a `DATASEC`'s size and its variables' offsets, in the parsed types and in the raw
    /// bytes.
    pub(crate) fn fix_datasec(&mut self, id: u32, size: u32, offsets: &[(usize, u32)]) {
        let endian = self.endian;
        let Some(t) = self.types.get_mut(id as usize) else {
            return;
        };
        t.size_or_type = size;
        if let Some(b) = self.raw.get_mut(t.size_pos..t.size_pos + 4) {
            b.copy_from_slice(&endian.u32_bytes(size));
        }
        if let BtfTypeData::DataSec(vars) = &mut t.data {
            for &(i, off) in offsets {
                if let Some(v) = vars.get_mut(i) {
                    v.offset = off;
                    if let Some(b) = self.raw.get_mut(v.offset_pos..v.offset_pos + 4) {
                        b.copy_from_slice(&endian.u32_bytes(off));
                    }
                }
            }
        }
    }

    /// The string section's bytes.
    pub(crate) fn string_section(&self) -> Option<&[u8]> {
        let r = |o| self.endian.read_u32(&self.raw, o);
        let hdr_len = r(4)? as usize;
        let start = hdr_len.checked_add(r(16)? as usize)?;
        let end = start.checked_add(r(20)? as usize)?;
        self.raw.get(start..end)
    }

    /// The strings section, for `.BTF.ext` names.
    pub(crate) fn string_at(&self, offset: u32) -> Option<String> {
        self.str_at(offset)
    }
}

/// A name without its `___flavor` suffix (`task_struct___v1` is `task_struct`), as CO-RE
/// matches them.
pub fn essential_name(name: &str) -> &str {
    match name.find("___") {
        Some(i) => &name[..i],
        None => name,
    }
}

impl BtfType {
    /// A type for [`BtfBuilder`] or [`Btf::from_types`]: `vlen` is taken from `data`.
    pub fn new(kind: BtfKind, name: &str, size_or_type: u32, data: BtfTypeData) -> BtfType {
        let vlen = match &data {
            BtfTypeData::Members(m) => m.len(),
            BtfTypeData::DataSec(v) => v.len(),
            BtfTypeData::Enum(v) => v.len(),
            BtfTypeData::Params(p) => p.len(),
            _ => 0,
        };
        BtfType {
            kind,
            name: name.into(),
            size_or_type,
            vlen: u16::try_from(vlen).unwrap_or(u16::MAX),
            kind_flag: false,
            data,
            size_pos: 0,
        }
    }

    /// The same type with `kind_flag` set or cleared.
    pub fn with_kind_flag(mut self, on: bool) -> BtfType {
        self.kind_flag = on;
        self
    }

    /// The same type with `vlen` set (a `FUNC`'s linkage).
    pub fn with_vlen(mut self, vlen: u16) -> BtfType {
        self.vlen = vlen;
        self
    }

    /// An `INT`'s encoding (`BTF_INT_SIGNED`, `BTF_INT_CHAR`, `BTF_INT_BOOL`), bit offset and
    /// size in bits, for `INT` types.
    pub fn int_encoding(&self) -> Option<(u32, u32, u32)> {
        match (self.kind, &self.data) {
            (BtfKind::Int, BtfTypeData::Int(v)) => {
                Some(((v >> 24) & 0xf, (v >> 16) & 0xff, v & 0xff))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds little-endian BTF from raw type words and a string table.
    pub(crate) fn build(types: &[u32], strings: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&BTF_MAGIC.to_le_bytes());
        out.extend_from_slice(&[1, 0]);
        let type_len = (types.len() * 4) as u32;
        for v in [24, 0, type_len, type_len, strings.len() as u32] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for t in types {
            out.extend_from_slice(&t.to_le_bytes());
        }
        out.extend_from_slice(strings);
        out
    }

    #[test]
    fn parses_int_and_array_sizes() {
        // [1] int size 4; [2] array of 3 x [1]
        let raw = build(&[1, 1 << 24, 4, 32, 0, 3 << 24, 0, 1, 1, 3], b"\0int\0");
        let btf = Btf::parse(&raw).unwrap();
        assert_eq!(btf.types().len(), 3);
        assert_eq!(btf.type_by_id(1).unwrap().name, "int");
        assert_eq!(btf.size_of(2), Some(12));
    }

    #[test]
    fn cyclic_typedefs_do_not_hang() {
        // [1] typedef -> 2, [2] typedef -> 1
        let raw = build(&[0, 8 << 24, 2, 0, 8 << 24, 1], b"\0");
        let btf = Btf::parse(&raw).unwrap();
        assert_eq!(btf.size_of(1), None);
    }

    #[test]
    fn truncated_btf_is_an_error() {
        let raw = build(&[1, 1 << 24, 4, 32], b"\0int\0");
        for len in 0..raw.len() {
            assert!(Btf::parse(&raw[..len]).is_err(), "{len}");
        }
        let mut bad = raw.clone();
        bad[27] = 0x7f; // kind bits of the first type
        assert!(Btf::parse(&bad).is_err());
    }
}
