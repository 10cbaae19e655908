//! BPF instructions, decoded from and encoded to either byte order.

use bpf_sys::uapi;

/// The byte order of an object (`bpfel` or `bpfeb`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endianness {
    /// Little-endian (`-target bpfel`, the usual one on x86 and arm64).
    Little,
    /// Big-endian (`-target bpfeb`, s390x).
    Big,
}

impl Endianness {
    /// The byte order of the machine this code runs on.
    pub const fn host() -> Self {
        if cfg!(target_endian = "big") {
            Endianness::Big
        } else {
            Endianness::Little
        }
    }

    pub(crate) fn u16(self, b: [u8; 2]) -> u16 {
        match self {
            Endianness::Little => u16::from_le_bytes(b),
            Endianness::Big => u16::from_be_bytes(b),
        }
    }

    pub(crate) fn u32(self, b: [u8; 4]) -> u32 {
        match self {
            Endianness::Little => u32::from_le_bytes(b),
            Endianness::Big => u32::from_be_bytes(b),
        }
    }

    pub(crate) fn u64(self, b: [u8; 8]) -> u64 {
        match self {
            Endianness::Little => u64::from_le_bytes(b),
            Endianness::Big => u64::from_be_bytes(b),
        }
    }

    pub(crate) fn u32_bytes(self, v: u32) -> [u8; 4] {
        match self {
            Endianness::Little => v.to_le_bytes(),
            Endianness::Big => v.to_be_bytes(),
        }
    }

    /// Reads a `u16` at `offset`, or `None` past the end.
    pub(crate) fn read_u16(self, data: &[u8], offset: usize) -> Option<u16> {
        let b = data.get(offset..offset.checked_add(2)?)?;
        Some(self.u16(b.try_into().ok()?))
    }

    /// Reads a `u32` at `offset`, or `None` past the end.
    pub(crate) fn read_u32(self, data: &[u8], offset: usize) -> Option<u32> {
        let b = data.get(offset..offset.checked_add(4)?)?;
        Some(self.u32(b.try_into().ok()?))
    }

    /// Reads a `u64` at `offset`, or `None` past the end.
    pub(crate) fn read_u64(self, data: &[u8], offset: usize) -> Option<u64> {
        let b = data.get(offset..offset.checked_add(8)?)?;
        Some(self.u64(b.try_into().ok()?))
    }
}

/// The size of one instruction slot in bytes.
pub const INSN_SIZE: usize = 8;

/// `BPF_LD | BPF_IMM | BPF_DW`: the first slot of a 64-bit immediate load (`ld_imm64`).
pub const OPCODE_LD_IMM64: u8 = (uapi::BPF_LD | uapi::BPF_IMM | uapi::BPF_DW) as u8;
/// `BPF_JMP | BPF_CALL`: a helper, kfunc or bpf-to-bpf call.
pub const OPCODE_CALL: u8 = (uapi::BPF_JMP | uapi::BPF_CALL) as u8;

/// One 8-byte instruction slot, decoded.
///
/// A 64-bit immediate load takes two slots; the second has opcode 0 and carries the high half of
/// the immediate in `imm`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[doc(alias = "bpf_insn")]
pub struct Instruction {
    /// The opcode (`code`).
    pub code: u8,
    /// The destination register (4 bits).
    pub dst: u8,
    /// The source register (4 bits); for `ld_imm64` and `call` it tells what `imm` means
    /// (`BPF_PSEUDO_*`).
    pub src: u8,
    /// The signed offset.
    pub off: i16,
    /// The signed immediate.
    pub imm: i32,
}

impl Instruction {
    /// Decodes one slot (the first 8 bytes of `bytes`) in the given byte order.
    ///
    /// Returns `None` when fewer than 8 bytes are given.
    pub fn decode(bytes: &[u8], endian: Endianness) -> Option<Self> {
        let b: [u8; INSN_SIZE] = bytes.get(..INSN_SIZE)?.try_into().ok()?;
        Some(Instruction::from_bytes(b, endian))
    }

