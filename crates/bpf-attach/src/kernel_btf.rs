//! The kernel's BTF and the CO-RE step of the loader.
//!
//! [`kernel_btf`] reads `/sys/kernel/btf/vmlinux` the first time it is needed and keeps it for
//! the life of the process (it is several megabytes; parsing it takes a few tens of
//! milliseconds). [`btf_from_file`] reads a BTF file the user supplies instead, for kernels
//! without `CONFIG_DEBUG_INFO_BTF` (btfhub-style), through [`crate::LoadOptions::core_btf`].
//! [`btf_features`] probes which BTF kinds the kernel accepts, once, by loading tiny blobs;
//! the loader sanitises the object's BTF with the answer
//! ([`bpf_elf::btf::Btf::sanitized`]).
//!
//! Kernel modules publish split BTF under `/sys/kernel/btf/<module>`: [`module_btf`] parses
//! one against vmlinux's the first time it is needed and caches it (keyed by name and file
//! size, so a module reloaded with other types is read again); CO-RE reads modules only for a
//! local type without candidates in vmlinux, as libbpf does.
//!
//! The relocation itself is pure and lives in `bpf-elf` ([`bpf_elf::core`]).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use bpf_elf::btf::{Btf, BtfBuilder, BtfFeatures, BtfKind};
use bpf_elf::{CoreReport, CoreTargets, ElfError, LinkedProgram, ModuleBtf};

/// Where the running kernel publishes its BTF.
pub const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";

/// Where the running kernel publishes its BTF and its modules' (one file each).
pub const KERNEL_BTF_DIR: &str = "/sys/kernel/btf";

/// The kernel's BTF could not be read or parsed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KernelBtfError {
    /// The file could not be read.
    #[error("cannot read btf from {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid BTF.
    #[error("cannot parse btf from {path}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        #[source]
        source: Box<ElfError>,
    },
}

