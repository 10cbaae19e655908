//! `.kconfig` and `__ksym` externs: the `.kconfig` map's layout and contents, and the
//! instructions that read kernel symbols, resolved against the kernel's BTF or kallsyms.
//!
//! Pure: the loader supplies the kernel config, the kernel version, the kernel's BTF and a
//! kallsyms lookup.

use bpf_sys::{uapi, MapType};

use super::types::resolve;
use crate::btf::{Btf, BtfKind, BtfTypeData};
use crate::error::{ElfError, Result};
use crate::insn::Instruction;
use crate::link::{LinkedProgram, MapReference, MapReferenceKind};
use crate::maps::{MapOrigin, MapSpec, VariableSpec};
use crate::name::Name;
use crate::obj::ObjectSpec;
use crate::reloc::ExternKind;

/// The name of the map that holds `.kconfig` externs (as libbpf names it).
pub const KCONFIG_MAP: &str = ".kconfig";

/// How a `.kconfig` extern is typed, which says how its value is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KconfigType {
    /// `bool`: `y`/`m` are 1, `n` is 0.
    Bool,
    /// `enum libbpf_tristate`: `y` 1, `m` 2, `n` 0.
    Tristate,
    /// `char[len]`: a quoted string value, NUL-padded.
    Chars,
    /// An integer of `size` bytes.
    Int {
        /// Whether it is signed.
        signed: bool,
    },
}

/// One `.kconfig` extern and its place in the `.kconfig` map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KconfigExtern {
    /// Its name (`CONFIG_HZ`, `LINUX_KERNEL_VERSION`).
    pub name: String,
    /// Offset in the map's value.
    pub offset: u32,
    /// Size in bytes.
    pub size: u32,
    /// How it is typed.
    pub ty: KconfigType,
    /// Declared `__weak`: may be missing (reads as 0).
    pub weak: bool,
}

fn kconfig_type(btf: &Btf, type_id: u32) -> Option<(KconfigType, u32, u32)> {
    let (_, t) = resolve(btf, type_id)?;
    match (&t.kind, &t.data) {
        (BtfKind::Int, _) => {
            let (enc, _, bits) = t.int_encoding()?;
            let ty = if enc & 4 != 0 {
                KconfigType::Bool
            } else {
                KconfigType::Int {
                    signed: enc & 1 != 0,
                }
            };
            let size = t.size_or_type;
            (bits == size * 8 || enc & 4 != 0).then_some((ty, size, size))
        }
        (BtfKind::Enum, _) if t.name == "libbpf_tristate" => {
            Some((KconfigType::Tristate, t.size_or_type, t.size_or_type))
        }
        (BtfKind::Enum | BtfKind::Enum64, _) => Some((
            KconfigType::Int {
                signed: t.kind_flag,
            },
            t.size_or_type,
            t.size_or_type,
        )),
        (BtfKind::Array, BtfTypeData::Array { elem, nelems, .. }) => {
            let (_, e) = resolve(btf, *elem)?;
            (e.kind == BtfKind::Int && e.size_or_type == 1).then_some((
                KconfigType::Chars,
                *nelems,
                1,
            ))
        }
        _ => None,
    }
}

fn parse_number(v: &str) -> Option<i128> {
    let v = v.trim();
    let (neg, v) = match v.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, v),
    };
    let n = match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        Some(hex) => i128::from_str_radix(hex, 16).ok()?,
        None => v.parse::<i128>().ok()?,
    };
    Some(if neg { -n } else { n })
}

