//! Functions and programs: every function symbol of every executable section.
//!
//! A *program* is a global function in an executable section other than `.text`; its type comes
//! from the section name ([`ProgramSection`]). Every other function (all of `.text`, and `static`
//! functions of program sections) is a *subprogram*, linked into the programs that call it or
//! take its address. Bounds come from each symbol's own `st_size` (the next symbol is only used
//! when the size is 0, as in hand-written assembly), so code between functions is never glued to
//! a program.

use bpf_sys::{AttachType, ProgramType};

use crate::btf::{CoreRelocation, FuncInfo, LineInfo};
use crate::elf::{RawElf, RawSection, RawSymbol};
use crate::error::{ElfError, Result};
use crate::insn::{decode_all, Instruction, INSN_SIZE};
use crate::name::Name;
use crate::reloc::{self, Reference, Relocation};
use crate::section::ProgramSection;

/// Identifies a function of an object: its section and first instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FunctionId {
    pub(crate) section: usize,
    pub(crate) insn: usize,
}

impl FunctionId {
    /// The ELF section index.
    pub fn section_index(&self) -> usize {
        self.section
    }

    /// The first instruction, as an index in the section.
    pub fn insn(&self) -> usize {
        self.insn
    }
}

/// One function's code, with what it refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionSpec {
    /// The function's name (the symbol).
    pub name: Name,
    /// The section it lives in.
    pub section: Name,
    /// Where it lives.
    pub id: FunctionId,
    /// Whether the symbol is global (`static` functions are local).
    pub global: bool,
    /// Its instructions, unrelocated.
    pub instructions: Vec<Instruction>,
    /// Its references to maps, data, other functions and externs; `insn` is relative to the
    /// function.
    pub relocations: Vec<Relocation>,
    /// BTF func_info records (relative to the function).
    pub func_info: Vec<FuncInfo>,
    /// BTF line_info records (relative to the function).
    pub line_info: Vec<LineInfo>,
    /// CO-RE relocation records (relative to the function), kept for the loader.
    pub core_relocations: Vec<CoreRelocation>,
}

/// A program: an entry point the kernel can load, and how to load and attach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramSpec {
    /// The function's name.
    pub name: Name,
    /// The ELF section (`SEC("...")`).
    pub section: Name,
    /// The program type; `Unspec` for an unknown section name, to be set before loading.
    pub program_type: ProgramType,
    /// The `expected_attach_type` to load with.
    pub expected_attach_type: Option<AttachType>,
    /// What the section name says to attach to (`kprobe/SYM` → `SYM`).
    pub attach_to: Option<Name>,
    /// Load with `BPF_F_SLEEPABLE`.
    pub sleepable: bool,
    /// Load with `BPF_F_XDP_HAS_FRAGS`.
    pub xdp_frags: bool,
    /// A return probe (`kretprobe`, `uretprobe`, ...).
    pub return_probe: bool,
    /// The object's license.
    pub license: Name,
    /// The object's `version` section (needed by kprobes on kernels before 5.0).
    pub kernel_version: Option<u32>,
    /// The program's own code.
    pub function: FunctionSpec,
}

impl ProgramSpec {
    pub(crate) fn new(function: FunctionSpec, license: &Name, kernel_version: Option<u32>) -> Self {
        let s = ProgramSection::parse(&function.section);
        ProgramSpec {
            name: function.name.clone(),
            section: function.section.clone(),
            program_type: s.program_type,
            expected_attach_type: s.expected_attach_type,
            attach_to: s.attach_to.map(Name::from),
            sleepable: s.sleepable,
            xdp_frags: s.xdp_frags,
            return_probe: s.return_probe,
            license: license.clone(),
            kernel_version,
            function,
        }
    }

    /// [`ProgramSpec::new`] for a function of the same section as `prev` (whose reading of the
    /// section name it reuses) and from the same object.
    pub(crate) fn in_section_of(prev: &ProgramSpec, function: FunctionSpec) -> Self {
        debug_assert_eq!(prev.section, function.section);
        ProgramSpec {
            name: function.name.clone(),
            section: prev.section.clone(),
            program_type: prev.program_type,
            expected_attach_type: prev.expected_attach_type,
            attach_to: prev.attach_to.clone(),
            sleepable: prev.sleepable,
            xdp_frags: prev.xdp_frags,
            return_probe: prev.return_probe,
            license: prev.license.clone(),
            kernel_version: prev.kernel_version,
            function,
        }
    }

