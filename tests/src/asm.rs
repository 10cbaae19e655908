//! Instruction builders for the hand-assembled programs of the kernel tests (beyond the few
//! `bpf_sys::prog` offers: `mov64_imm`, `mov64_reg`, `call_helper`, `exit`, `ld_map_fd`).

use ebpf::sys::prog::insn;
use ebpf::sys::uapi::{self, bpf_insn};

/// `*(u32 *)(dst + off) = imm`
pub fn st_w(dst: u8, off: i16, imm: i32) -> bpf_insn {
    insn(
        (uapi::BPF_ST | uapi::BPF_W | uapi::BPF_MEM) as u8,
        dst,
        0,
        off,
        imm,
    )
}

/// `*(size *)(dst + off) = src`, `size` one of `BPF_B`, `BPF_H`, `BPF_W`, `BPF_DW`
pub fn stx(size: u32, dst: u8, src: u8, off: i16) -> bpf_insn {
    insn(
        (uapi::BPF_STX | size | uapi::BPF_MEM) as u8,
        dst,
        src,
        off,
        0,
    )
}

/// `*(u64 *)(dst + off) = src`
pub fn stx_dw(dst: u8, src: u8, off: i16) -> bpf_insn {
    stx(uapi::BPF_DW, dst, src, off)
}

/// `dst = *(u64 *)(src + off)`
pub fn ldx_dw(dst: u8, src: u8, off: i16) -> bpf_insn {
    insn(
        (uapi::BPF_LDX | uapi::BPF_DW | uapi::BPF_MEM) as u8,
        dst,
        src,
        off,
        0,
    )
}

/// `dst += imm` (64-bit)
pub fn add64_imm(dst: u8, imm: i32) -> bpf_insn {
    insn(
        (uapi::BPF_ALU64 | uapi::BPF_ADD | uapi::BPF_K) as u8,
        dst,
        0,
        0,
        imm,
    )
}

/// `dst >>= imm` (64-bit)
pub fn rsh64_imm(dst: u8, imm: i32) -> bpf_insn {
    insn(
        (uapi::BPF_ALU64 | uapi::BPF_RSH | uapi::BPF_K) as u8,
        dst,
        0,
        0,
        imm,
    )
}

/// `dst = (u32)imm` (zero-extended)
pub fn mov32_imm(dst: u8, imm: i32) -> bpf_insn {
    insn(
        (uapi::BPF_ALU | uapi::BPF_MOV | uapi::BPF_K) as u8,
        dst,
        0,
        0,
        imm,
    )
}

/// `if dst == imm goto +off`
pub fn jeq_imm(dst: u8, imm: i32, off: i16) -> bpf_insn {
    insn(
        (uapi::BPF_JMP | uapi::BPF_JEQ | uapi::BPF_K) as u8,
        dst,
        0,
        off,
        imm,
    )
}
