//! [`ObjectSpec`]: a whole object, parsed.

use std::collections::{BTreeSet, HashSet};
use std::io::Read;
use std::path::Path;

use crate::btf::{Btf, BtfTypeData, ExtSink, RawName, Record, Records};
use crate::data;
use crate::elf::{RawElf, RawSection, RawSymbol};
use crate::error::{ElfError, Result};
use crate::insn::Endianness;
use crate::maps::{self, MapSpec};
use crate::name::Name;
use crate::programs::{self, FunctionId, FunctionSpec, ProgramSpec};
use crate::reloc::{Context, LegacyMaps, LegacySections, PlacedVars};

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
    pub license: Name,
    /// The `version` section, if any.
    pub kernel_version: Option<u32>,
    /// All maps: legacy `maps` records, BTF `.maps`, then global data, each in section order.
    pub maps: Vec<MapSpec>,
    /// All programs, in section then address order.
    pub programs: Vec<ProgramSpec>,
    /// `.BTF`, fixed up for loading.
    pub btf: Option<Btf>,
    /// Every function, sorted by id (section, then address).
    functions: Vec<Stored>,
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
        let parsed = RawElf::parse(bytes);
        // Borrowed where it was parsed: moving it out of the `Result` copied it twice.
        let elf = match parsed {
            Ok(ref elf) => elf,
            Err(e) => return Err(e),
        };
        let e = elf.endian;

        // The sections looked up by name (the first of each name, as `section_by_name`).
        let mut named: [Option<&RawSection<'_>>; 5] = [None; 5];
        for s in &elf.sections {
            let slot = match s.name.as_ref() {
                "license" => 0,
                "version" => 1,
                ".BTF" => 2,
                ".BTF.ext" => 3,
                ".maps" => 4,
                _ => continue,
            };
            if let Some(n) = named.get_mut(slot) {
                n.get_or_insert(s);
            }
        }
        let [license_s, version_s, btf_s, ext_s, maps_s] = named;

        let license = license_s
            .map(|s| {
                let end = s.data.iter().position(|&b| b == 0).unwrap_or(s.data.len());
                Name::from_bytes(s.data.get(..end).unwrap_or_default())
            })
            .unwrap_or_default();
        let kernel_version = match version_s {
            Some(s) => Some(e.read_u32(s.data, 0).ok_or_else(|| ElfError::Truncated {
                section: s.name.to_string(),
                offset: 0,
                needed: 4,
                size: s.size,
            })?),
            None => None,
        };

        let mut btf = match btf_s {
            Some(s) => Some(Btf::parse(s.data)?),
            None => None,
        };
        let kconfig = btf.as_mut().and_then(|btf| fix_datasecs(elf, btf));

        // Maps.
        // Symbols of one section, sorted: scratch space for legacy maps and functions.
        let mut scratch = Vec::new();
        let mut all_maps = Vec::new();
        let mut legacy_maps = LegacySections::default();
        for s in elf
            .sections
            .iter()
            .filter(|s| s.name == "maps" || s.name.starts_with("maps/"))
        {
            let first = all_maps.len();
            let record = maps::legacy::parse(elf, s, &mut scratch, &mut all_maps)?;
            legacy_maps.push(LegacyMaps {
                section: s.index,
                maps: first..all_maps.len(),
                record: record as u64,
            });
        }
        let mut btf_maps = None;
        if let Some(s) = maps_s {
            let first = all_maps.len();
            let placed = maps::btf::parse(elf, s, btf.as_ref(), &mut all_maps)?;
            // Each variable of the `.maps` `DATASEC` is one of these maps, in order, and has its
            // name: relocations find them there, without building the BTF types for names.
            btf_maps = Some((s.index, first, placed));
        }
        let mut data_sections = Vec::new();
        let mut string_sections = Vec::new();
        for s in elf.sections.iter().filter(|s| data::is_data_section(s)) {
            if let Some(m) = data::parse(s, btf.as_ref())? {
                data_sections.push(s.index);
                if s.flags & u64::from(object::elf::SHF_STRINGS) != 0 {
                    string_sections.push(s.name.as_ref());
                }
                all_maps.push(m);
            }
        }
        if let Some(m) = first_duplicate(&all_maps) {
            return Err(ElfError::InvalidMap {
                map: m.name.to_string(),
                reason: "declared twice".into(),
            });
        }

        // Functions: all of them first (relocations name functions of any section).
        let mut functions = Vec::new();
        for s in elf.sections.iter().filter(|s| s.is_exec()) {
            // Sections in index order, functions in address order: `functions` stays sorted.
            programs::functions(elf, s, &mut scratch, &mut functions)?;
        }
        let ctx = Context {
            maps: &all_maps,
            legacy_maps,
            btf_maps: btf_maps.map(|(section, first, ranges)| {
                let maps = all_maps.get(first..).unwrap_or_default();
                let placed = ranges.iter().zip(maps);
                (
                    section,
                    placed
                        .map(|(p, m)| (p.offset, p.size, m.name.as_str()))
                        .collect(),
                )
            }),
            data_sections,
            kconfig: kconfig_names(btf.as_ref(), kconfig),
        };
        // Every code section, also one without functions: its relocations are still checked.
        let mut start = 0;
        for s in elf.sections.iter().filter(|s| s.is_exec()) {
            let n = functions
                .get(start..)
                .unwrap_or_default()
                .iter()
                .take_while(|f| f.id.section == s.index)
                .count();
            programs::relocate(elf, &ctx, s, &mut functions, start..start + n)?;
            start += n;
        }
        drop(ctx);
        // Merged string sections no program reads (goebpf's pin paths) need no map.
        if !string_sections.is_empty() {
            let used = |map: &str| {
                functions.iter().flat_map(|f| &f.relocations).any(
                    |r| matches!(&r.target, crate::Reference::MapValue { map: m, .. } if m == map),
                )
            };
            all_maps.retain(|m| !string_sections.contains(&m.name.as_str()) || used(&m.name));
        }
        // `.BTF.ext` (read only with `.BTF`, which holds its strings).
        if let (Some(s), Some(btf)) = (ext_s, btf.as_ref()) {
            let mut sink = AttachExt {
                elf,
                functions: &mut functions,
                last: None,
            };
            crate::btf::visit_ext(s.data, btf, &mut sink)?;
        }

        // Programs own their function; the object keeps every other one.
        let program_count = functions.iter().filter(|f| is_program(f)).count();
        let mut programs: Vec<ProgramSpec> = Vec::with_capacity(program_count);
        let functions = functions
            .into_iter()
            .map(|f| {
                if !is_program(&f) {
                    return Stored::Function(f);
                }
                let id = f.id;
                // Programs of one section are next to each other: its name is read once.
                let spec = match programs.last() {
                    Some(prev) if prev.section == f.section => ProgramSpec::in_section_of(prev, f),
                    _ => ProgramSpec::new(f, &license, kernel_version),
                };
                programs.push(spec);
                Stored::Program(id, programs.len() - 1)
            })
            .collect();

        // A plain loop: most objects have no weak extern, and collecting nothing still ran
        // `BTreeSet::from_iter`'s setup.
        let mut weak_externs = BTreeSet::new();
        for s in &elf.symbols {
            if s.undefined && s.bind == object::elf::STB_WEAK {
                let name = elf.symbol_name(s);
                if !name.is_empty() {
                    weak_externs.insert(name.into_owned());
                }
            }
        }
        Ok(ObjectSpec {
            weak_externs,
            endianness: e,
            license,
            kernel_version,
            maps: all_maps,
            programs,
            btf,
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
    ///
    /// A program's function is the one in [`ObjectSpec::programs`] (the object keeps no second
    /// copy), so changes made to it there show here and in what [`ObjectSpec::link`] links, and
    /// a program removed from that list is no longer found.
    pub fn function(&self, id: FunctionId) -> Option<&FunctionSpec> {
        let i = self.functions.binary_search_by_key(&id, Stored::id).ok()?;
        self.stored(self.functions.get(i)?)
    }

    /// Every function of the object, in section then address order (programs' from
    /// [`ObjectSpec::programs`], as for [`ObjectSpec::function`]).
    pub fn functions(&self) -> impl Iterator<Item = &FunctionSpec> {
        self.functions.iter().filter_map(|s| self.stored(s))
    }

    /// The functions that are not programs (`.text` and `static` functions).
    pub fn subprograms(&self) -> impl Iterator<Item = &FunctionSpec> {
        self.functions.iter().filter_map(|s| match s {
            Stored::Function(f) => Some(f),
            Stored::Program(..) => None,
        })
    }

    fn stored<'s>(&'s self, s: &'s Stored) -> Option<&'s FunctionSpec> {
        match s {
            Stored::Function(f) => Some(f),
            Stored::Program(id, index) => self
                .programs
                .get(*index)
                .filter(|p| p.function.id == *id)
                .or_else(|| self.programs.iter().find(|p| p.function.id == *id))
                .map(|p| &p.function),
        }
    }
}

/// A function as the object keeps it.
#[derive(Debug, Clone)]
enum Stored {
    /// A subprogram.
    Function(FunctionSpec),
    /// A program's function: in [`ObjectSpec::programs`], at this index unless the list was
    /// changed.
    Program(FunctionId, usize),
}

impl Stored {
    fn id(&self) -> FunctionId {
        match self {
            Stored::Function(f) => f.id,
            Stored::Program(id, _) => *id,
        }
    }
}

/// Whether a function is a program: global, in a section of its own.
fn is_program(f: &FunctionSpec) -> bool {
    f.global && f.section != ".text"
}

/// The first map whose name an earlier map already has.
fn first_duplicate(maps: &[MapSpec]) -> Option<&MapSpec> {
    if maps.len() <= 16 {
        return maps
            .iter()
            .enumerate()
            .find(|(i, m)| maps.iter().take(*i).any(|p| p.name == m.name))
            .map(|(_, m)| m);
    }
    let mut seen = HashSet::with_capacity(maps.len());
    maps.iter().find(|m| !seen.insert(m.name.as_str()))
}

/// (offset, size, name) of each variable of the `DATASEC` with this id.
fn vars_of(btf: &Btf, datasec: Option<u32>) -> PlacedVars<'_> {
    let Some(BtfTypeData::DataSec(vars)) =
        datasec.and_then(|id| btf.type_by_id(id)).map(|t| &t.data)
    else {
        return Vec::new();
    };
    vars.iter()
        .filter_map(|v| {
            let name = btf.type_by_id(v.type_id)?.name.as_str();
            Some((u64::from(v.offset), u64::from(v.size), name))
        })
        .collect()
}

/// The names of the `.kconfig` variables, sorted.
fn kconfig_names(btf: Option<&Btf>, datasec: Option<u32>) -> Vec<&str> {
    let Some(btf) = btf else { return Vec::new() };
    let mut names: Vec<&str> = vars_of(btf, datasec).into_iter().map(|v| v.2).collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// clang leaves `DATASEC` sizes and global variables' offsets at 0; the symbol table has them.
///
/// Returns the id of the `.kconfig` `DATASEC` (the first, as [`Btf::find`] would), found on the
/// way.
fn fix_datasecs(elf: &RawElf<'_>, btf: &mut Btf) -> Option<u32> {
    let mut kconfig = None;
    // Read from the raw bytes: fixing them does not build the types.
    btf.fix_datasecs(
        |id, name| {
            // Bytes that are not UTF-8 read with a replacement character, never as this ASCII
            // name: comparing bytes is what `name.is(".kconfig")` would do.
            if kconfig.is_none() && name.0 == b".kconfig" {
                kconfig = Some(id);
            }
            let section = if name.0.is_ascii() {
                // What `name.matcher()` decides for an ASCII name, without its other branch in
                // this loop.
                elf.sections.iter().find(|s| s.name.as_bytes() == name.0)
            } else {
                section_named(elf, name)
            }?;
            let size = u32::try_from(section.size).ok()?;
            // Its variables are looked up among the symbols from the section's first to its
            // last only: clang puts them together, after the local symbols, so this span is
            // short (and it holds every symbol of the section, whatever their order).
            let index = section.index;
            let in_section = |s: &RawSymbol| s.section == Some(index);
            let first = elf.symbols.iter().position(in_section);
            let last = elf.symbols.iter().rposition(in_section);
            let symbols = first
                .zip(last)
                .and_then(|(first, last)| elf.symbols.get(first..=last))
                .unwrap_or_default();
            Some((size, (index, symbols)))
        },
        |&(index, symbols), var| {
            let in_section = |s: &&RawSymbol| s.section == Some(index) && !s.is_section();
            // Symbol names are compared in the file: few are ever read as text.
            let symbol = if var.0.is_ascii() && !var.0.contains(&0) {
                symbols
                    .iter()
                    .find(|s| in_section(s) && elf.symbol_name_is_ascii(s, var.0))
            } else {
                symbol_named(elf, symbols.iter().filter(in_section), var)
            }?;
            u32::try_from(symbol.value).ok()
        },
    );
    kconfig
}

/// The first section named `name`, a name that is not ASCII (out of line: clang's never are).
#[cold]
#[inline(never)]
fn section_named<'a, 'e>(elf: &'a RawElf<'e>, name: RawName<'_>) -> Option<&'a RawSection<'e>> {
    elf.sections.iter().find(|s| name.is(&s.name))
}

/// The first of `symbols` named `name`, read as text (out of line: for names that are not
/// ASCII or hold a NUL, which clang's never do).
#[cold]
#[inline(never)]
fn symbol_named<'s>(
    elf: &RawElf<'_>,
    mut symbols: impl Iterator<Item = &'s RawSymbol>,
    name: RawName<'_>,
) -> Option<&'s RawSymbol> {
    symbols.find(|s| name.is(&elf.symbol_name(s)))
}

