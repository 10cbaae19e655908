//! Types read straight from the raw bytes that [`Btf::parse`] checked, for the parser's own
//! lookups (`.maps` definitions): they read a handful of types, and building all of them (names,
//! member lists) would cost several times the rest of reading those definitions.
//!
//! Each view gives what the built [`super::BtfType`] of the same id would: the same kind, size or
//! type, members, array and enum values, so callers get the same results and errors either way.

use super::{Btf, BtfKind, RawName, MAX_RESOLVE_DEPTH, SHAPES};

/// Marks `void` (type 0 of a base BTF) in [`TypeIndex::pos`]: it has no bytes.
const VOID: usize = usize::MAX;

/// Where each type of a [`Btf`] starts in its raw bytes, by id.
pub(crate) struct TypeIndex<'a> {
    btf: &'a Btf,
    /// The header offset of type `first_id + i` (`VOID` for `void`).
    pos: Vec<usize>,
    /// The index of the base of split BTF.
    base: Option<Box<TypeIndex<'a>>>,
}

/// One type, read from the raw bytes on demand.
#[derive(Clone, Copy)]
pub(crate) struct TypeView<'a> {
    btf: &'a Btf,
    pub kind: BtfKind,
    /// `size` for sized kinds, `type` for referring kinds.
    pub size_or_type: u32,
    name_off: u32,
    info: u32,
    /// The offset of the first byte after the 12-byte header.
    body: usize,
}

/// A struct or union member, as [`super::BtfMember`] has it.
#[derive(Clone, Copy)]
pub(crate) struct MemberView<'a> {
    pub name: RawName<'a>,
    pub type_id: u32,
    pub bit_offset: u32,
}

impl<'a> TypeIndex<'a> {
    /// Walks the type section once (its records are checked: only their lengths are read).
    pub fn new(btf: &'a Btf) -> TypeIndex<'a> {
        let mut pos = Vec::with_capacity(btf.count as usize);
        if btf.base.is_none() {
            pos.push(VOID);
        }
        // The header was checked by the parse (and fix-ups never change it).
        let header = |at: usize| btf.word(at).unwrap_or(0) as usize;
        let start = header(4) + header(8);
        let end = start + header(12);
        let endian = btf.endian;
        let mut rest = btf.raw.get(start..end).unwrap_or_default();
        while let Some((&[_, _, _, _, i0, i1, i2, i3, ..], _)) = rest.split_first_chunk::<12>() {
            let info = endian.u32([i0, i1, i2, i3]);
            let Some(shape) = SHAPES[(info >> 24) as usize & 0x1f] else {
                break;
            };
            pos.push(end - rest.len());
            let len = 12
                + 4 * usize::from(shape.words)
                + (info & 0xffff) as usize * usize::from(shape.record);
            rest = rest.get(len..).unwrap_or_default();
        }
        TypeIndex {
            btf,
            pos,
            base: btf.base.as_deref().map(|b| Box::new(TypeIndex::new(b))),
        }
    }

    /// The type with this id (see [`Btf::type_by_id`]). Not inlined: one copy serves the many
    /// callers.
    #[inline(never)]
    pub fn get(&self, id: u32) -> Option<TypeView<'a>> {
        if id < self.btf.first_id {
            return self.base.as_ref()?.get(id);
        }
        let at = *self.pos.get((id - self.btf.first_id) as usize)?;
        if at == VOID {
            return Some(TypeView {
                btf: self.btf,
                kind: BtfKind::Void,
                size_or_type: 0,
                name_off: 0,
                info: 0,
                body: 0,
            });
        }
        let (h, _) = self.btf.raw.get(at..)?.split_first_chunk::<12>()?;
        let word = |o: usize| self.btf.endian.u32([h[o], h[o + 1], h[o + 2], h[o + 3]]);
        let info = word(4);
        Some(TypeView {
            btf: self.btf,
            kind: SHAPES[(info >> 24) as usize & 0x1f]?.kind,
            size_or_type: word(8),
            name_off: word(0),
            info,
            body: at + 12,
        })
    }

    /// [`Btf::skip_modifiers`], and the type it leads to (what [`TypeIndex::get`] gives for
    /// that id).
    #[inline(never)]
    pub fn resolve(&self, mut id: u32) -> Option<(u32, TypeView<'a>)> {
        for _ in 0..MAX_RESOLVE_DEPTH {
            let t = self.get(id)?;
            if !t.kind.is_modifier() {
                return Some((id, t));
            }
            id = t.size_or_type;
        }
        None
    }

    /// [`Btf::size_of`].
    pub fn size_of(&self, id: u32) -> Option<u32> {
        self.size_of_depth(id, 0)
    }

    fn size_of_depth(&self, id: u32, depth: usize) -> Option<u32> {
        if depth > MAX_RESOLVE_DEPTH {
            return None;
        }
        let (_, t) = self.resolve(id)?;
        match t.kind {
            k if k.is_sized_by_field() => Some(t.size_or_type),
            BtfKind::Ptr => Some(8),
            BtfKind::Var => self.size_of_depth(t.size_or_type, depth + 1),
            BtfKind::Array => {
                let (elem, nelems) = t.array()?;
                self.size_of_depth(elem, depth + 1)?.checked_mul(nelems)
            }
            _ => None,
        }
    }
}

