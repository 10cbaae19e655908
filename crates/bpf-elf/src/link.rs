//! Linking and relocation: pure functions from specs (and map fds) to the instructions the
//! kernel loads.
//!
//! [`ProgramSpec::link`] appends every subprogram the program calls or takes the address of,
//! transitively and once each, fixes call and function-pointer offsets, and carries BTF
//! func_info, line_info and CO-RE records along with the instructions. [`LinkedProgram::relocate`]
//! then writes map fds into the `ld_imm64` instructions that refer to maps; the loader calls it
//! with real fds, a test or a mock with fake ones.

use bpf_sys::uapi;

use crate::btf::{CoreRelocation, FuncInfo, LineInfo};
use crate::error::{ElfError, Result};
use crate::insn::{encode_all, Endianness, Instruction, OPCODE_CALL};
use crate::name::Name;
use crate::obj::ObjectSpec;
use crate::programs::{FunctionSpec, ProgramSpec};
use crate::reloc::{ExternKind, Reference};

/// How an instruction refers to a map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapReferenceKind {
    /// The map itself (`BPF_PSEUDO_MAP_FD`).
    #[doc(alias = "BPF_PSEUDO_MAP_FD")]
    Fd,
    /// An address inside the map's value (`BPF_PSEUDO_MAP_VALUE`): global data.
    #[doc(alias = "BPF_PSEUDO_MAP_VALUE")]
    Value {
        /// Offset in the value.
        offset: u32,
    },
}

/// An `ld_imm64` of a linked program that needs a map fd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapReference {
    /// The instruction index in the linked program.
    pub insn: usize,
    /// The map's name.
    pub map: Name,
    /// What is loaded.
    pub kind: MapReferenceKind,
}

/// An extern symbol used by a linked program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternReference {
    /// The instruction index in the linked program.
    pub insn: usize,
    /// The symbol.
    pub symbol: Name,
    /// What kind of extern.
    pub kind: ExternKind,
}

/// A program with its subprograms appended: what `BPF_PROG_LOAD` takes, once relocated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkedProgram {
    /// The program's name.
    pub name: Name,
    /// All instructions: the program's, then each subprogram's.
    pub instructions: Vec<Instruction>,
    /// Where each function starts: (name, first instruction). The program itself is first.
    pub functions: Vec<(Name, usize)>,
    /// func_info records, indexed in the linked program, sorted.
    pub func_info: Vec<FuncInfo>,
    /// line_info records, indexed in the linked program, sorted.
    pub line_info: Vec<LineInfo>,
    /// CO-RE relocation records, indexed in the linked program.
    pub core_relocations: Vec<CoreRelocation>,
    /// Instructions that need a map fd.
    pub map_references: Vec<MapReference>,
    /// Extern symbols used.
    pub externs: Vec<ExternReference>,
    /// The byte order of the instructions.
    pub endianness: Endianness,
}

/// What relocating the map reference at `insn` (to `map`, of `kind`) writes: the first
/// instruction's `src` and `imm` (the fd), and the second one's `imm` (the offset in the value);
/// or why it cannot: the map has no fd, or `insn` is not an `ld_imm64` within `insns`.
fn map_patch(
    program: &str,
    insns: &[Instruction],
    insn: usize,
    map: &str,
    kind: MapReferenceKind,
    map_fd: impl Fn(&str) -> Option<i32>,
) -> Result<(u8, i32, i32)> {
    let Some(fd) = map_fd(map) else {
        return Err(missing_map_fd(program, map));
    };
    let Some(first) = insns.get(insn) else {
        return Err(not_ld_imm64(program, insn, 0));
    };
    if !first.is_ld_imm64() || insn + 1 >= insns.len() {
        return Err(not_ld_imm64(program, insn, first.code));
    }
    Ok(match kind {
        MapReferenceKind::Fd => (uapi::BPF_PSEUDO_MAP_FD as u8, fd, 0),
        MapReferenceKind::Value { offset } => (uapi::BPF_PSEUDO_MAP_VALUE as u8, fd, offset as i32),
    })
}

/// [`map_patch`]'s error for a map without an fd; out of line, as every map reference is
/// patched.
#[cold]
#[inline(never)]
fn missing_map_fd(program: &str, map: &str) -> ElfError {
    ElfError::MissingMapFd {
        program: program.to_string(),
        map: map.to_string(),
    }
}

/// [`map_patch`]'s error for a reference at an instruction that is not an `ld_imm64`.
#[cold]
#[inline(never)]
fn not_ld_imm64(program: &str, insn: usize, opcode: u8) -> ElfError {
    ElfError::NotLoadImm64 {
        program: program.to_string(),
        insn,
        opcode,
    }
}

/// The error of a program with more instructions than the kernel counts.
#[cold]
#[inline(never)]
fn too_large(program: &str, insns: usize) -> ElfError {
    ElfError::ProgramTooLarge {
        program: program.to_string(),
        insns,
    }
}

