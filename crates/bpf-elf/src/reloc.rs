//! Relocations of code sections, read into symbolic references.
//!
//! Each ELF relocation of a code section is checked (symbol in range and not null, offset inside
//! the section and on an instruction, the right relocation type for the right instruction) and
//! turned into a [`Reference`]: a map, a global data value, a bpf-to-bpf call, a function pointer
//! or an extern. Linking and relocation ([`crate::link`]) then work on these references only.

use bpf_sys::uapi;

use crate::elf::{RawElf, RawRel, RawSection, RawSymbol, R_BPF_64_32, R_BPF_64_64};
use crate::error::{ElfError, Result};
use crate::insn::{Endianness, Instruction, INSN_SIZE, OPCODE_CALL};
use crate::maps::MapSpec;
use crate::name::Name;
use crate::programs::{is_function_start, FunctionId, FunctionSpec};

/// What kind of extern symbol a program uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExternKind {
    /// A `__kconfig` variable (in the `.kconfig` BTF `DATASEC`).
    Kconfig,
    /// A `__ksym` variable.
    Ksym,
    /// A kernel function called directly (kfunc).
    Kfunc,
}

/// What an instruction refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reference {
    /// `ld_imm64` of a map: becomes `BPF_PSEUDO_MAP_FD` with the map's fd.
    Map {
        /// The map's name.
        map: Name,
    },
    /// `ld_imm64` of an address inside a global data map: becomes `BPF_PSEUDO_MAP_VALUE` with
    /// the map's fd and this offset.
    MapValue {
        /// The data map's name (its section, `.rodata`).
        map: Name,
        /// Offset in the map's value.
        offset: u32,
    },
    /// A bpf-to-bpf call.
    Call {
        /// The callee.
        target: FunctionId,
    },
    /// `ld_imm64` of a function's address (a callback for `bpf_loop`, `bpf_for_each_map_elem`,
    /// timers): becomes `BPF_PSEUDO_FUNC`.
    FunctionPointer {
        /// The function.
        target: FunctionId,
    },
    /// A symbol the object does not define.
    Extern {
        /// Its name.
        symbol: Name,
        /// What kind of extern.
        kind: ExternKind,
    },
}

/// A reference at one instruction of a function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relocation {
    /// The instruction, relative to the start of its function (or program, once linked).
    pub insn: usize,
    /// What it refers to.
    pub target: Reference,
}

/// (offset, size, name) of each variable of a `DATASEC`.
pub(crate) type PlacedVars<'a> = Vec<(u64, u64, &'a str)>;

/// A legacy maps section: its index, where its maps are in [`Context::maps`], and the size of
/// its records (map `i` is at offset `i * record`).
pub(crate) struct LegacyMaps {
    pub section: usize,
    pub maps: std::ops::Range<usize>,
    pub record: u64,
}

/// The legacy map sections, found by index: objects have one (`maps`), kept without an
/// allocation; any more (`maps/NAME`, iproute2's) go in a list.
#[derive(Default)]
pub(crate) struct LegacySections {
    first: Option<LegacyMaps>,
    more: Vec<LegacyMaps>,
}

impl LegacySections {
    pub fn push(&mut self, maps: LegacyMaps) {
        if self.first.is_none() {
            self.first = Some(maps);
        } else {
            self.more.push(maps);
        }
    }

    /// The first entry for this section index.
    fn find(&self, section: usize) -> Option<&LegacyMaps> {
        self.first
            .iter()
            .chain(&self.more)
            .find(|l| l.section == section)
    }
}

/// What the resolver needs to know about the object.
pub(crate) struct Context<'a> {
    /// The object's maps.
    pub maps: &'a [MapSpec],
    /// Legacy map sections.
    pub legacy_maps: LegacySections,
    /// The BTF `.maps` section index and its maps' (offset, size, name).
    pub btf_maps: Option<(usize, PlacedVars<'a>)>,
    /// Data section indices that became maps, in increasing order.
    pub data_sections: Vec<usize>,
    /// Names of `__kconfig` externs, sorted.
    pub kconfig: Vec<&'a str>,
}

