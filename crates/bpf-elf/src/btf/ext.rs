//! `.BTF.ext`: per-instruction records (func_info, line_info, CO-RE relocations), grouped by the
//! ELF section they describe.

use super::{Btf, RawName};
use crate::error::{ElfError, Result};

const BTF_MAGIC: u16 = 0xeb9f;

/// A function's BTF type (`struct bpf_func_info`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[doc(alias = "bpf_func_info")]
pub struct FuncInfo {
    /// The instruction it describes: an index in the section while parsing, relative to the
    /// function in a [`FunctionSpec`](crate::FunctionSpec), relative to the program in a
    /// [`LinkedProgram`](crate::LinkedProgram).
    pub insn: usize,
    /// The `FUNC` type id.
    pub type_id: u32,
}

/// The source line of an instruction (`struct bpf_line_info`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[doc(alias = "bpf_line_info")]
pub struct LineInfo {
    /// The instruction it describes (indexed like [`FuncInfo::insn`]).
    pub insn: usize,
    /// Offset of the file name in the BTF strings.
    pub file_name_off: u32,
    /// Offset of the source line's text in the BTF strings.
    pub line_off: u32,
    /// Line number in the top 22 bits, column in the low 10.
    pub line_col: u32,
}

impl LineInfo {
    /// The line number.
    pub fn line(&self) -> u32 {
        self.line_col >> 10
    }

    /// The column.
    pub fn column(&self) -> u32 {
        self.line_col & 0x3ff
    }
}

/// A CO-RE relocation record (`struct bpf_core_relo`), kept for the loader.
#[derive(Debug, Clone, PartialEq, Eq)]
#[doc(alias = "bpf_core_relo")]
pub struct CoreRelocation {
    /// The instruction it patches (indexed like [`FuncInfo::insn`]).
    pub insn: usize,
    /// The local BTF type the access starts from.
    pub type_id: u32,
    /// Offset of the access string in the BTF strings.
    pub access_str_off: u32,
    /// The access string (`"0:1:2"`).
    pub access: String,
    /// `enum bpf_core_relo_kind`.
    pub kind: u32,
}

/// `.BTF.ext`, parsed; records are grouped by section name.
#[derive(Debug, Clone, Default)]
pub struct BtfExt {
    /// func_info records per section.
    pub func_info: Vec<(String, Vec<FuncInfo>)>,
    /// line_info records per section.
    pub line_info: Vec<(String, Vec<LineInfo>)>,
    /// CO-RE relocation records per section.
    pub core_relocations: Vec<(String, Vec<CoreRelocation>)>,
}

/// Out of line: the checks of well-formed records stay contiguous.
#[cold]
#[inline(never)]
fn err(offset: usize, reason: &'static str) -> ElfError {
    ElfError::InvalidBtfExt { offset, reason }
}

/// Receives `.BTF.ext` as [`visit`] reads it, a group of records at a time: the ELF section the
/// group describes and its records, decoded and checked as they are taken ([`Records::each`]).
/// A record that fails its check ends the group (the sink sees the records before it) and then
/// the walk, with its error. What a sink leaves untaken is still checked.
pub(crate) trait ExtSink<'b> {
    /// A group of func_info records (their `insn` indexed in the section).
    fn func_info(
        &mut self,
        section: RawName<'b>,
        records: &mut Records<'_, FuncInfo>,
    ) -> Result<()>;
    /// A group of line_info records.
    fn line_info(
        &mut self,
        section: RawName<'b>,
        records: &mut Records<'_, LineInfo>,
    ) -> Result<()>;
    /// A group of CO-RE relocation records.
    fn core_relocations(
        &mut self,
        section: RawName<'b>,
        records: &mut Records<'_, CoreRelocation>,
    ) -> Result<()>;
}

/// Walks one info block: `u32 rec_size`, then `{sec_name_off, num_info, records}` groups.
/// `group` gets each group's section name and records (each `rec_size` bytes, at least
/// `T::MIN_SIZE`).
fn walk<'a, T: Record>(
    raw: &'a [u8],
    btf: &'a Btf,
    start: usize,
    len: usize,
    mut group: impl FnMut(RawName<'a>, &mut Records<'a, T>) -> Result<()>,
) -> Result<()> {
    // Only the records are read per kind: the block's layout is read by one function for all.
    walk_groups(
        raw,
        btf,
        start,
        len,
        T::MIN_SIZE,
        &mut |name, recs, at, size| {
            let mut records = Records {
                chunks: recs.chunks_exact(size),
                at,
                size,
                btf,
                error: None,
                kind: std::marker::PhantomData,
            };
            group(name, &mut records)?;
            // What the sink left is checked too; the first bad record is the group's error.
            records.each(drop);
            match records.error {
                Some(e) => Err(e),
                None => Ok(()),
            }
        },
    )
}

