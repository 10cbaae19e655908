//! [`KernelProgram`]: a program's instructions and load settings, and its fd once loaded.

use std::ffi::{CStr, CString};
use std::fmt;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::sync::Arc;

use bpf_elf::{
    ElfError, Endianness, FuncInfo, Instruction, LineInfo, LinkedProgram, ObjectSpec, ProgramSpec,
};
use bpf_sys::bpf::LogBuf;
use bpf_sys::prog::{self, ProgLoadAttr};
use bpf_sys::uapi::{self, bpf_insn};
use bpf_sys::{AttachType, ProgramType, SysError};

use crate::error::errno::{E2BIG, EINVAL};
use crate::error::ProgramError;
use crate::info::ProgramInfo;
use crate::system::DeferredFreeze;
use crate::verifier::{self, Attempt, LogGrowth, LogLimits, VerifierError};

/// A loaded object, shared by its [`crate::KernelSystem`] and its programs (which may outlive
/// the system): the parsed object, which holds the programs' names, sections and licenses and
/// the BTF that gives the source locations of verifier errors, and the fd of that BTF when the
/// kernel accepted it (for `func_info` and `line_info`). Sharing the object spares copies of
/// all of these per load. The object's maps share it too, for their templates
/// ([`bpf_maps::KernelMap::create_in_shared`]): one allocation holds everything.
#[derive(Debug)]
pub(crate) struct LoadedObject {
    pub(crate) spec: ObjectSpec,
    pub(crate) btf_fd: Option<OwnedFd>,
}

impl bpf_maps::SharedObject for LoadedObject {
    fn object(&self) -> &ObjectSpec {
        &self.spec
    }
}

impl LoadedObject {
    /// The object's raw BTF (empty without one).
    fn btf_raw(&self) -> &[u8] {
        self.spec.btf.as_ref().map_or(&[], |b| b.raw())
    }
}

/// A program array slot to fill with the program once it is loaded (`.values` of a BTF
/// `PROG_ARRAY`).
#[derive(Debug)]
pub(crate) struct ProgramSlot {
    pub(crate) map: String,
    pub(crate) fd: OwnedFd,
    pub(crate) index: u32,
}

/// What `BPF_PROG_LOAD` gets for one load configuration.
#[derive(Debug, Clone, Copy)]
struct Config {
    btf: bool,
    attach_type: Option<AttachType>,
}

/// A failed configuration: the call's error, the log, whether it was cut.
#[derive(Debug)]
struct Failure {
    source: SysError,
    log: String,
    truncated: bool,
}

/// Whether a load that failed with `errno` while passing an expected attach type is tried again
/// without one (goebpf's fallback: kernels that do not know the attach type, or that do not
/// take one for this program type, answer `EINVAL`).
pub fn retry_without_attach_type(errno: Option<i32>, attach_type: Option<AttachType>) -> bool {
    attach_type.is_some() && errno == Some(EINVAL)
}

/// Whether a load that failed with `errno` while passing BTF func_info/line_info is tried again
/// without them (kernels that refuse the object's BTF records answer `EINVAL` or `E2BIG`).
pub fn retry_without_btf(errno: Option<i32>, had_btf: bool) -> bool {
    had_btf && matches!(errno, Some(EINVAL) | Some(E2BIG))
}

/// A BPF program: what to load and how, and its fd once loaded.
///
/// Built by [`crate::KernelSystem`] from an object (linked, relocated, with BTF line info), by
/// [`KernelProgram::new`] from raw instructions, or opened from the kernel
/// ([`KernelProgram::from_pin`], [`KernelProgram::from_id`]). [`KernelProgram::load`] verifies
/// and loads it: the fd is closed when the program is dropped or [`KernelProgram::close`]d.
///
/// Loading sends the name (cut to 15 bytes), the license, the running kernel's version (which
/// kprobes needed before Linux 5.0), the expected attach type (dropped on `EINVAL`, as goebpf
/// does), and the object's BTF func_info and line_info when the kernel took the BTF (dropped on
/// `EINVAL`/`E2BIG`). The verifier log is asked for only when a load fails, and grows in a
/// bounded way ([`LogGrowth`]); a rejection is a [`VerifierError`].
///
/// ```no_run
/// use bpf_attach::{KernelProgram, ProgramType};
/// use bpf_elf::Instruction;
///
/// // r0 = 2 (XDP_PASS); exit
/// let insns = [
///     Instruction { code: 0xb7, dst: 0, src: 0, off: 0, imm: 2 },
///     Instruction { code: 0x95, ..Default::default() },
/// ];
/// let mut p = KernelProgram::new("pass", ProgramType::Xdp, &insns, "GPL");
/// p.load()?;
/// # Ok::<(), bpf_attach::ProgramError>(())
/// ```
#[derive(Debug)]
pub struct KernelProgram {
    origin: Origin,
    program_type: ProgramType,
    expected_attach_type: Option<AttachType>,
    kernel_version: Option<u32>,
    prog_flags: u32,
    insns: Vec<bpf_insn>,
    records: BtfRecords,
    log_limits: LogLimits,
    slots: Vec<ProgramSlot>,
    fd: Option<OwnedFd>,
    verifier_log: Option<String>,
    dropped_btf: bool,
    dropped_attach_type: bool,
    unavailable: Option<Arc<ElfError>>,
    freezes: Vec<Arc<DeferredFreeze>>,
    attach_to: Option<String>,
    return_probe: bool,
    link: Option<crate::link::Link>,
    /// What the CO-RE step did, to explain a verifier error at a poisoned instruction.
    core: Option<Arc<bpf_elf::CoreReport>>,
    /// The BTF objects of the modules whose kfuncs the program calls: `fd_array` slots 1.. (a
    /// call's `off`).
    module_btfs: Vec<OwnedFd>,
}

