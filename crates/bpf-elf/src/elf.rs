//! A plain, owned view of the ELF structures this crate needs, read with the `object` crate.
//!
//! Everything past this module works on these structs, so the rest of the parser never touches
//! ELF encoding details and every bound is checked once, here.

use std::borrow::Cow;

use object::elf;
use object::read::elf::{FileHeader, SectionHeader, Sym};
use object::{BigEndian, Endian, LittleEndian, SectionIndex, SymbolIndex};

use crate::error::{ElfError, Result};
use crate::insn::Endianness;
use crate::strtab::{Str, StrTable};

/// `R_BPF_64_64`: a 64-bit immediate load (`ld_imm64`).
pub(crate) const R_BPF_64_64: u32 = 1;
/// `R_BPF_64_ABS64`: a 64-bit data field.
pub(crate) const R_BPF_64_ABS64: u32 = 2;
/// `R_BPF_64_32`: a bpf-to-bpf call.
pub(crate) const R_BPF_64_32: u32 = 10;

/// One section header with its bytes.
#[derive(Debug, Clone)]
pub(crate) struct RawSection<'a> {
    pub index: usize,
    /// Borrowed from the file (copied only when it is not UTF-8).
    pub name: Cow<'a, str>,
    pub sh_type: u32,
    pub flags: u64,
    /// The section's bytes; empty for `SHT_NOBITS`.
    pub data: &'a [u8],
    /// The section's size (also for `SHT_NOBITS`).
    pub size: u64,
    /// The `Elf64_Rel` records of the first `SHT_REL` section that applies to this one (see
    /// [`RawElf::relocations_for`]).
    rels: &'a [u8],
}

impl<'a> RawSection<'a> {
    /// A section with no bytes, for unit tests.
    #[cfg(test)]
    pub fn for_test(name: Cow<'a, str>, sh_type: u32, flags: u64) -> Self {
        RawSection {
            index: 0,
            name,
            sh_type,
            flags,
            data: &[],
            size: 0,
            rels: &[],
        }
    }

    pub fn is_exec(&self) -> bool {
        self.sh_type == elf::SHT_PROGBITS && self.flags & u64::from(elf::SHF_EXECINSTR) != 0
    }
}

/// One symbol.
#[derive(Debug, Clone)]
pub(crate) struct RawSymbol {
    /// Where its name is in the symbol string table: read with [`RawElf::symbol_name`] when
    /// needed (few of an object's symbol names ever are).
    name: u32,
    pub value: u64,
    pub size: u64,
    pub kind: u8,
    pub bind: u8,
    /// The section it is defined in; `None` for undefined (extern), absolute or common symbols.
    pub section: Option<usize>,
    pub undefined: bool,
}

impl RawSymbol {
    pub fn is_section(&self) -> bool {
        self.kind == elf::STT_SECTION
    }
    pub fn is_func(&self) -> bool {
        self.kind == elf::STT_FUNC
    }
    pub fn is_global(&self) -> bool {
        self.bind == elf::STB_GLOBAL || self.bind == elf::STB_WEAK
    }
}

/// One relocation record (`Elf64_Rel`; BPF objects carry the addend in the relocated field).
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawRel {
    pub offset: u64,
    pub symbol: u32,
    pub r_type: u32,
}

/// The parsed ELF file.
#[derive(Debug)]
pub(crate) struct RawElf<'a> {
    pub endian: Endianness,
    pub sections: Vec<RawSection<'a>>,
    pub symbols: Vec<RawSymbol>,
    /// The symbols' string table.
    strings: StrTable<'a>,
    /// `SHT_REL` sections after the first that apply to the same section (target index and
    /// records), in section order; clang never emits them.
    more_rels: Vec<(usize, &'a [u8])>,
}

/// Bytes as text: borrowed when they are UTF-8 (the fast check), replaced characters otherwise.
fn utf8(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// The name at `offset` of a string table, or `""` when there is none (as `object` reads it).
#[inline]
fn name_of<'a>(strings: &StrTable<'a>, offset: u32) -> Cow<'a, str> {
    match strings.get(offset as usize) {
        Some(Str::Text(s)) => Cow::Borrowed(s),
        Some(Str::Bytes(b)) => utf8(b),
        None => Cow::Borrowed(""),
    }
}

/// The bytes of the string table `object` reads between `start` and `end` of the file: none
/// when the range is not in the file.
fn table_bytes(data: &[u8], start: u64, end: Option<u64>) -> &[u8] {
    let range = end.and_then(|end| Some(usize::try_from(start).ok()?..usize::try_from(end).ok()?));
    range.and_then(|r| data.get(r)).unwrap_or_default()
}

