//! [`ObjectSpec`]: a whole object, parsed.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::Read;
use std::path::Path;

use crate::btf::{Btf, BtfExt, BtfKind, BtfTypeData};
use crate::data;
use crate::elf::RawElf;
use crate::error::{ElfError, Result};
use crate::insn::Endianness;
use crate::maps::{self, MapOrigin, MapSpec};
use crate::programs::{self, FunctionId, FunctionSpec, ProgramSpec};
use crate::reloc::Context;

/// Everything a clang-built BPF object declares: maps, programs, license, kernel version, BTF.
///
/// Parsing is pure and gives the same result on any kernel; nothing is created. Fields are public
/// so a caller can adjust a spec (a program type for an unknown section, a map's `max_entries`,
/// initial `.rodata` bytes) before handing it to the loader.
#[derive(Debug, Clone)]
pub struct ObjectSpec {
    /// The object's byte order.
    pub endianness: Endianness,
    /// The `license` section (`""` when absent).
    pub license: String,
    /// The `version` section, if any.
    pub kernel_version: Option<u32>,
    /// All maps: legacy `maps` records, BTF `.maps`, then global data, each in section order.
    pub maps: Vec<MapSpec>,
    /// All programs, in section then address order.
    pub programs: Vec<ProgramSpec>,
    /// `.BTF`, fixed up for loading.
    pub btf: Option<Btf>,
    /// `.BTF.ext`.
    pub btf_ext: Option<BtfExt>,
    functions: BTreeMap<FunctionId, FunctionSpec>,
    /// Undefined symbols bound weak (`__weak` externs, allowed to stay unresolved).
    weak_externs: BTreeSet<String>,
}

