//! The minimal BTF reader this crate needs: the type table (to read `.maps` definitions and the
//! variables of global data sections) and `.BTF.ext` (func_info, line_info, CO-RE records).
//!
//! The raw bytes are kept for the loader, with the fix-ups the kernel needs already applied:
//! clang leaves `DATASEC` sizes and global variables' offsets at zero, and the linker that would
//! fill them does not run for BPF objects.

mod builder;
mod ext;
mod sanitize;
mod view;
mod write;

pub use builder::BtfBuilder;
pub(crate) use ext::{visit as visit_ext, ExtSink, Record, Records};
pub use ext::{BtfExt, CoreRelocation, FuncInfo, LineInfo};
pub use sanitize::BtfFeatures;
pub(crate) use view::{MemberView, TypeIndex};

use bpf_sys::uapi;

use crate::error::{ElfError, Result};
use crate::insn::Endianness;
use crate::name::Name;
use crate::strtab::{Str, StrTable};

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
    /// Typedefs and modifiers (`const`, `volatile`, `restrict`, type tags): kinds that only name
    /// another type, skipped when resolving one.
    pub(crate) fn is_modifier(self) -> bool {
        matches!(
            self,
            BtfKind::Typedef
                | BtfKind::Volatile
                | BtfKind::Const
                | BtfKind::Restrict
                | BtfKind::TypeTag
        )
    }

    /// Kinds whose size in bytes is their `size` field.
    pub(crate) fn is_sized_by_field(self) -> bool {
        matches!(
            self,
            BtfKind::Int
                | BtfKind::Struct
                | BtfKind::Union
                | BtfKind::Enum
                | BtfKind::Enum64
                | BtfKind::Float
                | BtfKind::DataSec
        )
    }

    const fn from_raw(v: u32) -> Option<Self> {
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
    pub name: Name,
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
    pub name: Name,
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
    Enum(Vec<(Name, u64)>),
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
    pub name: Name,
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
    /// BTF, index = type id - `first_id`. Built from `raw` on first use: parsing only checks
    /// them.
    types: std::sync::OnceLock<Vec<BtfType>>,
    /// The number of own types (`void` included for a base BTF), known without building them.
    count: u32,
    /// Each own `DATASEC` and `VAR`, in id order: the `DATASEC`s are what the loader looks up
    /// and fixes in every object (`.kconfig`, `.ksyms`, data sections), the `VAR`s name their
    /// variables; both served from the raw bytes. One list, so one allocation.
    refs: Vec<RawRef>,
    /// The BTF this one extends (split BTF, such as a kernel module's), if any.
    base: Option<std::sync::Arc<Btf>>,
    /// The id of `types[0]`: 0, or the number of types of `base`.
    first_id: u32,
    /// The length of the string sections before this one's (split BTF), 0 otherwise.
    str_base: u32,
    /// Where the string section is in `raw` (from the header, which fix-ups never change).
    strings: std::ops::Range<usize>,
    /// Type ids by essential name (the name up to `___`), built on first use.
    by_name: std::sync::OnceLock<std::collections::HashMap<String, Vec<u32>>>,
}

fn err(offset: usize, reason: &'static str) -> ElfError {
    ElfError::InvalidBtf { offset, reason }
}

/// The bytes of the NUL-terminated name at `offset` of a string section, NUL excluded.
fn name_bytes_in(strings: &[u8], offset: u32) -> Option<&[u8]> {
    let rest = strings.get(offset as usize..)?;
    rest.get(..crate::strtab::nul(rest)?)
}

/// The name at `offset` of a string section whose UTF-8 is already checked.
fn name_in(strings: &StrTable<'_>, offset: u32) -> Option<Name> {
    Some(match strings.get(offset as usize)? {
        Str::Text(s) => Name::from(s),
        Str::Bytes(b) => Name::from_bytes(b),
    })
}

/// A string of a BTF string section as its bytes: compared with a `str` as [`Name`] would read
/// it, without checking it as UTF-8 first (a short check costs more than the comparison).
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawName<'a>(pub &'a [u8]);