/// Where a program's name, section and license are.
enum Origin {
    /// Program `index` of a loaded object (which also gives the BTF): read there, not copied.
    Object {
        object: Arc<LoadedObject>,
        index: usize,
    },
    /// Its own: a program made from raw instructions or opened from the kernel.
    Own {
        name: String,
        section: String,
        license: String,
    },
}

impl Origin {
    /// The object's spec of the program, for a program of an object.
    fn spec(&self) -> Option<&ProgramSpec> {
        match self {
            Origin::Object { object, index } => object.spec.programs.get(*index),
            Origin::Own { .. } => None,
        }
    }

    /// The object, for a program of an object.
    fn object(&self) -> Option<&LoadedObject> {
        match self {
            Origin::Object { object, .. } => Some(object),
            Origin::Own { .. } => None,
        }
    }
}

/// Where a program finds its BTF func_info and line_info records.
#[derive(Debug)]
enum BtfRecords {
    /// Its own: a linked program's (or none).
    Own {
        func_info: Vec<FuncInfo>,
        line_info: Vec<LineInfo>,
    },
    /// Its function's, in the object ([`Origin::Object`]): a program that is its function alone
    /// ([`ProgramSpec::relocate_alone`]) has that function's records, indexed as its instructions are.
    Function,
}

impl BtfRecords {
    const NONE: BtfRecords = BtfRecords::Own {
        func_info: Vec::new(),
        line_info: Vec::new(),
    };
}

impl fmt::Debug for Origin {
    /// The program's own fields, not the whole object's.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Object { object, index } => f
                .debug_struct("Object")
                .field("index", index)
                .field("program", &self.spec().map(|p| &p.name))
                .field("btf_fd", &object.btf_fd)
                .finish(),
            Origin::Own {
                name,
                section,
                license,
            } => f
                .debug_struct("Own")
                .field("name", name)
                .field("section", section)
                .field("license", license)
                .finish(),
        }
    }
}

impl KernelProgram {
    /// A program from raw instructions (in the host's byte order), not loaded.
    pub fn new(
        name: impl Into<String>,
        program_type: ProgramType,
        insns: &[Instruction],
        license: impl Into<String>,
    ) -> Self {
        let origin = Origin::Own {
            name: name.into(),
            section: String::new(),
            license: license.into(),
        };
        KernelProgram::with_parts(
            origin,
            program_type,
            insns.iter().map(Instruction::to_bpf_insn).collect(),
        )
    }

    /// A program of these parts, with nothing else set.
    fn with_parts(origin: Origin, program_type: ProgramType, insns: Vec<bpf_insn>) -> Self {
        KernelProgram {
            origin,
            program_type,
            expected_attach_type: None,
            kernel_version: None,
            prog_flags: 0,
            insns,
            records: BtfRecords::NONE,
            log_limits: LogLimits::default(),
            slots: Vec::new(),
            fd: None,
            verifier_log: None,
            dropped_btf: false,
            dropped_attach_type: false,
            unavailable: None,
            freezes: Vec::new(),
            attach_to: None,
            return_probe: false,
            link: None,
            core: None,
            module_btfs: Vec::new(),
        }
    }

    /// Program `index` of `object`, `spec`, which could not be linked or relocated (`load`
    /// says why).
    pub(crate) fn unavailable(
        object: &Arc<LoadedObject>,
        index: usize,
        spec: &ProgramSpec,
        e: ElfError,
    ) -> Self {
        let origin = Origin::Object {
            object: Arc::clone(object),
            index,
        };
        let mut p = KernelProgram::with_parts(origin, spec.program_type, Vec::new());
        p.expected_attach_type = spec.expected_attach_type;
        p.unavailable = Some(Arc::new(e));
        p
    }

