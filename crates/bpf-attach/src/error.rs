//! The errors of this crate: [`ProgramError`] (one program), [`LoadError`] (the object loader),
//! [`GlobalError`] (global variables). Verifier rejections are [`VerifierError`] values, kept
//! whole inside [`ProgramError::Verifier`].

use std::path::PathBuf;

use bpf_elf::ElfError;
use bpf_sys::SysError;

use crate::verifier::VerifierError;

/// Linux errno values this crate tests for. They are the generic ones, the same on every
/// architecture the workspace builds for; `bpf-attach` may not link `libc` (the layer rule:
/// only `bpf-sys` talks to the system).
pub(crate) mod errno {
    #[cfg(test)]
    pub const EPERM: i32 = 1;
    pub const ENOENT: i32 = 2;
    pub const E2BIG: i32 = 7;
    #[cfg(test)]
    pub const EACCES: i32 = 13;
    pub const EINVAL: i32 = 22;
    pub const ENOSPC: i32 = 28;
}

/// What went wrong with one program: loading it, pinning it, asking the kernel about it,
/// running it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProgramError {
    /// The verifier rejected the program; the error holds the whole log.
    #[error(transparent)]
    Verifier(Box<VerifierError>),
    /// `BPF_PROG_LOAD` failed without a verifier log to explain it (`EPERM` without
    /// privilege, `E2BIG`, `ENOMEM`...).
    #[error("cannot load program {program}")]
    Load {
        /// The program's name.
        program: String,
        /// The failed call, with its errno.
        #[source]
        source: SysError,
    },
    /// The program is already loaded (goebpf leaked the first fd; this crate refuses).
    #[error("program {program} is already loaded")]
    AlreadyLoaded {
        /// The program's name.
        program: String,
    },
    /// The operation needs a loaded program.
    #[error("cannot {operation} program {program}: it is not loaded")]
    NotLoaded {
        /// The program's name.
        program: String,
        /// What was asked (`pin`, `test run`, `info`).
        operation: &'static str,
    },
    /// The program cannot be loaded as it is: no instructions, no program type, a license
    /// with a NUL byte, instructions of the other byte order...
    #[error("cannot load program {program}: {reason}")]
    Invalid {
        /// The program's name.
        program: String,
        /// What is wrong.
        reason: String,
    },
    /// The verifier rejected the program at an instruction that a CO-RE relocation poisoned
    /// because the kernel's BTF has no matching type, field or enumerator (libbpf's
    /// `0xbad2310` call).
    #[error("program {program}: {relocation}{}, and the verifier reached it", location.as_ref().map(|l| format!(" (at {l})")).unwrap_or_default())]
    CoreRelocation {
        /// The program's name.
        program: String,
        /// The relocation, with the local type and access string.
        relocation: Box<bpf_elf::CoreOutcome>,
        /// The source line of the instruction, from BTF line info.
        location: Option<crate::verifier::SourceLocation>,
        /// The verifier's rejection, with the whole log.
        #[source]
        source: Box<VerifierError>,
    },
    /// Linking or relocating the program's instructions failed.
    #[error("cannot relocate program {program}")]
    Relocate {
        /// The program's name.
        program: String,
        /// What the ELF layer said.
        #[source]
        source: std::sync::Arc<ElfError>,
    },
    /// Freezing the object's read-only data (`.rodata`) before the first load failed.
    #[error("cannot freeze map {map} before loading")]
    Freeze {
        /// The map.
        map: String,
        /// The failed call, with its errno.
        #[source]
        source: SysError,
    },
    /// Pinning (`BPF_OBJ_PIN`) failed.
    #[error("cannot pin program {program} at {path}")]
    Pin {
        /// The program's name.
        program: String,
        /// The pin path.
        path: PathBuf,
        /// The failed call, with its errno.
        #[source]
        source: SysError,
    },
    /// Removing a pin failed.
    #[error("cannot unpin {path}")]
    Unpin {
        /// The pin path.
        path: PathBuf,
        /// The error of `unlink`.
        #[source]
        source: std::io::Error,
    },
    /// Opening a program (by path or id) failed.
    #[error("cannot open program {what}")]
    Open {
        /// `at PATH` or `with id ID`.
        what: String,
        /// The failed call, with its errno.
        #[source]
        source: SysError,
    },
    /// `BPF_OBJ_GET_INFO_BY_FD` (or a call it needs) failed.
    #[error("cannot read the info of {what}")]
    Info {
        /// The program's name, or `program id N`.
        what: String,
        /// The failed call, with its errno.
        #[source]
        source: SysError,
    },
    /// Walking the ids of loaded programs or maps failed.
    #[error("cannot enumerate loaded {what}")]
    Enumerate {
        /// `programs` or `maps`.
        what: &'static str,
        /// The failed call, with its errno.
        #[source]
        source: SysError,
    },
    /// `BPF_PROG_TEST_RUN` failed.
    #[error("cannot test-run program {program}")]
    TestRun {
        /// The program's name.
        program: String,
        /// The failed call, with its errno.
        #[source]
        source: SysError,
    },
    /// Filling a program array slot with the loaded program failed.
    #[error("cannot put program {program} in slot {index} of {map}")]
    ProgramArray {
        /// The program's name.
        program: String,
        /// The program array.
        map: String,
        /// The slot.
        index: u32,
        /// The failed call, with its errno.
        #[source]
        source: SysError,
    },
}