impl<'a> RawName<'a> {
    /// Whether it reads as `s`.
    pub fn is(self, s: &str) -> bool {
        // Only a name that is not UTF-8 reads differently from its bytes (ASCII is).
        self.0 == s.as_bytes()
            || (!self.0.is_ascii()
                && std::str::from_utf8(self.0).is_err()
                && Name::from_bytes(self.0) == s)
    }

    /// [`RawName::is`] as a test to run on many names: an ASCII name (the usual) reads as
    /// another only if their bytes are equal, which is decided once here rather than per name.
    pub fn matcher(self) -> impl Fn(&str) -> bool + 'a {
        let ascii = self.0.is_ascii();
        move |s| {
            if ascii {
                self.0 == s.as_bytes()
            } else {
                self.is(s)
            }
        }
    }

    /// The name, with invalid UTF-8 replaced (as [`Name`] reads it).
    pub fn to_name(self) -> Name {
        Name::from_bytes(self.0)
    }
}

/// A byte order, for [`read_types`].
trait Order {
    fn u32(b: [u8; 4]) -> u32;
}

struct Le;
struct Be;

impl Order for Le {
    #[inline(always)]
    fn u32(b: [u8; 4]) -> u32 {
        u32::from_le_bytes(b)
    }
}

impl Order for Be {
    #[inline(always)]
    fn u32(b: [u8; 4]) -> u32 {
        u32::from_be_bytes(b)
    }
}

/// Reads names for the type walk: own names from `table`, a split BTF's base's below
/// `str_base`.
struct Names<'t> {
    /// Own strings; their UTF-8 is checked only when names are built (`build`).
    table: StrTable<'t>,
    /// Own string offsets below this have a NUL at or after them: a readable name.
    readable: usize,
    base: Option<&'t std::sync::Arc<Btf>>,
    str_base: u32,
}

impl<'t> Names<'t> {
    fn new(
        strings: &'t [u8],
        base: Option<&'t std::sync::Arc<Btf>>,
        str_base: u32,
        build: bool,
    ) -> Self {
        Names {
            // The string section's UTF-8 is checked once, not name by name.
            table: if build {
                StrTable::new(strings)
            } else {
                StrTable::default()
            },
            readable: strings.iter().rposition(|&b| b == 0).map_or(0, |i| i + 1),
            base,
            str_base,
        }
    }

    /// The name at string offset `off`; `at` is the offset of the field, for the error.
    #[inline(always)]
    fn get(&self, off: u32, at: usize) -> Result<Name> {
        // Own names that the UTF-8 check covered: sliced out as they are.
        if let Some(s) = off
            .checked_sub(self.str_base)
            .and_then(|o| self.table.text_at(o as usize))
        {
            return Ok(Name::from(s));
        }
        self.slow(off, at)
    }

    /// Whether the name at `off` is readable: [`Names::check`] as a test, with own names (the
    /// common case) told apart inline.
    #[inline(always)]
    fn readable(&self, off: u32) -> bool {
        match off.checked_sub(self.str_base) {
            Some(o) => (o as usize) < self.readable,
            None => self.readable_in_base(off),
        }
    }

    #[inline(never)]
    fn readable_in_base(&self, off: u32) -> bool {
        self.check(off, 0).is_ok()
    }

    /// [`Names::get`] when the walk only checks: the same checks, no name built for the common
    /// case.
    #[inline(always)]
    fn check(&self, off: u32, at: usize) -> Result<()> {
        match off.checked_sub(self.str_base) {
            // An own name is readable when a NUL follows it in the section.
            Some(o) if (o as usize) < self.readable => Ok(()),
            Some(_) => Err(err(at, "bad string offset")),
            None => self.slow(off, at).map(drop),
        }
    }

    #[inline(never)]
    fn slow(&self, off: u32, at: usize) -> Result<Name> {
        match self.base {
            Some(b) if off < self.str_base => b.name_at(off),
            _ => name_in(&self.table, off - self.str_base),
        }
        .ok_or_else(|| err(at, "bad string offset"))
    }
}

/// Up to three consecutive words of the type section at `at`.
struct Words<'a, E> {
    raw: &'a [u8],
    /// The end of the type section.
    end: usize,
    at: usize,
    order: std::marker::PhantomData<E>,
}

