//! [`MockSystem`]: an object's maps and programs in memory, from a real ELF object
//! ([`MockSystem::load_elf`]) or built by hand ([`MockSystemBuilder`]), implementing
//! [`System`].

use std::path::Path;

use bpf_attach::{LoadError, Program, ProgramError, System};
use bpf_elf::{MapSpec, ObjectSpec, SlotValue};
use bpf_maps::{Map, MapError, ANY};

use crate::map::{MockMap, DEFAULT_CPUS};
use crate::program::MockProgram;

/// A program array slot the object fills once its program is loaded.
#[derive(Debug, Clone)]
struct ProgramSlot {
    map: String,
    index: u32,
    program: String,
}

/// An object in memory: mock maps and mock programs by name.
///
/// ```no_run
/// use bpf_attach::System;
/// use bpf_maps::MapExt;
/// use bpf_mock::MockSystem;
///
/// // The real object, parsed with bpf-elf; nothing reaches the kernel.
/// let mut system = MockSystem::load_elf("target/bpf/xdp_basic_firewall.o")?;
/// system.load_all()?;
/// let blacklist = system.map("blacklist").unwrap();
/// blacklist.upsert(&bpf_maps::lpm_key("10.0.0.0/8")?, &0u32)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Default)]
pub struct MockSystem {
    cpus: usize,
    maps: Vec<MockMap>,
    programs: Vec<MockProgram>,
    slots: Vec<ProgramSlot>,
}

/// Builds a [`MockSystem`] by hand or from an object, with the number of possible CPUs and
/// an injected load failure.
///
/// ```
/// use bpf_attach::{Program, ProgramType, System};
/// use bpf_maps::{MapSpec, MapType};
/// use bpf_mock::{MockProgram, MockSystem};
///
/// let mut system = MockSystem::builder()
///     .cpus(2)
///     .map(MapSpec::new("counts", MapType::PerCpuArray, 4, 8, 16))
///     .program(MockProgram::new("count", ProgramType::Xdp))
///     .build()?;
/// assert_eq!(system.map("counts").unwrap().value_len(), 16); // 2 CPUs x 8 bytes
/// system.load_all()?;
/// assert!(system.program("count").unwrap().is_loaded());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
#[must_use]
pub struct MockSystemBuilder {
    cpus: usize,
    specs: Vec<MapSpec>,
    maps: Vec<MockMap>,
    programs: Vec<MockProgram>,
    fail: Option<LoadError>,
}

impl Default for MockSystemBuilder {
    fn default() -> Self {
        MockSystemBuilder {
            cpus: DEFAULT_CPUS,
            specs: Vec::new(),
            maps: Vec::new(),
            programs: Vec::new(),
            fail: None,
        }
    }
}

impl MockSystemBuilder {
    /// The number of possible CPUs of every per-CPU map ([`DEFAULT_CPUS`] unless set).
    pub fn cpus(mut self, cpus: usize) -> Self {
        self.cpus = cpus.max(1);
        self
    }

    /// Adds a map made from `spec` when the system is built.
    pub fn map(mut self, spec: MapSpec) -> Self {
        self.specs.push(spec);
        self
    }

    /// Adds an existing mock map (shared with the caller's clones).
    pub fn mock_map(mut self, map: MockMap) -> Self {
        self.maps.push(map);
        self
    }

    /// Adds a program.
    pub fn program(mut self, program: MockProgram) -> Self {
        self.programs.push(program);
        self
    }

    /// Makes building or loading fail with `error` (goebpf's `ErrorLoadElf`): the error the
    /// code under test should handle, for instance a [`LoadError::Map`] made with
    /// [`MapError::from_errno`].
    pub fn fail_load(mut self, error: LoadError) -> Self {
        self.fail = Some(error);
        self
    }

    /// Parses the object at `path` with `bpf-elf` and builds the system from its maps and
    /// programs (see [`MockSystemBuilder::load_spec`]).
    pub fn load_elf(self, path: impl AsRef<Path>) -> Result<MockSystem, LoadError> {
        if let Some(e) = self.fail {
            return Err(e);
        }
        let spec = ObjectSpec::from_path(path).map_err(LoadError::Parse)?;
        self.load_spec(&spec)
    }

    /// Builds the system from a parsed object: one mock map per map spec (global data filled,
    /// `.rodata` frozen, map-in-map slots filled with the object's maps) and one mock program
    /// per program; program array slots are filled by [`System::load_all`].
    pub fn load_spec(mut self, object: &ObjectSpec) -> Result<MockSystem, LoadError> {
        if let Some(e) = self.fail.take() {
            return Err(e);
        }
        self.specs.extend(object.maps.iter().cloned());
        self.programs
            .extend(object.programs.iter().map(MockProgram::from_spec));
        self.build()
    }

