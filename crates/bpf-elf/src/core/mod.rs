//! CO-RE: relocating a program compiled against one set of types (its own BTF, usually from
//! `vmlinux.h`) to another (the running kernel's BTF), as libbpf does.
//!
//! For each `.BTF.ext` CO-RE record of a [`LinkedProgram`], [`LinkedProgram::relocate_core`]
//! parses the access string against the object's BTF (the local spec), finds the candidate
//! types of the target BTF (same kind, same name up to a `___flavor` suffix), matches the
//! access in each (members by name, through anonymous members, with the kernel's field
//! compatibility rules), computes the value the instruction needs (offset, size, existence,
//! signedness, bitfield shifts, type ids and sizes, enumerator values), checks that every
//! matching candidate agrees (ambiguity is an error), and patches the instruction.
//!
//! A relocation without a match patches the instruction with libbpf's poison, a call to the
//! helper `0xbad2310`: if the instruction is dead code (guarded by `bpf_core_field_exists`) the
//! verifier removes it; if not, the verifier rejects the program at that instruction, and the
//! loader maps the instruction back to the relocation through the [`CoreReport`].
//!
//! Pure: both BTFs come in as parsed values; reading the kernel's is the loader's job.

mod candidates;
mod externs;
mod fields;
mod types;

pub use externs::{KconfigExtern, KconfigType, KsymTarget, KCONFIG_MAP};

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_modules;

use bpf_sys::uapi;

use crate::btf::Btf;
use crate::error::{ElfError, Result};
use crate::insn::{Endianness, Instruction};
use crate::link::LinkedProgram;
use crate::CoreRelocation;

use fields::{FieldValue, Spec};

/// The helper id libbpf writes into an instruction whose relocation found no target
/// (`0xbad2310`, "bad relo"); the verifier reports it as `invalid func unknown#195896080`.
pub const POISON_HELPER: i32 = 0xbad2310;

/// What a CO-RE relocation computes (`enum bpf_core_relo_kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[doc(alias = "bpf_core_relo_kind")]
pub enum CoreRelocationKind {
    /// `BPF_CORE_FIELD_BYTE_OFFSET`: the field's offset (`BPF_CORE_READ`, `__builtin_preserve_access_index`).
    FieldByteOffset,
    /// `BPF_CORE_FIELD_BYTE_SIZE`: the field's size (`bpf_core_field_size`).
    FieldByteSize,
    /// `BPF_CORE_FIELD_EXISTS`: 1 if the field exists (`bpf_core_field_exists`).
    FieldExists,
    /// `BPF_CORE_FIELD_SIGNED`: 1 if the field is signed.
    FieldSigned,
    /// `BPF_CORE_FIELD_LSHIFT_U64`: left shift to read a bitfield from a u64.
    FieldLshiftU64,
    /// `BPF_CORE_FIELD_RSHIFT_U64`: right shift to read a bitfield from a u64.
    FieldRshiftU64,
    /// `BPF_CORE_TYPE_ID_LOCAL`: the type's id in the object's BTF.
    TypeIdLocal,
    /// `BPF_CORE_TYPE_ID_TARGET`: the type's id in the target BTF (`bpf_core_type_id_kernel`).
    TypeIdTarget,
    /// `BPF_CORE_TYPE_EXISTS`: 1 if the type exists (`bpf_core_type_exists`).
    TypeExists,
    /// `BPF_CORE_TYPE_SIZE`: the type's size (`bpf_core_type_size`).
    TypeSize,
    /// `BPF_CORE_ENUMVAL_EXISTS`: 1 if the enumerator exists (`bpf_core_enum_value_exists`).
    EnumvalExists,
    /// `BPF_CORE_ENUMVAL_VALUE`: the enumerator's value (`bpf_core_enum_value`).
    EnumvalValue,
    /// `BPF_CORE_TYPE_MATCHES`: 1 if the type matches strictly (`bpf_core_type_matches`).
    TypeMatches,
}

pub(crate) type Kind = CoreRelocationKind;

impl CoreRelocationKind {
    /// From the record's `kind` field.
    pub fn from_raw(v: u32) -> Option<Self> {
        use CoreRelocationKind::*;
        Some(match v {
            0 => FieldByteOffset,
            1 => FieldByteSize,
            2 => FieldExists,
            3 => FieldSigned,
            4 => FieldLshiftU64,
            5 => FieldRshiftU64,
            6 => TypeIdLocal,
            7 => TypeIdTarget,
            8 => TypeExists,
            9 => TypeSize,
            10 => EnumvalExists,
            11 => EnumvalValue,
            12 => TypeMatches,
            _ => return None,
        })
    }