impl<E: Order> Words<'_, E> {
    /// Reads `N` words, or fails at the first that does not fit in the type section.
    #[inline(always)]
    fn read<const N: usize>(&self) -> Result<[u32; N]> {
        let bytes = self
            .at
            .checked_add(4 * N)
            .filter(|e| *e <= self.end)
            .and_then(|e| self.raw.get(self.at..e));
        let Some(bytes) = bytes else {
            return Err(self.truncated(self.at));
        };
        let mut out = [0; N];
        for (w, b) in out.iter_mut().zip(bytes.chunks_exact(4)) {
            *w = E::u32([b[0], b[1], b[2], b[3]]);
        }
        Ok(out)
    }

    /// [`Words::read`] for a record whose first word is a name offset: when the record does
    /// not fit, a bad name is reported before the missing words, as reading field by field
    /// does.
    #[inline(always)]
    fn read_named<const N: usize>(&self, names: &Names<'_>) -> Result<[u32; N]> {
        self.read().or_else(|_| {
            let [off] = self.read()?;
            names.check(off, self.at)?;
            Err(self.truncated(self.at + 4))
        })
    }

    /// The error for the first word at or after `from` that ends past the type section.
    #[cold]
    fn truncated(&self, from: usize) -> ElfError {
        truncated_at(from, self.end)
    }
}

/// Reads the `n` members of a struct or union at `*pos`, and moves `*pos` past them.
#[inline(never)]
fn read_members<E: Order>(
    raw: &[u8],
    end: usize,
    pos: &mut usize,
    n: usize,
    kind_flag: bool,
    names: &Names<'_>,
) -> Result<Vec<BtfMember>> {
    let at = *pos;
    let member = |name, type_id, raw_off: u32| {
        // With kind_flag, the offset's top 8 bits are a bitfield size.
        let (bit_offset, bitfield_size) = if kind_flag {
            (raw_off & 0xff_ffff, raw_off >> 24)
        } else {
            (raw_off, 0)
        };
        BtfMember {
            name,
            type_id,
            bit_offset,
            bitfield_size,
        }
    };
    let block = at
        .checked_add(n * 12)
        .filter(|e| *e <= end)
        .and_then(|e| raw.get(at..e));
    let Some(block) = block else {
        // Cut short: fail where the check does.
        return Err(records_error::<E>(raw, end, at, n, 12, true, names));
    };
    // All there (so `n` is bounded by the section's size).
    let mut members = Vec::with_capacity(n);
    for (i, r) in block.chunks_exact(12).enumerate() {
        let name = names.get(E::u32([r[0], r[1], r[2], r[3]]), at + 12 * i)?;
        let type_id = E::u32([r[4], r[5], r[6], r[7]]);
        let raw_off = E::u32([r[8], r[9], r[10], r[11]]);
        members.push(member(name, type_id, raw_off));
    }
    *pos = at + block.len();
    Ok(members)
}

/// What the checking walk ([`check_types`]) finds without building the types.
#[derive(Debug, Clone, Default)]
struct Census {
    /// The number of types read.
    count: u32,
    /// Each `DATASEC` and `VAR`, in id order.
    refs: Vec<RawRef>,
}

/// Where a type is in the raw bytes, for the few kinds the parse records without building.
#[derive(Debug, Clone, Copy)]
struct RawRef {
    /// Its type id.
    id: u32,
    name_off: u32,
    /// The offset of its header.
    pos: usize,
    /// A `DATASEC` (else a `VAR`).
    datasec: bool,
}

/// A kind and what follows a type's 12-byte header for it (as [`read_types`] reads it).
#[derive(Debug, Clone, Copy)]
struct Shape {
    kind: BtfKind,
    /// Words right after the header.
    words: u8,
    /// The size of each of the `vlen` records after them (0: `vlen` counts none).
    record: u8,
    /// Whether each record starts with a name offset.
    named: bool,
}

