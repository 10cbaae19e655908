//! A tiny builder of synthetic BPF ELF objects, for the cases clang does not produce.

use object::write::{Object, Relocation, SectionId, Symbol, SymbolId, SymbolSection};
use object::{
    Architecture, BinaryFormat, RelocationFlags, SectionKind, SymbolFlags, SymbolKind, SymbolScope,
};

use crate::insn::{Endianness, Instruction};

pub(crate) struct Synth {
    pub obj: Object<'static>,
    pub endian: Endianness,
}

/// `r0 = 0; exit`
pub(crate) fn ret0() -> Vec<Instruction> {
    vec![
        Instruction {
            code: 0xb7,
            ..Default::default()
        },
        Instruction {
            code: 0x95,
            ..Default::default()
        },
    ]
}

/// `r1 = 0 ll` (two slots)
pub(crate) fn ld_imm64(imm: i32) -> [Instruction; 2] {
    [
        Instruction {
            code: 0x18,
            dst: 1,
            imm,
            ..Default::default()
        },
        Instruction::default(),
    ]
}

/// `call imm` (bpf-to-bpf when src is 1)
pub(crate) fn call(src: u8, imm: i32) -> Instruction {
    Instruction {
        code: 0x85,
        src,
        imm,
        ..Default::default()
    }
}

impl Synth {
    pub fn new(endian: Endianness) -> Self {
        let e = match endian {
            Endianness::Little => object::Endianness::Little,
            Endianness::Big => object::Endianness::Big,
        };
        Synth {
            obj: Object::new(BinaryFormat::Elf, Architecture::Bpf, e),
            endian,
        }
    }

    pub fn le() -> Self {
        Self::new(Endianness::Little)
    }

    pub fn section(&mut self, name: &str, data: Vec<u8>, kind: SectionKind) -> SectionId {
        let id = self
            .obj
            .add_section(Vec::new(), name.as_bytes().to_vec(), kind);
        self.obj.section_mut(id).set_data(data, 8);
        id
    }

    pub fn code(&mut self, name: &str, insns: &[Instruction]) -> SectionId {
        let bytes = crate::encode_all(insns, self.endian);
        self.section(name, bytes, SectionKind::Text)
    }

    pub fn license(&mut self, license: &str) {
        let mut d = license.as_bytes().to_vec();
        d.push(0);
        self.section("license", d, SectionKind::Data);
    }

    fn symbol(
        &mut self,
        name: &str,
        section: SectionId,
        value: u64,
        size: u64,
        kind: SymbolKind,
        global: bool,
    ) -> SymbolId {
        self.obj.add_symbol(Symbol {
            name: name.as_bytes().to_vec(),
            value,
            size,
            kind,
            scope: if global {
                SymbolScope::Linkage
            } else {
                SymbolScope::Compilation
            },
            weak: false,
            section: SymbolSection::Section(section),
            flags: SymbolFlags::None,
        })
    }

    pub fn func(
        &mut self,
        name: &str,
        section: SectionId,
        insn: u64,
        insns: u64,
        global: bool,
    ) -> SymbolId {
        self.symbol(name, section, insn * 8, insns * 8, SymbolKind::Text, global)
    }

    pub fn data_sym(&mut self, name: &str, section: SectionId, offset: u64, size: u64) -> SymbolId {
        self.symbol(name, section, offset, size, SymbolKind::Data, true)
    }

    pub fn extern_sym(&mut self, name: &str) -> SymbolId {
        self.obj.add_symbol(Symbol {
            name: name.as_bytes().to_vec(),
            value: 0,
            size: 0,
            kind: SymbolKind::Unknown,
            scope: SymbolScope::Linkage,
            weak: false,
            section: SymbolSection::Undefined,
            flags: SymbolFlags::None,
        })
    }

    pub fn section_sym(&mut self, section: SectionId) -> SymbolId {
        self.obj.section_symbol(section)
    }

    /// A relocation with its addend left in the section data (REL).
    pub fn reloc(&mut self, section: SectionId, offset: u64, symbol: SymbolId, r_type: u32) {
        self.obj
            .add_relocation(
                section,
                Relocation {
                    offset,
                    symbol,
                    addend: 0,
                    flags: RelocationFlags::Elf { r_type },
                },
            )
            .expect("add relocation");
    }

    pub fn build(&self) -> Vec<u8> {
        self.obj.write().expect("write synthetic object")
    }
}

/// A goebpf 40-byte map record.
pub(crate) fn goebpf_record(
    e: Endianness,
    ty: u32,
    key: u32,
    value: u32,
    max: u32,
    inner: u64,
    path: u64,
) -> Vec<u8> {
    let mut r = Vec::new();
    for v in [ty, key, value, max, 0, 0] {
        r.extend_from_slice(&e.u32_bytes(v));
    }
    for v in [inner, path] {
        r.extend_from_slice(&match e {
            Endianness::Little => v.to_le_bytes(),
            Endianness::Big => v.to_be_bytes(),
        });
    }
    r
}