    #[inline(always)]
    fn from_bytes(b: [u8; INSN_SIZE], endian: Endianness) -> Self {
        // struct bpf_insn has `dst_reg:4, src_reg:4`: a little-endian compiler puts dst_reg in the
        // low nibble, a big-endian one in the high nibble.
        let (dst, src) = match endian {
            Endianness::Little => (b[1] & 0xf, b[1] >> 4),
            Endianness::Big => (b[1] >> 4, b[1] & 0xf),
        };
        Instruction {
            code: b[0],
            dst,
            src,
            off: endian.u16([b[2], b[3]]) as i16,
            imm: endian.u32([b[4], b[5], b[6], b[7]]) as i32,
        }
    }

    /// Encodes the slot in the given byte order.
    pub fn encode(&self, endian: Endianness) -> [u8; INSN_SIZE] {
        let regs = match endian {
            Endianness::Little => (self.dst & 0xf) | (self.src << 4),
            Endianness::Big => (self.dst << 4) | (self.src & 0xf),
        };
        let off = match endian {
            Endianness::Little => (self.off as u16).to_le_bytes(),
            Endianness::Big => (self.off as u16).to_be_bytes(),
        };
        let imm = endian.u32_bytes(self.imm as u32);
        [
            self.code, regs, off[0], off[1], imm[0], imm[1], imm[2], imm[3],
        ]
    }

    /// The slot as the kernel's `struct bpf_insn` (native byte order).
    #[inline]
    pub fn to_bpf_insn(&self) -> uapi::bpf_insn {
        bpf_sys::prog::insn(self.code, self.dst, self.src, self.off, self.imm)
    }

    /// Whether this is the first slot of a 64-bit immediate load.
    pub fn is_ld_imm64(&self) -> bool {
        self.code == OPCODE_LD_IMM64
    }

    /// Whether this is a bpf-to-bpf call (`call` with `src == BPF_PSEUDO_CALL`).
    pub fn is_pseudo_call(&self) -> bool {
        self.code == OPCODE_CALL && u32::from(self.src) == uapi::BPF_PSEUDO_CALL
    }
}

/// Decodes a whole code section; a trailing partial slot is ignored (callers check sizes).
pub(crate) fn decode_all(bytes: &[u8], endian: Endianness) -> Vec<Instruction> {
    let slots = bytes.chunks_exact(INSN_SIZE);
    // One loop per byte order, so each is a straight copy.
    match endian {
        Endianness::Little => slots
            .map(|c| Instruction::from_bytes(c.try_into().unwrap_or_default(), Endianness::Little))
            .collect(),
        Endianness::Big => slots
            .map(|c| Instruction::from_bytes(c.try_into().unwrap_or_default(), Endianness::Big))
            .collect(),
    }
}

/// Encodes instructions in the given byte order, ready for `BPF_PROG_LOAD` on a host of that
/// order.
pub fn encode_all(insns: &[Instruction], endian: Endianness) -> Vec<u8> {
    insns.iter().flat_map(|i| i.encode(endian)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_both_byte_orders() {
        let i = Instruction {
            code: 0x18,
            dst: 1,
            src: 2,
            off: -3,
            imm: -123456,
        };
        for e in [Endianness::Little, Endianness::Big] {
            assert_eq!(Instruction::decode(&i.encode(e), e), Some(i));
        }
        assert_eq!(i.encode(Endianness::Little)[1], 0x21);
        assert_eq!(i.encode(Endianness::Big)[1], 0x12);
    }

    #[test]
    fn bpf_insn_conversion_keeps_registers() {
        let i = Instruction {
            code: 0x85,
            dst: 0,
            src: 1,
            off: 0,
            imm: 7,
        };
        let k = i.to_bpf_insn();
        assert_eq!((k.code, k.dst_reg(), k.src_reg(), k.imm), (0x85, 0, 1, 7));
    }

    #[test]
    fn short_input_decodes_to_none() {
        assert_eq!(Instruction::decode(&[0; 7], Endianness::Little), None);
    }
}