/// [`walk`] for any record kind: `group` gets each group's section name, its records' bytes,
/// their offset in the section and the record size.
#[inline(never)]
fn walk_groups<'a>(
    raw: &'a [u8],
    btf: &'a Btf,
    start: usize,
    len: usize,
    min_size: usize,
    group: &mut dyn FnMut(RawName<'a>, &'a [u8], usize, usize) -> Result<()>,
) -> Result<()> {
    let e = btf.endianness();
    let end = start
        .checked_add(len)
        .ok_or_else(|| err(start, "overflow"))?;
    if len == 0 {
        return Ok(());
    }
    if end > raw.len() {
        return Err(err(start, "info block out of bounds"));
    }
    let block = raw.get(start..end).unwrap_or_default();
    let rec_size = e
        .read_u32(block, 0)
        .ok_or_else(|| err(start, "truncated"))? as usize;
    if rec_size < min_size || rec_size % 4 != 0 {
        return Err(err(start, "bad record size"));
    }
    let mut pos = 4;
    while pos < block.len() {
        let name_off = e
            .read_u32(block, pos)
            .ok_or_else(|| err(start + pos, "truncated"))?;
        let n = e
            .read_u32(block, pos + 4)
            .ok_or_else(|| err(start + pos, "truncated"))? as usize;
        let name = btf
            .raw_name(name_off)
            .ok_or_else(|| err(start + pos, "bad section name offset"))?;
        pos += 8;
        let bytes = n
            .checked_mul(rec_size)
            .ok_or_else(|| err(start + pos, "overflow"))?;
        let recs = block
            .get(pos..pos.saturating_add(bytes))
            .ok_or_else(|| err(start + pos, "truncated records"))?;
        group(name, recs, start + pos, rec_size)?;
        pos += bytes;
    }
    Ok(())
}

/// A record kind, decoded from its bytes.
pub(crate) trait Record: Sized {
    /// The smallest record size the kernel accepts for the kind.
    const MIN_SIZE: usize;
    /// Decodes a record (`bytes` holds at least [`Record::MIN_SIZE`] bytes); the error is the
    /// reason the record is refused.
    fn decode(bytes: &[u8], btf: &Btf) -> std::result::Result<Self, &'static str>;
}

/// The first `N` words of a record, read in `btf`'s byte order (zeroes when the record is
/// shorter, which [`Record::MIN_SIZE`] rules out). One bounds check for the record, not one per
/// word.
#[inline(always)]
fn words<const N: usize, const BYTES: usize>(bytes: &[u8], btf: &Btf) -> [u32; N] {
    let e = btf.endianness();
    let mut w = [0; N];
    if let Some(b) = bytes.first_chunk::<BYTES>() {
        for (word, b) in w.iter_mut().zip(b.chunks_exact(4)) {
            *word = e.u32(b.try_into().unwrap_or_default());
        }
    }
    w
}

/// The instruction index of a byte offset in the section.
#[inline(always)]
fn insn_index(byte_off: u32) -> std::result::Result<usize, &'static str> {
    if byte_off % 8 != 0 {
        return Err("instruction offset not a multiple of 8");
    }
    Ok(byte_off as usize / 8)
}

impl Record for FuncInfo {
    const MIN_SIZE: usize = 8;
    #[inline(always)]
    fn decode(bytes: &[u8], btf: &Btf) -> std::result::Result<Self, &'static str> {
        let [insn, type_id] = words::<2, 8>(bytes, btf);
        Ok(FuncInfo {
            insn: insn_index(insn)?,
            type_id,
        })
    }
}

impl Record for LineInfo {
    const MIN_SIZE: usize = 16;
    #[inline(always)]
    fn decode(bytes: &[u8], btf: &Btf) -> std::result::Result<Self, &'static str> {
        let [insn, file_name_off, line_off, line_col] = words::<4, 16>(bytes, btf);
        Ok(LineInfo {
            insn: insn_index(insn)?,
            file_name_off,
            line_off,
            line_col,
        })
    }
}

