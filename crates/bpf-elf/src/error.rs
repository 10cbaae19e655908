//! The one error type of this crate.

use std::path::PathBuf;

/// What went wrong while parsing, linking or relocating a BPF object.
///
/// Every variant names where it happened (section, offset, symbol, map or program) so that a
/// malformed object can be fixed without a debugger. Bad input always gives one of these, never a
/// panic.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ElfError {
    /// The object file could not be read.
    #[error("cannot read {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The bytes are not a well-formed ELF file (bad header, section table or symbol table).
    #[error("invalid elf file: {reason}")]
    InvalidElf {
        /// What the ELF reader found.
        reason: String,
    },
    /// The ELF file is not a 64-bit BPF object.
    #[error("not a bpf object: {reason}")]
    NotBpf {
        /// What is wrong (machine or class).
        reason: String,
    },
    /// A section is shorter than the data that must be read from it.
    #[error("section {section}: truncated: {needed} bytes needed at offset {offset}, section has {size}")]
    Truncated {
        /// The section.
        section: String,
        /// Where the read starts.
        offset: u64,
        /// How many bytes were needed.
        needed: u64,
        /// The section's size.
        size: u64,
    },
    /// A relocation names a symbol index that is not in the symbol table.
    #[error("section {section}: relocation at offset {offset} refers to symbol {index}, the symbol table has {count}")]
    SymbolOutOfRange {
        /// The section being relocated.
        section: String,
        /// The relocation's offset.
        offset: u64,
        /// The symbol index found.
        index: u32,
        /// The number of symbols.
        count: usize,
    },
    /// A relocation refers to symbol 0, the null symbol.
    #[error("section {section}: relocation at offset {offset} refers to the null symbol")]
    NullSymbol {
        /// The section being relocated.
        section: String,
        /// The relocation's offset.
        offset: u64,
    },
    /// A relocation's offset lies outside its section or is not aligned to an instruction or field.
    #[error("section {section}: relocation offset {offset} is out of range or misaligned (section size {size})")]
    RelocationOutOfRange {
        /// The section being relocated.
        section: String,
        /// The relocation's offset.
        offset: u64,
        /// The section's size.
        size: u64,
    },
    /// The instruction at a relocation site is not the kind the relocation needs.
    #[error("section {section}: relocation at offset {offset} against {symbol}: expected {expected}, found opcode {opcode:#04x}")]
    BadInstruction {
        /// The section being relocated.
        section: String,
        /// The relocation's offset.
        offset: u64,
        /// The relocation's symbol.
        symbol: String,
        /// The instruction the relocation needs.
        expected: &'static str,
        /// The opcode found.
        opcode: u8,
    },
    /// A relocation has a type that does not fit its site.
    #[error("section {section}: relocation at offset {offset} against {symbol} has type {found}, expected {expected}")]
    BadRelocationType {
        /// The section being relocated.
        section: String,
        /// The relocation's offset.
        offset: u64,
        /// The relocation's symbol.
        symbol: String,
        /// The `R_BPF_*` type found.
        found: u32,
        /// The types accepted there.
        expected: &'static str,
    },
    /// A relocation that is well formed but refers to something this crate cannot link.
    #[error("section {section}: relocation at offset {offset} against {symbol}: {reason}")]
    UnsupportedRelocation {
        /// The section being relocated.
        section: String,
        /// The relocation's offset.
        offset: u64,
        /// The relocation's symbol.
        symbol: String,
        /// Why it cannot be linked.
        reason: String,
    },
    /// A legacy `maps` section whose size does not fit its map symbols.
    #[error("section {section}: map record size mismatch: {reason}")]
    MapRecordSize {
        /// The section.
        section: String,
        /// What does not fit.
        reason: String,
    },
    /// A map definition that cannot be understood.
    #[error("map {map}: {reason}")]
    InvalidMap {
        /// The map's name.
        map: String,
        /// What is wrong.
        reason: String,
    },
    /// A map whose type this build does not know (a newer kernel's).
    #[error("map {map}: unknown map type {value}")]
    UnknownMapType {
        /// The map's name.
        map: String,
        /// The raw type.
        value: u32,
    },
    /// A function symbol whose bounds do not fit its section.
    #[error("section {section}: function {symbol} at offset {offset} with size {size} does not fit the section (size {section_size}) or is not instruction-aligned")]
    BadFunctionBounds {
        /// The section.
        section: String,
        /// The function.
        symbol: String,
        /// Its start.
        offset: u64,
        /// Its size.
        size: u64,
        /// The section's size.
        section_size: u64,
    },
    /// The `.BTF` section is malformed.
    #[error("invalid btf at offset {offset}: {reason}")]
    InvalidBtf {
        /// Byte offset in `.BTF` where the problem was found.
        offset: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// The `.BTF.ext` section is malformed.
    #[error("invalid btf.ext at offset {offset}: {reason}")]
    InvalidBtfExt {
        /// Byte offset in `.BTF.ext` where the problem was found.
        offset: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// A section that needs BTF (`.maps`) in an object without a `.BTF` section.
    #[error("section {section} needs btf, but the object has no .BTF section")]
    MissingBtf {
        /// The section that needs BTF.
        section: String,
    },
    /// A call or function pointer whose target is not the start of a function.
    #[error("section {section}: instruction {insn} refers to offset {target} of section {target_section}, which is not the start of a function")]
    BadCallTarget {
        /// The section of the call site.
        section: String,
        /// The call site (instruction index in its section).
        insn: usize,
        /// The target's section.
        target_section: String,
        /// The target (instruction index in its section).
        target: i64,
    },
    /// No program of that name in the object.
    #[error("no program named {name}")]
    ProgramNotFound {
        /// The name asked for.
        name: String,
    },
    /// The map-fd callback gave no fd for a map a program uses.
    #[error("program {program}: no fd for map {map}")]
    MissingMapFd {
        /// The program.
        program: String,
        /// The map it references.
        map: String,
    },
    /// An instruction at a reference site of a linked program was changed into something else.
    #[error("program {program}: instruction {insn} should be a 64-bit immediate load, found opcode {opcode:#04x}")]
    NotLoadImm64 {
        /// The program.
        program: String,
        /// The instruction index.
        insn: usize,
        /// The opcode found.
        opcode: u8,
    },
    /// The program reads `__kconfig` externs; resolving them is not supported yet.
    #[error("program {program}: kconfig extern {symbol} is not supported yet")]
    KconfigUnsupported {
        /// The program.
        program: String,
        /// The extern's name.
        symbol: String,
    },
    /// The program uses an extern symbol (ksym or kfunc); resolving them is not supported yet.
    #[error("program {program}: extern symbol {symbol} is not supported yet")]
    ExternUnsupported {
        /// The program.
        program: String,
        /// The extern's name.
        symbol: String,
    },
    /// The program has CO-RE relocations; applying them is not supported yet.
    #[error("program {program}: needs {count} co-re relocations, which are not supported yet")]
    CoreUnsupported {
        /// The program.
        program: String,
        /// How many CO-RE relocation records it carries.
        count: usize,
    },
    /// A CO-RE relocation could not be applied: its record does not fit the object's BTF, its
    /// instruction, or the target's types are ambiguous. (A relocation with no target at all is
    /// not an error: it poisons its instruction, see [`crate::core`].)
    #[error("program {program}: co-re relocation #{index} at instruction {insn} ({type_name}, access {access}): {reason}")]
    CoreRelocation {
        /// The program.
        program: String,
        /// The record's index in the program.
        index: usize,
        /// The instruction it patches.
        insn: usize,
        /// The local type's name.
        type_name: String,
        /// The access string.
        access: String,
        /// What is wrong.
        reason: String,
    },
    /// An extern (`.kconfig`, `__ksym`, kfunc) could not be resolved.
    #[error("program {program}: extern {symbol}: {reason}")]
    UnresolvedExtern {
        /// The program (empty while building the `.kconfig` map).
        program: String,
        /// The extern's name.
        symbol: String,
        /// Why.
        reason: String,
    },
    /// A linked program would not fit the kernel's 32-bit call offsets.
    #[error("program {program}: too large to link ({insns} instructions)")]
    ProgramTooLarge {
        /// The program.
        program: String,
        /// Its size after linking.
        insns: usize,
    },
}

impl From<object::read::Error> for ElfError {
    fn from(e: object::read::Error) -> Self {
        ElfError::InvalidElf {
            reason: e.to_string(),
        }
    }
}

/// Shorthand for this crate's results.
pub type Result<T, E = ElfError> = std::result::Result<T, E>;
