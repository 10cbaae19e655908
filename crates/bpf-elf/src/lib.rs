//! Parse and relocate clang-built BPF ELF objects.
//!
//! `bpf-elf` is pure: bytes in, specs out. [`ObjectSpec::parse`] reads an object into
//! [`MapSpec`]s and [`ProgramSpec`]s; [`ProgramSpec::link`] builds the instruction vector of a
//! program with the subprograms it calls; [`LinkedProgram::relocate`] writes map fds into it. It
//! makes no system call and gives the same result on any kernel, which is why it takes only types
//! and constants from `bpf-sys`.
//!
//! What it reads:
//!
//! - maps from goebpf's 40-byte legacy `maps` records (inner map and pin path through
//!   `.relmaps`), the classic 20-byte `bpf_map_def`, iproute2's 36-byte `bpf_elf_map`, and
//!   BTF-defined `.maps` (with inner maps and initial slots);
//! - global data (`.data`, `.rodata`, `.bss`, `.data.*`, `.rodata.*`, string literals included)
//!   as single-entry array maps with their initial bytes and variables;
//! - programs: every global function of every executable section, typed by libbpf's section
//!   names, with goebpf's names as a fallback ([`ProgramSection`]);
//! - bpf-to-bpf calls, callbacks (function pointers), BTF and `.BTF.ext` (func_info, line_info,
//!   CO-RE records kept for the loader);
//! - both byte orders.
//!
//! When not to use it: to load an object, use the `ebpf` facade, whose loader calls this crate.
//!
//! Why it is shaped so: parsing and linking as pure functions of the bytes can be unit-tested,
//! fuzzed and property-tested without a kernel, and a mock can "load" an object by calling
//! [`LinkedProgram::relocate`] with fake fds.
//!
//! ```no_run
//! use bpf_elf::ObjectSpec;
//!
//! let obj = ObjectSpec::from_path("target/bpf/xdp_btf.o")?;
//! for map in &obj.maps {
//!     println!("{} {} {}/{}", map.name, map.map_type.kernel_name(), map.key_size, map.value_size);
//! }
//! let mut linked = obj.link("xdp1")?;
//! linked.relocate(|map| obj.maps.iter().position(|m| m.name == map).map(|i| i as i32 + 3))?;
//! # Ok::<(), bpf_elf::ElfError>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod btf;
pub mod core;
mod data;
mod elf;
mod error;
mod insn;
mod link;
pub mod maps;
mod name;
mod obj;
mod programs;
mod reloc;
mod section;
mod strtab;

#[cfg(test)]
mod tests;

pub use bpf_sys::{AttachType, MapType, ProgramType};
pub use btf::{CoreRelocation, FuncInfo, LineInfo};
pub use core::{CoreOutcome, CoreRelocationKind, CoreReport};
pub use core::{CoreTargetOrigin, CoreTargets, ModuleBtf};
pub use error::{ElfError, Result};
pub use insn::{encode_all, Endianness, Instruction, INSN_SIZE};
pub use link::{ExternReference, LinkedProgram, MapReference, MapReferenceKind};
pub use maps::{MapOrigin, MapSlot, MapSpec, Pinning, SlotValue, VariableSpec};
pub use name::Name;
pub use obj::ObjectSpec;
pub use programs::{FunctionId, FunctionSpec, ProgramSpec};
pub use reloc::{ExternKind, Reference, Relocation};
pub use section::ProgramSection;