/// Reads and parses a raw BTF file (the format of `/sys/kernel/btf/vmlinux` and of btfhub's
/// `.btf` files).
pub fn btf_from_file(path: impl AsRef<Path>) -> Result<Btf, KernelBtfError> {
    let path = path.as_ref();
    let raw = std::fs::read(path).map_err(|source| KernelBtfError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    Btf::parse(&raw).map_err(|source| KernelBtfError::Parse {
        path: path.to_path_buf(),
        source: Box::new(source),
    })
}

/// The running kernel's BTF, read from [`VMLINUX_BTF`] on first use and shared afterwards. A
/// failure is not remembered: the next call tries again.
pub fn kernel_btf() -> Result<Arc<Btf>, KernelBtfError> {
    static CACHE: Mutex<Option<Arc<Btf>>> = Mutex::new(None);
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(btf) = cache.as_ref() {
        return Ok(btf.clone());
    }
    let btf = Arc::new(btf_from_file(VMLINUX_BTF)?);
    *cache = Some(btf.clone());
    Ok(btf)
}

/// The names of the loaded kernel modules that have BTF (every file of [`KERNEL_BTF_DIR`] but
/// `vmlinux`), sorted. Empty when the directory is missing.
pub fn module_names() -> Result<Vec<String>, KernelBtfError> {
    let dir = Path::new(KERNEL_BTF_DIR);
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(KernelBtfError::Read {
                path: dir.to_path_buf(),
                source,
            })
        }
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| KernelBtfError::Read {
            path: dir.to_path_buf(),
            source,
        })?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name != "vmlinux" {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// The ids of the kernel's module BTF objects by module name (empty when they cannot be
/// listed: without privileges, or before Linux 5.11, which has no BTF names).
fn module_btf_obj_ids() -> std::collections::HashMap<String, u32> {
    use bpf_sys::obj::{self, ObjKind};
    let mut ids = std::collections::HashMap::new();
    for id in obj::ids(ObjKind::Btf) {
        let Ok(id) = id else { break };
        let Ok(fd) = obj::btf_fd_by_id(id) else {
            continue;
        };
        let mut name = [0u8; 64];
        let Ok(info) = obj::btf_info_with_buffers(&fd, &mut name, &mut []) else {
            continue;
        };
        let len = name.iter().position(|&b| b == 0).unwrap_or(name.len());
        let name = String::from_utf8_lossy(&name[..len]).into_owned();
        if info.kernel_btf != 0 && !name.is_empty() && name != "vmlinux" {
            ids.insert(name, id);
        }
    }
    ids
}

/// The BTF of kernel module `name` (`/sys/kernel/btf/<name>`), parsed against vmlinux's
/// ([`kernel_btf`]) on first use and cached for the life of the process; read again only when
/// the file's size changes (the module was reloaded). The BTF object id is looked up with
/// `BPF_BTF_GET_NEXT_ID` when the module is first read (`None` when it cannot be).
pub fn module_btf(name: &str) -> Result<ModuleBtf, KernelBtfError> {
    static CACHE: Mutex<Option<std::collections::HashMap<String, (u64, ModuleBtf)>>> =
        Mutex::new(None);
    let path = Path::new(KERNEL_BTF_DIR).join(name);
    let read_err = |source| KernelBtfError::Read {
        path: path.clone(),
        source,
    };
    let size = std::fs::metadata(&path).map_err(read_err)?.len();
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    let cache = cache.get_or_insert_with(Default::default);
    if let Some((s, m)) = cache.get(name) {
        if *s == size {
            return Ok(m.clone());
        }
    }
    let vmlinux = kernel_btf()?;
    let raw = std::fs::read(&path).map_err(read_err)?;
    let btf = Btf::parse_split(&raw, &vmlinux).map_err(|source| KernelBtfError::Parse {
        path: path.clone(),
        source: Box::new(source),
    })?;
    let id = module_btf_obj_ids().get(name).copied();
    let m = ModuleBtf::new(name, Arc::new(btf), id);
    cache.insert(name.to_string(), (size, m.clone()));
    Ok(m)
}

/// Every loaded module's BTF ([`module_names`], [`module_btf`]).
pub fn module_btfs() -> Result<Vec<ModuleBtf>, KernelBtfError> {
    module_names()?.iter().map(|n| module_btf(n)).collect()
}

/// The running kernel's BTF as CO-RE targets ([`bpf_elf::LinkedProgram::relocate_core_with`]):
/// vmlinux, and every module's BTF, read when a relocation first needs them.
#[derive(Debug)]
pub struct KernelTargets {
    vmlinux: Arc<Btf>,
    /// False for a user-supplied BTF file (libbpf ignores modules then too).
    with_modules: bool,
    modules: OnceLock<Vec<ModuleBtf>>,
}

impl KernelTargets {
    /// The running kernel's targets ([`kernel_btf`]; modules on demand).
    pub fn new() -> Result<KernelTargets, KernelBtfError> {
        Ok(KernelTargets {
            vmlinux: kernel_btf()?,
            with_modules: true,
            modules: OnceLock::new(),
        })
    }
}

impl CoreTargets for KernelTargets {
    fn vmlinux(&self) -> &Btf {
        &self.vmlinux
    }

    fn modules(&self) -> &[ModuleBtf] {
        self.modules.get_or_init(|| {
            if !self.with_modules {
                return Vec::new();
            }
            let mut out = Vec::new();
            match module_names() {
                Ok(names) => {
                    for n in names {
                        match module_btf(&n) {
                            Ok(m) => out.push(m),
                            Err(e) => log::warn!("{e}: module {n} is not searched for co-re"),
                        }
                    }
                }
                Err(e) => log::warn!("{e}: kernel modules are not searched for co-re"),
            }
            out
        })
    }
}

/// The target BTF for CO-RE: the user's file when given, else the kernel's; read at most once
/// per object load.
#[derive(Debug, Default)]
pub(crate) struct CoreTarget {
    custom: Option<PathBuf>,
    loaded: Option<Arc<Btf>>,
    /// The modules' BTF, once a relocation needed them (kept for the object's other programs).
    modules: Option<Vec<ModuleBtf>>,
}

impl CoreTarget {
    pub(crate) fn new(custom: Option<PathBuf>) -> Self {
        CoreTarget {
            custom,
            loaded: None,
            modules: None,
        }
    }

    fn get(&mut self) -> Result<Arc<Btf>, KernelBtfError> {
        if let Some(b) = &self.loaded {
            return Ok(b.clone());
        }
        let b = match &self.custom {
            Some(p) => Arc::new(btf_from_file(p)?),
            None => kernel_btf()?,
        };
        self.loaded = Some(b.clone());
        Ok(b)
    }

    /// Applies the program's CO-RE relocations, if it has any; `None` when it has none.
    pub(crate) fn apply(
        &mut self,
        local: Option<&Btf>,
        linked: &mut LinkedProgram,
    ) -> Result<Option<CoreReport>, ElfError> {
        if linked.core_relocations.is_empty() {
            return Ok(None);
        }
        let Some(local) = local else {
            // Cannot happen for a parsed object (records come from .BTF.ext, which needs .BTF).
            return Ok(None);
        };
        let target = self.get().map_err(|e| {
            let (path, source) = match e {
                KernelBtfError::Read { path, source } => (path, source),
                KernelBtfError::Parse { path, source } => (
                    path,
                    std::io::Error::new(std::io::ErrorKind::InvalidData, source),
                ),
            };
            ElfError::Io { path, source }
        })?;
        let targets = KernelTargets {
            vmlinux: target,
            with_modules: self.custom.is_none(),
            modules: self
                .modules
                .take()
                .map_or_else(OnceLock::new, OnceLock::from),
        };
        let report = linked.relocate_core_with(local, &targets);
        self.modules = targets.modules.into_inner();
        report.map(Some)
    }
}

impl CoreTarget {
    /// Resolves `.kconfig` reads into the `.kconfig` map and `__ksym`/kfunc externs against
    /// the target BTF (typed; kfuncs in modules too) or `/proc/kallsyms` (untyped). Returns the
    /// BTF object ids of the modules whose kfuncs the program calls, in `fd_array` order (see
    /// [`LinkedProgram::resolve_externs_with`]).
    pub(crate) fn resolve_externs(
        &mut self,
        obj: &bpf_elf::ObjectSpec,
        linked: &mut LinkedProgram,
    ) -> Result<Vec<u32>, ElfError> {
        if linked.externs.is_empty() {
            return Ok(Vec::new());
        }
        let needs_btf = linked
            .externs
            .iter()
            .any(|e| e.kind != bpf_elf::ExternKind::Kconfig);
        let kernel = if needs_btf {
            match self.get() {
                Ok(b) => Some(b),
                Err(e) => {
                    log::warn!("{e}: typed ksyms and kfuncs cannot be resolved");
                    None
                }
            }
        } else {
            None
        };
        let Some(vmlinux) = kernel else {
            return linked.resolve_externs_with(obj, None, crate::kernel_config::kallsyms_address);
        };
        let targets = KernelTargets {
            vmlinux,
            with_modules: self.custom.is_none(),
            modules: self
                .modules
                .take()
                .map_or_else(OnceLock::new, OnceLock::from),
        };
        let used = linked.resolve_externs_with(
            obj,
            Some(&targets),
            crate::kernel_config::kallsyms_address,
        );
        self.modules = targets.modules.into_inner();
        used
    }
}

fn accepts(b: &BtfBuilder) -> bool {
    match b.build() {
        Ok(btf) => bpf_sys::btf::load(btf.raw(), None).is_ok(),
        Err(_) => false,
    }
}

/// Which BTF kinds the running kernel accepts, probed once per process by loading a tiny blob
/// for each.
pub fn btf_features() -> BtfFeatures {
    static FEATURES: OnceLock<BtfFeatures> = OnceLock::new();
    *FEATURES.get_or_init(|| {
        let with_int = || {
            let mut b = BtfBuilder::new();
            let int = b.add_int("int", 4, true);
            (b, int)
        };
        let func = |linkage| {
            let (mut b, int) = with_int();
            let proto = b.add_func_proto(int, &[("x", int)]);
            b.add_func("f", proto, linkage);
            accepts(&b)
        };
        BtfFeatures {
            datasec: {
                let (mut b, int) = with_int();
                let v = b.add_var("v", int, 0);
                b.add_datasec(".data", 4, &[(v, 0, 4)]);
                accepts(&b)
            },
            func: func(0),
            func_global: func(1),
            float: {
                let mut b = BtfBuilder::new();
                b.add_float("float", 4);
                accepts(&b)
            },
            decl_tag: {
                let (mut b, int) = with_int();
                let s = b.add_struct("s", 4, &[("x", int, 0)]);
                b.add_decl_tag("tag", s, -1);
                accepts(&b)
            },
            type_tag: {
                let (mut b, int) = with_int();
                let t = b.add_ref(BtfKind::TypeTag, "tag", int);
                b.add_ptr(t);
                accepts(&b)
            },
            enum64: {
                let mut b = BtfBuilder::new();
                b.add_enum("e", 8, false, &[("A", 1 << 40)]);
                accepts(&b)
            },
            empty_datasec: {
                let mut b = BtfBuilder::new();
                b.add_datasec(".rodata", 4, &[]);
                accepts(&b)
            },
        }
    })
}

/// The object's BTF as the running kernel takes it: sanitised when the kernel lacks a kind the
/// object uses (see [`btf_features`]).
pub fn sanitize_for_kernel(btf: &Btf) -> Result<Vec<u8>, ElfError> {
    Ok(sanitize_if_needed(btf)?.unwrap_or_else(|| btf.raw().to_vec()))
}

/// [`sanitize_for_kernel`], `None` when the kernel takes `btf` as it is (every kind probed
/// supported): the caller then sends `btf.raw()` without a copy.
pub(crate) fn sanitize_if_needed(btf: &Btf) -> Result<Option<Vec<u8>>, ElfError> {
    let features = btf_features();
    if features == BtfFeatures::ALL {
        return Ok(None);
    }
    Ok(Some(btf.sanitized(&features)?.raw().to_vec()))
}
