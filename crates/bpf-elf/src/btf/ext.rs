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

fn err(offset: usize, reason: &'static str) -> ElfError {
    ElfError::InvalidBtfExt { offset, reason }
}

/// Receives `.BTF.ext` as [`visit`] reads it, a group of records at a time: the ELF section the
/// group describes, how many records it declares, and its records, decoded and checked as they
/// are taken (an error ends the walk). What a sink leaves untaken is still checked.
pub(crate) trait ExtSink {
    /// A group of func_info records (their `insn` indexed in the section).
    fn func_info(
        &mut self,
        section: RawName<'_>,
        count: usize,
        records: &mut impl Iterator<Item = Result<FuncInfo>>,
    ) -> Result<()>;
    /// A group of line_info records.
    fn line_info(
        &mut self,
        section: RawName<'_>,
        count: usize,
        records: &mut impl Iterator<Item = Result<LineInfo>>,
    ) -> Result<()>;
    /// A group of CO-RE relocation records.
    fn core_relocations(
        &mut self,
        section: RawName<'_>,
        count: usize,
        records: &mut impl Iterator<Item = Result<CoreRelocation>>,
    ) -> Result<()>;
}

/// Walks one info block: `u32 rec_size`, then `{sec_name_off, num_info, records}` groups.
/// `group` gets each group's section name, record count and records (each `rec_size` bytes, at
/// least `min_rec`).
fn walk(
    raw: &[u8],
    btf: &Btf,
    start: usize,
    len: usize,
    min_rec: usize,
    mut group: impl FnMut(RawName<'_>, usize, Records<'_>) -> Result<()>,
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
    if rec_size < min_rec || rec_size % 4 != 0 {
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
        group(
            name,
            n,
            Records {
                bytes: recs,
                size: rec_size,
                at: start + pos,
                endian: e,
            },
        )?;
        pos += bytes;
    }
    Ok(())
}

/// The records of one group.
struct Records<'a> {
    bytes: &'a [u8],
    /// The record size.
    size: usize,
    /// The offset of the first record in the section.
    at: usize,
    endian: crate::insn::Endianness,
}

impl Records<'_> {
    /// Each record's offset in the section and a reader of its words (by byte offset; records
    /// are at least as long as every caller reads).
    fn each(&self) -> impl Iterator<Item = (usize, impl Fn(usize) -> u32 + '_)> + '_ {
        let e = self.endian;
        self.bytes
            .chunks_exact(self.size)
            .enumerate()
            .map(move |(i, r)| {
                let word = move |o: usize| e.read_u32(r, o).unwrap_or(0);
                (self.at + i * self.size, word)
            })
    }
}

fn insn_index(byte_off: u32, at: usize) -> Result<usize> {
    if byte_off % 8 != 0 {
        return Err(err(at, "instruction offset not a multiple of 8"));
    }
    Ok(byte_off as usize / 8)
}

impl BtfExt {
    /// Parses `.BTF.ext`; string offsets are resolved against `btf`.
    pub fn parse(raw: &[u8], btf: &Btf) -> Result<BtfExt> {
        let mut ext = BtfExt::default();
        visit(raw, btf, &mut ext)?;
        Ok(ext)
    }
}

impl ExtSink for BtfExt {
    fn func_info(
        &mut self,
        section: RawName<'_>,
        count: usize,
        records: &mut impl Iterator<Item = Result<FuncInfo>>,
    ) -> Result<()> {
        self.func_info.push(group(section, count, records)?);
        Ok(())
    }
    fn line_info(
        &mut self,
        section: RawName<'_>,
        count: usize,
        records: &mut impl Iterator<Item = Result<LineInfo>>,
    ) -> Result<()> {
        self.line_info.push(group(section, count, records)?);
        Ok(())
    }
    fn core_relocations(
        &mut self,
        section: RawName<'_>,
        count: usize,
        records: &mut impl Iterator<Item = Result<CoreRelocation>>,
    ) -> Result<()> {
        self.core_relocations.push(group(section, count, records)?);
        Ok(())
    }
}

/// A group as [`BtfExt`] keeps it.
fn group<T>(
    section: RawName<'_>,
    count: usize,
    records: &mut impl Iterator<Item = Result<T>>,
) -> Result<(String, Vec<T>)> {
    // The count comes from the file: a list grows past 4096 records as they arrive.
    let mut list = Vec::with_capacity(count.min(4096));
    for r in records {
        list.push(r?);
    }
    Ok((String::from(section.to_name()), list))
}

/// Reads `.BTF.ext` into `sink`, checking all of it (string offsets are resolved against
/// `btf`); on an error, `sink` has seen what came before it.
pub(crate) fn visit(raw: &[u8], btf: &Btf, sink: &mut impl ExtSink) -> Result<()> {
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
    walk(raw, btf, at(r(8)?)?, r(12)? as usize, 8, |name, n, recs| {
        let mut it = recs.each().map(|(pos, u)| {
            Ok(FuncInfo {
                insn: insn_index(u(0), pos)?,
                type_id: u(4),
            })
        });
        sink.func_info(name, n, &mut it)?;
        it.try_for_each(|r| r.map(drop))
    })?;
    walk(
        raw,
        btf,
        at(r(16)?)?,
        r(20)? as usize,
        16,
        |name, n, recs| {
            let mut it = recs.each().map(|(pos, u)| {
                Ok(LineInfo {
                    insn: insn_index(u(0), pos)?,
                    file_name_off: u(4),
                    line_off: u(8),
                    line_col: u(12),
                })
            });
            sink.line_info(name, n, &mut it)?;
            it.try_for_each(|r| r.map(drop))
        },
    )?;
    if hdr_len >= 32 {
        walk(
            raw,
            btf,
            at(r(24)?)?,
            r(28)? as usize,
            16,
            |name, n, recs| {
                let mut it = recs.each().map(|(pos, u)| {
                    let access_str_off = u(8);
                    Ok(CoreRelocation {
                        insn: insn_index(u(0), pos)?,
                        type_id: u(4),
                        access_str_off,
                        access: btf
                            .string_at(access_str_off)
                            .ok_or_else(|| err(pos, "bad access string offset"))?,
                        kind: u(12),
                    })
                });
                sink.core_relocations(name, n, &mut it)?;
                it.try_for_each(|r| r.map(drop))
            },
        )?;
    }
    Ok(())
}