impl<'a> TypeView<'a> {
    /// Its name (empty when anonymous).
    pub fn name(&self) -> RawName<'a> {
        self.btf.raw_name(self.name_off).unwrap_or(RawName(b""))
    }

    /// `vlen` from the info word.
    fn vlen(&self) -> usize {
        (self.info & 0xffff) as usize
    }

    /// `kind_flag` from the info word.
    fn kind_flag(&self) -> bool {
        self.info >> 31 == 1
    }

    /// The `n`-th word after the header.
    fn word(&self, n: usize) -> u32 {
        self.btf.word(self.body + 4 * n).unwrap_or(0)
    }

    /// An `ARRAY`'s element type and number of elements.
    pub fn array(&self) -> Option<(u32, u32)> {
        (self.kind == BtfKind::Array).then(|| (self.word(0), self.word(2)))
    }

    /// A `STRUCT` or `UNION`'s members (none for other kinds).
    pub fn members(&self) -> impl Iterator<Item = MemberView<'a>> + 'a {
        let n = match self.kind {
            BtfKind::Struct | BtfKind::Union => self.vlen(),
            _ => 0,
        };
        let (btf, kind_flag) = (self.btf, self.kind_flag());
        // The records were checked: all there.
        let block = btf
            .raw
            .get(self.body..self.body + 12 * n)
            .unwrap_or_default();
        block.chunks_exact(12).map(move |r| {
            let word = |o: usize| btf.endian.u32([r[o], r[o + 1], r[o + 2], r[o + 3]]);
            let raw_off = word(8);
            MemberView {
                name: btf.raw_name(word(0)).unwrap_or(RawName(b"")),
                type_id: word(4),
                // With kind_flag, the offset's top 8 bits are a bitfield size.
                bit_offset: if kind_flag {
                    raw_off & 0xff_ffff
                } else {
                    raw_off
                },
            }
        })
    }

    /// The value of an `ENUM` or `ENUM64`'s first enumerator (`ENUM` values sign-extended when
    /// the type is signed); `None` for other kinds or no enumerators.
    pub fn first_enum_value(&self) -> Option<u64> {
        if self.vlen() == 0 {
            return None;
        }
        match self.kind {
            BtfKind::Enum if self.kind_flag() => Some(self.word(1) as i32 as i64 as u64),
            BtfKind::Enum => Some(u64::from(self.word(1))),
            BtfKind::Enum64 => Some(u64::from(self.word(1)) | (u64::from(self.word(2)) << 32)),
            _ => None,
        }
    }

    /// A `DATASEC`'s variables: type id, offset and size of each (none for other kinds).
    pub fn datasec(&self) -> impl ExactSizeIterator<Item = (u32, u32, u32)> + 'a {
        let n = if self.kind == BtfKind::DataSec {
            self.vlen()
        } else {
            0
        };
        let t = *self;
        (0..n).map(move |i| (t.word(3 * i), t.word(3 * i + 1), t.word(3 * i + 2)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::btf::BtfTypeData;
    use crate::tests::{all_stems, object, object_eb};

    /// The views of every type of every built object, in both byte orders, read what the built
    /// types hold, and `resolve`/`size_of` agree with `Btf::skip_modifiers`/`Btf::size_of`.
    #[test]
    fn views_agree_with_the_built_types() {
        let mut checked = 0;
        for stem in all_stems() {
            for spec in [object(&stem), object_eb(&stem)] {
                let Some(btf) = spec.btf.as_ref() else {
                    continue;
                };
                let index = TypeIndex::new(btf);
                for (id, t) in btf.types().iter().enumerate() {
                    let id = id as u32;
                    let v = index.get(id).expect("a view of every type");
                    assert_eq!(v.kind, t.kind, "{stem} type {id}");
                    assert_eq!(v.size_or_type, t.size_or_type, "{stem} type {id}");
                    assert_eq!(v.name().to_name(), t.name, "{stem} type {id}");
                    let members: Vec<_> = v
                        .members()
                        .map(|m| (m.name.to_name(), m.type_id, m.bit_offset))
                        .collect();
                    let (want_members, want_array, want_enum, want_datasec) = match &t.data {
                        BtfTypeData::Members(ms) => (
                            ms.iter()
                                .map(|m| (m.name.clone(), m.type_id, m.bit_offset))
                                .collect(),
                            None,
                            None,
                            vec![],
                        ),
                        BtfTypeData::Array { elem, nelems, .. } => {
                            (vec![], Some((*elem, *nelems)), None, vec![])
                        }
                        BtfTypeData::Enum(values) => {
                            (vec![], None, values.first().map(|v| v.1), vec![])
                        }
                        BtfTypeData::DataSec(vars) => (
                            vec![],
                            None,
                            None,
                            vars.iter().map(|s| (s.type_id, s.offset, s.size)).collect(),
                        ),
                        _ => (vec![], None, None, vec![]),
                    };
                    assert_eq!(members, want_members, "{stem} type {id}");
                    assert_eq!(v.array(), want_array, "{stem} type {id}");
                    assert_eq!(v.first_enum_value(), want_enum, "{stem} type {id}");
                    assert_eq!(
                        v.datasec().collect::<Vec<_>>(),
                        want_datasec,
                        "{stem} type {id}"
                    );
                    assert_eq!(
                        index.resolve(id).map(|(r, _)| r),
                        btf.skip_modifiers(id),
                        "{stem} type {id}"
                    );
                    assert_eq!(index.size_of(id), btf.size_of(id), "{stem} type {id}");
                    checked += 1;
                }
                assert!(index.get(btf.types().len() as u32).is_none(), "{stem}");
            }
        }
        assert!(checked > 1000, "only {checked} types checked");
    }
}