impl KconfigExtern {
    /// Encodes `value` (as written in a kernel config: `y`, `m`, `n`, a number, a quoted
    /// string) into the extern's bytes, or says why it does not fit.
    pub fn encode(&self, value: &str, endian: crate::Endianness) -> Result<Vec<u8>, String> {
        let size = self.size as usize;
        let tri = |v: &str| match v {
            "y" => Some(1u8),
            "m" => Some(2),
            "n" => Some(0),
            _ => None,
        };
        let mut out = vec![0u8; size];
        match self.ty {
            KconfigType::Bool => {
                let v = tri(value).ok_or_else(|| format!("{value:?} is not y, m or n"))?;
                out[0] = u8::from(v != 0);
            }
            KconfigType::Tristate => {
                let v = tri(value).ok_or_else(|| format!("{value:?} is not y, m or n"))?;
                out[..4.min(size)].copy_from_slice(&endian.u32_bytes(u32::from(v))[..4.min(size)]);
            }
            KconfigType::Chars => {
                let s = value
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .ok_or_else(|| format!("{value:?} is not a quoted string"))?;
                if s.len() + 1 > size {
                    return Err(format!("{s:?} does not fit char[{size}]"));
                }
                out[..s.len()].copy_from_slice(s.as_bytes());
            }
            KconfigType::Int { signed } => {
                let n = match tri(value) {
                    Some(v) => i128::from(v),
                    None => {
                        parse_number(value).ok_or_else(|| format!("{value:?} is not a number"))?
                    }
                };
                let bits = size as u32 * 8;
                let fits = if signed {
                    n >= -(1i128 << (bits - 1)) && n < (1i128 << (bits - 1))
                } else {
                    n >= 0 && n < (1i128 << bits)
                };
                if !fits || size > 8 {
                    return Err(format!("{n} does not fit {size} bytes"));
                }
                let bytes = match endian {
                    crate::Endianness::Little => (n as u64).to_le_bytes()[..size].to_vec(),
                    crate::Endianness::Big => (n as u64).to_be_bytes()[8 - size..].to_vec(),
                };
                out.copy_from_slice(&bytes);
            }
        }
        Ok(out)
    }
}

impl ObjectSpec {
    /// The `.kconfig` externs the object declares, laid out as libbpf does (each at its
    /// natural alignment, in declaration order), with the value size of the `.kconfig` map.
    pub fn kconfig_externs(&self) -> Result<(Vec<KconfigExtern>, u32)> {
        let Some(btf) = self.btf.as_ref() else {
            return Ok((Vec::new(), 0));
        };
        let Some(ds) = btf.find(BtfKind::DataSec, KCONFIG_MAP) else {
            return Ok((Vec::new(), 0));
        };
        let Some(BtfTypeData::DataSec(vars)) = btf.type_by_id(ds).map(|t| &t.data) else {
            return Ok((Vec::new(), 0));
        };
        let mut out = Vec::new();
        let mut end = 0u32;
        for v in vars {
            let Some(var) = btf.type_by_id(v.type_id).filter(|t| t.kind == BtfKind::Var) else {
                continue;
            };
            let (ty, size, align) = kconfig_type(btf, var.size_or_type).ok_or_else(|| {
                ElfError::UnresolvedExtern {
                    program: String::new(),
                    symbol: var.name.to_string(),
                    reason: "a .kconfig extern must be bool, enum libbpf_tristate, char[N] or an integer".into(),
                }
            })?;
            let align = align.max(1);
            let offset = end.div_ceil(align) * align;
            end = offset + size;
            out.push(KconfigExtern {
                name: var.name.to_string(),
                offset,
                size,
                ty,
                weak: self.is_weak_extern(&var.name),
            });
        }
        Ok((out, end.div_ceil(8) * 8))
    }

    /// The `.kconfig` map (an array of one frozen, read-only entry), its value filled from
    /// `value` (which gives the config's text for a name: `y`, `1000`, `"str"`); `None` when
    /// the object has no `.kconfig` externs. A missing strong extern is an error; a missing weak
    /// one stays 0.
    pub fn kconfig_map(&self, value: impl Fn(&str) -> Option<String>) -> Result<Option<MapSpec>> {
        let (externs, size) = self.kconfig_externs()?;
        if externs.is_empty() {
            return Ok(None);
        }
        let mut data = vec![0u8; size as usize];
        let mut spec = MapSpec::new(KCONFIG_MAP, MapType::Array, 4, size, 1);
        for e in &externs {
            let fail = |reason: String| ElfError::UnresolvedExtern {
                program: String::new(),
                symbol: e.name.clone(),
                reason,
            };
            match value(&e.name) {
                Some(v) => {
                    let bytes = e.encode(&v, self.endianness).map_err(fail)?;
                    let at = e.offset as usize;
                    data[at..at + bytes.len()].copy_from_slice(&bytes);
                }
                None if e.weak => {}
                None => return Err(fail("not in the kernel config, and not __weak".into())),
            }
            spec.variables.push(VariableSpec {
                name: Name::from(&*e.name),
                offset: e.offset,
                size: e.size,
                type_id: 0,
                is_static: false,
            });
        }
        spec.section = Name::from(KCONFIG_MAP);
        spec.origin = MapOrigin::Data;
        spec.data = Some(data);
        spec.flags = uapi::BPF_F_RDONLY_PROG;
        spec.freeze = true;
        Ok(Some(spec))
    }
}