    /// Program `index` of `object`, `spec`, from its linked, relocated instructions.
    pub(crate) fn from_linked(
        object: &Arc<LoadedObject>,
        index: usize,
        spec: &ProgramSpec,
        linked: LinkedProgram,
        log_limits: LogLimits,
    ) -> Result<Self, ProgramError> {
        check_endianness(spec, linked.endianness)?;
        // Converted in place: the linked instructions' buffer becomes the program's.
        let insns = linked
            .instructions
            .into_iter()
            .map(|i| i.to_bpf_insn())
            .collect();
        // The records are of no use without the object's BTF.
        let records = if object.spec.btf.is_some() {
            BtfRecords::Own {
                func_info: linked.func_info,
                line_info: linked.line_info,
            }
        } else {
            BtfRecords::NONE
        };
        Ok(KernelProgram::of_object(
            object, index, spec, insns, records, log_limits,
        ))
    }

    /// Program `index` of `object`, `spec`, that is its function alone, from the instructions
    /// [`ProgramSpec::relocate_alone`] made.
    pub(crate) fn from_alone(
        object: &Arc<LoadedObject>,
        index: usize,
        spec: &ProgramSpec,
        insns: Vec<bpf_insn>,
        log_limits: LogLimits,
    ) -> Result<Self, ProgramError> {
        if object.spec.endianness != Endianness::host() {
            return Err(endianness_error(spec, object.spec.endianness));
        }
        let records = if object.spec.btf.is_some() {
            BtfRecords::Function
        } else {
            BtfRecords::NONE
        };
        Ok(KernelProgram::of_object(
            object, index, spec, insns, records, log_limits,
        ))
    }

    /// Program `index` of `object`, `spec`, of these relocated instructions and records.
    fn of_object(
        object: &Arc<LoadedObject>,
        index: usize,
        spec: &ProgramSpec,
        insns: Vec<bpf_insn>,
        records: BtfRecords,
        log_limits: LogLimits,
    ) -> Self {
        let origin = Origin::Object {
            object: Arc::clone(object),
            index,
        };
        let mut p = KernelProgram::with_parts(origin, spec.program_type, insns);
        p.attach_to = spec.attach_to.clone().map(String::from);
        p.return_probe = spec.return_probe;
        p.expected_attach_type = spec.expected_attach_type;
        p.kernel_version = None;
        if spec.sleepable {
            p.prog_flags |= uapi::BPF_F_SLEEPABLE;
        }
        if spec.xdp_frags {
            p.prog_flags |= uapi::BPF_F_XDP_HAS_FRAGS;
        }
        p.records = records;
        p.log_limits = log_limits;
        p
    }

    /// The program's BTF func_info records.
    fn func_info(&self) -> &[FuncInfo] {
        match &self.records {
            BtfRecords::Own { func_info, .. } => func_info,
            BtfRecords::Function => self.origin.spec().map_or(&[], |p| &p.function.func_info),
        }
    }

    /// The program's BTF line_info records.
    fn line_info(&self) -> &[LineInfo] {
        match &self.records {
            BtfRecords::Own { line_info, .. } => line_info,
            BtfRecords::Function => self.origin.spec().map_or(&[], |p| &p.function.line_info),
        }
    }

    /// A program already in the kernel, from its fd; its name and type come from the kernel.
    pub fn from_fd(fd: OwnedFd) -> Result<Self, ProgramError> {
        let info = ProgramInfo::from_fd(fd.as_fd())?;
        let mut p = KernelProgram::new(
            info.name.clone(),
            info.program_type.unwrap_or(ProgramType::Unspec),
            &[],
            "",
        );
        p.fd = Some(fd);
        Ok(p)
    }

    /// Opens the program pinned at `path` (goebpf's `GetProgramInfoByPath` opened it the same
    /// way).
    pub fn from_pin(path: impl AsRef<Path>) -> Result<Self, ProgramError> {
        let path = path.as_ref();
        let fd = bpf_sys::obj::get(path, 0).map_err(|source| ProgramError::Open {
            what: format!("at {}", path.display()),
            source,
        })?;
        KernelProgram::from_fd(fd)
    }

    /// Opens the loaded program with this id.
    pub fn from_id(id: u32) -> Result<Self, ProgramError> {
        let fd = bpf_sys::obj::prog_fd_by_id(id).map_err(|source| ProgramError::Open {
            what: format!("with id {id}"),
            source,
        })?;
        KernelProgram::from_fd(fd)
    }

    /// The program's name (the C function's).
    pub fn name(&self) -> &str {
        match &self.origin {
            Origin::Own { name, .. } => name,
            Origin::Object { .. } => self.origin.spec().map_or("", |p| &p.name),
        }
    }

    /// The ELF section it came from (empty for raw instructions).
    pub fn section(&self) -> &str {
        match &self.origin {
            Origin::Own { section, .. } => section,
            Origin::Object { .. } => self.origin.spec().map_or("", |p| &p.section),
        }
    }

    /// The program type.
    pub fn program_type(&self) -> ProgramType {
        self.program_type
    }

    /// Sets the program type (for a section name this library does not know).
    pub fn set_program_type(&mut self, t: ProgramType) {
        self.program_type = t;
    }