struct Site<'a> {
    elf: &'a RawElf<'a>,
    section: &'a RawSection<'a>,
    rel: &'a RawRel,
    sym: &'a RawSymbol,
}

// The errors are built out of line, so that the code that resolves a well-formed relocation
// stays contiguous.
impl Site<'_> {
    /// The symbol's printable name, for errors.
    fn symbol(&self) -> String {
        self.elf.symbol_display(self.sym)
    }

    #[cold]
    #[inline(never)]
    fn bad_insn(&self, expected: &'static str, insn: &Instruction) -> ElfError {
        ElfError::BadInstruction {
            section: self.section.name.to_string(),
            offset: self.rel.offset,
            symbol: self.symbol(),
            expected,
            opcode: insn.code,
        }
    }

    fn check_type(&self, expected_type: u32, expected: &'static str) -> Result<()> {
        if self.rel.r_type == expected_type {
            return Ok(());
        }
        Err(self.bad_type(expected))
    }

    #[cold]
    #[inline(never)]
    fn bad_type(&self, expected: &'static str) -> ElfError {
        ElfError::BadRelocationType {
            section: self.section.name.to_string(),
            offset: self.rel.offset,
            symbol: self.symbol(),
            found: self.rel.r_type,
            expected,
        }
    }

    #[cold]
    #[inline(never)]
    fn unsupported(&self, reason: std::fmt::Arguments<'_>) -> ElfError {
        ElfError::UnsupportedRelocation {
            section: self.section.name.to_string(),
            offset: self.rel.offset,
            symbol: self.symbol(),
            reason: reason.to_string(),
        }
    }

    #[cold]
    #[inline(never)]
    fn out_of_range(&self) -> ElfError {
        ElfError::RelocationOutOfRange {
            section: self.section.name.to_string(),
            offset: self.rel.offset,
            size: self.section.size,
        }
    }

    #[cold]
    #[inline(never)]
    fn bad_call(&self, index: usize, target: &RawSection<'_>, target_insn: i64) -> ElfError {
        ElfError::BadCallTarget {
            section: self.section.name.to_string(),
            insn: index,
            target_section: target.name.to_string(),
            target: target_insn,
        }
    }
}

/// The instruction at `index` of a code section.
fn insn_at(section: &RawSection<'_>, index: usize, endian: Endianness) -> Option<Instruction> {
    let start = index.checked_mul(INSN_SIZE)?;
    Instruction::decode(section.data.get(start..)?, endian)
}