impl Record for CoreRelocation {
    const MIN_SIZE: usize = 16;
    fn decode(bytes: &[u8], btf: &Btf) -> std::result::Result<Self, &'static str> {
        let [insn, type_id, access_str_off, kind] = words::<4, 16>(bytes, btf);
        let insn = insn_index(insn)?;
        Ok(CoreRelocation {
            insn,
            type_id,
            access_str_off,
            access: btf
                .string_at(access_str_off)
                .ok_or("bad access string offset")?,
            kind,
        })
    }
}

/// The records of one group, decoded as they are taken ([`Records::each`]). The first that
/// fails its check ends the group and is kept as its error.
pub(crate) struct Records<'a, T> {
    chunks: std::slice::ChunksExact<'a, u8>,
    /// The offset in the section of the next record.
    at: usize,
    /// The record size.
    size: usize,
    btf: &'a Btf,
    error: Option<ElfError>,
    kind: std::marker::PhantomData<T>,
}

impl<T: Record> Records<'_, T> {
    /// How many records are left (as declared: fewer are taken if one fails its check).
    pub fn len(&self) -> usize {
        self.chunks.len()
    }

    /// Decodes the records left into `f`, in file order, up to the first that fails its check.
    ///
    /// A loop of its own rather than `Iterator::next`, so the walk's state stays in registers
    /// while `f` stores records.
    #[inline]
    pub fn each(&mut self, mut f: impl FnMut(T)) {
        let (size, btf) = (self.size, self.btf);
        let mut at = self.at;
        let chunks = std::mem::replace(&mut self.chunks, [].chunks_exact(size));
        for bytes in chunks {
            match T::decode(bytes, btf) {
                Ok(r) => f(r),
                Err(reason) => {
                    // Nothing past the first bad record is read.
                    self.error = Some(err(at, reason));
                    break;
                }
            }
            at += size;
        }
        self.at = at;
    }
}

impl BtfExt {
    /// Parses `.BTF.ext`; string offsets are resolved against `btf`.
    pub fn parse(raw: &[u8], btf: &Btf) -> Result<BtfExt> {
        let mut ext = BtfExt::default();
        visit(raw, btf, &mut ext)?;
        Ok(ext)
    }
}

impl ExtSink<'_> for BtfExt {
    fn func_info(
        &mut self,
        section: RawName<'_>,
        records: &mut Records<'_, FuncInfo>,
    ) -> Result<()> {
        self.func_info.push(group(section, records));
        Ok(())
    }
    fn line_info(
        &mut self,
        section: RawName<'_>,
        records: &mut Records<'_, LineInfo>,
    ) -> Result<()> {
        self.line_info.push(group(section, records));
        Ok(())
    }
    fn core_relocations(
        &mut self,
        section: RawName<'_>,
        records: &mut Records<'_, CoreRelocation>,
    ) -> Result<()> {
        self.core_relocations.push(group(section, records));
        Ok(())
    }
}

/// A group as [`BtfExt`] keeps it.
fn group<T: Record>(section: RawName<'_>, records: &mut Records<'_, T>) -> (String, Vec<T>) {
    // The count comes from the file: a list grows past 4096 records as they arrive.
    let mut list = Vec::with_capacity(records.len().min(4096));
    records.each(|r| list.push(r));
    (String::from(section.to_name()), list)
}

/// Reads `.BTF.ext` into `sink`, checking all of it (string offsets are resolved against
/// `btf`); on an error, `sink` has seen what came before it.
pub(crate) fn visit<'b>(raw: &'b [u8], btf: &'b Btf, sink: &mut impl ExtSink<'b>) -> Result<()> {
    let e = btf.endianness();
    if e.read_u16(raw, 0) != Some(BTF_MAGIC) {
        return Err(err(0, "bad magic"));
    }
    let r = |o: usize| e.read_u32(raw, o).ok_or_else(|| err(o, "truncated header"));
    let hdr_len = r(4)? as usize;
    if hdr_len < 24 {
        return Err(err(4, "header too short"));
    }
    let at = |off: u32| {
        hdr_len
            .checked_add(off as usize)
            .ok_or_else(|| err(8, "overflow"))
    };
    walk(raw, btf, at(r(8)?)?, r(12)? as usize, |name, recs| {
        sink.func_info(name, recs)
    })?;
    walk(raw, btf, at(r(16)?)?, r(20)? as usize, |name, recs| {
        sink.line_info(name, recs)
    })?;
    if hdr_len >= 32 {
        walk(raw, btf, at(r(24)?)?, r(28)? as usize, |name, recs| {
            sink.core_relocations(name, recs)
        })?;
    }
    Ok(())
}