    /// The expected attach type sent at load.
    pub fn expected_attach_type(&self) -> Option<AttachType> {
        self.expected_attach_type
    }

    /// Sets the expected attach type sent at load.
    pub fn set_expected_attach_type(&mut self, t: Option<AttachType>) {
        self.expected_attach_type = t;
    }

    /// The license.
    pub fn license(&self) -> &str {
        match &self.origin {
            Origin::Own { license, .. } => license,
            Origin::Object { .. } => self.origin.spec().map_or("", |p| &p.license),
        }
    }

    /// What the section name says to attach to (`kprobe/SYM` gives `SYM`,
    /// `tracepoint/syscalls/sys_enter_getpid` gives `syscalls/sys_enter_getpid`).
    pub fn attach_to(&self) -> Option<&str> {
        self.attach_to.as_deref()
    }

    /// Sets the attach target that [`crate::AttachTarget::Section`] uses.
    pub fn set_attach_to(&mut self, target: Option<String>) {
        self.attach_to = target;
    }

    /// Whether the section makes a return probe (`kretprobe/`, `uretprobe/`, `kretsyscall/`).
    pub fn is_return_probe(&self) -> bool {
        self.return_probe
    }

    /// Sets whether [`crate::AttachTarget::Section`] and probe targets make a return probe.
    pub fn set_return_probe(&mut self, ret: bool) {
        self.return_probe = ret;
    }

    /// The attachment held by the program ([`KernelProgram::attach`]).
    pub(crate) fn link_slot(&mut self) -> &mut Option<crate::link::Link> {
        &mut self.link
    }

    /// The attachment held by the program, if any.
    pub fn link(&self) -> Option<&crate::link::Link> {
        self.link.as_ref()
    }

    /// Overrides `kern_version` (by default the running kernel's `LINUX_VERSION_CODE`).
    pub fn set_kernel_version(&mut self, version: u32) {
        self.kernel_version = Some(version);
    }

    /// `BPF_F_*` load flags.
    pub fn flags(&self) -> u32 {
        self.prog_flags
    }

    /// Sets the `BPF_F_*` load flags.
    pub fn set_flags(&mut self, flags: u32) {
        self.prog_flags = flags;
    }

    /// The verifier log's level and growth bounds.
    pub fn log_limits(&self) -> LogLimits {
        self.log_limits
    }

    /// Sets the verifier log's level and growth bounds.
    pub fn set_log_limits(&mut self, limits: LogLimits) {
        self.log_limits = limits;
    }

    /// The number of instruction slots (an `ld_imm64` takes two).
    pub fn insn_count(&self) -> usize {
        self.insns.len()
    }

    /// The program's size in bytes (goebpf's `GetSize`).
    pub fn size(&self) -> usize {
        self.insns.len() * bpf_elf::INSN_SIZE
    }

    /// Whether the program is loaded.
    pub fn is_loaded(&self) -> bool {
        self.fd.is_some()
    }