    /// The program's own instructions (without subprograms).
    pub fn instructions(&self) -> &[Instruction] {
        &self.function.instructions
    }
}

/// Finds the functions of one executable section and appends them to `out` in address order,
/// with their instructions (their relocations are read by [`relocate`], once every function of
/// the object is known). `syms` is scratch space.
pub(crate) fn functions<'e>(
    elf: &'e RawElf<'_>,
    section: &RawSection<'_>,
    syms: &mut Vec<&'e RawSymbol>,
    out: &mut Vec<FunctionSpec>,
) -> Result<()> {
    let size = section.data.len();
    if size % INSN_SIZE != 0 {
        return Err(partial_insn(section));
    }
    let n = size / INSN_SIZE;
    let section_name = Name::from(&*section.name);
    let function = |name: Name, global: bool, start: usize, len: usize| FunctionSpec {
        name,
        section: section_name.clone(),
        id: FunctionId {
            section: section.index,
            insn: start,
        },
        global,
        instructions: section
            .data
            .get(start * INSN_SIZE..(start + len) * INSN_SIZE)
            .map(|code| decode_all(code, elf.endian))
            .unwrap_or_default(),
        relocations: Vec::new(),
        func_info: Vec::new(),
        line_info: Vec::new(),
        core_relocations: Vec::new(),
    };
    syms.clear();
    syms.extend(elf.symbols_in(section.index).filter(|s| s.is_func()));
    // Aliases at the same address: keep the global one.
    syms.sort_by_key(|s| (s.value, !s.is_global()));
    syms.dedup_by_key(|s| s.value);
    if syms.is_empty() {
        if n != 0 {
            // Code without function symbols (hand-written assembly): one function named after
            // the section.
            out.push(function(section_name.clone(), true, 0, n));
        }
        return Ok(());
    }
    out.reserve(syms.len());
    let first = out.len();
    for (i, s) in syms.iter().enumerate() {
        let bad = || bad_bounds(elf, section, s);
        let next = syms.get(i + 1).map(|n| n.value).unwrap_or(size as u64);
        let end = if s.size == 0 {
            next
        } else {
            s.value.checked_add(s.size).ok_or_else(bad)?
        };
        if s.value % INSN_SIZE as u64 != 0
            || end % INSN_SIZE as u64 != 0
            || end > size as u64
            || end <= s.value
        {
            return Err(bad());
        }
        if out.len() > first
            && out.last().is_some_and(|prev| {
                prev.id.insn + prev.instructions.len() > (s.value as usize) / INSN_SIZE
            })
        {
            return Err(bad());
        }
        let name = Name::from(&*elf.symbol_name(s));
        let start = s.value as usize / INSN_SIZE;
        out.push(function(
            name,
            s.is_global(),
            start,
            (end - s.value) as usize / INSN_SIZE,
        ));
    }
    Ok(())
}

// Errors are built out of line, so that the code that runs for every well-formed object stays
// contiguous.

#[cold]
#[inline(never)]
fn partial_insn(section: &RawSection<'_>) -> ElfError {
    let size = section.data.len();
    ElfError::Truncated {
        section: section.name.to_string(),
        offset: (size - size % INSN_SIZE) as u64,
        needed: INSN_SIZE as u64,
        size: size as u64,
    }
}

#[cold]
#[inline(never)]
fn bad_bounds(elf: &RawElf<'_>, section: &RawSection<'_>, s: &RawSymbol) -> ElfError {
    ElfError::BadFunctionBounds {
        section: section.name.to_string(),
        symbol: elf.symbol_name(s).into_owned(),
        offset: s.value,
        size: s.size,
        section_size: section.size,
    }
}

