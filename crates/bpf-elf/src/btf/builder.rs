//! [`BtfBuilder`]: BTF from scratch, one type at a time, for tests and for the loader's probes.

use super::{Btf, BtfKind, BtfMember, BtfParam, BtfSecInfo, BtfType, BtfTypeData};
use crate::error::Result;
use crate::insn::Endianness;

/// Builds BTF one type at a time; each `add_*` returns the new type's id.
///
/// ```
/// use bpf_elf::btf::BtfBuilder;
///
/// let mut b = BtfBuilder::new();
/// let int = b.add_int("int", 4, true);
/// let s = b.add_struct("task_struct", 8, &[("pid", int, 0), ("tgid", int, 32)]);
/// let btf = b.build()?;
/// assert_eq!(btf.size_of(s), Some(8));
/// # Ok::<(), bpf_elf::ElfError>(())
/// ```
#[derive(Debug, Clone)]
pub struct BtfBuilder {
    /// Index 0 is `void` (a placeholder that is not written, for split BTF).
    types: Vec<BtfType>,
    /// The base of split BTF being built.
    base: Option<std::sync::Arc<Btf>>,
}

impl Default for BtfBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl BtfBuilder {
    /// An empty builder (only `void`, id 0).
    pub fn new() -> BtfBuilder {
        BtfBuilder {
            types: vec![BtfType::new(BtfKind::Void, "", 0, BtfTypeData::None)],
            base: None,
        }
    }

    /// A builder of split BTF on top of `base` (as a kernel module's is on vmlinux's): ids
    /// continue after `base`'s, and types may refer to `base`'s ids.
    pub fn new_split(base: &std::sync::Arc<Btf>) -> BtfBuilder {
        BtfBuilder {
            types: vec![BtfType::new(BtfKind::Void, "", 0, BtfTypeData::None)],
            base: Some(base.clone()),
        }
    }

    fn first_id(&self) -> u32 {
        self.base.as_ref().map_or(0, |b| b.type_count() - 1)
    }

    /// Adds any type.
    pub fn add(&mut self, t: BtfType) -> u32 {
        self.types.push(t);
        self.first_id() + (self.types.len() - 1) as u32
    }

    /// `INT` of `size` bytes.
    pub fn add_int(&mut self, name: &str, size: u32, signed: bool) -> u32 {
        let enc = if signed { 1u32 << 24 } else { 0 };
        self.add(BtfType::new(
            BtfKind::Int,
            name,
            size,
            BtfTypeData::Int(enc | (size * 8)),
        ))
    }

    /// `FLOAT` of `size` bytes.
    pub fn add_float(&mut self, name: &str, size: u32) -> u32 {
        self.add(BtfType::new(BtfKind::Float, name, size, BtfTypeData::None))
    }

    /// A reference kind (`PTR`, `TYPEDEF`, `CONST`, `VOLATILE`, `RESTRICT`, `TYPE_TAG`, `FWD`
    /// with `target` 0) to `target`.
    pub fn add_ref(&mut self, kind: BtfKind, name: &str, target: u32) -> u32 {
        self.add(BtfType::new(kind, name, target, BtfTypeData::None))
    }

    /// `PTR` to `target`.
    pub fn add_ptr(&mut self, target: u32) -> u32 {
        self.add_ref(BtfKind::Ptr, "", target)
    }

    /// `ARRAY` of `nelems` elements of `elem`, indexed by `index`.
    pub fn add_array(&mut self, elem: u32, index: u32, nelems: u32) -> u32 {
        self.add(BtfType::new(
            BtfKind::Array,
            "",
            0,
            BtfTypeData::Array {
                elem,
                index,
                nelems,
            },
        ))
    }

    fn composite(
        &mut self,
        kind: BtfKind,
        name: &str,
        size: u32,
        m: &[(&str, u32, u32, u32)],
    ) -> u32 {
        let bitfields = m.iter().any(|x| x.3 != 0);
        let members = m
            .iter()
            .map(|&(name, type_id, bit_offset, bitfield_size)| BtfMember {
                name: name.into(),
                type_id,
                bit_offset,
                bitfield_size,
            })
            .collect();
        self.add(
            BtfType::new(kind, name, size, BtfTypeData::Members(members)).with_kind_flag(bitfields),
        )
    }