impl ObjectSpec {
    /// Reads and parses an object file.
    pub fn from_path(path: impl AsRef<Path>) -> Result<ObjectSpec> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| ElfError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        ObjectSpec::parse(&bytes)
    }

    /// Reads an object from a reader (to its end) and parses it.
    pub fn from_reader(mut reader: impl Read) -> Result<ObjectSpec> {
        let mut bytes = Vec::new();
        reader
            .read_to_end(&mut bytes)
            .map_err(|source| ElfError::Io {
                path: "<reader>".into(),
                source,
            })?;
        ObjectSpec::parse(&bytes)
    }

    /// Parses an object from its bytes.
    pub fn parse(bytes: &[u8]) -> Result<ObjectSpec> {
        let elf = RawElf::parse(bytes)?;
        let e = elf.endian;

        let license = elf
            .section_by_name("license")
            .map(|s| {
                let end = s.data.iter().position(|&b| b == 0).unwrap_or(s.data.len());
                String::from_utf8_lossy(s.data.get(..end).unwrap_or_default()).into_owned()
            })
            .unwrap_or_default();
        let kernel_version = match elf.section_by_name("version") {
            Some(s) => Some(e.read_u32(s.data, 0).ok_or_else(|| ElfError::Truncated {
                section: s.name.to_string(),
                offset: 0,
                needed: 4,
                size: s.size,
            })?),
            None => None,
        };

        let mut btf = match elf.section_by_name(".BTF") {
            Some(s) => Some(Btf::parse(s.data)?),
            None => None,
        };
        if let Some(btf) = btf.as_mut() {
            fix_datasecs(&elf, btf);
        }
        let btf_ext = match (elf.section_by_name(".BTF.ext"), btf.as_ref()) {
            (Some(s), Some(btf)) => Some(BtfExt::parse(s.data, btf)?),
            _ => None,
        };

        // Maps.
        let mut all_maps = Vec::new();
        let mut legacy_maps = Vec::new();
        for s in elf
            .sections
            .iter()
            .filter(|s| s.name == "maps" || s.name.starts_with("maps/"))
        {
            let parsed = maps::legacy::parse(&elf, s)?;
            let record = match parsed.first().map(|m| m.origin) {
                Some(MapOrigin::Legacy { record_size }) => record_size as u64,
                _ => 0,
            };
            legacy_maps.push((
                s.index,
                parsed
                    .iter()
                    .enumerate()
                    .map(|(i, m)| (i as u64 * record, m.name.clone()))
                    .collect(),
            ));
            all_maps.extend(parsed);
        }
        let mut btf_maps = None;
        if let Some(s) = elf.section_by_name(".maps") {
            let parsed = maps::btf::parse(&elf, s, btf.as_ref())?;
            let placed = placed_vars(btf.as_ref(), ".maps");
            btf_maps = Some((s.index, placed));
            all_maps.extend(parsed);
        }
        let mut data_sections = HashSet::new();
        let mut string_sections = HashSet::new();
        for s in elf.sections.iter().filter(|s| data::is_data_section(s)) {
            if let Some(m) = data::parse(s, btf.as_ref()) {
                data_sections.insert(s.index);
                if s.flags & u64::from(object::elf::SHF_STRINGS) != 0 {
                    string_sections.insert(s.name.clone());
                }
                all_maps.push(m);
            }
        }
        let mut seen = HashSet::new();
        for m in &all_maps {
            if !seen.insert(m.name.as_str()) {
                return Err(ElfError::InvalidMap {
                    map: m.name.clone(),
                    reason: "declared twice".into(),
                });
            }
        }

        // Functions.
        let mut bounds = Vec::new();
        let mut starts = BTreeSet::new();
        for s in elf.sections.iter().filter(|s| s.is_exec()) {
            let b = programs::bounds(&elf, s)?;
            starts.extend(b.iter().map(|f| FunctionId {
                section: s.index,
                insn: f.start,
            }));
            bounds.push((s, b));
        }
        let kconfig = kconfig_names(btf.as_ref());
        let ctx = Context {
            legacy_maps,
            btf_maps,
            data_sections,
            kconfig,
            function_starts: &starts,
        };
        let mut functions = BTreeMap::new();
        for (s, b) in &bounds {
            for f in programs::functions(&elf, &ctx, s, b)? {
                functions.insert(f.id, f);
            }
        }
        // Merged string sections no program reads (goebpf's pin paths) need no map.
        let used: HashSet<&str> = functions
            .values()
            .flat_map(|f| &f.relocations)
            .filter_map(|r| match &r.target {
                crate::Reference::MapValue { map, .. } => Some(map.as_str()),
                _ => None,
            })
            .collect();
        all_maps.retain(|m| {
            !string_sections.contains(m.name.as_str()) || used.contains(m.name.as_str())
        });
        if let Some(ext) = &btf_ext {
            attach_ext(&elf, ext, &mut functions);
        }

        let programs = functions
            .values()
            .filter(|f| f.global && f.section != ".text")
            .map(|f| ProgramSpec::new(f.clone(), &license, kernel_version))
            .collect();

        let weak_externs = elf
            .symbols
            .iter()
            .filter(|s| s.undefined && s.bind == object::elf::STB_WEAK && !s.name.is_empty())
            .map(|s| s.name.to_string())
            .collect();
        Ok(ObjectSpec {
            weak_externs,
            endianness: e,
            license,
            kernel_version,
            maps: all_maps,
            programs,
            btf,
            btf_ext,
            functions,
        })
    }

    /// Whether `name` is an extern declared `__weak` (it may stay unresolved: it reads as 0).
    pub fn is_weak_extern(&self, name: &str) -> bool {
        self.weak_externs.contains(name)
    }

    /// The map with this name.
    pub fn map(&self, name: &str) -> Option<&MapSpec> {
        self.maps.iter().find(|m| m.name == name)
    }

    /// The map with this name, to change before loading.
    pub fn map_mut(&mut self, name: &str) -> Option<&mut MapSpec> {
        self.maps.iter_mut().find(|m| m.name == name)
    }

    /// The program with this name.
    pub fn program(&self, name: &str) -> Option<&ProgramSpec> {
        self.programs.iter().find(|p| p.name == name)
    }

    /// The program with this name, to change before loading.
    pub fn program_mut(&mut self, name: &str) -> Option<&mut ProgramSpec> {
        self.programs.iter_mut().find(|p| p.name == name)
    }

    /// Links the named program (see [`ProgramSpec::link`]).
    pub fn link(&self, program: &str) -> Result<crate::LinkedProgram> {
        self.program(program)
            .ok_or_else(|| ElfError::ProgramNotFound {
                name: program.to_string(),
            })?
            .link(self)
    }

    /// Any function of the object, programs and subprograms alike.
    pub fn function(&self, id: FunctionId) -> Option<&FunctionSpec> {
        self.functions.get(&id)
    }

    /// Every function of the object, in section then address order.
    pub fn functions(&self) -> impl Iterator<Item = &FunctionSpec> {
        self.functions.values()
    }

    /// The functions that are not programs (`.text` and `static` functions).
    pub fn subprograms(&self) -> impl Iterator<Item = &FunctionSpec> {
        self.functions
            .values()
            .filter(|f| !f.global || f.section == ".text")
    }
}