    /// The fd, once loaded.
    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.fd.as_ref().map(|f| f.as_fd())
    }

    /// The fd, or [`ProgramError::NotLoaded`] naming `operation`.
    pub fn require_fd(&self, operation: &'static str) -> Result<BorrowedFd<'_>, ProgramError> {
        self.fd().ok_or_else(|| ProgramError::NotLoaded {
            program: self.name().to_string(),
            operation,
        })
    }

    /// The verifier's log of a successful load, when a log level was asked for
    /// ([`LogLimits::level`]).
    pub fn verifier_log(&self) -> Option<&str> {
        self.verifier_log.as_deref()
    }

    /// Whether the last load went without the BTF records the kernel refused.
    pub fn loaded_without_btf(&self) -> bool {
        self.dropped_btf
    }

    /// Whether the last load went without the expected attach type the kernel refused.
    pub fn loaded_without_attach_type(&self) -> bool {
        self.dropped_attach_type
    }

    /// Verifies and loads the program.
    ///
    /// Errors: [`ProgramError::AlreadyLoaded`] (close it first), [`ProgramError::Verifier`]
    /// with the log, [`ProgramError::Load`] for a failure the log does not explain (`EPERM`),
    /// [`ProgramError::Invalid`] for a program that cannot be sent.
    #[doc(alias = "BPF_PROG_LOAD")]
    pub fn load(&mut self) -> Result<(), ProgramError> {
        if self.fd.is_some() || self.unavailable.is_some() {
            return Err(self.not_loadable());
        }
        if self.insns.is_empty() {
            return Err(self.invalid("it has no instructions"));
        }
        if self.program_type == ProgramType::Unspec {
            return Err(self.invalid("its program type is unknown (set it for this section name)"));
        }
        let Some(license) = license_cstr(self.license()) else {
            return Err(self.invalid("its license contains a NUL byte"));
        };
        if !self.freezes.is_empty() {
            self.freeze_maps()?;
        }
        let btf_fd = self.origin.object().and_then(|o| o.btf_fd.as_ref());
        let (func_info, line_info) = (self.func_info(), self.line_info());
        let has_btf = btf_fd.is_some() && !(func_info.is_empty() && line_info.is_empty());
        // Encoded once for every attempt; on the stack unless the program has over sixty
        // source lines.
        let (mut stack, mut heap) = ([0u32; 256], Vec::new());
        let words = if has_btf {
            encode_records(&mut stack, &mut heap, func_info, line_info)
        } else {
            &[]
        };
        let records: &[u8] = bytemuck::cast_slice(words);
        let (func_info, line_info) =
            records.split_at(records.len().min(func_info.len() * FUNC_INFO_SIZE));
        let records = Records {
            func_info,
            line_info,
        };

        let first = Config {
            btf: has_btf,
            attach_type: self.expected_attach_type,
        };
        let (fd, log, used) = match self.load_config(license.as_ref(), records, first) {
            Ok((fd, log)) => (fd, log, first),
            Err(f) => self.retry_load(license.as_ref(), records, first, f)?,
        };
        self.fd = Some(fd);
        self.verifier_log = log;
        self.dropped_btf = has_btf && !used.btf;
        self.dropped_attach_type =
            self.expected_attach_type.is_some() && used.attach_type.is_none();
        if self.slots.is_empty() {
            return Ok(());
        }
        self.fill_slots()
    }

    /// After the first configuration failed with `f`: tries again without the expected attach
    /// type, then without BTF, as the errors allow; the configuration that loaded, or the
    /// error. Out of line: most loads succeed at once.
    #[inline(never)]
    fn retry_load(
        &self,
        license: &CStr,
        records: Records<'_>,
        first: Config,
        f: Failure,
    ) -> Result<(OwnedFd, Option<String>, Config), ProgramError> {
        let mut result = Err(f);
        let mut used = first;
        if let Err(f) = &result {
            if retry_without_attach_type(f.source.errno(), first.attach_type) {
                used = Config {
                    attach_type: None,
                    ..first
                };
                result = self.load_config(license, records, used);
            }
        }
        if let Err(f) = &result {
            if retry_without_btf(f.source.errno(), used.btf) {
                let plain = Config { btf: false, ..used };
                if let Ok(ok) = self.load_config(license, records, plain) {
                    used = plain;
                    result = Ok(ok);
                }
            }
        }
        match result {
            Ok((fd, log)) => Ok((fd, log, used)),
            Err(f) => Err(self.failure_error(f)),
        }
    }

    /// Why a loaded program, or one that could not be relocated, cannot load.
    #[cold]
    #[inline(never)]
    fn not_loadable(&self) -> ProgramError {
        match &self.unavailable {
            Some(e) if self.fd.is_none() => ProgramError::Relocate {
                program: self.name().to_string(),
                source: e.clone(),
            },
            _ => ProgramError::AlreadyLoaded {
                program: self.name().to_string(),
            },
        }
    }

    /// A program that cannot be sent, for `reason`.
    #[cold]
    #[inline(never)]
    fn invalid(&self, reason: &str) -> ProgramError {
        ProgramError::Invalid {
            program: self.name().to_string(),
            reason: reason.to_string(),
        }
    }

    /// Freezes the object's maps to freeze before its first load (`.rodata`).
    #[inline(never)]
    fn freeze_maps(&self) -> Result<(), ProgramError> {
        for f in &self.freezes {
            f.freeze()
                .map_err(|(map, source)| ProgramError::Freeze { map, source })?;
        }
        Ok(())
    }

    fn failure_error(&self, f: Failure) -> ProgramError {
        if f.log.trim().is_empty() {
            return ProgramError::Load {
                program: self.name().to_string(),
                source: f.source,
            };
        }
        let raw = self.origin.object().map_or(&[][..], LoadedObject::btf_raw);
        let line_info = self.line_info();
        let v = VerifierError::new(
            self.name().to_string(),
            f.source,
            f.log,
            f.truncated,
            |insn| verifier::locate(raw, line_info, insn),
        );
        let poisoned = v
            .failing_insn()
            .and_then(|i| self.core.as_ref()?.poisoned_at(i));
        match poisoned {
            Some(o) => ProgramError::CoreRelocation {
                program: self.name().to_string(),
                relocation: Box::new(o.clone()),
                location: v.source_location().cloned(),
                source: Box::new(v),
            },
            None => v.into(),
        }
    }

    /// What the CO-RE step did to this program's instructions (`None` when it has no CO-RE
    /// relocations or was not built from an object).
    pub fn core_report(&self) -> Option<&bpf_elf::CoreReport> {
        self.core.as_deref()
    }

    pub(crate) fn set_core_report(&mut self, report: Option<bpf_elf::CoreReport>) {
        self.core = report.map(Arc::new);
    }

    /// The BTF objects of the modules whose kfuncs the program calls, in `fd_array` order.
    pub(crate) fn set_module_btfs(&mut self, fds: Vec<OwnedFd>) {
        self.module_btfs = fds;
    }

    /// Runs the log state machine for one configuration.
    fn load_config(
        &self,
        license: &CStr,
        records: Records<'_>,
        config: Config,
    ) -> Result<(OwnedFd, Option<String>), Failure> {
        let mut attr = ProgLoadAttr::new(self.program_type, &self.insns, license);
        attr.name = self.name();
        attr.kern_version = self.kernel_version.unwrap_or_else(running_kernel_version);
        attr.expected_attach_type = config.attach_type;
        attr.prog_flags = self.prog_flags;
        // Slot 0 is never read for a kfunc (`off` 0 is vmlinux): it repeats slot 1.
        let fd_array: Vec<BorrowedFd<'_>> = match self.module_btfs.first() {
            Some(first) => std::iter::once(first)
                .chain(&self.module_btfs)
                .map(|f| f.as_fd())
                .collect(),
            None => Vec::new(),
        };
        attr.fd_array = &fd_array;
        if config.btf {
            if let Some(fd) = self.origin.object().and_then(|o| o.btf_fd.as_ref()) {
                attr.prog_btf_fd = Some(fd.as_fd());
                if !records.func_info.is_empty() {
                    attr.func_info = records.func_info;
                    attr.func_info_rec_size = FUNC_INFO_SIZE as u32;
                }
                if !records.line_info.is_empty() {
                    attr.line_info = records.line_info;
                    attr.line_info_rec_size = LINE_INFO_SIZE as u32;
                }
            }
        }
        let mut machine = LogGrowth::new(self.log_limits);
        let mut last: Option<Attempt> = None;
        let mut failure: Option<Failure> = None;
        // At level 0 the machine's first attempt is a load without a log: the one call a
        // program the verifier accepts needs, made here; the log is asked for out of line.
        if self.log_limits.level == 0 && machine.next(None).is_some() {
            match load_without_log(&attr) {
                Ok(fd) => return Ok((fd, None)),
                Err((attempt, f)) => (last, failure) = (Some(attempt), Some(f)),
            }
        }
        self.load_logged(&attr, machine, last, failure)
    }

    /// The rest of [`KernelProgram::load_config`]'s log state machine, after `last` (and its
    /// `failure`) if an attempt was made.
    #[inline(never)]
    fn load_logged(
        &self,
        attr: &ProgLoadAttr<'_>,
        mut machine: LogGrowth,
        mut last: Option<Attempt>,
        mut failure: Option<Failure>,
    ) -> Result<(OwnedFd, Option<String>), Failure> {
        let attr = *attr;
        while let Some(req) = machine.next(last) {
            if req.size == 0 {
                match load_without_log(&attr) {
                    Ok(fd) => return Ok((fd, None)),
                    Err((attempt, f)) => (last, failure) = (Some(attempt), Some(f)),
                }
                continue;
            }
            let mut buf = vec![0u8; req.size];
            let mut log = LogBuf::new(&mut buf, req.level);
            let r = prog::load(&attr, Some(&mut log));
            let text = log.to_string_lossy();
            let true_size = log.true_size();
            match r {
                Ok(fd) => return Ok((fd, (self.log_limits.level > 0).then_some(text))),
                Err(e) => {
                    let errno = e.errno();
                    last = Some(Attempt {
                        size: req.size,
                        errno,
                        true_size,
                    });
                    let truncated = errno == Some(crate::error::errno::ENOSPC);
                    failure = Some(Failure {
                        source: e,
                        log: text,
                        truncated,
                    });
                }
            }
        }
        let mut failure = failure.unwrap_or_else(|| Failure {
            source: SysError::invalid_input("BPF_PROG_LOAD", "no load attempt was allowed"),
            log: String::new(),
            truncated: false,
        });
        if failure.truncated {
            // The log never fit: `ENOSPC` says nothing about the program. Without a log the
            // kernel gives the verifier's own errno (or loads a program it accepts).
            match prog::load(&attr, None) {
                Ok(fd) => return Ok((fd, Some(failure.log))),
                Err(e) => failure.source = e,
            }
        }
        Err(failure)
    }

    #[inline(never)]
    fn fill_slots(&mut self) -> Result<(), ProgramError> {
        let Some(fd) = self.fd.as_ref() else {
            return Ok(());
        };
        let value = (raw_fd(fd.as_fd()) as u32).to_ne_bytes();
        for slot in &self.slots {
            let map = bpf_sys::map::MapFd::new(&slot.fd).map_err(|source| {
                ProgramError::ProgramArray {
                    program: self.name().to_string(),
                    map: slot.map.clone(),
                    index: slot.index,
                    source,
                }
            })?;
            map.update(&slot.index.to_ne_bytes(), &value, u64::from(uapi::BPF_ANY))
                .map_err(|source| ProgramError::ProgramArray {
                    program: self.name().to_string(),
                    map: slot.map.clone(),
                    index: slot.index,
                    source,
                })?;
        }
        Ok(())
    }

    /// The object's maps to freeze before the first load (`.rodata`).
    pub(crate) fn set_freezes(&mut self, freezes: Vec<Arc<DeferredFreeze>>) {
        self.freezes = freezes;
    }

    /// Remembers a program array slot to fill once the program is loaded.
    pub(crate) fn add_slot(&mut self, slot: ProgramSlot) {
        self.slots.push(slot);
    }

    /// Pins the loaded program at `path` (on a bpffs).
    #[doc(alias = "BPF_OBJ_PIN")]
    pub fn pin(&self, path: impl AsRef<Path>) -> Result<(), ProgramError> {
        let path = path.as_ref();
        let fd = self.require_fd("pin")?;
        bpf_sys::obj::pin(fd, path).map_err(|source| ProgramError::Pin {
            program: self.name().to_string(),
            path: path.to_path_buf(),
            source,
        })
    }

    /// Removes the pin at `path` (the program stays loaded while something holds it).
    pub fn unpin(path: impl AsRef<Path>) -> Result<(), ProgramError> {
        let path = path.as_ref();
        std::fs::remove_file(path).map_err(|source| ProgramError::Unpin {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Closes the fd (the kernel frees the program when nothing else holds it: a pin, an
    /// attachment, a program array). A program that is not loaded gives
    /// [`ProgramError::NotLoaded`].
    pub fn close(&mut self) -> Result<(), ProgramError> {
        match self.fd.take() {
            Some(fd) => {
                drop(fd);
                Ok(())
            }
            None => Err(ProgramError::NotLoaded {
                program: self.name().to_string(),
                operation: "close",
            }),
        }
    }

    /// What the kernel says about the loaded program.
    pub fn info(&self) -> Result<ProgramInfo, ProgramError> {
        ProgramInfo::from_fd(self.require_fd("read the info of")?)
    }
}

/// The error of a program whose instructions are not in the host's byte order.
fn check_endianness(spec: &ProgramSpec, endianness: Endianness) -> Result<(), ProgramError> {
    if endianness == Endianness::host() {
        return Ok(());
    }
    Err(endianness_error(spec, endianness))
}

#[cold]
#[inline(never)]
fn endianness_error(spec: &ProgramSpec, endianness: Endianness) -> ProgramError {
    ProgramError::Invalid {
        program: spec.name.to_string(),
        reason: format!("the object is {endianness:?}-endian, this machine is not"),
    }
}

/// A load without a verifier log: the fd, or the attempt and failure the log state machine
/// goes on from.
fn load_without_log(attr: &ProgLoadAttr<'_>) -> Result<OwnedFd, (Attempt, Failure)> {
    prog::load(attr, None).map_err(|e| {
        let attempt = Attempt {
            size: 0,
            errno: e.errno(),
            true_size: None,
        };
        let failure = Failure {
            source: e,
            log: String::new(),
            truncated: false,
        };
        (attempt, failure)
    })
}

const FUNC_INFO_SIZE: usize = 8;
const LINE_INFO_SIZE: usize = 16;

/// A program's BTF records as `BPF_PROG_LOAD` takes them.
#[derive(Debug, Clone, Copy)]
struct Records<'a> {
    func_info: &'a [u8],
    line_info: &'a [u8],
}

/// `struct bpf_func_info` records, then `struct bpf_line_info` records, as words in the
/// host's byte order, in one buffer: the first `func_info.len() * FUNC_INFO_SIZE` bytes are the
/// func_info.
/// The license as the NUL-terminated string `BPF_PROG_LOAD` takes: the licenses objects
/// declare most are static, others are copied; `None` when it holds a NUL byte.
fn license_cstr(license: &str) -> Option<std::borrow::Cow<'static, CStr>> {
    const COMMON: [&CStr; 6] = [
        c"GPL",
        c"Dual BSD/GPL",
        c"Dual MIT/GPL",
        c"GPL v2",
        c"Dual MPL/GPL",
        c"",
    ];
    if let Some(c) = COMMON.iter().find(|c| c.to_bytes() == license.as_bytes()) {
        return Some(std::borrow::Cow::Borrowed(c));
    }
    CString::new(license).ok().map(std::borrow::Cow::Owned)
}

/// The kernel's `bpf_func_info` then `bpf_line_info` records, as words: written into `stack`
/// when they fit, into `heap` otherwise.
fn encode_records<'a>(
    stack: &'a mut [u32],
    heap: &'a mut Vec<u32>,
    func_info: &[FuncInfo],
    line_info: &[LineInfo],
) -> &'a [u32] {
    let words = (func_info.len() * FUNC_INFO_SIZE + line_info.len() * LINE_INFO_SIZE) / 4;
    let out = match stack.get_mut(..words) {
        Some(out) => out,
        None => {
            *heap = vec![0; words];
            heap.as_mut_slice()
        }
    };
    let (func, line) = out.split_at_mut((func_info.len() * FUNC_INFO_SIZE / 4).min(words));
    for (o, r) in func.chunks_exact_mut(2).zip(func_info) {
        o.copy_from_slice(&[r.insn as u32, r.type_id]);
    }
    for (o, r) in line.chunks_exact_mut(4).zip(line_info) {
        o.copy_from_slice(&[r.insn as u32, r.file_name_off, r.line_off, r.line_col]);
    }
    out
}