    /// libbpf's name for it (`byte_off`, `exists`, `enumval_value`...).
    pub fn name(self) -> &'static str {
        use CoreRelocationKind::*;
        match self {
            FieldByteOffset => "byte_off",
            FieldByteSize => "byte_sz",
            FieldExists => "field_exists",
            FieldSigned => "signed",
            FieldLshiftU64 => "lshift_u64",
            FieldRshiftU64 => "rshift_u64",
            TypeIdLocal => "local_type_id",
            TypeIdTarget => "target_type_id",
            TypeExists => "type_exists",
            TypeSize => "type_size",
            EnumvalExists => "enumval_exists",
            EnumvalValue => "enumval_value",
            TypeMatches => "type_matches",
        }
    }

    /// Whether it is about a field.
    pub fn is_field_based(self) -> bool {
        (self as u32) <= Kind::FieldRshiftU64 as u32
    }

    /// Whether it is about a type.
    pub fn is_type_based(self) -> bool {
        matches!(
            self,
            Kind::TypeIdLocal
                | Kind::TypeIdTarget
                | Kind::TypeExists
                | Kind::TypeSize
                | Kind::TypeMatches
        )
    }

    /// Whether it is about an enumerator.
    pub fn is_enumval_based(self) -> bool {
        matches!(self, Kind::EnumvalExists | Kind::EnumvalValue)
    }
}

/// What one CO-RE relocation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreOutcome {
    /// The record, as linked.
    pub relocation: CoreRelocation,
    /// What it computes.
    pub kind: CoreRelocationKind,
    /// The local type's name.
    pub type_name: String,
    /// The value the compiler wrote (computed from the local BTF).
    pub local_value: u64,
    /// The value written for the target.
    pub target_value: u64,
    /// The target type it resolved to, if any.
    pub target_type_id: Option<u32>,
    /// The BTF the target type came from (vmlinux or a module), if any.
    pub target_origin: Option<CoreTargetOrigin>,
    /// How many target candidates matched.
    pub candidates: usize,
    /// Whether the instruction was poisoned (no target found).
    pub poisoned: bool,
}

impl std::fmt::Display for CoreOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "co-re relocation {} of {} (access {}) at instruction {}",
            self.kind.name(),
            self.type_name,
            self.relocation.access,
            self.relocation.insn
        )?;
        if self.poisoned {
            write!(f, ": no matching target type or field")
        } else {
            write!(f, ": {} -> {}", self.local_value, self.target_value)
        }
    }
}

/// Every CO-RE relocation applied to a program, in record order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CoreReport {
    /// One outcome per record.
    pub outcomes: Vec<CoreOutcome>,
}

impl CoreReport {
    /// The relocations that poisoned their instruction.
    pub fn poisoned(&self) -> impl Iterator<Item = &CoreOutcome> {
        self.outcomes.iter().filter(|o| o.poisoned)
    }

    /// The poisoned relocation at instruction `insn` (what a verifier error there means).
    pub fn poisoned_at(&self, insn: usize) -> Option<&CoreOutcome> {
        self.poisoned().find(|o| {
            o.relocation.insn == insn || (o.relocation.insn + 1 == insn && o.kind.is_type_based())
        })
    }
}

/// The result of one relocation against one target spec (`bpf_core_relo_res`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Res {
    orig: u64,
    new: u64,
    poison: bool,
    validate: bool,
    orig_sz: u32,
    new_sz: u32,
    fail_memsz_adjust: bool,
}

struct Ctx<'a> {
    local: &'a Btf,
    target: &'a Btf,
    endian: Endianness,
}

/// Which target BTF a relocation resolved into.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CoreTargetOrigin {
    /// The main target: the kernel's `vmlinux` BTF, or the BTF file the user supplied.
    Vmlinux,
    /// A kernel module's split BTF.
    Module {
        /// The module's name (`/sys/kernel/btf/<name>`).
        name: String,
        /// The kernel's id of the module's BTF object, when known.
        btf_obj_id: Option<u32>,
    },
}

/// A kernel module's BTF, split on top of vmlinux's ([`Btf::parse_split`]).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ModuleBtf {
    /// The module's name.
    pub name: String,
    /// The kernel's id of its BTF object, when known (what `fd_array` and `BPF_PSEUDO_BTF_ID`
    /// loads of module types need).
    pub btf_obj_id: Option<u32>,
    /// Its types, vmlinux's as base.
    pub btf: std::sync::Arc<Btf>,
}