/// Each kind's shape by its raw value (`None`: an unknown kind), so that the checking walk
/// makes one lookup per type (a `static`: a `const` table is rebuilt on the stack where used).
static SHAPES: [Option<Shape>; 32] = {
    let mut table = [None; 32];
    let mut v = 0;
    while v < table.len() {
        if let Some(kind) = BtfKind::from_raw(v as u32) {
            table[v] = Some(Shape::of(kind));
        }
        v += 1;
    }
    table
};

impl Shape {
    const fn of(kind: BtfKind) -> Shape {
        let (words, record, named) = match kind {
            BtfKind::Int | BtfKind::Var | BtfKind::DeclTag => (1, 0, false),
            BtfKind::Array => (3, 0, false),
            BtfKind::Struct | BtfKind::Union | BtfKind::Enum64 => (0, 12, true),
            BtfKind::Enum | BtfKind::FuncProto => (0, 8, true),
            BtfKind::DataSec => (0, 12, false),
            _ => (0, 0, false),
        };
        Shape {
            kind,
            words,
            record,
            named,
        }
    }
}

/// The error for the first word at or after `from` that ends past `end` (the end of the type
/// section).
#[cold]
fn truncated_at(from: usize, end: usize) -> ElfError {
    let mut o = from;
    while o.checked_add(4).is_some_and(|e| e <= end) {
        o += 4;
    }
    err(o, "truncated type")
}

/// The error for `n` records of `size` bytes at `at` that are bad (run past `end`, or have a
/// bad name): the first bad name among the records that fit, or the first word that does not
/// (a named record's name is checked when its first word fits), as reading them record by
/// record does.
#[cold]
#[inline(never)]
fn records_error<E: Order>(
    raw: &[u8],
    end: usize,
    mut at: usize,
    n: usize,
    size: usize,
    named: bool,
    names: &Names<'_>,
) -> ElfError {
    for _ in 0..n {
        let fits = |len: usize| at.checked_add(len).is_some_and(|e| e <= end);
        if named && fits(4) {
            let off = raw
                .get(at..at + 4)
                .map_or(0, |b| E::u32([b[0], b[1], b[2], b[3]]));
            if let Err(e) = names.check(off, at) {
                return e;
            }
        }
        if !fits(size) {
            return truncated_at(if named && fits(4) { at + 4 } else { at }, end);
        }
        at += size;
    }
    // Not reached: the caller found them bad.
    truncated_at(at, end)
}

/// Whether the name offset at the start of each `R`-byte record of `block` is readable.
#[inline(always)]
fn names_ok<E: Order, const R: usize>(block: &[u8], names: &Names<'_>) -> bool {
    block
        .chunks_exact(R)
        .all(|r| names.readable(E::u32([r[0], r[1], r[2], r[3]])))
}

/// Checks the type section (`range` of `raw`) as [`read_types`] reads it, building nothing:
/// the same errors for the same bytes (the walk that builds runs on checked bytes only).
/// Counts the types and records the `DATASEC`s and `VAR`s into `census`, with ids from
/// `first_id`.
#[inline(never)]
fn check_types<E: Order>(
    raw: &[u8],
    range: std::ops::Range<usize>,
    names: &Names<'_>,
    first_id: u32,
    census: &mut Census,
) -> Result<()> {
    let end = range.end;
    // The loop only tells good types from bad, walking the rest of the section: it stops at
    // the first bad type, whose error `type_error` works out (with the error paths out of the
    // loop, its state stays in registers).
    let mut rest = raw.get(range).unwrap_or_default();
    while let Some((&[n0, n1, n2, n3, i0, i1, i2, i3, ..], body)) = rest.split_first_chunk::<12>() {
        let (name_off, info) = (E::u32([n0, n1, n2, n3]), E::u32([i0, i1, i2, i3]));
        let Some(shape) = SHAPES[(info >> 24) as usize & 0x1f] else {
            break;
        };
        if !names.readable(name_off) {
            break;
        }
        // The words, then `vlen` records (none for kinds without: their size is 0). No
        // overflow: a vlen is at most 65535 records of 12 bytes.
        let words = 4 * usize::from(shape.words);
        let record = usize::from(shape.record);
        let Some((data, next)) = body.split_at_checked(words + (info & 0xffff) as usize * record)
        else {
            break;
        };
        let named_ok = match (shape.named, record) {
            (false, _) => true,
            // Named records come right after the header (`words` is 0).
            (true, 12) => names_ok::<E, 12>(data, names),
            (true, _) => names_ok::<E, 8>(data, names),
        };
        if !named_ok {
            break;
        }
        if matches!(shape.kind, BtfKind::DataSec | BtfKind::Var) {
            if census.refs.is_empty() {
                // Objects have a few: room for some at once, rather than for 4, then 8.
                census.refs.reserve(8);
            }
            census.refs.push(RawRef {
                id: first_id + census.count,
                name_off,
                pos: end - rest.len(),
                datasec: shape.kind == BtfKind::DataSec,
            });
        }
        census.count += 1;
        rest = next;
    }
    if !rest.is_empty() {
        return Err(type_error::<E>(raw, end, end - rest.len(), names));
    }
    Ok(())
}

