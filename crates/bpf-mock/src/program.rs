//! [`MockProgram`]: a program that records what is done to it (load, pin, attach with its
//! target, detach, close) instead of doing it, and [`MockLink`], its attachment.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use bpf_attach::{
    AttachError, AttachTarget, AttachType, Iface, Program, ProgramAttachError, ProgramError,
    ProgramType,
};
use bpf_elf::ProgramSpec;

use crate::error_injection::{Faults, ProgramOp, Times};
use crate::registry::{self, Entry};

/// The errno as the `SysError` the kernel types carry; `bpf-mock` cannot name that type (it
/// lives in `bpf-sys`, which this crate must not depend on), so it is taken out of the
/// kernel-like [`MapError`](bpf_maps::MapError) that `bpf-maps` builds for mocks.
macro_rules! with_sys_error {
    ($errno:expr, |$source:ident| $ok:expr, $fallback:expr) => {
        match bpf_maps::MapError::from_errno("bpf", "", $errno) {
            bpf_maps::MapError::Op {
                source: $source, ..
            } => $ok,
            _ => $fallback,
        }
    };
}

/// Something done to a [`MockProgram`], in the order it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProgramEvent {
    /// Loaded (verified, in the kernel's terms).
    Load,
    /// Pinned at a path (no file is made).
    Pin(PathBuf),
    /// Attached to a target (an interface, a hook, a socket: what the caller passed).
    Attach(String),
    /// Detached from a target (explicitly or when its [`MockLink`] was dropped).
    Detach(String),
    /// Closed.
    Close,
}

#[derive(Debug, Default)]
struct ProgState {
    fd: Option<i32>,
    id: Option<u32>,
    events: Vec<ProgramEvent>,
    attached: Vec<String>,
    /// The attachment [`Program::attach`] holds inside the program.
    held: Option<String>,
}

#[derive(Debug, Default)]
struct Shared {
    state: Mutex<ProgState>,
    faults: Faults<ProgramOp>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, ProgState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        if let Some(fd) = self.state().fd {
            registry::unregister(fd);
        }
    }
}

/// An in-memory program implementing [`Program`]: loading gives it a mock fd (to put in a
/// program array) and an id, and every operation is recorded ([`MockProgram::events`]).
///
/// ```
/// use bpf_attach::{Program, ProgramType};
/// use bpf_mock::{MockProgram, ProgramEvent};
///
/// let mut prog = MockProgram::new("firewall", ProgramType::Xdp);
/// prog.load()?;
/// let link = prog.attach_link("veth0")?;
/// assert_eq!(prog.attachments(), ["veth0"]);
/// drop(link); // detaches, as a real link does
/// assert_eq!(
///     prog.events(),
///     [ProgramEvent::Load, ProgramEvent::Attach("veth0".into()), ProgramEvent::Detach("veth0".into())]
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct MockProgram {
    name: String,
    section: String,
    program_type: ProgramType,
    expected_attach_type: Option<AttachType>,
    license: String,
    size: usize,
    shared: Arc<Shared>,
}

impl MockProgram {
    /// A program of this name and type, in a section named after the type's usual one
    /// (change it with [`MockProgram::with_section`]), licensed `GPL`.
    pub fn new(name: impl Into<String>, program_type: ProgramType) -> Self {
        MockProgram {
            name: name.into(),
            section: String::new(),
            program_type,
            expected_attach_type: None,
            license: "GPL".into(),
            size: 0,
            shared: Arc::default(),
        }
    }

    /// A program as an object declares it (name, section, type, license, size).
    pub fn from_spec(spec: &ProgramSpec) -> Self {
        MockProgram {
            name: spec.name.to_string(),
            section: spec.section.to_string(),
            program_type: spec.program_type,
            expected_attach_type: spec.expected_attach_type,
            license: spec.license.to_string(),
            size: spec.instructions().len() * bpf_elf::INSN_SIZE,
            shared: Arc::default(),
        }
    }

    /// Sets the ELF section.
    pub fn with_section(mut self, section: impl Into<String>) -> Self {
        self.section = section.into();
        self
    }

    /// Sets the license.
    pub fn with_license(mut self, license: impl Into<String>) -> Self {
        self.license = license.into();
        self
    }

    /// Sets the expected attach type.
    pub fn with_expected_attach_type(mut self, t: AttachType) -> Self {
        self.expected_attach_type = Some(t);
        self
    }

    /// Sets the size in bytes.
    pub fn with_size(mut self, size: usize) -> Self {
        self.size = size;
        self
    }