impl ProgramError {
    /// The errno the kernel answered with, if the error came from a system call.
    pub fn errno(&self) -> Option<i32> {
        match self {
            ProgramError::Verifier(v) => v.errno(),
            ProgramError::CoreRelocation { source, .. } => source.errno(),
            ProgramError::Load { source, .. }
            | ProgramError::Pin { source, .. }
            | ProgramError::Open { source, .. }
            | ProgramError::Info { source, .. }
            | ProgramError::Enumerate { source, .. }
            | ProgramError::TestRun { source, .. }
            | ProgramError::ProgramArray { source, .. }
            | ProgramError::Freeze { source, .. } => source.errno(),
            ProgramError::Unpin { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }

    /// The verifier's rejection, if that is what this is.
    pub fn verifier_error(&self) -> Option<&VerifierError> {
        match self {
            ProgramError::Verifier(v) => Some(v),
            ProgramError::CoreRelocation { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<VerifierError> for ProgramError {
    fn from(e: VerifierError) -> Self {
        ProgramError::Verifier(Box::new(e))
    }
}

/// What went wrong while loading an object into the kernel ([`crate::KernelSystem`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The object could not be read or parsed.
    #[error("cannot parse the object")]
    Parse(#[source] ElfError),
    /// A map could not be created (or opened from its pin).
    #[error("cannot create map {map}")]
    Map {
        /// The map's name.
        map: String,
        /// What the map layer said.
        #[source]
        source: Box<bpf_maps::MapError>,
    },
    /// A map-in-map slot could not be filled with the map the object puts there.
    #[error("cannot put map {inner} in slot {index} of {map}")]
    MapSlot {
        /// The outer map.
        map: String,
        /// The slot.
        index: u32,
        /// The inner map.
        inner: String,
        /// What the map layer said.
        #[source]
        source: Box<bpf_maps::MapError>,
    },
    /// An initial slot names a map or program the object does not have.
    #[error("map {map}: slot {index} names {target}, which the object does not have")]
    MissingSlotTarget {
        /// The map.
        map: String,
        /// The slot.
        index: u32,
        /// The missing map or program.
        target: String,
    },
    /// A program could not be prepared (linked and relocated) or loaded.
    #[error("program {program}")]
    Program {
        /// The program's name.
        program: String,
        /// What went wrong.
        #[source]
        source: ProgramError,
    },
    /// Setting a global variable in the object before loading failed.
    #[error("cannot set global variable")]
    Global(#[source] GlobalError),
}

impl LoadError {
    /// The errno the kernel answered with, if the error came from a system call.
    pub fn errno(&self) -> Option<i32> {
        match self {
            LoadError::Map { source, .. } | LoadError::MapSlot { source, .. } => source.errno(),
            LoadError::Program { source, .. } => source.errno(),
            _ => None,
        }
    }
}

/// What went wrong reading or writing a global variable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GlobalError {
    /// No data section declares a variable of that name.
    #[error("no global variable named {name}")]
    NotFound {
        /// The name asked for.
        name: String,
    },
    /// More than one data section declares a variable of that name (`static` variables of
    /// different sections); name it `SECTION/NAME` (`.data.counters/counter_a`).
    #[error("global variable {name} is declared in {sections:?}; say which as SECTION/NAME")]
    Ambiguous {
        /// The name asked for.
        name: String,
        /// The sections that declare it.
        sections: Vec<String>,
    },
    /// The value's size is not the variable's.
    #[error("global variable {name} is {expected} bytes, got {got}")]
    Size {
        /// The variable.
        name: String,
        /// The size given.
        got: usize,
        /// The variable's size.
        expected: usize,
    },
    /// The variable lies outside its section's data (a malformed object).
    #[error("global variable {name} lies outside section {section}")]
    OutOfBounds {
        /// The variable.
        name: String,
        /// Its section.
        section: String,
    },
    /// The variable is in a frozen map (`.rodata` after creation): set it on the spec before
    /// the object is loaded.
    #[error("global variable {name} is in {section}, frozen once created: set it before loading")]
    Frozen {
        /// The variable.
        name: String,
        /// Its section.
        section: String,
    },
    /// Reading or writing the data map failed.
    #[error("cannot access global variable {name} in map {section}")]
    Map {
        /// The variable.
        name: String,
        /// Its section's map.
        section: String,
        /// What the map layer said.
        #[source]
        source: Box<bpf_maps::MapError>,
    },
}