/// The error of the type at `pos`, which [`check_types`] found bad: the first of its checks
/// that fails, in the order [`read_types`] makes them.
#[cold]
#[inline(never)]
fn type_error<E: Order>(raw: &[u8], end: usize, pos: usize, names: &Names<'_>) -> ElfError {
    let header = Words::<E> {
        raw,
        end,
        at: pos,
        order: std::marker::PhantomData,
    };
    let [name_off, info, _] = match header.read() {
        Ok(words) => words,
        Err(e) => return e,
    };
    let Some(shape) = SHAPES[(info >> 24) as usize & 0x1f] else {
        return err(pos + 4, "unknown kind");
    };
    if let Err(e) = names.check(name_off, pos) {
        return e;
    }
    let words_end = pos + 12 + 4 * usize::from(shape.words);
    if words_end > end {
        return truncated_at(pos + 12, end);
    }
    let n = (info & 0xffff) as usize;
    let record = usize::from(shape.record);
    records_error::<E>(raw, end, words_end, n, record, shape.named, names)
}

/// Builds the types of the type section (`range` of `raw`) into `types`. Records are read
/// whole; a record cut short by the end of the type section reports the first of its words
/// that does not fit, as reading them one by one would.
fn read_types<E: Order>(
    raw: &[u8],
    range: std::ops::Range<usize>,
    names: &Names<'_>,
    types: &mut Vec<BtfType>,
) -> Result<()> {
    let mut pos = range.start;
    let end = range.end;
    let words = |at: usize| Words::<E> {
        raw,
        end,
        at,
        order: std::marker::PhantomData,
    };
    let name = |off: u32, at: usize| names.get(off, at);
    while pos < end {
        let [name_off, info, size_or_type] = words(pos).read()?;
        let kind_raw = (info >> 24) & 0x1f;
        let kind = BtfKind::from_raw(kind_raw).ok_or_else(|| err(pos + 4, "unknown kind"))?;
        let vlen = (info & 0xffff) as u16;
        let kind_flag = info >> 31 == 1;
        let type_name = name(name_off, pos)?;
        let size_pos = pos + 8;
        pos += 12;
        let n = usize::from(vlen);
        // Each kind pushes its own type: with the variant known where the type is pushed, its
        // data is not first built as a generic enum on the stack and copied out (a copy that
        // stalls on the stores just made; it cost about a tenth of the parse).
        macro_rules! push {
            ($data:expr) => {{
                if pos > end {
                    return Err(err(pos, "truncated type"));
                }
                let data = $data;
                types.push(BtfType {
                    kind,
                    name: type_name,
                    size_or_type,
                    vlen,
                    kind_flag,
                    data,
                    size_pos,
                });
            }};
        }
        match kind {
            BtfKind::Int => {
                let [v] = words(pos).read()?;
                pos += 4;
                push!(BtfTypeData::Int(v))
            }
            BtfKind::Array => {
                let [elem, index, nelems] = words(pos).read()?;
                pos += 12;
                push!(BtfTypeData::Array {
                    elem,
                    index,
                    nelems,
                })
            }
            BtfKind::Struct | BtfKind::Union => {
                let members = read_members::<E>(raw, end, &mut pos, n, kind_flag, names)?;
                push!(BtfTypeData::Members(members))
            }
            BtfKind::Var => {
                let [linkage] = words(pos).read()?;
                pos += 4;
                push!(BtfTypeData::Var { linkage })
            }
            BtfKind::DataSec => {
                let mut vars = Vec::with_capacity(n.min(1024));
                for _ in 0..n {
                    let [type_id, offset, size] = words(pos).read()?;
                    vars.push(BtfSecInfo {
                        type_id,
                        offset,
                        size,
                        offset_pos: pos + 4,
                    });
                    pos += 12;
                }
                push!(BtfTypeData::DataSec(vars))
            }
            BtfKind::Enum => {
                let mut values = Vec::with_capacity(n.min(1024));
                for _ in 0..n {
                    let [name_off, lo] = words(pos).read_named(names)?;
                    let value = if kind_flag {
                        lo as i32 as i64 as u64
                    } else {
                        u64::from(lo)
                    };
                    values.push((name(name_off, pos)?, value));
                    pos += 8;
                }
                push!(BtfTypeData::Enum(values))
            }
            BtfKind::Enum64 => {
                let mut values = Vec::with_capacity(n.min(1024));
                for _ in 0..n {
                    let [name_off, lo, hi] = words(pos).read_named(names)?;
                    let value = u64::from(lo) | (u64::from(hi) << 32);
                    values.push((name(name_off, pos)?, value));
                    pos += 12;
                }
                push!(BtfTypeData::Enum(values))
            }
            BtfKind::FuncProto => {
                let mut params = Vec::with_capacity(n.min(1024));
                for _ in 0..n {
                    let [name_off, type_id] = words(pos).read_named(names)?;
                    params.push(BtfParam {
                        name: name(name_off, pos)?,
                        type_id,
                    });
                    pos += 8;
                }
                push!(BtfTypeData::Params(params))
            }
            BtfKind::DeclTag => {
                let [component_idx] = words(pos).read()?;
                pos += 4;
                push!(BtfTypeData::DeclTag {
                    component_idx: component_idx as i32,
                })
            }
            _ => push!(BtfTypeData::None),
        }
    }
    Ok(())
}

