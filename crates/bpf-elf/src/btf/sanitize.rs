//! Rewriting BTF for kernels that do not know every kind, as libbpf's
//! `bpf_object__sanitize_btf` does: type ids stay the same, so func_info, line_info and map
//! BTF keep pointing at the right types.

use super::{Btf, BtfKind, BtfMember, BtfType, BtfTypeData};
use crate::error::Result;

/// What the kernel's BTF checker accepts; the loader probes each with a tiny blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BtfFeatures {
    /// `VAR` and `DATASEC` (Linux 5.2).
    pub datasec: bool,
    /// `FUNC` and `FUNC_PROTO` (Linux 5.0).
    pub func: bool,
    /// `FUNC` with global linkage (Linux 5.6).
    pub func_global: bool,
    /// `FLOAT` (Linux 5.13).
    pub float: bool,
    /// `DECL_TAG` (Linux 5.16).
    pub decl_tag: bool,
    /// `TYPE_TAG` (Linux 5.17).
    pub type_tag: bool,
    /// `ENUM64` and signed enums (Linux 6.0).
    pub enum64: bool,
    /// A `DATASEC` without variables (refused with "vlen == 0" by Linux 5.10, accepted by
    /// 6.1): clang writes one for a `.rodata` holding only anonymous constants.
    pub empty_datasec: bool,
}

impl BtfFeatures {
    /// Everything supported: sanitising changes nothing.
    pub const ALL: BtfFeatures = BtfFeatures {
        datasec: true,
        func: true,
        func_global: true,
        float: true,
        decl_tag: true,
        type_tag: true,
        enum64: true,
        empty_datasec: true,
    };

    /// Nothing beyond the BTF of Linux 4.18.
    pub const NONE: BtfFeatures = BtfFeatures {
        datasec: false,
        func: false,
        func_global: false,
        float: false,
        decl_tag: false,
        type_tag: false,
        enum64: false,
        empty_datasec: false,
    };
}

fn int8() -> BtfTypeData {
    BtfTypeData::Int(8)
}