/// Hands each `.BTF.ext` record to the function that contains its instruction, relative to
/// it, as `.BTF.ext` is read: no list per section is built.
struct AttachExt<'a, 'e> {
    elf: &'a RawElf<'e>,
    functions: &'a mut [FunctionSpec],
    /// The last group's section name and the code section it names: the groups of one section
    /// (func_info, line_info, CO-RE) look it up once.
    last: Option<(&'a [u8], Option<usize>)>,
}

impl<'a> AttachExt<'a, '_> {
    /// The index of the code section a group names (the first, as `section_by_name` would).
    fn code_section(&mut self, name: RawName<'a>) -> Option<usize> {
        match self.last {
            Some((last, index)) if last == name.0 => index,
            _ => {
                let is_name = name.matcher();
                let index = self
                    .elf
                    .sections
                    .iter()
                    .find(|s| s.is_exec() && is_name(&s.name))
                    .map(|s| s.index);
                self.last = Some((name.0, index));
                index
            }
        }
    }

    /// Appends each record of a group for `section` to its function's list (picked by `list`),
    /// with its instruction made relative to the function. Records of a section that is not
    /// code, or outside every function, are taken (so checked) and dropped.
    fn attach<T: Record>(
        &mut self,
        section: RawName<'a>,
        records: &mut Records<'_, T>,
        insn: impl Fn(&mut T) -> &mut usize,
        list: impl Fn(&mut FunctionSpec) -> &mut Vec<T>,
    ) {
        let Some(section) = self.code_section(section) else {
            return;
        };
        let functions = &mut *self.functions;
        // The function of the previous record, and its instructions in the section.
        let mut current: Option<(usize, std::ops::Range<usize>)> = None;
        let mut left = records.len();
        records.each(|mut r| {
            left = left.saturating_sub(1);
            let at = *insn(&mut r);
            let owner = match &current {
                Some((i, insns)) if insns.contains(&at) => *i,
                _ => {
                    let Some((i, insns)) = function_at(functions, section, at) else {
                        return;
                    };
                    current = Some((i, insns));
                    i
                }
            };
            let Some(f) = functions.get_mut(owner) else {
                return;
            };
            *insn(&mut r) = at - f.id.insn;
            let out = list(f);
            if out.len() == out.capacity() {
                // Room for the rest of the group: records of one function follow each other.
                out.reserve(left + 1);
            }
            out.push(r);
        });
    }
}