    /// `STRUCT` of `size` bytes with members `(name, type, bit offset)`.
    pub fn add_struct(&mut self, name: &str, size: u32, members: &[(&str, u32, u32)]) -> u32 {
        let m: Vec<_> = members.iter().map(|&(n, t, o)| (n, t, o, 0)).collect();
        self.composite(BtfKind::Struct, name, size, &m)
    }

    /// `STRUCT` with bitfields: members `(name, type, bit offset, bitfield size or 0)`.
    pub fn add_struct_bitfields(
        &mut self,
        name: &str,
        size: u32,
        members: &[(&str, u32, u32, u32)],
    ) -> u32 {
        self.composite(BtfKind::Struct, name, size, members)
    }

    /// `UNION` of `size` bytes with members `(name, type, bit offset)`.
    pub fn add_union(&mut self, name: &str, size: u32, members: &[(&str, u32, u32)]) -> u32 {
        let m: Vec<_> = members.iter().map(|&(n, t, o)| (n, t, o, 0)).collect();
        self.composite(BtfKind::Union, name, size, &m)
    }

    /// `ENUM` (4 bytes) or, when `size` is 8, `ENUM64`, with `(name, value)` pairs.
    pub fn add_enum(&mut self, name: &str, size: u32, signed: bool, values: &[(&str, u64)]) -> u32 {
        let kind = if size == 8 {
            BtfKind::Enum64
        } else {
            BtfKind::Enum
        };
        let v = values.iter().map(|&(n, v)| (n.into(), v)).collect();
        self.add(BtfType::new(kind, name, size, BtfTypeData::Enum(v)).with_kind_flag(signed))
    }

    /// `FUNC_PROTO` returning `ret` with `(name, type)` parameters.
    pub fn add_func_proto(&mut self, ret: u32, params: &[(&str, u32)]) -> u32 {
        let p = params
            .iter()
            .map(|&(n, t)| BtfParam {
                name: n.into(),
                type_id: t,
            })
            .collect();
        self.add(BtfType::new(
            BtfKind::FuncProto,
            "",
            ret,
            BtfTypeData::Params(p),
        ))
    }

    /// `FUNC` of prototype `proto` with `linkage` (0 static, 1 global, 2 extern).
    pub fn add_func(&mut self, name: &str, proto: u32, linkage: u16) -> u32 {
        self.add(BtfType::new(BtfKind::Func, name, proto, BtfTypeData::None).with_vlen(linkage))
    }

    /// `VAR` of `type_id` with `linkage`.
    pub fn add_var(&mut self, name: &str, type_id: u32, linkage: u32) -> u32 {
        self.add(BtfType::new(
            BtfKind::Var,
            name,
            type_id,
            BtfTypeData::Var { linkage },
        ))
    }

    /// `DATASEC` of `size` bytes with `(var, offset, size)` entries.
    pub fn add_datasec(&mut self, name: &str, size: u32, vars: &[(u32, u32, u32)]) -> u32 {
        let v = vars
            .iter()
            .map(|&(t, o, s)| BtfSecInfo::new(t, o, s))
            .collect();
        self.add(BtfType::new(
            BtfKind::DataSec,
            name,
            size,
            BtfTypeData::DataSec(v),
        ))
    }

    /// `DECL_TAG` `name` on `target` (component -1 for the type itself).
    pub fn add_decl_tag(&mut self, name: &str, target: u32, component_idx: i32) -> u32 {
        self.add(BtfType::new(
            BtfKind::DeclTag,
            name,
            target,
            BtfTypeData::DeclTag { component_idx },
        ))
    }

    /// The types added so far (index = id; for split BTF, index = id - the base's type count
    /// + 1, index 0 being a placeholder).
    pub fn types(&self) -> &[BtfType] {
        &self.types
    }

    /// Encodes the types in host byte order and parses them back (split BTF: against its
    /// base, which must be in host byte order too).
    pub fn build(&self) -> Result<Btf> {
        match &self.base {
            None => Btf::from_types(&self.types, Endianness::host()),
            Some(base) => {
                let str_base = base.strings_end();
                let raw = super::write::marshal_at(&self.types, Endianness::host(), None, str_base);
                Btf::parse_split(&raw, base)
            }
        }
    }
}