/// The running kernel's `LINUX_VERSION_CODE`, or 0 when the release cannot be read.
fn running_kernel_version() -> u32 {
    bpf_sys::kernel::KernelVersion::current()
        .map(|v| v.code())
        .unwrap_or(0)
}

fn raw_fd(fd: BorrowedFd<'_>) -> i32 {
    use std::os::fd::AsRawFd;
    fd.as_raw_fd()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::errno::{EACCES, EPERM};

    #[test]
    fn licenses_reach_the_kernel_as_written() {
        for l in ["GPL", "Dual BSD/GPL", "", "Proprietary", "GPL v2", "MIT"] {
            assert_eq!(license_cstr(l).unwrap().to_bytes(), l.as_bytes());
        }
        assert!(matches!(
            license_cstr("GPL"),
            Some(std::borrow::Cow::Borrowed(_))
        ));
        assert!(license_cstr("G\0PL").is_none());
    }

    #[test]
    fn attach_type_is_dropped_only_on_einval_and_only_when_set() {
        assert!(retry_without_attach_type(
            Some(EINVAL),
            Some(AttachType::Xdp)
        ));
        assert!(!retry_without_attach_type(
            Some(EACCES),
            Some(AttachType::Xdp)
        ));
        assert!(!retry_without_attach_type(
            Some(EPERM),
            Some(AttachType::Xdp)
        ));
        assert!(!retry_without_attach_type(Some(EINVAL), None));
        assert!(!retry_without_attach_type(None, Some(AttachType::Xdp)));
    }

    #[test]
    fn btf_is_dropped_on_einval_or_e2big_when_it_was_sent() {
        assert!(retry_without_btf(Some(EINVAL), true));
        assert!(retry_without_btf(Some(E2BIG), true));
        assert!(!retry_without_btf(Some(EACCES), true));
        assert!(!retry_without_btf(Some(EINVAL), false));
    }

    #[test]
    fn records_encode_in_host_order() {
        let func = FuncInfo {
            insn: 3,
            type_id: 9,
        };
        let line = |i: usize| LineInfo {
            insn: i,
            file_name_off: 2,
            line_off: 3,
            line_col: 4,
        };
        let (mut stack, mut heap) = ([0u32; 256], Vec::new());
        let r = encode_records(&mut stack, &mut heap, &[func], &[line(1)]);
        let bytes: &[u8] = bytemuck::cast_slice(r);
        assert_eq!(bytes.len(), FUNC_INFO_SIZE + LINE_INFO_SIZE);
        let word = |i: usize| u32::from_ne_bytes(bytes[i * 4..i * 4 + 4].try_into().unwrap());
        assert_eq!((word(0), word(1)), (3, 9));
        assert_eq!((word(2), word(3), word(4), word(5)), (1, 2, 3, 4));

        assert!(heap.is_empty(), "two records fit on the stack");

        // Many line records (more than the stack holds): each in its place, after the
        // func_info.
        let lines: Vec<LineInfo> = (0..200).map(line).collect();
        let mut stack = [0u32; 256];
        let r = encode_records(&mut stack, &mut heap, &[func], &lines);
        assert_eq!(r.len(), 2 + 4 * lines.len());
        assert_eq!(&r[..2], &[3, 9]);
        for (i, w) in r[2..].chunks(4).enumerate() {
            assert_eq!(w, &[i as u32, 2, 3, 4]);
        }
    }

    #[test]
    fn a_program_that_cannot_be_sent_is_refused_before_the_kernel() {
        let mut p = KernelProgram::new("empty", ProgramType::Xdp, &[], "GPL");
        assert!(matches!(p.load(), Err(ProgramError::Invalid { .. })));
        let exit = Instruction {
            code: 0x95,
            ..Default::default()
        };
        let mut p = KernelProgram::new("unknown", ProgramType::Unspec, &[exit], "GPL");
        assert!(matches!(p.load(), Err(ProgramError::Invalid { .. })));
        let mut p = KernelProgram::new("lic", ProgramType::Xdp, &[exit], "G\0PL");
        assert!(matches!(p.load(), Err(ProgramError::Invalid { .. })));
        assert!(matches!(
            p.pin("/sys/fs/bpf/x"),
            Err(ProgramError::NotLoaded { .. })
        ));
        assert!(matches!(p.close(), Err(ProgramError::NotLoaded { .. })));
        assert_eq!(p.size(), 8);
    }
}