/// Where a `__ksym` extern resolves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KsymTarget {
    /// A typed variable or a kfunc: its id in the kernel's BTF.
    BtfId(u32),
    /// An untyped (`const void`) variable: its address from kallsyms.
    Address(u64),
    /// Not found, and declared `__weak`: reads as 0 (a kfunc call is poisoned).
    Missing,
}

impl LinkedProgram {
    /// Resolves the program's externs: `.kconfig` reads become references into the `.kconfig`
    /// map (whose layout [`ObjectSpec::kconfig_externs`] gives), typed `__ksym` variables become
    /// `BPF_PSEUDO_BTF_ID` loads of the kernel's `VAR`, kfunc calls `BPF_PSEUDO_KFUNC_CALL`s of
    /// the kernel's `FUNC`, untyped ones the kallsyms address. `kernel` is the kernel's BTF,
    /// `kallsyms` looks up an address.
    ///
    /// On success the externs are consumed, so [`LinkedProgram::relocate`] then only needs map
    /// fds (the `.kconfig` map's among them).
    pub fn resolve_externs(
        &mut self,
        obj: &ObjectSpec,
        kernel: Option<&Btf>,
        kallsyms: impl Fn(&str) -> Option<u64>,
    ) -> Result<()> {
        let kernel = kernel.map(|k| k as &dyn super::CoreTargets);
        self.resolve_externs_with(obj, kernel, kallsyms).map(drop)
    }