/// The byte order and the type and string sections' ranges of raw BTF, from its header.
fn layout(raw: &[u8]) -> Result<(Endianness, std::ops::Range<usize>, std::ops::Range<usize>)> {
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
    Ok((endian, type_range, str_range))
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
        let (endian, type_range, str_range) = layout(raw)?;
        if let Some(b) = base {
            if b.endian != endian {
                return Err(err(0, "split btf and its base differ in byte order"));
            }
        }
        let str_base = base.map_or(0, |b| b.strings_end());
        let names = Names::new(
            raw.get(str_range.clone()).unwrap_or_default(),
            base,
            str_base,
            false,
        );
        let first_id = base.map_or(0, |b| b.type_count());
        // Only checked here: the types are built on first use (a loader that needs no type,
        // the common case for objects without globals or CO-RE, never pays for them).
        let mut census = Census {
            count: u32::from(base.is_none()),
            refs: Vec::new(),
        };
        // One copy of the walk per byte order, so reading a word is a load.
        match endian {
            Endianness::Little => {
                check_types::<Le>(raw, type_range, &names, first_id, &mut census)?
            }
            Endianness::Big => check_types::<Be>(raw, type_range, &names, first_id, &mut census)?,
        }
        Ok(Btf {
            raw: raw.to_vec(),
            endian,
            types: std::sync::OnceLock::new(),
            count: census.count,
            refs: census.refs,
            base: base.cloned(),
            first_id,
            str_base,
            strings: str_range,
            by_name: std::sync::OnceLock::new(),
        })
    }

    /// The types, built from the raw bytes on first use.
    fn built(&self) -> &[BtfType] {
        self.types.get_or_init(|| self.build_types())
    }

    /// Builds the types from `raw`, which [`Btf::parse`] checked: the build cannot fail (the
    /// property tests check it on mutated objects). If it ever did, only `void` is kept, no
    /// panic.
    fn build_types(&self) -> Vec<BtfType> {
        let built = self.try_build_types();
        debug_assert!(built.is_ok(), "checked BTF failed to build: {built:?}");
        built.unwrap_or_else(|_| self.void())
    }

    /// `void` alone (for a base BTF; nothing for split BTF), with room for every type.
    fn void(&self) -> Vec<BtfType> {
        let mut types = Vec::with_capacity(self.count as usize);
        if self.base.is_none() {
            types.push(BtfType {
                kind: BtfKind::Void,
                name: Name::empty(),
                size_or_type: 0,
                vlen: 0,
                kind_flag: false,
                data: BtfTypeData::None,
                size_pos: 0,
            });
        }
        types
    }

    /// [`Btf::types`] built again from the raw bytes.
    pub(crate) fn try_build_types(&self) -> Result<Vec<BtfType>> {
        let mut types = self.void();
        let (endian, type_range, str_range) = layout(&self.raw)?;
        let strings = self.raw.get(str_range).unwrap_or_default();
        let names = Names::new(strings, self.base.as_ref(), self.str_base, true);
        let raw = &self.raw;
        match endian {
            Endianness::Little => read_types::<Le>(raw, type_range, &names, &mut types)?,
            Endianness::Big => read_types::<Be>(raw, type_range, &names, &mut types)?,
        }
        Ok(types)
    }

    /// The number of types, `void` included: one more than the largest id (for split BTF,
    /// base types included).
    pub fn type_count(&self) -> u32 {
        self.first_id + self.count
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

    /// The string at `off` as a [`Name`], looking in the base for offsets below its end.
    fn name_at(&self, off: u32) -> Option<Name> {
        self.name_bytes(off).map(Name::from_bytes)
    }

    /// The bytes of the string at `off` (see [`Btf::name_at`]).
    fn name_bytes(&self, off: u32) -> Option<&[u8]> {
        match &self.base {
            Some(b) if off < self.str_base => b.name_bytes(off),
            _ => name_bytes_in(self.string_section()?, off.checked_sub(self.str_base)?),
        }
    }

    /// A test of whether the string at an offset reads as `name` (as [`Btf::name_at`] would
    /// give it), without building it, for testing many strings.
    fn reads_as<'s>(&'s self, name: &'s str) -> impl Fn(u32) -> bool + 's {
        // Only the same bytes read as a name that is ASCII without a NUL (see `RawName::is`):
        // own strings are then compared where they lie, without first looking for their end
        // (most differ at the first byte).
        let plain = name.bytes().all(|b| (1..0x80).contains(&b));
        let own = self.string_section().unwrap_or_default();
        move |off| match off.checked_sub(self.str_base) {
            Some(o) if plain => {
                let rest = own.get(o as usize..).unwrap_or_default();
                rest.get(..name.len())
                    .is_some_and(|r| r.iter().zip(name.bytes()).all(|(a, b)| *a == b))
                    && rest.get(name.len()) == Some(&0)
            }
            _ => self.name_bytes(off).is_some_and(|b| RawName(b).is(name)),
        }
    }

    /// The string at `off` as bytes, to compare without building a `str` (see [`RawName`]).
    pub(crate) fn raw_name(&self, off: u32) -> Option<RawName<'_>> {
        self.name_bytes(off).map(RawName)
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
        self.built()
    }

    /// The type with this id (split BTF: in the base or the split part).
    pub fn type_by_id(&self, id: u32) -> Option<&BtfType> {
        if id < self.first_id {
            return self.base.as_ref()?.type_by_id(id);
        }
        self.built().get((id - self.first_id) as usize)
    }

    /// The id of the first type of this kind and name (split BTF: the base first).
    pub fn find(&self, kind: BtfKind, name: &str) -> Option<u32> {
        if let Some(id) = self.base.as_ref().and_then(|b| b.find(kind, name)) {
            return Some(id);
        }
        if kind == BtfKind::DataSec {
            let is_name = self.reads_as(name);
            let named = |d: &&RawRef| d.datasec && is_name(d.name_off);
            return self.refs.iter().find(named).map(|d| d.id);
        }
        self.built()
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
            for (i, t) in self.built().iter().enumerate() {
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
            if !t.kind.is_modifier() {
                return Some(id);
            }
            id = t.size_or_type;
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
            (k, _) if k.is_sized_by_field() => Some(t.size_or_type),
            (BtfKind::Ptr, _) => Some(8),
            (BtfKind::Var, _) => self.size_of_depth(t.size_or_type, depth + 1),
            (BtfKind::Array, BtfTypeData::Array { elem, nelems, .. }) => {
                self.size_of_depth(*elem, depth + 1)?.checked_mul(*nelems)
            }
            _ => None,
        }
    }

    /// Sets the own `DATASEC`s' sizes and their variables' offsets, which clang leaves at 0,
    /// in the raw bytes (and in the types, if built), reading names from the raw bytes:
    /// `section(id, name)` gives a `DATASEC`'s size and what `offset` needs to find its
    /// variables (`None` leaves it as it is); `offset(context, name)` gives a variable's offset
    /// (`None` leaves it).
    pub(crate) fn fix_datasecs<C>(
        &mut self,
        mut section: impl FnMut(u32, RawName<'_>) -> Option<(u32, C)>,
        mut offset: impl FnMut(&C, RawName<'_>) -> Option<u32>,
    ) {
        for k in 0..self.refs.len() {
            let Some(d) = self.refs.get(k).copied().filter(|d| d.datasec) else {
                continue;
            };
            let name = self.raw_name(d.name_off).unwrap_or(RawName(b""));
            let Some((size, context)) = section(d.id, name) else {
                continue;
            };
            self.set_datasec(&d, None, size);
            let vlen = self.word(d.pos + 4).map_or(0, |info| info & 0xffff) as usize;
            for i in 0..vlen {
                let Some(var) = self
                    .word(d.pos + 12 + 12 * i)
                    .and_then(|id| self.var_name(id))
                else {
                    continue;
                };
                if let Some(off) = offset(&context, var) {
                    self.set_datasec(&d, Some(i), off);
                }
            }
        }
    }

    /// The word at `at` of the raw bytes.
    fn word(&self, at: usize) -> Option<u32> {
        self.endian.read_u32(&self.raw, at)
    }

    /// The name of the type a `DATASEC` entry points at.
    fn var_name(&self, id: u32) -> Option<RawName<'_>> {
        let found = self.refs.binary_search_by_key(&id, |v| v.id).ok();
        match found.and_then(|i| self.refs.get(i)).filter(|v| !v.datasec) {
            Some(v) => self.raw_name(v.name_off),
            // Not a VAR (only malformed objects): the type's name, as the types have it.
            None => self.type_by_id(id).map(|t| RawName(t.name.as_bytes())),
        }
    }

    /// Sets a `DATASEC`'s size (`var` `None`) or the offset of its variable `var`, in the raw
    /// bytes and in the types if they are built.
    fn set_datasec(&mut self, d: &RawRef, var: Option<usize>, value: u32) {
        let at = match var {
            None => d.pos + 8,
            Some(i) => d.pos + 12 + 12 * i + 4,
        };
        let endian = self.endian;
        if let Some(b) = self.raw.get_mut(at..at + 4) {
            b.copy_from_slice(&endian.u32_bytes(value));
        }
        let first_id = self.first_id;
        let Some(t) = self
            .types
            .get_mut()
            .and_then(|t| t.get_mut(d.id.checked_sub(first_id)? as usize))
        else {
            return;
        };
        match (var, &mut t.data) {
            (None, _) => t.size_or_type = value,
            (Some(i), BtfTypeData::DataSec(vars)) => {
                if let Some(v) = vars.get_mut(i) {
                    v.offset = value;
                }
            }
            _ => {}
        }
    }

    /// The string section's bytes.
    pub(crate) fn string_section(&self) -> Option<&[u8]> {
        self.raw.get(self.strings.clone())
    }

    /// The strings section, for `.BTF.ext` names.
    pub(crate) fn string_at(&self, offset: u32) -> Option<String> {
        self.name_at(offset).map(String::from)
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