impl ModuleBtf {
    /// A module's BTF.
    pub fn new(name: impl Into<String>, btf: std::sync::Arc<Btf>, btf_obj_id: Option<u32>) -> Self {
        ModuleBtf {
            name: name.into(),
            btf_obj_id,
            btf,
        }
    }
}

/// Where CO-RE looks for target types: the main target BTF, then, for a local type without
/// candidates there, the kernel modules' BTF (as libbpf does).
pub trait CoreTargets {
    /// The main target (vmlinux, or a user-supplied file).
    fn vmlinux(&self) -> &Btf;
    /// The modules' BTF. Asked only when a local type has no candidate in
    /// [`CoreTargets::vmlinux`], so an implementation may read them then.
    fn modules(&self) -> &[ModuleBtf] {
        &[]
    }
}

impl CoreTargets for Btf {
    fn vmlinux(&self) -> &Btf {
        self
    }
}

/// A candidate: the module it comes from (`None`: vmlinux) and its type id.
type Cand = (Option<usize>, u32);

impl LinkedProgram {
    /// Applies the program's CO-RE relocations: `local` is the object's BTF (the types the
    /// program was compiled against), `target` the BTF of the kernel it will run on.
    ///
    /// On success the records are consumed (so [`LinkedProgram::relocate`] no longer refuses
    /// the program) and the report says what each did; poisoned instructions are in it. On
    /// error nothing is changed. Pure: the same inputs give the same instructions.
    pub fn relocate_core(&mut self, local: &Btf, target: &Btf) -> Result<CoreReport> {
        self.relocate_core_with(local, target)
    }

    /// [`LinkedProgram::relocate_core`] against vmlinux and kernel modules: candidates come
    /// from `targets.vmlinux()`, and only for a local type without any there from every
    /// module of `targets.modules()`. Each outcome says which BTF its target came from.
    pub fn relocate_core_with(
        &mut self,
        local: &Btf,
        targets: &dyn CoreTargets,
    ) -> Result<CoreReport> {
        let ctx = Ctx {
            local,
            target: targets.vmlinux(),
            endian: self.endianness,
        };
        let mut insns = self.instructions.clone();
        let mut report = CoreReport::default();
        for (index, r) in self.core_relocations.iter().enumerate() {
            let fail = |reason: String| ElfError::CoreRelocation {
                program: self.name.to_string(),
                index,
                insn: r.insn,
                type_name: local
                    .type_by_id(r.type_id)
                    .map(|t| t.name.to_string())
                    .unwrap_or_default(),
                access: r.access.clone(),
                reason,
            };
            let outcome = relocate_one(&ctx, targets, r, &mut insns).map_err(fail)?;
            report.outcomes.push(outcome);
        }
        self.instructions = insns;
        self.core_relocations.clear();
        Ok(report)
    }
}