    /// The number standing for the program's fd once loaded: write it (as an `i32`) into a
    /// mock program array.
    pub fn mock_fd(&self) -> Option<i32> {
        self.shared.state().fd
    }

    /// The program's id once loaded (what a program array answers for a slot holding it).
    pub fn id(&self) -> Option<u32> {
        self.shared.state().id
    }

    /// Everything done to the program so far.
    pub fn events(&self) -> Vec<ProgramEvent> {
        self.shared.state().events.clone()
    }

    /// The targets it is attached to now, in attach order.
    pub fn attachments(&self) -> Vec<String> {
        self.shared.state().attached.clone()
    }

    /// Makes every `op` fail with `errno` until [`MockProgram::clear_faults`].
    pub fn fail(&self, op: ProgramOp, errno: i32) {
        self.shared.faults.inject(op, errno, Times::Always);
    }

    /// Makes the next `times` of `op` fail with `errno`.
    pub fn fail_times(&self, op: ProgramOp, errno: i32, times: u32) {
        self.shared.faults.inject(op, errno, Times::Count(times));
    }

    /// Drops every injected failure.
    pub fn clear_faults(&self) {
        self.shared.faults.clear();
    }

    /// Attaches the loaded program to `target` (recorded as given: `"veth0"`, `"xdp:veth0"`,
    /// `"tracepoint/syscalls/sys_enter_execve"`). The attachment lasts until the returned link
    /// is detached or dropped. An unloaded program is [`AttachError::Unsupported`]; an
    /// injected failure is [`AttachError::Syscall`] with its errno.
    ///
    /// [`Program::attach`] (goebpf's style, the link held inside the program) records the same
    /// events, with the [`AttachTarget`] written as `xdp:IFACE`, `tc:IFACE`,
    /// `kprobe:SYMBOL`, `tracepoint:CATEGORY/NAME`...
    pub fn attach_link(&self, target: impl Into<String>) -> Result<MockLink, AttachError> {
        let target = target.into();
        if !self.is_loaded() {
            return Err(AttachError::Unsupported {
                feature: "attach",
                reason: format!("program {} is not loaded", self.name),
            });
        }
        if let Some(errno) = self.shared.faults.take(ProgramOp::Attach) {
            return Err(attach_error("attach", &target, errno));
        }
        let mut state = self.shared.state();
        state.events.push(ProgramEvent::Attach(target.clone()));
        state.attached.push(target.clone());
        Ok(MockLink {
            shared: Arc::clone(&self.shared),
            target,
            done: false,
        })
    }
}

fn iface(i: &Iface) -> String {
    match i {
        Iface::Name(n) => n.clone(),
        Iface::Index(i) => i.to_string(),
    }
}

/// How a [`ProgramEvent`] names an [`AttachTarget`].
fn describe(target: &AttachTarget<'_>, section: &str) -> String {
    match target {
        AttachTarget::Section => format!("section:{section}"),
        AttachTarget::Xdp { iface: i, .. } => format!("xdp:{}", iface(i)),
        AttachTarget::Tc { iface: i, .. } => format!("tc:{}", iface(i)),
        AttachTarget::Socket { .. } => "socket".into(),
        AttachTarget::Kprobe { symbol, .. } => format!("kprobe:{symbol}"),
        AttachTarget::Tracepoint { category, name } => format!("tracepoint:{category}/{name}"),
        AttachTarget::RawTracepoint { name } => format!("raw_tracepoint:{name}"),
        AttachTarget::Uprobe { binary, symbol, .. } => format!(
            "uprobe:{}:{}",
            binary.display(),
            symbol.as_deref().unwrap_or("")
        ),
        other => format!("{other:?}"),
    }
}

fn attach_error(op: &'static str, target: &str, errno: i32) -> AttachError {
    with_sys_error!(
        errno,
        |source| AttachError::Syscall {
            op,
            target: target.to_string(),
            source,
        },
        AttachError::Unsupported {
            feature: op,
            reason: format!("injected errno {errno}"),
        }
    )
}