#[cold]
#[inline(never)]
fn outside_functions(section: &RawSection<'_>, offset: u64) -> ElfError {
    ElfError::UnsupportedRelocation {
        section: section.name.to_string(),
        offset,
        symbol: String::new(),
        reason: "relocation outside any function".into(),
    }
}

#[cold]
#[inline(never)]
fn ld_imm64_at_end(section: &RawSection<'_>, offset: u64, opcode: u8) -> ElfError {
    ElfError::BadInstruction {
        section: section.name.to_string(),
        offset,
        symbol: String::new(),
        expected: "a 64-bit immediate load inside its function",
        opcode,
    }
}

#[cold]
#[inline(never)]
fn bad_call(section: &RawSection<'_>, insn: usize, target: i64) -> ElfError {
    ElfError::BadCallTarget {
        section: section.name.to_string(),
        insn,
        target_section: section.name.to_string(),
        target,
    }
}

/// Whether a function of `functions` (sorted by id) starts at `id`.
pub(crate) fn is_function_start(functions: &[FunctionSpec], id: FunctionId) -> bool {
    functions.binary_search_by_key(&id, |f| f.id).is_ok()
}

/// Reads the relocations of one code section into its functions, `functions[range]` (from
/// [`functions`]: sorted and disjoint), with the calls to static functions of the section.
///
/// `functions` is every function of the object, sorted by id: the targets of calls and
/// function pointers.
pub(crate) fn relocate(
    elf: &RawElf<'_>,
    ctx: &reloc::Context<'_>,
    section: &RawSection<'_>,
    functions: &mut [FunctionSpec],
    range: std::ops::Range<usize>,
) -> Result<()> {
    let first = range.start;
    let owner = |functions: &[FunctionSpec], index: usize| {
        let own = functions.get(range.clone())?;
        let f = own.partition_point(|f| f.id.insn <= index).checked_sub(1)?;
        let b = own.get(f)?;
        (index < b.id.insn + b.instructions.len()).then_some(first + f)
    };
    for rel in elf.relocations_for(section.index) {
        let (index, target) = reloc::resolve(elf, ctx, functions, section, &rel)?;
        let f = owner(functions, index).ok_or_else(|| outside_functions(section, rel.offset))?;
        let Some(func) = functions.get_mut(f) else {
            continue;
        };
        let (start, len) = (func.id.insn, func.instructions.len());
        if matches!(
            target,
            Reference::Map { .. } | Reference::MapValue { .. } | Reference::FunctionPointer { .. }
        ) && index + 1 >= start + len
        {
            let opcode = func.instructions.get(index - start).map_or(0, |i| i.code);
            return Err(ld_imm64_at_end(section, rel.offset, opcode));
        }
        func.relocations.push(Relocation {
            insn: index - start,
            target,
        });
    }
    // Calls to static functions of the same section need no relocation: the offset is final.
    for f in range {
        let Some(func) = functions.get_mut(f) else {
            continue;
        };
        // Stable: relocations at the same instruction keep their order.
        func.relocations.sort_by_key(|r| r.insn);
        // Taken out while the other functions are searched for call targets.
        let mut relocations = std::mem::take(&mut func.relocations);
        let Some(func) = functions.get(f) else {
            continue;
        };
        let relocated = relocations.len();
        for (k, insn) in func.instructions.iter().enumerate() {
            let own = relocations.get(..relocated).unwrap_or_default();
            if !insn.is_pseudo_call() || own.binary_search_by_key(&k, |r| r.insn).is_ok() {
                continue;
            }
            let i = func.id.insn + k;
            let target = i as i64 + i64::from(insn.imm) + 1;
            let id = usize::try_from(target)
                .ok()
                .map(|t| FunctionId {
                    section: section.index,
                    insn: t,
                })
                .filter(|id| is_function_start(functions, *id))
                .ok_or_else(|| bad_call(section, i, target))?;
            relocations.push(Relocation {
                insn: k,
                target: Reference::Call { target: id },
            });
        }
        if relocations.len() > relocated {
            relocations.sort_by_key(|r| r.insn);
        }
        if let Some(func) = functions.get_mut(f) {
            func.relocations = relocations;
        }
    }
    Ok(())
}