impl<'a> RawElf<'a> {
    pub fn parse(data: &'a [u8]) -> Result<Self> {
        let ident = data.get(..16).ok_or_else(|| ElfError::InvalidElf {
            reason: "file shorter than the ELF identification".into(),
        })?;
        if ident.get(..4) != Some(&elf::ELFMAG[..]) {
            return Err(ElfError::InvalidElf {
                reason: "bad magic number".into(),
            });
        }
        if ident.get(4) != Some(&elf::ELFCLASS64) {
            return Err(ElfError::NotBpf {
                reason: "not a 64-bit ELF file (BPF objects are ELFCLASS64)".into(),
            });
        }
        // One copy of the reader per byte order, so reading a field is a load (`object`
        // refuses `EI_DATA` values other than the two in either copy).
        if ident.get(5) == Some(&elf::ELFDATA2MSB) {
            RawElf::parse_as::<BigEndian>(data)
        } else {
            RawElf::parse_as::<LittleEndian>(data)
        }
    }

    fn parse_as<E: Endian>(data: &'a [u8]) -> Result<Self> {
        let header = elf::FileHeader64::<E>::parse(data)?;
        let oe = header.endian()?;
        let machine = header.e_machine(oe);
        if machine != elf::EM_BPF {
            return Err(ElfError::NotBpf {
                reason: format!("e_machine is {machine}, expected {} (EM_BPF)", elf::EM_BPF),
            });
        }
        let endian = if header.is_little_endian() {
            Endianness::Little
        } else {
            Endianness::Big
        };
        let table = header.sections(oe, data)?;

        // Section names, read as `SectionTable::section_name` does.
        let shstrndx = if table.is_empty() {
            None
        } else {
            header.shstrndx(oe, data).ok().map(|i| i as usize)
        };
        let shstrtab = shstrndx
            .and_then(|i| table.section(SectionIndex(i)).ok())
            .and_then(|sh| sh.file_range(oe))
            .map(|(off, size)| StrTable::new(table_bytes(data, off, off.checked_add(size))))
            .unwrap_or_default();
        let mut sections = Vec::with_capacity(table.len());
        for (index, sh) in table.enumerate() {
            let name = name_of(&shstrtab, sh.sh_name(oe));
            debug_assert_eq!(
                name,
                table.section_name(oe, sh).map(utf8).unwrap_or_default()
            );
            let sh_type = sh.sh_type(oe);
            let bytes = if sh_type == elf::SHT_NOBITS {
                &[][..]
            } else {
                sh.data(oe, data).map_err(|_| ElfError::Truncated {
                    section: name.to_string(),
                    offset: sh.sh_offset(oe),
                    needed: sh.sh_size(oe),
                    size: data.len() as u64,
                })?
            };
            sections.push(RawSection {
                index: index.0,
                name,
                sh_type,
                flags: sh.sh_flags(oe),
                data: bytes,
                size: sh.sh_size(oe),
                rels: &[],
            });
        }

        let symtab = table.symbols(oe, data, elf::SHT_SYMTAB)?;
        let symtab_index = symtab.section();
        // Symbol names, read as `SymbolTable::strings` does (the table's type is checked by
        // `symbols` above).
        let strings = match symtab.string_section() {
            SectionIndex(0) => StrTable::default(),
            // Usually the same table (clang writes one `.strtab`): checked once.
            i if Some(i.0) == shstrndx => shstrtab,
            i => table
                .section(i)
                .map(|sh| {
                    let off = sh.sh_offset(oe);
                    StrTable::new(table_bytes(data, off, off.checked_add(sh.sh_size(oe))))
                })
                .unwrap_or_default(),
        };
        let mut symbols = Vec::with_capacity(symtab.len());
        for (i, sym) in symtab.enumerate() {
            let section = symtab
                .symbol_section(oe, sym, SymbolIndex(i.0))?
                .map(|s: SectionIndex| s.0)
                .filter(|s| *s < sections.len());
            debug_assert_eq!(
                name_of(&strings, sym.st_name(oe)),
                symtab
                    .strings()
                    .get(sym.st_name(oe))
                    .map(utf8)
                    .unwrap_or_default()
            );
            symbols.push(RawSymbol {
                name: sym.st_name(oe),
                value: sym.st_value(oe),
                size: sym.st_size(oe),
                kind: sym.st_type(),
                bind: sym.st_bind(),
                section,
                undefined: sym.st_shndx(oe) == elf::SHN_UNDEF,
            });
        }

        let mut more_rels = Vec::new();
        for (index, sh) in table.enumerate() {
            let Some((rels, link)) = sh.rel(oe, data)? else {
                if sh.sh_type(oe) == elf::SHT_RELA {
                    let target = sh.sh_info(oe) as usize;
                    if sections.get(target).is_some_and(|s| s.is_exec()) {
                        return Err(ElfError::InvalidElf {
                            reason: format!(
                                "section {}: RELA relocations are not used by BPF objects",
                                sections
                                    .get(index.0)
                                    .map(|s| s.name.as_ref())
                                    .unwrap_or("?")
                            ),
                        });
                    }
                }
                continue;
            };
            if link != symtab_index || symtab_index.0 == 0 {
                // Relocations against another symbol table (or none): not something clang emits.
                continue;
            }
            let target = sh.sh_info(oe) as usize;
            let Some(s) = sections.get_mut(target) else {
                continue;
            };
            let rels = object::pod::bytes_of_slice(rels);
            if s.rels.is_empty() {
                s.rels = rels;
            } else if !rels.is_empty() {
                more_rels.push((target, rels));
            }
        }

        Ok(RawElf {
            endian,
            sections,
            symbols,
            strings,
            more_rels,
        })
    }