impl ProgramSpec {
    /// The program's instructions relocated against map fds (`map_fd`, as
    /// [`LinkedProgram::relocate`] takes it), in the form `BPF_PROG_LOAD` takes, when the
    /// program is its function alone: it calls no other function, takes no function's address,
    /// uses no extern and has no CO-RE relocation, and its func_info and line_info records are
    /// in instruction order (they are then the linked program's records as they are, in
    /// `self.function`). `None` for any other program: link it ([`ProgramSpec::link`]).
    ///
    /// The same instructions and the same errors as linking and relocating, without the
    /// copies linking makes (the loader's path for most programs).
    pub fn relocate_alone(
        &self,
        map_fd: impl Fn(&str) -> Option<i32>,
    ) -> Option<Result<Vec<bpf_sys::uapi::bpf_insn>>> {
        let f = &self.function;
        let alone = f.core_relocations.is_empty()
            && f.func_info.is_sorted_by_key(|r| r.insn)
            && f.line_info.is_sorted_by_key(|r| r.insn)
            && f.relocations
                .iter()
                .all(|r| matches!(r.target, Reference::Map { .. } | Reference::MapValue { .. }));
        alone.then(|| self.relocate_function(map_fd))
    }

    /// [`ProgramSpec::relocate_alone`] of a program known to be alone, with
    /// [`LinkedProgram::relocate`]'s checks in its order.
    fn relocate_function(
        &self,
        map_fd: impl Fn(&str) -> Option<i32>,
    ) -> Result<Vec<bpf_sys::uapi::bpf_insn>> {
        let source = &self.function.instructions;
        if i32::try_from(source.len()).is_err() {
            return Err(too_large(&self.name, source.len()));
        }
        let mut insns: Vec<_> = source.iter().map(Instruction::to_bpf_insn).collect();
        // Read once: every relocation names the program.
        let name: &str = &self.name;
        for r in &self.function.relocations {
            let (map, kind) = match &r.target {
                Reference::Map { map } => (map, MapReferenceKind::Fd),
                Reference::MapValue { map, offset } => {
                    (map, MapReferenceKind::Value { offset: *offset })
                }
                // Not alone: not called for such a program.
                _ => continue,
            };
            let (src, fd, offset) = map_patch(name, source, r.insn, map, kind, &map_fd)?;
            if let Some(i) = insns.get_mut(r.insn) {
                i.set_src_reg(src);
                i.imm = fd;
            }
            if let Some(i) = insns.get_mut(r.insn + 1) {
                i.imm = offset;
            }
        }
        Ok(insns)
    }

    /// Links the program with the subprograms it uses, from `obj` (the object it came from).
    ///
    /// Pure: no map fds are needed. Fails only when a call names a function `obj` does not have.
    pub fn link(&self, obj: &ObjectSpec) -> Result<LinkedProgram> {
        link(&self.name, &self.function, obj)
    }
}