impl Program for MockProgram {
    fn name(&self) -> &str {
        &self.name
    }
    fn section(&self) -> &str {
        &self.section
    }
    fn program_type(&self) -> ProgramType {
        self.program_type
    }
    fn expected_attach_type(&self) -> Option<AttachType> {
        self.expected_attach_type
    }
    fn license(&self) -> &str {
        &self.license
    }
    fn size(&self) -> usize {
        self.size
    }
    fn is_loaded(&self) -> bool {
        self.shared.state().fd.is_some()
    }
    /// Always `None`: a mock program has no fd (see [`MockProgram::mock_fd`]).
    fn fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        None
    }

    fn load(&mut self) -> Result<(), ProgramError> {
        if self.is_loaded() {
            return Err(ProgramError::AlreadyLoaded {
                program: self.name.clone(),
            });
        }
        if let Some(errno) = self.shared.faults.take(ProgramOp::Load) {
            let program = self.name.clone();
            return Err(with_sys_error!(
                errno,
                |source| ProgramError::Load { program, source },
                ProgramError::Invalid {
                    program,
                    reason: format!("injected errno {errno}"),
                }
            ));
        }
        let fd = registry::next_fd();
        let id = registry::next_prog_id();
        registry::register(fd, Entry::Program { id });
        let mut state = self.shared.state();
        state.fd = Some(fd);
        state.id = Some(id);
        state.events.push(ProgramEvent::Load);
        Ok(())
    }

    fn pin(&self, path: &Path) -> Result<(), ProgramError> {
        if !self.is_loaded() {
            return Err(ProgramError::NotLoaded {
                program: self.name.clone(),
                operation: "pin",
            });
        }
        if let Some(errno) = self.shared.faults.take(ProgramOp::Pin) {
            let program = self.name.clone();
            return Err(with_sys_error!(
                errno,
                |source| ProgramError::Pin {
                    program,
                    path: path.to_path_buf(),
                    source,
                },
                ProgramError::Invalid {
                    program,
                    reason: format!("injected errno {errno}"),
                }
            ));
        }
        self.shared
            .state()
            .events
            .push(ProgramEvent::Pin(path.to_path_buf()));
        Ok(())
    }

    fn attach(&mut self, target: AttachTarget<'_>) -> Result<(), ProgramAttachError> {
        let program = self.name.clone();
        if !self.is_loaded() {
            return Err(ProgramAttachError::NotLoaded { program });
        }
        if let Some(link) = self.shared.state().held.clone() {
            return Err(ProgramAttachError::AlreadyAttached { program, link });
        }
        let target = describe(&target, &self.section);
        let link = self
            .attach_link(target.clone())
            .map_err(|source| ProgramAttachError::Attach { program, source })?;
        link.keep();
        self.shared.state().held = Some(target);
        Ok(())
    }

    fn detach(&mut self) -> Result<(), ProgramAttachError> {
        let program = self.name.clone();
        let Some(target) = self.shared.state().held.take() else {
            return Err(ProgramAttachError::NotAttached { program });
        };
        let link = MockLink {
            shared: Arc::clone(&self.shared),
            target,
            done: true,
        };
        // As the kernel's: the link is gone even when detaching reports a failure.
        link.record_detach();
        if let Some(errno) = self.shared.faults.take(ProgramOp::Detach) {
            let source = attach_error("detach", &link.target, errno);
            return Err(ProgramAttachError::Detach { program, source });
        }
        Ok(())
    }

    fn is_attached(&self) -> bool {
        !self.shared.state().attached.is_empty()
    }

    fn close(&mut self) -> Result<(), ProgramError> {
        let mut state = self.shared.state();
        if let Some(fd) = state.fd.take() {
            registry::unregister(fd);
            state.id = None;
            state.events.push(ProgramEvent::Close);
        }
        Ok(())
    }
}

/// An attachment of a [`MockProgram`]: detached (and recorded as such) when dropped, like the
/// real links.
#[derive(Debug)]
#[must_use = "dropping a link detaches the program"]
pub struct MockLink {
    shared: Arc<Shared>,
    target: String,
    done: bool,
}

impl MockLink {
    /// What the program is attached to.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Detaches, showing an injected failure ([`ProgramOp::Detach`]) as an
    /// [`AttachError::Syscall`]; after a failure the attachment stays recorded.
    pub fn detach(mut self) -> Result<(), AttachError> {
        self.done = true;
        if let Some(errno) = self.shared.faults.take(ProgramOp::Detach) {
            return Err(attach_error("detach", &self.target, errno));
        }
        self.record_detach();
        Ok(())
    }

    /// Keeps the attachment past the link, as pinning a real link would.
    pub fn keep(mut self) {
        self.done = true;
    }

    fn record_detach(&self) {
        let mut state = self.shared.state();
        if let Some(i) = state.attached.iter().position(|t| *t == self.target) {
            state.attached.remove(i);
        }
        state.events.push(ProgramEvent::Detach(self.target.clone()));
    }
}

impl Drop for MockLink {
    fn drop(&mut self) {
        if !self.done {
            self.record_detach();
        }
    }
}