    pub fn section(&self, index: usize) -> Option<&RawSection<'a>> {
        self.sections.get(index)
    }

    pub fn section_name(&self, index: usize) -> &str {
        self.sections
            .get(index)
            .map(|s| s.name.as_ref())
            .unwrap_or("?")
    }

    /// The symbol a relocation refers to, checked: not the null symbol, in range.
    pub fn rel_symbol(&self, section: &str, rel: &RawRel) -> Result<&RawSymbol> {
        if rel.symbol == 0 {
            return Err(ElfError::NullSymbol {
                section: section.to_string(),
                offset: rel.offset,
            });
        }
        self.symbols
            .get(rel.symbol as usize)
            .ok_or_else(|| ElfError::SymbolOutOfRange {
                section: section.to_string(),
                offset: rel.offset,
                index: rel.symbol,
                count: self.symbols.len(),
            })
    }

    /// A symbol's name: borrowed from the file (copied only when it is not UTF-8), `""` when
    /// its offset is out of the string table or no NUL ends it (as `object` reads it).
    pub fn symbol_name(&self, sym: &RawSymbol) -> Cow<'a, str> {
        name_of(&self.strings, sym.name)
    }

    /// Whether a symbol's name is `name`, an ASCII name without NUL (bytes that are not UTF-8
    /// never read as one): compared in the file, without reading the name.
    pub fn symbol_name_is_ascii(&self, sym: &RawSymbol, name: &[u8]) -> bool {
        debug_assert!(name.is_ascii());
        if name.is_empty() {
            return self.strings.is_empty_at(sym.name as usize);
        }
        self.strings.bytes_are(sym.name as usize, name)
    }

    /// Whether a symbol's name is empty (as [`RawElf::symbol_name`] reads it), without reading
    /// it.
    pub fn symbol_name_is_empty(&self, sym: &RawSymbol) -> bool {
        self.strings.is_empty_at(sym.name as usize)
    }

    /// A printable name for a symbol: its own, or its section's for section symbols.
    pub fn symbol_display(&self, sym: &RawSymbol) -> String {
        let name = self.symbol_name(sym);
        if name.is_empty() {
            if let Some(s) = sym.section {
                return self.section_name(s).to_string();
            }
        }
        name.into_owned()
    }

    /// The relocations that apply to a section, from every `SHT_REL` section (against the
    /// symbol table) whose `sh_info` names it, in section order.
    pub fn relocations_for(&self, index: usize) -> impl Iterator<Item = RawRel> + '_ {
        let first = self.sections.get(index).map(|s| s.rels).unwrap_or_default();
        let more = self
            .more_rels
            .iter()
            .filter(move |(target, _)| *target == index)
            .map(|(_, rels)| *rels);
        let e = self.endian;
        // `Elf64_Rel`: r_offset, then r_info (symbol in the high half, type in the low).
        first
            .chunks_exact(16)
            .chain(more.flat_map(|rels| rels.chunks_exact(16)))
            .map(move |r| {
                let info = e.read_u64(r, 8).unwrap_or(0);
                RawRel {
                    offset: e.read_u64(r, 0).unwrap_or(0),
                    symbol: (info >> 32) as u32,
                    r_type: info as u32,
                }
            })
    }

    /// Symbols defined in a section, with their indices.
    pub fn symbols_in(&self, index: usize) -> impl Iterator<Item = &RawSymbol> {
        self.symbols
            .iter()
            .filter(move |s| s.section == Some(index))
    }
}
