//! [`KernelSystem`]: goebpf's `System`, the object loader. It creates every map of an object
//! right away, relocates the programs against them, and keeps the programs ready to load.

use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};

use bpf_elf::{ElfError, Endianness, ExternKind, ObjectSpec, Pinning, ProgramSpec, SlotValue};
use bpf_maps::{CreateOptions, KernelMap, Map, MapError, PinPolicy};
use bpf_sys::SysError;

use crate::error::{GlobalError, LoadError, ProgramError};
use crate::globals::{self, GlobalVariable};
use crate::kernel_btf::CoreTarget;
use crate::program::{KernelProgram, LoadedObject, ProgramSlot};
use crate::verifier::LogLimits;

/// How [`KernelSystem`] loads an object.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// The directory of by-name pins; goebpf `persistent_path`s under `/sys/fs/bpf` are moved
    /// under it when it is another directory (default `/sys/fs/bpf`).
    pub pin_root: PathBuf,
    /// What to do when a map's pin path already holds a map (default: reuse it if compatible).
    pub pin_policy: PinPolicy,
    /// Load the object's BTF and send func_info/line_info with the programs (default on; the
    /// loader goes on without BTF when the kernel refuses it).
    pub btf: bool,
    /// The verifier log's level and growth bounds for every program.
    pub log: LogLimits,
    /// The BTF that CO-RE relocations target: a raw BTF file (btfhub-style) for kernels without
    /// `/sys/kernel/btf/vmlinux`; `None` (the default) uses the running kernel's.
    pub core_btf: Option<PathBuf>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            pin_root: PathBuf::from(bpf_maps::DEFAULT_PIN_ROOT),
            pin_policy: PinPolicy::Reuse,
            btf: true,
            log: LogLimits::default(),
            core_btf: None,
        }
    }
}

/// The default options, made once: [`KernelSystem::load_elf`] and [`KernelSystem::load`] need
/// no options of their own.
static DEFAULT_OPTIONS: LazyLock<LoadOptions> = LazyLock::new(LoadOptions::default);

impl LoadOptions {
    /// Sets the pin root.
    pub fn pin_root(mut self, root: impl Into<PathBuf>) -> Self {
        self.pin_root = root.into();
        self
    }

    /// Sets the pin policy.
    pub fn pin_policy(mut self, policy: PinPolicy) -> Self {
        self.pin_policy = policy;
        self
    }

    /// Turns BTF on or off.
    pub fn btf(mut self, on: bool) -> Self {
        self.btf = on;
        self
    }

    /// Relocates CO-RE programs against this BTF file instead of the running kernel's.
    pub fn core_btf(mut self, path: impl Into<PathBuf>) -> Self {
        self.core_btf = Some(path.into());
        self
    }

    /// Sets the verifier log level (0: a log only on failure).
    pub fn log_level(mut self, level: u32) -> Self {
        self.log.level = level;
        self
    }
}

/// A `.rodata`-style map to freeze when the object's first program loads; shared by the system
/// and every program of the object.
#[derive(Debug)]
pub(crate) struct DeferredFreeze {
    map: String,
    fd: OwnedFd,
    frozen: Mutex<bool>,
}

impl DeferredFreeze {
    /// Freezes the map unless already done.
    pub(crate) fn freeze(&self) -> Result<(), (String, SysError)> {
        let mut frozen = self.frozen.lock().unwrap_or_else(|e| e.into_inner());
        if !*frozen {
            bpf_sys::map::freeze(self.fd.as_fd()).map_err(|e| (self.map.clone(), e))?;
            *frozen = true;
        }
        Ok(())
    }

