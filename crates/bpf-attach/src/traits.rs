//! The object-safe traits goebpf's interfaces become: [`Program`] and [`System`], implemented
//! here by [`KernelProgram`] and [`KernelSystem`], and by the in-memory mocks of `bpf-mock`, so
//! control-plane code written against `&dyn System` runs in unit tests without a kernel.
//!
//! They follow `bpf_maps::Map` (the trait) and `bpf_maps::KernelMap` (the kernel's map).

use std::os::fd::BorrowedFd;
use std::path::Path;

use bpf_maps::Map;
use bpf_sys::{AttachType, ProgramType};

use crate::error::ProgramError;
use crate::program::KernelProgram;
use crate::program_attach::{AttachTarget, ProgramAttachError};
use crate::system::KernelSystem;

/// A program, loaded or not (goebpf's `Program` interface; `attach`/`detach` hold one link in
/// the program, as goebpf's did).
pub trait Program: std::fmt::Debug {
    /// The program's name (the C function's).
    fn name(&self) -> &str;
    /// The ELF section it came from.
    fn section(&self) -> &str;
    /// The program type.
    fn program_type(&self) -> ProgramType;
    /// The expected attach type sent at load.
    fn expected_attach_type(&self) -> Option<AttachType>;
    /// The license.
    fn license(&self) -> &str;
    /// The size in bytes (goebpf's `GetSize`).
    fn size(&self) -> usize;
    /// Whether it is loaded.
    fn is_loaded(&self) -> bool;
    /// The fd once loaded (`None` for a mock).
    fn fd(&self) -> Option<BorrowedFd<'_>>;
    /// Verifies and loads it.
    fn load(&mut self) -> Result<(), ProgramError>;
    /// Pins it at `path`.
    fn pin(&self, path: &Path) -> Result<(), ProgramError>;
    /// Closes it.
    fn close(&mut self) -> Result<(), ProgramError>;
    /// Attaches it and keeps the link inside (goebpf's `Attach`); the default refuses, for
    /// implementations without a kernel.
    fn attach(&mut self, target: AttachTarget<'_>) -> Result<(), ProgramAttachError> {
        let _ = target;
        Err(ProgramAttachError::Unsupported {
            program: self.name().to_string(),
            reason: "this implementation has no kernel to attach to".into(),
        })
    }
    /// Detaches what [`Program::attach`] attached (goebpf's `Detach`).
    fn detach(&mut self) -> Result<(), ProgramAttachError> {
        Err(ProgramAttachError::NotAttached {
            program: self.name().to_string(),
        })
    }
    /// Whether it holds an attachment.
    fn is_attached(&self) -> bool {
        false
    }
}

impl Program for KernelProgram {
    fn name(&self) -> &str {
        KernelProgram::name(self)
    }
    fn section(&self) -> &str {
        KernelProgram::section(self)
    }
    fn program_type(&self) -> ProgramType {
        KernelProgram::program_type(self)
    }
    fn expected_attach_type(&self) -> Option<AttachType> {
        KernelProgram::expected_attach_type(self)
    }
    fn license(&self) -> &str {
        KernelProgram::license(self)
    }
    fn size(&self) -> usize {
        KernelProgram::size(self)
    }
    fn is_loaded(&self) -> bool {
        KernelProgram::is_loaded(self)
    }
    fn fd(&self) -> Option<BorrowedFd<'_>> {
        KernelProgram::fd(self)
    }
    fn load(&mut self) -> Result<(), ProgramError> {
        KernelProgram::load(self)
    }
    fn pin(&self, path: &Path) -> Result<(), ProgramError> {
        KernelProgram::pin(self, path)
    }
    fn close(&mut self) -> Result<(), ProgramError> {
        KernelProgram::close(self)
    }
    fn attach(&mut self, target: AttachTarget<'_>) -> Result<(), ProgramAttachError> {
        KernelProgram::attach(self, target)
    }
    fn detach(&mut self) -> Result<(), ProgramAttachError> {
        KernelProgram::detach(self)
    }
    fn is_attached(&self) -> bool {
        KernelProgram::is_attached(self)
    }
}

/// A loaded object: its maps and programs by name (goebpf's `System` interface; loading is a
/// constructor of each implementation, so one value holds exactly one object).
pub trait System: std::fmt::Debug {
    /// The map with this name.
    fn map(&self, name: &str) -> Option<&dyn Map>;
    /// Every map, in the object's order.
    fn maps(&self) -> Box<dyn Iterator<Item = &dyn Map> + '_>;
    /// The program with this name.
    fn program(&self, name: &str) -> Option<&dyn Program>;
    /// The program with this name, to load or close it.
    fn program_mut(&mut self, name: &str) -> Option<&mut dyn Program>;
    /// Every program, in the object's order.
    fn programs(&self) -> Box<dyn Iterator<Item = &dyn Program> + '_>;
    /// Loads every program not loaded yet; stops at the first failure.
    fn load_all(&mut self) -> Result<(), ProgramError>;
}

impl System for KernelSystem {
    fn map(&self, name: &str) -> Option<&dyn Map> {
        KernelSystem::map(self, name).map(|m| m as &dyn Map)
    }
    fn maps(&self) -> Box<dyn Iterator<Item = &dyn Map> + '_> {
        Box::new(KernelSystem::maps(self).map(|m| m as &dyn Map))
    }
    fn program(&self, name: &str) -> Option<&dyn Program> {
        KernelSystem::program(self, name).map(|p| p as &dyn Program)
    }
    fn program_mut(&mut self, name: &str) -> Option<&mut dyn Program> {
        KernelSystem::program_mut(self, name).map(|p| p as &mut dyn Program)
    }
    fn programs(&self) -> Box<dyn Iterator<Item = &dyn Program> + '_> {
        Box::new(KernelSystem::programs(self).map(|p| p as &dyn Program))
    }
    fn load_all(&mut self) -> Result<(), ProgramError> {
        KernelSystem::load_all(self)
    }
}