    /// [`LinkedProgram::resolve_externs`] against the kernel and its modules: a kfunc that
    /// vmlinux lacks is looked up in each module's BTF ([`CoreTargets::modules`](super::CoreTargets::modules)),
    /// as libbpf does. Returns the BTF object ids of the modules whose kfuncs the program
    /// calls, in `fd_array` order: a call into the module at index `i` has `off` `i + 1` (the
    /// kernel reads `fd_array[off]`, and `off` 0 means vmlinux), so `BPF_PROG_LOAD` needs an
    /// `fd_array` whose slot `i + 1` holds an fd of that BTF object.
    pub fn resolve_externs_with(
        &mut self,
        obj: &ObjectSpec,
        kernel: Option<&dyn super::CoreTargets>,
        kallsyms: impl Fn(&str) -> Option<u64>,
    ) -> Result<Vec<u32>> {
        let mut modules_used: Vec<u32> = Vec::new();
        if self.externs.is_empty() {
            return Ok(modules_used);
        }
        let (kconfig, _) = obj.kconfig_externs()?;
        let local = obj.btf.as_ref();
        let mut insns = self.instructions.clone();
        let mut refs = Vec::new();
        for e in &self.externs {
            let fail = |reason: String| ElfError::UnresolvedExtern {
                program: self.name.to_string(),
                symbol: e.symbol.to_string(),
                reason,
            };
            let weak = obj.is_weak_extern(&e.symbol);
            match e.kind {
                ExternKind::Kconfig => {
                    let k = kconfig
                        .iter()
                        .find(|k| k.name == e.symbol)
                        .ok_or_else(|| fail("not in the .kconfig section's BTF".into()))?;
                    refs.push(MapReference {
                        insn: e.insn,
                        map: Name::from(KCONFIG_MAP),
                        kind: MapReferenceKind::Value { offset: k.offset },
                    });
                }
                ExternKind::Ksym | ExternKind::Kfunc => {
                    let is_func = e.kind == ExternKind::Kfunc;
                    // `const void` (any modifiers of void) is untyped.
                    let typed = is_func
                        || local.is_some_and(|b| {
                            b.find(BtfKind::Var, &e.symbol)
                                .and_then(|id| b.type_by_id(id))
                                .and_then(|v| b.skip_modifiers(v.size_or_type))
                                .is_some_and(|t| t != 0)
                        });
                    let mut off = 0;
                    let target = if typed {
                        let kind = if is_func { BtfKind::Func } else { BtfKind::Var };
                        match kernel.and_then(|k| find_ksym(k, kind, &e.symbol)) {
                            Some((k, id, module)) => {
                                match incompatible(local, k, kind, &e.symbol, id) {
                                    None => {
                                        if let Some(m) = module {
                                            let obj_id = m.btf_obj_id.ok_or_else(|| {
                                                fail(format!(
                                                    "in module {}, whose BTF object id is unknown",
                                                    m.name
                                                ))
                                            })?;
                                            off = fd_array_slot(&mut modules_used, obj_id)
                                                .ok_or_else(|| {
                                                    fail("kfuncs of too many modules".into())
                                                })?;
                                        }
                                        KsymTarget::BtfId(id)
                                    }
                                    // As libbpf: a weak kfunc of another type counts as missing.
                                    Some(_) if weak && is_func => KsymTarget::Missing,
                                    Some(why) => return Err(fail(why)),
                                }
                            }
                            None if weak => KsymTarget::Missing,
                            None => {
                                return Err(fail("not in the kernel's BTF, and not __weak".into()))
                            }
                        }
                    } else {
                        match kallsyms(&e.symbol) {
                            Some(a) => KsymTarget::Address(a),
                            None if weak => KsymTarget::Missing,
                            None => {
                                return Err(fail("not in /proc/kallsyms, and not __weak".into()))
                            }
                        }
                    };
                    patch_ksym(&mut insns, e.insn, is_func, target, off).map_err(fail)?;
                }
            }
        }
        self.instructions = insns;
        self.map_references.extend(refs);
        self.externs.clear();
        Ok(modules_used)
    }
}

/// The typed ksym `name` of `kind` in the kernel's BTF: vmlinux's, else (kfuncs only, as
/// libbpf) the first module's that has it. The BTF it is in, its id there, and its module.
fn find_ksym<'a>(
    targets: &'a dyn super::CoreTargets,
    kind: BtfKind,
    name: &str,
) -> Option<(&'a Btf, u32, Option<&'a super::ModuleBtf>)> {
    let vmlinux = targets.vmlinux();
    if let Some(id) = vmlinux.find(kind, name) {
        return Some((vmlinux, id, None));
    }
    if kind != BtfKind::Func {
        return None;
    }
    targets
        .modules()
        .iter()
        .find_map(|m| Some((&*m.btf, m.btf.find(kind, name)?, Some(m))))
}

/// The `off` of a call into the module whose BTF object is `obj_id`: its index in `used` (added
/// if new) plus one. `None` past what `off` (an `i16`) holds.
fn fd_array_slot(used: &mut Vec<u32>, obj_id: u32) -> Option<i16> {
    let i = match used.iter().position(|&u| u == obj_id) {
        Some(i) => i,
        None => {
            used.push(obj_id);
            used.len() - 1
        }
    };
    i16::try_from(i + 1).ok()
}

/// Why the typed ksym `name` (a `VAR` or `FUNC` of `kind`) cannot be the kernel's type `id`, as
/// libbpf checks it: the variable's type, or the function's prototype, must be compatible by
/// the loose CO-RE rule (same kinds through pointers, arrays and prototypes; integers without
/// bit offsets; structs and enums by kind). `None` when compatible, or when the object has no
/// type for it to compare.
fn incompatible(
    local: Option<&Btf>,
    kernel: &Btf,
    kind: BtfKind,
    name: &str,
    id: u32,
) -> Option<String> {
    let local = local?;
    let l = local.type_by_id(local.find(kind, name)?)?.size_or_type;
    let t = kernel.type_by_id(id)?.size_or_type;
    if super::types::types_compat(local, l, kernel, t, super::types::MAX_LEVEL) {
        return None;
    }
    let what = if kind == BtfKind::Func {
        "prototype"
    } else {
        "type"
    };
    Some(format!(
        "its {what} ({}) is incompatible with the kernel's ({})",
        type_label(local, l),
        type_label(kernel, t)
    ))
}