    fn is_frozen(&self) -> bool {
        *self.frozen.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What a half-done load created; dropping it removes the pins it made (the maps close with
/// their fds).
struct Partial {
    maps: Vec<KernelMap>,
    pins: Vec<PathBuf>,
    done: bool,
}

impl Drop for Partial {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        for p in &self.pins {
            if let Err(e) = std::fs::remove_file(p) {
                log::warn!("cannot remove pin {} after a failed load: {e}", p.display());
            }
        }
    }
}

/// An object loaded into the kernel: its maps, created, and its programs, relocated and ready
/// to load (goebpf's `System`).
///
/// [`KernelSystem::load_elf`] and [`KernelSystem::load`] are constructors: each load gives a new
/// system that owns exactly one object's maps and programs (goebpf's `Load` on an existing
/// system replaced its maps and leaked their fds). Loading:
///
/// 1. loads the object's BTF (when [`LoadOptions::btf`]; without it if the kernel refuses);
/// 2. creates every map in the object's order through [`KernelMap::create`] (goebpf's
///    normalisation, pins under the pin root with the pin policy; a map of maps gets a
///    temporary inner map made from its template, so templates come before their users), global
///    data with its initial bytes; `.rodata` is frozen when the first program loads, so it can
///    be set by name until then ([`KernelSystem::set_global`]);
/// 3. fills map-of-maps slots the object declares (`.values`);
/// 4. links and relocates every program against the maps' fds, and remembers the program-array
///    slots each program fills once loaded.
///
/// A failure at any step closes every map created so far and removes the pins it made.
/// Programs are loaded by [`KernelProgram::load`] or [`KernelSystem::load_all`]. A program
/// that cannot be relocated (CO-RE, `__kconfig`) does not fail the load: its own `load()` says
/// why.
///
/// ```no_run
/// use bpf_attach::{KernelSystem, LoadOptions};
///
/// let mut sys = KernelSystem::load_elf_with("xdp.o", &LoadOptions::default().pin_root("/sys/fs/bpf/app"))?;
/// sys.load_all()?;
/// for p in sys.programs() {
///     println!("{} fd {:?}", p.name(), p.fd());
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct KernelSystem {
    /// The object and its BTF's fd, shared with the programs.
    object: Arc<LoadedObject>,
    maps: Vec<KernelMap>,
    programs: Vec<KernelProgram>,
    freezes: Vec<Arc<DeferredFreeze>>,
}

impl KernelSystem {
    /// Reads, parses and loads the object at `path` with default options.
    pub fn load_elf(path: impl AsRef<Path>) -> Result<Self, LoadError> {
        Self::load_elf_with(path, &DEFAULT_OPTIONS)
    }

    /// Reads, parses and loads the object at `path`.
    pub fn load_elf_with(path: impl AsRef<Path>, options: &LoadOptions) -> Result<Self, LoadError> {
        let spec = ObjectSpec::from_path(path).map_err(LoadError::Parse)?;
        Self::from_spec(spec, options)
    }

    /// Reads an object from `reader` (to its end), parses and loads it with default options.
    pub fn load(reader: impl Read) -> Result<Self, LoadError> {
        Self::load_with(reader, &DEFAULT_OPTIONS)
    }

    /// Reads an object from `reader`, parses and loads it.
    pub fn load_with(reader: impl Read, options: &LoadOptions) -> Result<Self, LoadError> {
        let spec = ObjectSpec::from_reader(reader).map_err(LoadError::Parse)?;
        Self::from_spec(spec, options)
    }

    /// Loads a parsed (and possibly edited: map sizes, [`globals::set_spec_global`]) object.
    pub fn from_spec(mut spec: ObjectSpec, options: &LoadOptions) -> Result<Self, LoadError> {
        // An object without extern sections (most) needs neither the `.kconfig` map nor its
        // BTF rewritten: both look the sections up, so they are looked up once here.
        let externs = spec.has_btf_externs();
        let kconfig_error = if externs {
            add_kconfig_map(&mut spec)
        } else {
            None
        };
        let btf_fd = load_btf(&spec, options, externs);
        // Shared with the programs, which read their names and BTF there, and with the maps,
        // whose templates are there.
        let object = Arc::new(LoadedObject { spec, btf_fd });
        let spec = &object.spec;
        let btf_fd = object.btf_fd.as_ref().map(|f| f.as_fd());
        let mut partial = Partial {
            maps: Vec::with_capacity(spec.maps.len()),
            pins: Vec::new(),
            done: false,
        };
        let mut freezes = Vec::new();
        // The same for every map. Only pinned maps read the root: an object without pins
        // needs no copy of it.
        let pinned = spec.maps.iter().any(|m| m.pinning != Pinning::None);
        let opts = CreateOptions {
            pin_root: if pinned {
                options.pin_root.clone()
            } else {
                PathBuf::new()
            },
            pin_policy: options.pin_policy,
            inner_map: None,
            btf: btf_fd,
            defer_freeze: true,
        };
        // Whether any map declares `.values`: most objects have none, and skip both slot
        // passes.
        let mut has_slots = false;
        for (index, m) in spec.maps.iter().enumerate() {
            has_slots |= !m.values.is_empty();
            // Pinned and frozen maps need more than the call: out of line.
            let map = if m.pinning != Pinning::None || m.freeze {
                create_pinned_or_frozen(&object, index, &opts, options, &mut partial, &mut freezes)
            } else {
                KernelMap::create_in_shared(&object, index, &opts)
            };
            match map {
                Ok(map) => partial.maps.push(map),
                Err(source) => return Err(map_error(&m.name, source)),
            }
        }
        if has_slots {
            fill_map_slots(spec, &partial.maps)?;
        }

        // Programs.
        let maps = &partial.maps;
        let fd_of = |name: &str| position(spec, name).map(|i| maps[i].as_fd().as_raw_fd());
        let mut programs = Vec::with_capacity(spec.programs.len());
        // Only programs that need linking (CO-RE, externs, subprograms) read the target.
        let mut core_target = None;
        for (index, p) in spec.programs.iter().enumerate() {
            let mut program = match p.relocate_alone(fd_of) {
                Some(Ok(insns)) => {
                    match KernelProgram::from_alone(&object, index, p, insns, options.log) {
                        Ok(program) => program,
                        Err(source) => return Err(program_error(p, source)),
                    }
                }
                Some(Err(e)) => KernelProgram::unavailable(&object, index, p, e),
                None => link_program(
                    &object,
                    index,
                    p,
                    core_target.get_or_insert_with(|| CoreTarget::new(options.core_btf.clone())),
                    kconfig_error.as_ref(),
                    fd_of,
                    options.log,
                )?,
            };
            if !freezes.is_empty() {
                program.set_freezes(freezes.clone());
            }
            programs.push(program);
        }
        if has_slots {
            add_program_slots(spec, &partial.maps, &mut programs)?;
        }

        partial.done = true;
        let maps = std::mem::take(&mut partial.maps);
        Ok(KernelSystem {
            object,
            maps,
            programs,
            freezes,
        })
    }

    /// The object as parsed.
    pub fn spec(&self) -> &ObjectSpec {
        &self.object.spec
    }

    /// Whether the kernel took the object's BTF.
    pub fn btf_loaded(&self) -> bool {
        self.object.btf_fd.is_some()
    }

    /// The map with this name (goebpf's `GetMapByName`).
    pub fn map(&self, name: &str) -> Option<&KernelMap> {
        position(self.spec(), name).map(|i| &self.maps[i])
    }

    /// The map with this name, to pin or unpin it.
    pub fn map_mut(&mut self, name: &str) -> Option<&mut KernelMap> {
        position(&self.object.spec, name).map(move |i| &mut self.maps[i])
    }

    /// Every map, in the object's order.
    pub fn maps(&self) -> impl Iterator<Item = &KernelMap> {
        self.maps.iter()
    }

    /// The program with this name (goebpf's `GetProgramByName`).
    pub fn program(&self, name: &str) -> Option<&KernelProgram> {
        self.programs.iter().find(|p| p.name() == name)
    }

    /// The program with this name, to load, pin or close it.
    pub fn program_mut(&mut self, name: &str) -> Option<&mut KernelProgram> {
        self.programs.iter_mut().find(|p| p.name() == name)
    }

    /// Every program, in the object's order.
    pub fn programs(&self) -> impl Iterator<Item = &KernelProgram> {
        self.programs.iter()
    }

    /// Every program, mutable.
    pub fn programs_mut(&mut self) -> impl Iterator<Item = &mut KernelProgram> {
        self.programs.iter_mut()
    }

    /// Loads every program not loaded yet, in the object's order; stops at the first failure
    /// (the programs loaded before it stay loaded).
    pub fn load_all(&mut self) -> Result<(), ProgramError> {
        for p in self.programs.iter_mut().filter(|p| !p.is_loaded()) {
            p.load()?;
        }
        Ok(())
    }

    /// Every global variable of the object.
    pub fn globals(&self) -> Vec<GlobalVariable> {
        globals::spec_globals(self.spec())
    }

    /// Reads a global variable from its data map.
    pub fn global(&self, name: &str) -> Result<Vec<u8>, GlobalError> {
        let (i, var) = globals::find(&self.spec().maps, name)?;
        let map = &self.maps[i];
        let value = read_value(map, &var.name)?;
        let r = globals::range(&self.spec().maps[i], var, value.len())?;
        Ok(value[r].to_vec())
    }

    /// Reads a global variable as a plain-data value of its size.
    pub fn global_as<T: bytemuck::Pod>(&self, name: &str) -> Result<T, GlobalError> {
        let bytes = self.global(name)?;
        if bytes.len() != std::mem::size_of::<T>() {
            return Err(GlobalError::Size {
                name: name.to_string(),
                got: std::mem::size_of::<T>(),
                expected: bytes.len(),
            });
        }
        Ok(bytemuck::pod_read_unaligned(&bytes))
    }

    /// Writes a global variable in its data map (read, patch, write back: a program writing
    /// the same map meanwhile may lose an update). `.rodata` variables can be written until
    /// the object's first program is loaded, [`GlobalError::Frozen`] after.
    pub fn set_global(&self, name: &str, value: &[u8]) -> Result<(), GlobalError> {
        let (i, var) = globals::find(&self.spec().maps, name)?;
        let spec = &self.spec().maps[i];
        if value.len() != var.size as usize {
            return Err(GlobalError::Size {
                name: var.name.to_string(),
                got: value.len(),
                expected: var.size as usize,
            });
        }
        let frozen = spec.freeze
            && self
                .freezes
                .iter()
                .find(|f| f.map == spec.name)
                .is_none_or(|f| f.is_frozen());
        if frozen {
            return Err(GlobalError::Frozen {
                name: var.name.to_string(),
                section: spec.name.to_string(),
            });
        }
        let map = &self.maps[i];
        let mut current = read_value(map, &var.name)?;
        let r = globals::range(spec, var, current.len())?;
        current[r].copy_from_slice(value);
        map.update_elem(&slot_key(map, 0), &current, bpf_maps::ANY)
            .map_err(|source| GlobalError::Map {
                name: var.name.to_string(),
                section: spec.name.to_string(),
                source: Box::new(source),
            })
    }

    /// Writes a global variable from a plain-data value of its size.
    pub fn set_global_as<T: bytemuck::Pod>(
        &self,
        name: &str,
        value: &T,
    ) -> Result<(), GlobalError> {
        self.set_global(name, bytemuck::bytes_of(value))
    }
}

/// Creates map `index` of `object`, which is pinned or frozen: remembers the pin it makes (to
/// remove it if the load fails) and the freeze to do when the first program loads.
#[inline(never)]
fn create_pinned_or_frozen(
    object: &Arc<LoadedObject>,
    index: usize,
    opts: &CreateOptions<'_>,
    options: &LoadOptions,
    partial: &mut Partial,
    freezes: &mut Vec<Arc<DeferredFreeze>>,
) -> Result<KernelMap, MapError> {
    let m = &object.spec.maps[index];
    let pin = match m.pinning {
        Pinning::None => None,
        _ => bpf_maps::create::pin_path(m, &options.pin_root),
    };
    let existed = pin.as_ref().is_some_and(|p| p.symlink_metadata().is_ok());
    let map = KernelMap::create_in_shared(object, index, opts)?;
    let reused = existed && options.pin_policy == PinPolicy::Reuse;
    if let (Some(p), false) = (map.pin_path(), existed) {
        partial.pins.push(p.to_path_buf());
    }
    if m.freeze && !reused {
        let fd = map.as_fd().try_clone_to_owned().map_err(|e| MapError::Io {
            op: "duplicate fd",
            path: PathBuf::new(),
            source: e,
        })?;
        freezes.push(Arc::new(DeferredFreeze {
            map: m.name.to_string(),
            fd,
            frozen: Mutex::new(false),
        }));
    }
    Ok(map)
}

/// Fills the map-of-maps slots the object declares (`.values`).
#[inline(never)]
fn fill_map_slots(spec: &ObjectSpec, maps: &[KernelMap]) -> Result<(), LoadError> {
    for (i, m) in spec.maps.iter().enumerate() {
        for slot in &m.values {
            let SlotValue::Map(inner) = &slot.value else {
                continue;
            };
            let j = position(spec, inner).ok_or_else(|| LoadError::MissingSlotTarget {
                map: m.name.to_string(),
                index: slot.index,
                target: inner.to_string(),
            })?;
            let outer = &maps[i];
            let fd = maps[j].as_fd().as_raw_fd() as u32;
            outer
                .update_elem(
                    &slot_key(outer, slot.index),
                    &fd.to_ne_bytes(),
                    bpf_maps::ANY,
                )
                .map_err(|source| LoadError::MapSlot {
                    map: m.name.to_string(),
                    index: slot.index,
                    inner: inner.to_string(),
                    source: Box::new(source),
                })?;
        }
    }
    Ok(())
}

/// Remembers the program-array slots the object declares (`.values`), filled when their
/// program loads.
#[inline(never)]
fn add_program_slots(
    spec: &ObjectSpec,
    maps: &[KernelMap],
    programs: &mut [KernelProgram],
) -> Result<(), LoadError> {
    for (i, m) in spec.maps.iter().enumerate() {
        for slot in &m.values {
            let SlotValue::Program(name) = &slot.value else {
                continue;
            };
            let program = programs
                .iter_mut()
                .find(|p| p.name() == name)
                .ok_or_else(|| LoadError::MissingSlotTarget {
                    map: m.name.to_string(),
                    index: slot.index,
                    target: name.to_string(),
                })?;
            let fd = maps[i]
                .as_fd()
                .try_clone_to_owned()
                .map_err(|e| dup_error(&m.name, e))?;
            program.add_slot(ProgramSlot {
                map: m.name.to_string(),
                fd,
                index: slot.index,
            });
        }
    }
    Ok(())
}

/// The error of a map that could not be created.
#[cold]
#[inline(never)]
fn map_error(map: &str, source: MapError) -> LoadError {
    LoadError::Map {
        map: map.to_string(),
        source: Box::new(source),
    }
}

/// The error of a program that could not be made from the object.
#[cold]
#[inline(never)]
fn program_error(p: &ProgramSpec, source: ProgramError) -> LoadError {
    LoadError::Program {
        program: p.name.to_string(),
        source,
    }
}

/// Program `index` of `object`, `p`, linked with its subprograms, its CO-RE relocations and
/// externs resolved, relocated against the maps' fds (`fd_of`); unavailable when one of these
/// steps fails (`kconfig_error`: why the `.kconfig` map could not be made).
fn link_program(
    object: &Arc<LoadedObject>,
    index: usize,
    p: &ProgramSpec,
    core_target: &mut CoreTarget,
    kconfig_error: Option<&(String, String)>,
    fd_of: impl Fn(&str) -> Option<i32>,
    log: LogLimits,
) -> Result<KernelProgram, LoadError> {
    let spec = &object.spec;
    let prepared = p.link(spec).and_then(|mut linked| {
        let core = core_target.apply(spec.btf.as_ref(), &mut linked)?;
        if let Some((symbol, reason)) = kconfig_error {
            if linked.externs.iter().any(|e| e.kind == ExternKind::Kconfig) {
                return Err(ElfError::UnresolvedExtern {
                    program: p.name.to_string(),
                    symbol: symbol.clone(),
                    reason: reason.clone(),
                });
            }
        }
        let modules = core_target.resolve_externs(spec, &mut linked)?;
        let module_btfs = module_btf_fds(&p.name, &modules)?;
        linked.relocate(fd_of).map(|()| (linked, core, module_btfs))
    });
    Ok(match prepared {
        Ok((linked, core, module_btfs)) => {
            let mut program =
                KernelProgram::from_linked(object, index, p, linked, log).map_err(|source| {
                    LoadError::Program {
                        program: p.name.to_string(),
                        source,
                    }
                })?;
            program.set_core_report(core);
            program.set_module_btfs(module_btfs);
            program
        }
        Err(e) => KernelProgram::unavailable(object, index, p, e),
    })
}

/// An fd of each module BTF object whose kfuncs program `program` calls (`ids`, from
/// [`CoreTarget::resolve_externs`]), for its `fd_array`.
fn module_btf_fds(program: &str, ids: &[u32]) -> Result<Vec<OwnedFd>, ElfError> {
    ids.iter()
        .map(|&id| {
            bpf_sys::obj::fd_by_id(bpf_sys::obj::ObjKind::Btf, id, 0).map_err(|e| {
                ElfError::UnresolvedExtern {
                    program: program.to_string(),
                    symbol: format!("BTF object {id}"),
                    reason: format!("a kfunc's module BTF cannot be opened: {e}"),
                }
            })
        })
        .collect()
}

fn read_value(map: &KernelMap, var: &str) -> Result<Vec<u8>, GlobalError> {
    let mut value = vec![0u8; map.value_len()];
    map.lookup_elem(&slot_key(map, 0), &mut value, 0)
        .map_err(|source| GlobalError::Map {
            name: var.to_string(),
            section: map.name().to_string(),
            source: Box::new(source),
        })?;
    Ok(value)
}

/// The key of slot `index` of an array-like map: the index in the map's key size.
fn slot_key(map: &dyn Map, index: u32) -> Vec<u8> {
    let mut key = vec![0u8; map.key_size() as usize];
    let bytes = index.to_ne_bytes();
    let n = key.len().min(4);
    key[..n].copy_from_slice(&bytes[..n]);
    key
}

/// Adds the `.kconfig` map (libbpf's) when the object has `.kconfig` externs; returns why it
/// could not be filled (extern, reason), which fails the programs that read it.
fn add_kconfig_map(spec: &mut ObjectSpec) -> Option<(String, String)> {
    if position(spec, bpf_elf::core::KCONFIG_MAP).is_some() {
        return None;
    }
    match spec.kconfig_map(crate::kernel_config::kconfig_value) {
        Ok(Some(map)) => {
            spec.maps.push(map);
            None
        }
        Ok(None) => None,
        Err(ElfError::UnresolvedExtern { symbol, reason, .. }) => Some((symbol, reason)),
        Err(e) => Some((String::new(), e.to_string())),
    }
}

fn position(spec: &ObjectSpec, name: &str) -> Option<usize> {
    // Relocation looks a map up for every instruction that uses one: the length first, as
    // most maps of an object differ in it.
    spec.maps
        .iter()
        .map(|m| m.name.as_str())
        .position(|m| m.len() == name.len() && m == name)
}

fn dup_error(map: &str, e: std::io::Error) -> LoadError {
    LoadError::Map {
        map: map.to_string(),
        source: Box::new(MapError::Io {
            op: "duplicate fd",
            path: PathBuf::new(),
            source: e,
        }),
    }
}

/// The object's BTF in the kernel: loaded when asked for and the kernel takes it.
/// `externs`: [`ObjectSpec::has_btf_externs`].
fn load_btf(spec: &ObjectSpec, options: &LoadOptions, externs: bool) -> Option<OwnedFd> {
    let btf = spec.btf.as_ref()?;
    if !options.btf || spec.endianness != Endianness::host() {
        return None;
    }
    // Externs (.kconfig, .ksyms) rewritten as allocated variables, as the kernel wants.
    // Borrowed when nothing is rewritten: a clone would copy every parsed type.
    let rewritten = if externs {
        spec.btf_for_kernel()
    } else {
        Ok(None)
    };
    let for_kernel = match rewritten {
        Ok(Some(b)) => std::borrow::Cow::Owned(b),
        Ok(None) => std::borrow::Cow::Borrowed(btf),
        Err(e) => {
            btf_warning(
                "cannot lay out the object's extern variables in its BTF",
                &e,
            );
            std::borrow::Cow::Borrowed(btf)
        }
    };
    // No copy when the kernel takes the BTF as it is.
    let sanitized = crate::kernel_btf::sanitize_if_needed(&for_kernel);
    let to_load = match &sanitized {
        Ok(Some(s)) => s.as_slice(),
        Ok(None) => for_kernel.raw(),
        Err(e) => {
            btf_warning("cannot sanitise the object's BTF for this kernel", e);
            btf.raw()
        }
    };
    match bpf_sys::btf::load(to_load, None) {
        Ok(fd) => Some(fd),
        Err(e) => {
            btf_warning(
                "the kernel refused the object's BTF, loading without it",
                &e,
            );
            None
        }
    }
}

/// Logs why the object's BTF is sent differently or not at all; out of line, as it is rare.
#[cold]
#[inline(never)]
fn btf_warning(what: &str, e: &dyn std::fmt::Display) {
    log::warn!("{what}: {e}");
}