/// (offset, size, name) of each variable of a `DATASEC`.
fn placed_vars(btf: Option<&Btf>, section: &str) -> Vec<(u64, u64, String)> {
    let Some(btf) = btf else { return Vec::new() };
    let Some(BtfTypeData::DataSec(vars)) = btf
        .find(BtfKind::DataSec, section)
        .and_then(|id| btf.type_by_id(id))
        .map(|t| &t.data)
    else {
        return Vec::new();
    };
    vars.iter()
        .filter_map(|v| {
            let name = btf.type_by_id(v.type_id)?.name.to_string();
            Some((u64::from(v.offset), u64::from(v.size), name))
        })
        .collect()
}

fn kconfig_names(btf: Option<&Btf>) -> HashSet<String> {
    placed_vars(btf, ".kconfig")
        .into_iter()
        .map(|v| v.2)
        .collect()
}

/// clang leaves `DATASEC` sizes and global variables' offsets at 0; the symbol table has them.
fn fix_datasecs(elf: &RawElf<'_>, btf: &mut Btf) {
    let mut fixes = Vec::new();
    for (id, t) in btf.types().iter().enumerate() {
        let BtfTypeData::DataSec(vars) = &t.data else {
            continue;
        };
        let Some(section) = elf.section_by_name(&t.name) else {
            continue;
        };
        let Ok(size) = u32::try_from(section.size) else {
            continue;
        };
        let mut offsets = Vec::new();
        for (i, v) in vars.iter().enumerate() {
            let Some(var) = btf.type_by_id(v.type_id) else {
                continue;
            };
            let sym = elf
                .symbols_in(section.index)
                .find(|s| !s.is_section() && *s.name == *var.name);
            if let Some(off) = sym.and_then(|s| u32::try_from(s.value).ok()) {
                offsets.push((i, off));
            }
        }
        fixes.push((id as u32, size, offsets));
    }
    for (id, size, offsets) in fixes {
        btf.fix_datasec(id, size, &offsets);
    }
}

/// Hands each `.BTF.ext` record to the function that contains its instruction.
fn attach_ext(elf: &RawElf<'_>, ext: &BtfExt, functions: &mut BTreeMap<FunctionId, FunctionSpec>) {
    fn owner(
        functions: &mut BTreeMap<FunctionId, FunctionSpec>,
        section: usize,
        insn: usize,
    ) -> Option<(&mut FunctionSpec, usize)> {
        let (id, f) = functions
            .range_mut(..=FunctionId { section, insn })
            .next_back()?;
        (id.section == section && insn < id.insn + f.instructions.len()).then_some(())?;
        let start = id.insn;
        Some((f, insn - start))
    }
    let index_of = |name: &str| {
        elf.sections
            .iter()
            .find(|s| s.name == name && s.is_exec())
            .map(|s| s.index)
    };
    for (sec, recs) in &ext.func_info {
        let Some(s) = index_of(sec) else { continue };
        for r in recs {
            if let Some((f, insn)) = owner(functions, s, r.insn) {
                f.func_info.push(crate::FuncInfo { insn, ..*r });
            }
        }
    }
    for (sec, recs) in &ext.line_info {
        let Some(s) = index_of(sec) else { continue };
        for r in recs {
            if let Some((f, insn)) = owner(functions, s, r.insn) {
                f.line_info.push(crate::LineInfo { insn, ..*r });
            }
        }
    }
    for (sec, recs) in &ext.core_relocations {
        let Some(s) = index_of(sec) else { continue };
        for r in recs {
            if let Some((f, insn)) = owner(functions, s, r.insn) {
                f.core_relocations
                    .push(crate::CoreRelocation { insn, ..r.clone() });
            }
        }
    }
}