impl Btf {
    /// The same types, with what `features` lacks rewritten into older kinds: `VAR` into a
    /// 1-byte `INT` and `DATASEC` into a `STRUCT` (names with `.` get `_`), `FUNC_PROTO` into an
    /// `ENUM` and `FUNC` into a `TYPEDEF`, global functions into static ones, `FLOAT` into an
    /// empty anonymous `STRUCT` of its size, `DECL_TAG` into an `INT`, `TYPE_TAG` into a
    /// `CONST`, `ENUM64` into a `UNION` of 1-byte members and signed `ENUM`s into unsigned; a
    /// `DATASEC` without variables, where only that is refused, into an empty `STRUCT` of its
    /// size.
    pub fn sanitized(&self, features: &BtfFeatures) -> Result<Btf> {
        if *features == BtfFeatures::ALL {
            return Ok(self.clone());
        }
        if self.base.is_some() {
            return Err(crate::error::ElfError::InvalidBtf {
                offset: 0,
                reason: "split btf cannot be sanitized",
            });
        }
        let mut types: Vec<BtfType> = self.types().to_vec();
        let mut placeholder = None;
        let n = types.len();
        for i in 1..n {
            let t = types[i].clone();
            let new = match t.kind {
                BtfKind::Var if !features.datasec => {
                    Some(BtfType::new(BtfKind::Int, &t.name, 1, int8()))
                }
                BtfKind::DataSec
                    if !features.datasec
                        || (!features.empty_datasec
                            && matches!(&t.data, BtfTypeData::DataSec(v) if v.is_empty())) =>
                {
                    let BtfTypeData::DataSec(vars) = &t.data else {
                        continue;
                    };
                    let members = vars
                        .iter()
                        .map(|v| BtfMember {
                            name: self
                                .type_by_id(v.type_id)
                                .map(|vt| vt.name.clone())
                                .unwrap_or_default(),
                            type_id: v.type_id,
                            bit_offset: v.offset.saturating_mul(8),
                            bitfield_size: 0,
                        })
                        .collect();
                    let name = t.name.replace(['.', '?'], "_");
                    Some(BtfType::new(
                        BtfKind::Struct,
                        &name,
                        t.size_or_type,
                        BtfTypeData::Members(members),
                    ))
                }
                BtfKind::FuncProto if !features.func => {
                    let BtfTypeData::Params(params) = &t.data else {
                        continue;
                    };
                    let values = params
                        .iter()
                        .map(|p| (p.name.clone(), u64::from(p.type_id)))
                        .collect();
                    Some(BtfType::new(
                        BtfKind::Enum,
                        "",
                        4,
                        BtfTypeData::Enum(values),
                    ))
                }
                BtfKind::Func if !features.func => Some(BtfType::new(
                    BtfKind::Typedef,
                    &t.name,
                    t.size_or_type,
                    BtfTypeData::None,
                )),
                BtfKind::Func if !features.func_global && t.vlen != 0 => {
                    Some(t.clone().with_vlen(0))
                }
                BtfKind::Float if !features.float => Some(BtfType::new(
                    BtfKind::Struct,
                    "",
                    t.size_or_type,
                    BtfTypeData::Members(Vec::new()),
                )),
                BtfKind::DeclTag if !features.decl_tag => {
                    Some(BtfType::new(BtfKind::Int, "", 1, int8()))
                }
                BtfKind::TypeTag if !features.type_tag => Some(BtfType::new(
                    BtfKind::Const,
                    "",
                    t.size_or_type,
                    BtfTypeData::None,
                )),
                BtfKind::Enum64 if !features.enum64 => {
                    let BtfTypeData::Enum(values) = &t.data else {
                        continue;
                    };
                    let ph = *placeholder.get_or_insert_with(|| {
                        types.push(BtfType::new(BtfKind::Int, "enum64_placeholder", 1, int8()));
                        (types.len() - 1) as u32
                    });
                    let members = values
                        .iter()
                        .map(|(name, _)| BtfMember {
                            name: name.clone(),
                            type_id: ph,
                            bit_offset: 0,
                            bitfield_size: 0,
                        })
                        .collect();
                    Some(BtfType::new(
                        BtfKind::Union,
                        &t.name,
                        t.size_or_type,
                        BtfTypeData::Members(members),
                    ))
                }
                BtfKind::Enum if !features.enum64 && t.kind_flag => {
                    Some(t.clone().with_kind_flag(false))
                }
                _ => None,
            };
            if let Some(new) = new {
                types[i] = new;
            }
        }
        self.with_types(&types)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::btf::BtfBuilder;

    fn every_kind() -> Btf {
        let mut b = BtfBuilder::new();
        let int = b.add_int("int", 4, true);
        let f = b.add_float("double", 8);
        let tag = b.add_ref(BtfKind::TypeTag, "user", int);
        let ptr = b.add_ptr(tag);
        let e = b.add_enum("big", 8, false, &[("A", 1 << 40)]);
        b.add_enum("small", 4, true, &[("M", u64::MAX)]);
        let s = b.add_struct("s", 24, &[("x", f, 0), ("p", ptr, 64), ("e", e, 128)]);
        b.add_decl_tag("tag", s, 0);
        let proto = b.add_func_proto(int, &[("ctx", ptr)]);
        b.add_func("prog", proto, 1);
        let v = b.add_var("counter", int, 1);
        b.add_datasec(".data", 4, &[(v, 0, 4)]);
        b.build().unwrap()
    }

    #[test]
    fn an_empty_datasec_becomes_an_empty_struct_where_only_that_is_refused() {
        let mut b = BtfBuilder::new();
        let int = b.add_int("int", 4, true);
        let v = b.add_var("counter", int, 1);
        let data = b.add_datasec(".data", 4, &[(v, 0, 4)]);
        let rodata = b.add_datasec(".rodata", 12, &[]);
        let btf = b.build().unwrap();
        let features = BtfFeatures {
            empty_datasec: false,
            ..BtfFeatures::ALL
        };
        let s = btf.sanitized(&features).unwrap();
        assert_eq!(s.types()[data as usize], btf.types()[data as usize]);
        let t = &s.types()[rodata as usize];
        assert_eq!(
            (t.kind, &*t.name, t.size_or_type, &t.data),
            (
                BtfKind::Struct,
                "_rodata",
                12,
                &BtfTypeData::Members(Vec::new())
            )
        );
    }

    #[test]
    fn every_kind_round_trips_through_the_writer() {
        let btf = every_kind();
        let again = Btf::parse(&btf.to_bytes()).unwrap();
        assert_eq!(again.types(), btf.types());
        assert_eq!(
            btf.sanitized(&BtfFeatures::ALL).unwrap().types(),
            btf.types()
        );
    }

    #[test]
    fn sanitising_for_an_old_kernel_leaves_only_old_kinds_and_keeps_ids() {
        let btf = every_kind();
        let old = btf.sanitized(&BtfFeatures::NONE).unwrap();
        for t in old.types() {
            assert!(
                !matches!(
                    t.kind,
                    BtfKind::Var
                        | BtfKind::DataSec
                        | BtfKind::Func
                        | BtfKind::FuncProto
                        | BtfKind::Float
                        | BtfKind::DeclTag
                        | BtfKind::TypeTag
                        | BtfKind::Enum64
                ),
                "{t:?}"
            );
            assert!(!(t.kind == BtfKind::Enum && t.kind_flag), "{t:?}");
        }
        // Same ids (plus one placeholder at the end), same struct sizes.
        assert_eq!(old.types().len(), btf.types().len() + 1);
        let s = btf.find(BtfKind::Struct, "s").unwrap();
        assert_eq!(old.size_of(s), Some(24));
        let ds = old
            .find(BtfKind::Struct, "_data")
            .expect("DATASEC became a struct");
        assert_eq!(old.size_of(ds), Some(4));
        // The string section is kept as a prefix: offsets into it (line info) stay valid.
        let orig = btf.string_section().unwrap();
        assert_eq!(&old.string_section().unwrap()[..orig.len()], orig);
    }

    #[test]
    fn only_global_linkage_goes_when_only_it_is_missing() {
        let btf = every_kind();
        let f = BtfFeatures {
            func_global: false,
            ..BtfFeatures::ALL
        };
        let s = btf.sanitized(&f).unwrap();
        let prog = s.find(BtfKind::Func, "prog").unwrap();
        assert_eq!(s.type_by_id(prog).unwrap().vlen, 0);
    }
}