fn relocate_one(
    ctx: &Ctx<'_>,
    targets: &dyn CoreTargets,
    r: &CoreRelocation,
    insns: &mut [Instruction],
) -> Result<CoreOutcome, String> {
    let kind =
        Kind::from_raw(r.kind).ok_or_else(|| format!("unknown relocation kind {}", r.kind))?;
    let lt = ctx
        .local
        .type_by_id(r.type_id)
        .ok_or_else(|| format!("no local type {}", r.type_id))?;
    let local = fields::parse_local(ctx.local, r.type_id, &r.access, kind)?;
    let mut outcome = CoreOutcome {
        relocation: r.clone(),
        kind,
        type_name: lt.name.to_string(),
        local_value: 0,
        target_value: 0,
        target_type_id: None,
        target_origin: None,
        candidates: 0,
        poisoned: false,
    };
    let res = if kind == Kind::TypeIdLocal {
        Res {
            orig: u64::from(r.type_id),
            new: u64::from(r.type_id),
            ..Res::default()
        }
    } else {
        if lt.name.is_empty() {
            return Err("co-re relocations of anonymous types are not supported".into());
        }
        let mut cands: Vec<Cand> = candidates::find(ctx.local, r.type_id, ctx.target)
            .map(|id| (None, id))
            .collect();
        let modules = if cands.is_empty() {
            targets.modules()
        } else {
            &[]
        };
        for (i, m) in modules.iter().enumerate() {
            let found = candidates::find(ctx.local, r.type_id, &m.btf);
            cands.extend(found.map(|id| (Some(i), id)));
        }
        let mut chosen: Option<(Res, Spec, Option<usize>)> = None;
        for (module, cand) in cands {
            let cctx = Ctx {
                local: ctx.local,
                target: match module {
                    Some(i) => &modules[i].btf,
                    None => ctx.target,
                },
                endian: ctx.endian,
            };
            let Some(spec) = candidates::match_spec(&cctx, &local, cand, kind) else {
                continue;
            };
            let res = calc(&cctx, kind, &local, Some(&spec))?;
            outcome.candidates += 1;
            match &chosen {
                None => chosen = Some((res, spec, module)),
                Some((prev, prev_spec, _)) => {
                    if kind.is_field_based() && prev_spec.bit_offset != spec.bit_offset {
                        return Err(format!(
                            "field offset ambiguity: candidates [{}] and [{}] put it at bit {} and {}",
                            prev_spec.root_type_id, spec.root_type_id, prev_spec.bit_offset, spec.bit_offset
                        ));
                    }
                    if prev.poison != res.poison || prev.new != res.new {
                        return Err(format!(
                            "relocation decision ambiguity: candidates [{}] and [{}] give {} and {}",
                            prev_spec.root_type_id, spec.root_type_id, prev.new, res.new
                        ));
                    }
                }
            }
        }
        match chosen {
            Some((res, spec, module)) => {
                outcome.target_type_id = Some(spec.root_type_id);
                outcome.target_origin = Some(match module.and_then(|i| modules.get(i)) {
                    Some(m) => CoreTargetOrigin::Module {
                        name: m.name.clone(),
                        btf_obj_id: m.btf_obj_id,
                    },
                    None => CoreTargetOrigin::Vmlinux,
                });
                res
            }
            None => calc(ctx, kind, &local, None)?,
        }
    };
    outcome.local_value = res.orig;
    outcome.target_value = res.new;
    outcome.poisoned = patch(insns, r.insn, &res, kind)?;
    Ok(outcome)
}

/// `bpf_core_calc_relo`: the values for one target spec (`None`: no target found).
fn calc(ctx: &Ctx<'_>, kind: Kind, local: &Spec, targ: Option<&Spec>) -> Result<Res, String> {
    let mut res = Res {
        validate: true,
        ..Res::default()
    };
    if kind.is_field_based() {
        if kind == Kind::FieldExists {
            res.orig = 1;
            res.new = u64::from(targ.is_some());
            return Ok(res);
        }
        let l = fields::field_value(ctx.local, local, kind, ctx.endian)?;
        res.orig = l.value;
        res.orig_sz = l.mem_size;
        res.validate = l.validate;
        let Some(targ) = targ else {
            res.poison = true;
            return Ok(res);
        };
        let t: FieldValue = fields::field_value(ctx.target, targ, kind, ctx.endian)?;
        res.new = t.value;
        res.new_sz = t.mem_size;
        if res.orig_sz != res.new_sz {
            let ot = ctx.local.type_by_id(l.mem_type);
            let nt = ctx.target.type_by_id(t.mem_type);
            let both =
                |f: &dyn Fn(&crate::btf::BtfType) -> bool| ot.is_some_and(f) && nt.is_some_and(f);
            let ptr = |t: &crate::btf::BtfType| t.kind == crate::btf::BtfKind::Ptr;
            let unsigned_int =
                |t: &crate::btf::BtfType| t.int_encoding().is_some_and(|e| e.0 & 1 == 0);
            res.fail_memsz_adjust = !(both(&ptr) || both(&unsigned_int));
        }
    } else if kind.is_type_based() {
        res.orig = type_value(ctx.local, kind, local.root_type_id)?;
        res.new = match targ {
            Some(t) => type_value(ctx.target, kind, t.root_type_id)?,
            None => 0,
        };
    } else {
        let value = |btf: &Btf, spec: &Spec| -> Result<u64, String> {
            let acc = spec.accessors.first().ok_or("empty spec")?;
            match btf.type_by_id(acc.type_id).map(|t| &t.data) {
                Some(crate::btf::BtfTypeData::Enum(v)) => v
                    .get(acc.idx as usize)
                    .map(|e| e.1)
                    .ok_or_else(|| "enumerator out of range".to_string()),
                _ => Err("not an enum".into()),
            }
        };
        if kind == Kind::EnumvalExists {
            res.orig = 1;
            res.new = u64::from(targ.is_some());
        } else {
            res.orig = value(ctx.local, local)?;
            match targ {
                Some(t) => res.new = value(ctx.target, t)?,
                None => res.poison = true,
            }
        }
    }
    Ok(res)
}