    /// Builds the system.
    pub fn build(self) -> Result<MockSystem, LoadError> {
        if let Some(e) = self.fail {
            return Err(e);
        }
        let mut system = MockSystem {
            cpus: self.cpus,
            maps: self.maps,
            programs: self.programs,
            slots: Vec::new(),
        };
        for spec in &self.specs {
            let map = MockMap::with_cpus(spec, self.cpus).map_err(|e| LoadError::Map {
                map: spec.name.to_string(),
                source: Box::new(e),
            })?;
            system.maps.push(map);
        }
        for spec in &self.specs {
            for slot in &spec.values {
                match &slot.value {
                    SlotValue::Program(program) => system.slots.push(ProgramSlot {
                        map: spec.name.to_string(),
                        index: slot.index,
                        program: program.to_string(),
                    }),
                    SlotValue::Map(inner) => system.fill_map_slot(&spec.name, slot.index, inner)?,
                }
            }
        }
        for slot in &system.slots {
            if system.mock_program(&slot.program).is_none() {
                return Err(LoadError::MissingSlotTarget {
                    map: slot.map.clone(),
                    index: slot.index,
                    target: slot.program.clone(),
                });
            }
        }
        Ok(system)
    }
}

impl MockSystem {
    /// An empty system (add maps and programs with [`MockSystem::add_map`] and
    /// [`MockSystem::add_program`], or use [`MockSystem::builder`]).
    pub fn new() -> Self {
        MockSystem {
            cpus: DEFAULT_CPUS,
            ..Default::default()
        }
    }

    /// A builder.
    pub fn builder() -> MockSystemBuilder {
        MockSystemBuilder::default()
    }

    /// Parses the real object at `path` with `bpf-elf` and makes mock maps and programs from
    /// its specs, with [`DEFAULT_CPUS`] possible CPUs. Nothing reaches the kernel.
    pub fn load_elf(path: impl AsRef<Path>) -> Result<Self, LoadError> {
        Self::builder().load_elf(path)
    }

    /// The number of possible CPUs of the system's per-CPU maps.
    pub fn cpus(&self) -> usize {
        self.cpus
    }

    /// The mock map with this name (to inject faults, read its state).
    pub fn mock_map(&self, name: &str) -> Option<&MockMap> {
        self.maps.iter().find(|m| m.name() == name)
    }

    /// The mock program with this name (to read its events, attach it).
    pub fn mock_program(&self, name: &str) -> Option<&MockProgram> {
        self.programs.iter().find(|p| p.name() == name)
    }

    /// The mock program with this name, mutable.
    pub fn mock_program_mut(&mut self, name: &str) -> Option<&mut MockProgram> {
        self.programs.iter_mut().find(|p| p.name() == name)
    }

    /// Adds a map.
    pub fn add_map(&mut self, map: MockMap) {
        self.maps.push(map);
    }

    /// Adds a program.
    pub fn add_program(&mut self, program: MockProgram) {
        self.programs.push(program);
    }

    fn fill_map_slot(&self, outer: &str, index: u32, inner: &str) -> Result<(), LoadError> {
        let missing = || LoadError::MissingSlotTarget {
            map: outer.to_string(),
            index,
            target: inner.to_string(),
        };
        let target = self.mock_map(inner).ok_or_else(missing)?;
        let map = self.mock_map(outer).ok_or_else(missing)?;
        map.update_elem(&index.to_ne_bytes(), &target.mock_fd().to_ne_bytes(), ANY)
            .map_err(|e| LoadError::MapSlot {
                map: outer.to_string(),
                index,
                inner: inner.to_string(),
                source: Box::new(e),
            })
    }

    fn fill_program_slots(&self) -> Result<(), ProgramError> {
        for slot in &self.slots {
            let Some(fd) = self.mock_program(&slot.program).and_then(|p| p.mock_fd()) else {
                continue;
            };
            let Some(map) = self.mock_map(&slot.map) else {
                continue;
            };
            if let Err(e) = map.update_elem(&slot.index.to_ne_bytes(), &fd.to_ne_bytes(), ANY) {
                let (program, map, index) = (slot.program.clone(), slot.map.clone(), slot.index);
                return Err(match e {
                    MapError::Op { source, .. } => ProgramError::ProgramArray {
                        program,
                        map,
                        index,
                        source,
                    },
                    other => ProgramError::Invalid {
                        program,
                        reason: format!("cannot fill slot {index} of {map}: {other}"),
                    },
                });
            }
        }
        Ok(())
    }
}

impl System for MockSystem {
    fn map(&self, name: &str) -> Option<&dyn Map> {
        self.mock_map(name).map(|m| m as &dyn Map)
    }
    fn maps(&self) -> Box<dyn Iterator<Item = &dyn Map> + '_> {
        Box::new(self.maps.iter().map(|m| m as &dyn Map))
    }
    fn program(&self, name: &str) -> Option<&dyn Program> {
        self.mock_program(name).map(|p| p as &dyn Program)
    }
    fn program_mut(&mut self, name: &str) -> Option<&mut dyn Program> {
        self.mock_program_mut(name).map(|p| p as &mut dyn Program)
    }
    fn programs(&self) -> Box<dyn Iterator<Item = &dyn Program> + '_> {
        Box::new(self.programs.iter().map(|p| p as &dyn Program))
    }
    fn load_all(&mut self) -> Result<(), ProgramError> {
        for p in &mut self.programs {
            if !p.is_loaded() {
                p.load()?;
            }
        }
        self.fill_program_slots()
    }
}