/// A short label of type `id` for errors: its kind and name after typedefs and modifiers.
fn type_label(btf: &Btf, id: u32) -> String {
    match resolve(btf, id) {
        Some((_, t)) if t.name.is_empty() => format!("{:?}", t.kind).to_lowercase(),
        Some((_, t)) => format!("{} {}", format!("{:?}", t.kind).to_lowercase(), t.name),
        None => format!("type {id}"),
    }
}

/// Patches the extern's load or call at `at`; `off` is a kfunc call's `fd_array` slot (0:
/// vmlinux).
fn patch_ksym(
    insns: &mut [Instruction],
    at: usize,
    is_func: bool,
    target: KsymTarget,
    off: i16,
) -> Result<(), String> {
    let n = insns.len();
    let bad = || format!("instruction {at} of {n} is not the extern's load or call");
    if is_func {
        let i = insns.get_mut(at).ok_or_else(bad)?;
        match target {
            KsymTarget::BtfId(id) => {
                i.src = uapi::BPF_PSEUDO_KFUNC_CALL as u8;
                i.imm = id as i32;
                i.off = off;
            }
            _ => super::poison(i),
        }
        return Ok(());
    }
    if !insns.get(at).is_some_and(|i| i.is_ld_imm64()) || at + 1 >= n {
        return Err(bad());
    }
    let (src, lo, hi) = match target {
        KsymTarget::BtfId(id) => (uapi::BPF_PSEUDO_BTF_ID as u8, id as i32, 0),
        KsymTarget::Address(a) => (0, a as u32 as i32, (a >> 32) as u32 as i32),
        KsymTarget::Missing => (0, 0, 0),
    };
    insns[at].src = src;
    insns[at].imm = lo;
    insns[at + 1].imm = hi;
    Ok(())
}

/// The `DATASEC` of `__ksym` externs.
const KSYMS_SECTION: &str = ".ksyms";

impl ObjectSpec {
    /// Whether the object's BTF declares externs: it has a `.kconfig` or a `.ksyms` `DATASEC`.
    /// Without one, [`ObjectSpec::kconfig_map`] and [`ObjectSpec::btf_for_kernel`] are both
    /// `None`, so a loader can skip them (each looks the sections up again).
    pub fn has_btf_externs(&self) -> bool {
        self.btf.as_ref().is_some_and(|btf| {
            btf.find(BtfKind::DataSec, KCONFIG_MAP).is_some()
                || btf.find(BtfKind::DataSec, KSYMS_SECTION).is_some()
        })
    }