fn type_value(btf: &Btf, kind: Kind, id: u32) -> Result<u64, String> {
    Ok(match kind {
        Kind::TypeIdTarget => u64::from(id),
        Kind::TypeExists | Kind::TypeMatches => 1,
        Kind::TypeSize => u64::from(btf.size_of(id).ok_or("type without a size")?),
        _ => return Err(format!("{} is not a type relocation", kind.name())),
    })
}

pub(super) fn poison(insn: &mut Instruction) {
    *insn = Instruction {
        code: (uapi::BPF_JMP | uapi::BPF_CALL) as u8,
        dst: 0,
        src: 0,
        off: 0,
        imm: POISON_HELPER,
    };
}

fn size_bytes(code: u8) -> Option<u32> {
    Some(match u32::from(code) & 0x18 {
        uapi::BPF_B => 1,
        uapi::BPF_H => 2,
        uapi::BPF_W => 4,
        uapi::BPF_DW => 8,
        _ => return None,
    })
}

fn size_code(bytes: u32) -> Option<u8> {
    Some(match bytes {
        1 => uapi::BPF_B,
        2 => uapi::BPF_H,
        4 => uapi::BPF_W,
        8 => uapi::BPF_DW,
        _ => return None,
    } as u8)
}

/// `bpf_core_patch_insn`: writes the value (or the poison); returns whether it poisoned.
fn patch(insns: &mut [Instruction], at: usize, res: &Res, kind: Kind) -> Result<bool, String> {
    let insn = *insns
        .get(at)
        .ok_or_else(|| format!("instruction {at} is outside the program"))?;
    let ldimm64 = insn.is_ld_imm64();
    let do_poison = |insns: &mut [Instruction]| {
        if ldimm64 {
            if let Some(next) = insns.get_mut(at + 1) {
                poison(next);
            }
        }
        if let Some(i) = insns.get_mut(at) {
            poison(i);
        }
        Ok(true)
    };
    if res.poison {
        return do_poison(insns);
    }
    let class = u32::from(insn.code) & 0x07;
    match class {
        uapi::BPF_ALU | uapi::BPF_ALU64 => {
            if u32::from(insn.code) & uapi::BPF_X != 0 {
                return Err("relocated ALU instruction does not take an immediate".into());
            }
            if res.validate
                && insn.imm as u32 as u64 != res.orig
                && insn.imm as i64 as u64 != res.orig
            {
                return Err(format!(
                    "instruction has immediate {}, the local type says {}",
                    insn.imm, res.orig
                ));
            }
            insns[at].imm = res.new as i32;
        }
        uapi::BPF_LDX | uapi::BPF_ST | uapi::BPF_STX => {
            if res.validate && insn.off as i64 as u64 != res.orig {
                return Err(format!(
                    "instruction has offset {}, the local type says {}",
                    insn.off, res.orig
                ));
            }
            if res.new > i16::MAX as u64 {
                return Err(format!("offset {} does not fit an instruction", res.new));
            }
            if res.fail_memsz_adjust {
                return do_poison(insns);
            }
            insns[at].off = res.new as i16;
            if res.new_sz != res.orig_sz && kind == Kind::FieldByteOffset {
                if size_bytes(insn.code) != Some(res.orig_sz) {
                    return Err(format!(
                        "instruction accesses {:?} bytes, the local field has {}",
                        size_bytes(insn.code),
                        res.orig_sz
                    ));
                }
                let sz = size_code(res.new_sz)
                    .ok_or_else(|| format!("no load or store of {} bytes", res.new_sz))?;
                insns[at].code = (insn.code & !0x18) | sz;
            }
        }
        uapi::BPF_LD => {
            let next = insns.get(at + 1).copied();
            let Some(next) = next.filter(|n| {
                ldimm64
                    && insn.src == 0
                    && insn.off == 0
                    && n.code == 0
                    && n.src == 0
                    && n.dst == 0
                    && n.off == 0
            }) else {
                return Err("relocated instruction is not a plain 64-bit immediate load".into());
            };
            let imm = u64::from(insn.imm as u32) | (u64::from(next.imm as u32) << 32);
            if res.validate && imm != res.orig {
                return Err(format!(
                    "instruction loads {imm}, the local type says {}",
                    res.orig
                ));
            }
            insns[at].imm = res.new as u32 as i32;
            insns[at + 1].imm = (res.new >> 32) as u32 as i32;
        }
        _ => return Err(format!("cannot relocate opcode {:#04x}", insn.code)),
    }
    Ok(false)
}