/// Resolves one relocation of a code section; `functions` are every function of the object,
/// sorted by id.
pub(crate) fn resolve<'e>(
    elf: &'e RawElf<'e>,
    ctx: &Context<'_>,
    functions: &[FunctionSpec],
    section: &'e RawSection<'e>,
    rel: &'e RawRel,
) -> Result<(usize, Reference)> {
    let sym = elf.rel_symbol(&section.name, rel)?;
    let site = Site {
        elf,
        section,
        rel,
        sym,
    };
    let index = usize::try_from(rel.offset).unwrap_or(usize::MAX) / INSN_SIZE;
    let insn = match insn_at(section, index, elf.endian) {
        Some(i) if rel.offset % INSN_SIZE as u64 == 0 => i,
        _ => return Err(site.out_of_range()),
    };
    let is_ld = insn.is_ld_imm64();
    if is_ld && insn_at(section, index + 1, elf.endian).is_none() {
        return Err(site.bad_insn("a complete 64-bit immediate load", &insn));
    }
    let is_call = insn.code == OPCODE_CALL;

    if sym.undefined {
        let name = elf.symbol_name(sym);
        if is_ld {
            site.check_type(R_BPF_64_64, "R_BPF_64_64 (1)")?;
            let kind = if ctx.kconfig.binary_search(&name.as_ref()).is_ok() {
                ExternKind::Kconfig
            } else {
                ExternKind::Ksym
            };
            return Ok((
                index,
                Reference::Extern {
                    symbol: Name::from(&*name),
                    kind,
                },
            ));
        }
        if is_call {
            site.check_type(R_BPF_64_32, "R_BPF_64_32 (10)")?;
            return Ok((
                index,
                Reference::Extern {
                    symbol: Name::from(&*name),
                    kind: ExternKind::Kfunc,
                },
            ));
        }
        return Err(site.bad_insn("a call or a 64-bit immediate load", &insn));
    }
    let target = sym.section.and_then(|s| elf.section(s)).ok_or_else(|| {
        site.unsupported(format_args!(
            "absolute or common symbols cannot be referenced"
        ))
    })?;
    let addend = i64::from(insn.imm);
    let value = i64::try_from(sym.value)
        .map_err(|_| site.unsupported(format_args!("symbol value out of range")))?;

    if target.is_exec() {
        let target_insn = if is_call {
            site.check_type(R_BPF_64_32, "R_BPF_64_32 (10)")?;
            if u32::from(insn.src) != uapi::BPF_PSEUDO_CALL {
                return Err(site.bad_insn("a bpf-to-bpf call (src_reg 1)", &insn));
            }
            if value % INSN_SIZE as i64 != 0 {
                return Err(site.unsupported(format_args!("call target not instruction-aligned")));
            }
            value / INSN_SIZE as i64 + addend + 1
        } else if is_ld {
            site.check_type(R_BPF_64_64, "R_BPF_64_64 (1)")?;
            let byte = value.saturating_add(addend);
            if byte % INSN_SIZE as i64 != 0 {
                return Err(
                    site.unsupported(format_args!("function address not instruction-aligned"))
                );
            }
            byte / INSN_SIZE as i64
        } else {
            return Err(site.bad_insn("a call or a 64-bit immediate load", &insn));
        };
        let id = usize::try_from(target_insn)
            .ok()
            .map(|insn| FunctionId {
                section: target.index,
                insn,
            })
            .filter(|id| is_function_start(functions, *id))
            .ok_or_else(|| site.bad_call(index, target, target_insn))?;
        let r = if is_call {
            Reference::Call { target: id }
        } else {
            Reference::FunctionPointer { target: id }
        };
        return Ok((index, r));
    }

    if !is_ld {
        return Err(site.bad_insn("a 64-bit immediate load", &insn));
    }
    site.check_type(R_BPF_64_64, "R_BPF_64_64 (1)")?;
    let offset = value.saturating_add(addend);
    if let Some(legacy) = ctx.legacy_maps.find(target.index) {
        // Map `i` is at `i * record`.
        let i = match (u64::try_from(offset), legacy.record) {
            (Ok(o), 0) => (o == 0).then_some(0),
            (Ok(o), r) => (o % r == 0).then(|| usize::try_from(o / r).ok()).flatten(),
            (Err(_), _) => None,
        };
        let map = i
            .filter(|i| *i < legacy.maps.len())
            .and_then(|i| ctx.maps.get(legacy.maps.start + i))
            .ok_or_else(|| {
                site.unsupported(format_args!("no map at offset {offset} of {}", target.name))
            })?;
        return Ok((
            index,
            Reference::Map {
                map: map.name.clone(),
            },
        ));
    }
    if let Some((_, maps)) = ctx.btf_maps.as_ref().filter(|(s, _)| *s == target.index) {
        let (_, _, name) = maps
            .iter()
            .find(|(o, size, _)| {
                let (o, size) = (*o as i64, *size as i64);
                offset >= o && offset < o + size.max(1)
            })
            .ok_or_else(|| {
                site.unsupported(format_args!("no map at offset {offset} of {}", target.name))
            })?;
        return Ok((
            index,
            Reference::Map {
                map: Name::from(*name),
            },
        ));
    }
    if ctx.data_sections.binary_search(&target.index).is_ok() {
        let offset = u32::try_from(offset)
            .ok()
            .filter(|o| u64::from(*o) <= target.size)
            .ok_or_else(|| {
                site.unsupported(format_args!("offset {offset} outside {}", target.name))
            })?;
        return Ok((
            index,
            Reference::MapValue {
                map: Name::from(&*target.name),
                offset,
            },
        ));
    }
    Err(site.unsupported(format_args!(
        "section {} is neither a map section nor global data",
        target.name
    )))
}