/// The index of the function of code section `section` that holds instruction `at`, and its
/// instructions in the section.
///
/// Not inlined: one copy serves every kind of `.BTF.ext` record (it runs once per function
/// and group, not per record).
#[inline(never)]
fn function_at(
    functions: &[FunctionSpec],
    section: usize,
    at: usize,
) -> Option<(usize, std::ops::Range<usize>)> {
    let key = FunctionId { section, insn: at };
    let i = functions.partition_point(|f| f.id <= key).checked_sub(1)?;
    let f = functions.get(i)?;
    let insns = f.id.insn..f.id.insn + f.instructions.len();
    (f.id.section == section && insns.contains(&at)).then_some((i, insns))
}

impl<'a> ExtSink<'a> for AttachExt<'a, '_> {
    fn func_info(
        &mut self,
        section: RawName<'a>,
        records: &mut Records<'_, crate::FuncInfo>,
    ) -> Result<()> {
        self.attach(section, records, |r| &mut r.insn, |f| &mut f.func_info);
        Ok(())
    }
    fn line_info(
        &mut self,
        section: RawName<'a>,
        records: &mut Records<'_, crate::LineInfo>,
    ) -> Result<()> {
        self.attach(section, records, |r| &mut r.insn, |f| &mut f.line_info);
        Ok(())
    }
    fn core_relocations(
        &mut self,
        section: RawName<'a>,
        records: &mut Records<'_, crate::CoreRelocation>,
    ) -> Result<()> {
        self.attach(
            section,
            records,
            |r| &mut r.insn,
            |f| &mut f.core_relocations,
        );
        Ok(())
    }
}