    /// The object's BTF as the kernel accepts it when the object has externs, as libbpf
    /// rewrites it: the `.kconfig` `DATASEC` gets its size and its variables their offsets in
    /// the `.kconfig` map, and become allocated globals; every `.ksyms` entry becomes an
    /// allocated 4-byte `int` variable (a kfunc's `FUNC` is replaced by a placeholder one in the
    /// `DATASEC`, and itself becomes global, its unnamed parameters named). The kernel refuses
    /// extern variables and functions inside a `DATASEC`, extern `FUNC`s anywhere ("Invalid
    /// func linkage") and unnamed parameters of a `FUNC` ("Invalid arg#"). Type ids are kept;
    /// `None` without BTF or without externs: then the object's BTF goes to the kernel as it is
    /// (no copy is made).
    pub fn btf_for_kernel(&self) -> Result<Option<Btf>> {
        let Some(btf) = self.btf.as_ref() else {
            return Ok(None);
        };
        let kconfig_ds = btf.find(BtfKind::DataSec, KCONFIG_MAP);
        let ksyms_ds = btf.find(BtfKind::DataSec, KSYMS_SECTION);
        if kconfig_ds.is_none() && ksyms_ds.is_none() {
            return Ok(None);
        }
        let (kconfig, kconfig_size) = self.kconfig_externs()?;
        let mut types = btf.types().to_vec();
        let allocate = |types: &mut Vec<crate::btf::BtfType>, var: u32, ty: Option<u32>| {
            if let Some(t) = types.get_mut(var as usize) {
                if t.kind == BtfKind::Var {
                    t.data = BtfTypeData::Var { linkage: 1 };
                    if let Some(ty) = ty {
                        t.size_or_type = ty;
                    }
                }
            }
        };
        if let Some(ds) = kconfig_ds {
            let mut vars = match &types[ds as usize].data {
                BtfTypeData::DataSec(v) => v.clone(),
                _ => Vec::new(),
            };
            for v in &mut vars {
                let name = types
                    .get(v.type_id as usize)
                    .map(|t| t.name.clone())
                    .unwrap_or_default();
                if let Some(k) = kconfig.iter().find(|k| k.name == name) {
                    v.offset = k.offset;
                    v.size = k.size;
                }
                allocate(&mut types, v.type_id, None);
            }
            types[ds as usize].size_or_type = kconfig_size;
            types[ds as usize].data = BtfTypeData::DataSec(vars);
        }
        if let Some(ds) = ksyms_ds {
            let int = match types.iter().position(|t| {
                t.kind == BtfKind::Int
                    && t.size_or_type == 4
                    && t.int_encoding().is_some_and(|e| e.1 == 0)
            }) {
                Some(i) => i as u32,
                None => {
                    types.push(crate::btf::BtfType::new(
                        BtfKind::Int,
                        "int",
                        4,
                        BtfTypeData::Int((1 << 24) | 32),
                    ));
                    (types.len() - 1) as u32
                }
            };
            let mut placeholder = None;
            let mut vars = match &types[ds as usize].data {
                BtfTypeData::DataSec(v) => v.clone(),
                _ => Vec::new(),
            };
            for (i, v) in vars.iter_mut().enumerate() {
                if types
                    .get(v.type_id as usize)
                    .is_some_and(|t| t.kind == BtfKind::Func)
                {
                    global_kfunc(&mut types, v.type_id);
                    let id = *placeholder.get_or_insert_with(|| {
                        types.push(crate::btf::BtfType::new(
                            BtfKind::Var,
                            "__ksym_placeholder",
                            int,
                            BtfTypeData::Var { linkage: 1 },
                        ));
                        (types.len() - 1) as u32
                    });
                    v.type_id = id;
                } else {
                    allocate(&mut types, v.type_id, Some(int));
                }
                v.offset = i as u32 * 4;
                v.size = 4;
            }
            types[ds as usize].size_or_type = vars.len() as u32 * 4;
            types[ds as usize].data = BtfTypeData::DataSec(vars);
        }
        Ok(Some(btf.with_types(&types)?))
    }
}

/// Makes the kfunc `FUNC` `id` acceptable to the kernel, as libbpf does: global linkage instead
/// of extern, and a name for each unnamed parameter of its prototype.
fn global_kfunc(types: &mut [crate::btf::BtfType], id: u32) {
    let Some(func) = types.get_mut(id as usize) else {
        return;
    };
    func.vlen = uapi::BTF_FUNC_GLOBAL as u16;
    let proto = func.size_or_type;
    if let Some(BtfTypeData::Params(params)) = types.get_mut(proto as usize).map(|t| &mut t.data) {
        for p in params
            .iter_mut()
            .filter(|p| p.type_id != 0 && p.name.is_empty())
        {
            p.name = Name::from("__ksym_placeholder");
        }
    }
}

#[cfg(test)]
mod has_btf_externs_tests {
    #[test]
    fn objects_without_extern_sections_need_no_kconfig_map_nor_rewritten_btf() {
        assert!(crate::tests::object("core_kconfig").has_btf_externs());
        for stem in ["bench_load", "xdp_btf", "globals_btf", "xdp_legacy"] {
            let obj = crate::tests::object(stem);
            assert!(!obj.has_btf_externs(), "{stem}");
            assert!(obj.btf_for_kernel().unwrap().is_none(), "{stem}");
            assert!(obj.kconfig_map(|_| None).unwrap().is_none(), "{stem}");
        }
    }
}