fn link(name: &str, main: &FunctionSpec, obj: &ObjectSpec) -> Result<LinkedProgram> {
    // The subprograms `main` uses, transitively, in the order they are appended (breadth first),
    // each with its first instruction in the linked program. Most programs call nothing: then it
    // stays empty and never allocates. Looking a target up is a linear search, as programs use
    // few subprograms.
    let mut subs: Vec<(&FunctionSpec, usize)> = Vec::new();
    let mut total = main.instructions.len();
    let mut next = Some(main);
    let mut read = 0;
    while let Some(f) = next {
        for r in &f.relocations {
            let (Reference::Call { target } | Reference::FunctionPointer { target }) = &r.target
            else {
                continue;
            };
            if *target == main.id || subs.iter().any(|(s, _)| s.id == *target) {
                continue;
            }
            let callee = obj
                .function(*target)
                .ok_or_else(|| ElfError::BadCallTarget {
                    section: f.section.to_string(),
                    insn: r.insn,
                    target_section: target.section.to_string(),
                    target: target.insn as i64,
                })?;
            subs.push((callee, total));
            total += callee.instructions.len();
        }
        next = subs.get(read).map(|(f, _)| *f);
        read += 1;
    }
    let placed = || std::iter::once((main, 0)).chain(subs.iter().copied());
    // Every output list is sized once, to what it will hold.
    let sum = |n: fn(&FunctionSpec) -> usize| placed().map(|(f, _)| n(f)).sum::<usize>();
    let count = |keep: fn(&Reference) -> bool| {
        placed()
            .flat_map(|(f, _)| &f.relocations)
            .filter(|r| keep(&r.target))
            .count()
    };
    let map_count = count(|t| matches!(t, Reference::Map { .. } | Reference::MapValue { .. }));
    let extern_count = count(|t| matches!(t, Reference::Extern { .. }));
    let mut out = LinkedProgram {
        name: Name::from(name),
        instructions: Vec::with_capacity(total),
        functions: Vec::with_capacity(1 + subs.len()),
        func_info: Vec::with_capacity(sum(|f| f.func_info.len())),
        line_info: Vec::with_capacity(sum(|f| f.line_info.len())),
        core_relocations: Vec::with_capacity(sum(|f| f.core_relocations.len())),
        map_references: Vec::with_capacity(map_count),
        externs: Vec::with_capacity(extern_count),
        endianness: obj.endianness,
    };
    for (f, base) in placed() {
        out.functions.push((f.name.clone(), base));
        out.instructions.extend_from_slice(&f.instructions);
        out.func_info.extend(f.func_info.iter().map(|r| FuncInfo {
            insn: r.insn + base,
            ..*r
        }));
        out.line_info.extend(f.line_info.iter().map(|r| LineInfo {
            insn: r.insn + base,
            ..*r
        }));
        out.core_relocations
            .extend(f.core_relocations.iter().map(|r| CoreRelocation {
                insn: r.insn + base,
                ..r.clone()
            }));
        for r in &f.relocations {
            let insn = r.insn + base;
            match &r.target {
                Reference::Map { map } => out.map_references.push(MapReference {
                    insn,
                    map: map.clone(),
                    kind: MapReferenceKind::Fd,
                }),
                Reference::MapValue { map, offset } => out.map_references.push(MapReference {
                    insn,
                    map: map.clone(),
                    kind: MapReferenceKind::Value { offset: *offset },
                }),
                Reference::Extern { symbol, kind } => out.externs.push(ExternReference {
                    insn,
                    symbol: symbol.clone(),
                    kind: *kind,
                }),
                Reference::Call { .. } | Reference::FunctionPointer { .. } => {}
            }
        }
    }
    let too_large = || ElfError::ProgramTooLarge {
        program: name.to_string(),
        insns: total,
    };
    if i32::try_from(total).is_err() {
        return Err(too_large());
    }
    // Calls and function pointers, once every function has its place.
    for (f, base) in placed() {
        for r in &f.relocations {
            let (is_call, target) = match &r.target {
                Reference::Call { target } => (true, target),
                Reference::FunctionPointer { target } => (false, target),
                _ => continue,
            };
            let insn = r.insn + base;
            let dest = placed()
                .find(|(g, _)| g.id == *target)
                .map(|(_, dest)| dest)
                .ok_or_else(too_large)?;
            let rel = dest as i64 - insn as i64 - 1;
            let slot = out.instructions.get_mut(insn).ok_or_else(too_large)?;
            slot.imm = i32::try_from(rel).map_err(|_| too_large())?;
            if is_call {
                slot.code = OPCODE_CALL;
                slot.src = uapi::BPF_PSEUDO_CALL as u8;
            } else {
                slot.src = uapi::BPF_PSEUDO_FUNC as u8;
                if let Some(next) = out.instructions.get_mut(insn + 1) {
                    next.imm = 0;
                }
            }
        }
    }
    // Each function's records come sorted and functions are placed in order, so the lists are
    // usually sorted already: a stable sort would leave them as they are.
    if !out.func_info.is_sorted_by_key(|r| r.insn) {
        out.func_info.sort_by_key(|r| r.insn);
    }
    if !out.line_info.is_sorted_by_key(|r| r.insn) {
        out.line_info.sort_by_key(|r| r.insn);
    }
    Ok(out)
}

impl LinkedProgram {
    /// Writes map fds into the instructions that refer to maps: `BPF_PSEUDO_MAP_FD` with the fd,
    /// or `BPF_PSEUDO_MAP_VALUE` with the fd and the offset in the value.
    ///
    /// `map_fd` maps a map's name to its fd; the loader passes real fds, a test any numbers. Can
    /// be called again (with other fds) on the same program.
    ///
    /// Fails when a map has no fd, and for what this crate cannot resolve yet: `__kconfig` and
    /// other extern symbols, and CO-RE relocations.
    pub fn relocate(&mut self, map_fd: impl Fn(&str) -> Option<i32>) -> Result<()> {
        if let Some(e) = self.externs.first() {
            return Err(match e.kind {
                ExternKind::Kconfig => ElfError::KconfigUnsupported {
                    program: self.name.to_string(),
                    symbol: e.symbol.to_string(),
                },
                _ => ElfError::ExternUnsupported {
                    program: self.name.to_string(),
                    symbol: e.symbol.to_string(),
                },
            });
        }
        if !self.core_relocations.is_empty() {
            return Err(ElfError::CoreUnsupported {
                program: self.name.to_string(),
                count: self.core_relocations.len(),
            });
        }
        for r in &self.map_references {
            let (src, fd, offset) = map_patch(
                &self.name,
                &self.instructions,
                r.insn,
                &r.map,
                r.kind,
                &map_fd,
            )?;
            if let Some(i) = self.instructions.get_mut(r.insn) {
                i.src = src;
                i.imm = fd;
            }
            if let Some(i) = self.instructions.get_mut(r.insn + 1) {
                i.imm = offset;
            }
        }
        Ok(())
    }

    /// The names of the maps the program uses, each once, in first-use order.
    pub fn maps(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for r in &self.map_references {
            if !out.contains(&r.map.as_str()) {
                out.push(&r.map);
            }
        }
        out
    }

    /// The instructions as bytes, in the object's byte order.
    pub fn bytes(&self) -> Vec<u8> {
        encode_all(&self.instructions, self.endianness)
    }
}
