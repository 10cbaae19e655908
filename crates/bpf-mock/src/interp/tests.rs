//! Hand-assembled programs: each instruction class, its edge cases, and the helpers.

use bpf_elf::{Instruction, ProgramType};

use super::*;

pub(super) fn ins(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Instruction {
    Instruction {
        code,
        dst,
        src,
        off,
        imm,
    }
}
pub(super) fn mov(dst: u8, imm: i32) -> Instruction {
    ins(0xb7, dst, 0, 0, imm)
}
pub(super) fn movr(dst: u8, src: u8) -> Instruction {
    ins(0xbf, dst, src, 0, 0)
}
pub(super) fn exit() -> Instruction {
    ins(0x95, 0, 0, 0, 0)
}
pub(super) fn call(id: i32) -> Instruction {
    ins(0x85, 0, 0, 0, id)
}
pub(super) fn ld64(dst: u8, v: u64) -> [Instruction; 2] {
    [
        ins(0x18, dst, 0, 0, v as u32 as i32),
        ins(0, 0, 0, 0, (v >> 32) as u32 as i32),
    ]
}
pub(super) fn ld_map(dst: u8, fd: u32) -> [Instruction; 2] {
    [ins(0x18, dst, 1, 0, fd as i32), ins(0, 0, 0, 0, 0)]
}

/// Runs `prog` as a tracepoint program on 64 zero bytes; returns r0.
pub(super) fn run(prog: &[Instruction]) -> Result<u64, InterpError> {
    let mut vm = Vm::new();
    let id = vm.load_instructions("t", ProgramType::Tracepoint, prog)?;
    Ok(vm.run_tracepoint(id, &[0u8; 64])?.return_value)
}

pub(super) fn r0(prog: &[Instruction]) -> u64 {
    run(prog).unwrap_or_else(|e| panic!("{e}"))
}

/// `r0 = a; r0 <op> b` (64-bit or 32-bit, immediate operand), with `off` for signed forms.
fn alu(class: u8, op: u8, off: i16, a: u64, b: i32) -> u64 {
    let [l0, l1] = ld64(0, a);
    r0(&[l0, l1, ins(class | op, 0, 0, off, b), exit()])
}

#[test]
fn alu64_and_alu32_arithmetic_wrap_and_zero_extend() {
    assert_eq!(alu(0x07, 0x00, 0, u64::MAX, 2), 1);
    assert_eq!(
        alu(0x04, 0x00, 0, 0xffff_ffff_ffff_ffff, 2),
        1,
        "32-bit add zero-extends"
    );
    assert_eq!(alu(0x07, 0x10, 0, 5, 7), (-2i64) as u64);
    assert_eq!(alu(0x04, 0x10, 0, 5, 7), 0xffff_fffe);
    assert_eq!(alu(0x07, 0x20, 0, 1 << 40, 4), 1 << 42);
    assert_eq!(alu(0x07, 0x80, 0, 5, 0), (-5i64) as u64, "neg");
    assert_eq!(alu(0x04, 0x80, 0, 5, 0), 0xffff_fffb, "neg32");
    assert_eq!(alu(0x07, 0xa0, 0, 0xff, 0x0f), 0xf0);
    assert_eq!(
        alu(0x07, 0x50, 0, 0xff, -16),
        0xf0,
        "and with a sign-extended immediate"
    );
    assert_eq!(alu(0x07, 0x40, 0, 0xf0, 0x0f), 0xff);
    assert_eq!(
        alu(0x07, 0xb0, 0, 99, -1),
        u64::MAX,
        "mov64 sign-extends imm"
    );
    assert_eq!(
        alu(0x04, 0xb0, 0, 99, -1),
        0xffff_ffff,
        "mov32 zero-extends"
    );
}

#[test]
fn division_by_zero_gives_zero_and_modulo_keeps_dst() {
    assert_eq!(alu(0x07, 0x30, 0, 42, 0), 0);
    assert_eq!(alu(0x07, 0x90, 0, 42, 0), 42);
    assert_eq!(alu(0x04, 0x30, 0, 42, 0), 0);
    assert_eq!(
        alu(0x04, 0x90, 0, 0x1_0000_002a, 0),
        42,
        "mod32 by 0 keeps the low half"
    );
    assert_eq!(alu(0x07, 0x30, 1, 42, 0), 0, "sdiv by 0");
    assert_eq!(
        alu(0x07, 0x90, 1, (-42i64) as u64, 0),
        (-42i64) as u64,
        "smod by 0"
    );
    // By a register holding 0.
    assert_eq!(
        r0(&[mov(0, 7), mov(1, 0), ins(0x3f, 0, 1, 0, 0), exit()]),
        0
    );
    assert_eq!(
        r0(&[mov(0, 7), mov(1, 0), ins(0x9f, 0, 1, 0, 0), exit()]),
        7
    );
}

#[test]
fn signed_division_and_modulo_truncate_toward_zero() {
    assert_eq!(alu(0x07, 0x30, 1, (-7i64) as u64, 2), (-3i64) as u64);
    assert_eq!(alu(0x07, 0x90, 1, (-7i64) as u64, 2), (-1i64) as u64);
    assert_eq!(
        alu(0x07, 0x30, 0, (-7i64) as u64, 2),
        ((-7i64) as u64) / 2,
        "unsigned"
    );
    assert_eq!(
        alu(0x04, 0x30, 1, (-7i32) as u32 as u64, 2),
        (-3i32) as u32 as u64
    );
    assert_eq!(
        alu(0x07, 0x30, 1, i64::MIN as u64, -1),
        i64::MIN as u64,
        "overflow wraps"
    );
    assert_eq!(alu(0x07, 0x90, 1, i64::MIN as u64, -1), 0);
}

#[test]
fn shifts_are_masked_to_the_operand_width() {
    assert_eq!(alu(0x07, 0x60, 0, 1, 65), 2);
    assert_eq!(alu(0x04, 0x60, 0, 1, 33), 2);
    assert_eq!(alu(0x07, 0x70, 0, 0x100, 68), 0x10);
    assert_eq!(
        alu(0x07, 0xc0, 0, (-16i64) as u64, 2),
        (-4i64) as u64,
        "arsh"
    );
    assert_eq!(alu(0x04, 0xc0, 0, 0xffff_fff0, 2), 0xffff_fffc, "arsh32");
    // Shift amount in a register.
    assert_eq!(
        r0(&[mov(0, 1), mov(1, 64 + 3), ins(0x6f, 0, 1, 0, 0), exit()]),
        8
    );
}

#[test]
fn sign_extending_moves_and_loads() {
    assert_eq!(
        r0(&[mov(1, 0x80), ins(0xbf, 0, 1, 8, 0), exit()]),
        (-128i64) as u64
    );
    assert_eq!(
        r0(&[mov(1, 0x8000), ins(0xbf, 0, 1, 16, 0), exit()]),
        (-32768i64) as u64
    );
    let [a, b] = ld64(1, 0x8000_0000);
    assert_eq!(
        r0(&[a, b, ins(0xbf, 0, 1, 32, 0), exit()]),
        (-(1i64 << 31)) as u64
    );
    assert_eq!(
        r0(&[mov(1, 0x80), ins(0xbc, 0, 1, 8, 0), exit()]),
        0xffff_ff80,
        "movsx32"
    );
    // Store 0xff on the stack, load it back sign-extended (ldsx) and zero-extended (ldx).
    let prog = |code| [ins(0x72, 10, 0, -1, 0xff), ins(code, 0, 10, -1, 0), exit()];
    assert_eq!(r0(&prog(0x91)), u64::MAX);
    assert_eq!(r0(&prog(0x71)), 0xff);
}

#[test]
fn byte_swaps() {
    let v = 0x0102_0304_0506_0708u64;
    let [a, b] = ld64(0, v);
    let swap = |code: u8, imm| r0(&[a, b, ins(code, 0, 0, 0, imm), exit()]);
    assert_eq!(swap(0xdc, 16), 0x0807);
    assert_eq!(swap(0xdc, 32), 0x0807_0605);
    assert_eq!(swap(0xdc, 64), v.swap_bytes());
    assert_eq!(
        swap(0xd4, 16),
        0x0708,
        "to_le truncates on a little-endian machine"
    );
    assert_eq!(swap(0xd7, 32), 0x0807_0605, "bswap32 (ALU64)");
}

#[test]
fn jumps_signed_unsigned_and_32_bit() {
    // r0 = 1 if the jump is taken.
    let j = |code: u8, a: u64, imm: i32| {
        let [l0, l1] = ld64(1, a);
        r0(&[
            l0,
            l1,
            mov(0, 0),
            ins(code, 1, 0, 1, imm),
            exit(),
            mov(0, 1),
            exit(),
        ])
    };
    assert_eq!(j(0x25, u64::MAX, 1), 1, "jgt unsigned");
    assert_eq!(j(0x65, u64::MAX, 1), 0, "jsgt signed: -1 > 1 is false");
    assert_eq!(j(0xc5, u64::MAX, 0), 1, "jslt");
    assert_eq!(j(0x16, 0x1_0000_0005, 5), 1, "jeq32 looks at the low half");
    assert_eq!(j(0x15, 0x1_0000_0005, 5), 0, "jeq64");
    assert_eq!(j(0x45, 0b1010, 0b0010), 1, "jset");
    assert_eq!(j(0x66, 0xffff_ffff, 0), 0, "jsgt32: -1 > 0 is false");
    assert_eq!(j(0xb5, 3, 3), 1, "jle");
    // A loop: r0 = 0 + 1 + ... + 9.
    let prog = [
        mov(0, 0),
        mov(1, 0),
        ins(0x0f, 0, 1, 0, 0),
        ins(0x07, 1, 0, 0, 1),
        ins(0xa5, 1, 0, -3, 10),
        exit(),
    ];
    assert_eq!(r0(&prog), 45);
    // gotol (JMP32 ja with the offset in imm).
    assert_eq!(
        r0(&[mov(0, 1), ins(0x06, 0, 0, 0, 1), mov(0, 2), exit()]),
        1
    );
}

#[test]
fn atomics_with_and_without_fetch() {
    // *(u64 *)(r10 - 8) = 10; atomic op with r1 = 6; r0 = the memory after, r1 = fetched.
    let atomic = |size_code: u8, imm: i32, fetch_into_r0: bool| {
        let mut p = vec![mov(2, 10), ins(0x7b, 10, 2, -8, 0), mov(1, 6), mov(0, 10)];
        p.push(ins(0xc3 | size_code, 10, 1, -8, imm));
        if fetch_into_r0 {
            p.push(movr(0, 1));
        } else {
            p.push(ins(0x79, 0, 10, -8, 0));
        }
        p.push(exit());
        r0(&p)
    };
    assert_eq!(atomic(0x18, 0x00, false), 16, "add");
    assert_eq!(
        atomic(0x18, 0x01, true),
        10,
        "fetch_add returns the old value"
    );
    assert_eq!(atomic(0x18, 0x41, false), 14, "fetch_or");
    assert_eq!(atomic(0x18, 0x51, false), 2, "fetch_and");
    assert_eq!(atomic(0x18, 0xa1, false), 12, "fetch_xor");
    assert_eq!(atomic(0x18, 0xe1, false), 6, "xchg stores");
    assert_eq!(atomic(0x18, 0xe1, true), 10, "xchg fetches");
    assert_eq!(atomic(0x00, 0x00, false), 16, "32-bit add");
    // cmpxchg: r0 = 10 matches, so 6 is stored and r0 = 10 (old).
    assert_eq!(atomic(0x18, 0xf1, false), 6);
    let miss = [
        mov(2, 10),
        ins(0x7b, 10, 2, -8, 0),
        mov(1, 6),
        mov(0, 11),
        ins(0xdb, 10, 1, -8, 0xf1),
        ins(0x79, 1, 10, -8, 0),
        ins(0x27, 0, 0, 0, 100),
        ins(0x0f, 0, 1, 0, 0),
        exit(),
    ];
    assert_eq!(
        r0(&miss),
        10 * 100 + 10,
        "cmpxchg miss: memory kept, r0 = old"
    );
}

#[test]
fn out_of_bounds_access_names_the_instruction_and_address() {
    let err = run(&[mov(0, 0), ins(0x79, 0, 10, 8, 0), exit()]).expect_err("above the frame");
    match &err {
        InterpError::Memory {
            insn,
            addr,
            size,
            access,
            ..
        } => {
            assert_eq!((*insn, *size, *access), (1, 8, "load"));
            assert_eq!(*addr, memory::addr(memory::STACK, STACK_FRAME + 8));
        }
        e => panic!("{e}"),
    }
    assert!(err.to_string().contains("instruction 1"), "{err}");
    assert!(err.to_string().contains("0x"), "{err}");
    let err = run(&[mov(1, 0), ins(0x61, 0, 1, 0, 0), exit()]).expect_err("null");
    assert!(err.to_string().contains("null pointer"), "{err}");
    let err = run(&[ins(0x62, 1, 0, 0, 7), mov(0, 0), exit()]).expect_err("context is read-only");
    assert!(err.to_string().contains("read-only"), "{err}");
    let err = run(&[ins(0x61, 0, 1, 62, 0), exit()]).expect_err("past the context");
    assert!(
        matches!(
            err,
            InterpError::Memory {
                insn: 0,
                size: 4,
                ..
            }
        ),
        "{err}"
    );
    let err = run(&[mov(0, 0)]).expect_err("falls off the end");
    assert!(
        matches!(err, InterpError::BadInstruction { insn: 1, .. }),
        "{err}"
    );
}

#[test]
fn the_budget_stops_runaway_loops() {
    let mut vm = Vm::new();
    vm.env_mut().budget = 1000;
    let id = vm
        .load_instructions(
            "spin",
            ProgramType::Tracepoint,
            &[mov(0, 0), ins(0x05, 0, 0, -1, 0), exit()],
        )
        .expect("load");
    let err = vm.run_tracepoint(id, &[]).expect_err("budget");
    assert!(
        matches!(
            err,
            InterpError::Budget {
                budget: 1000,
                insn: 1,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn bpf_to_bpf_calls_get_their_own_frames_and_keep_callee_saved_registers() {
    // main: r6 = 5; *(fp-8) = 1; call f; r0 += r6 + *(fp-8); exit
    // f:    *(fp-8) = 100 (its own frame); r6 = 99; r0 = 1000; exit
    let prog = [
        mov(6, 5),
        ins(0x7a, 10, 0, -8, 1),
        ins(0x85, 0, 1, 0, 4),
        ins(0x0f, 0, 6, 0, 0),
        ins(0x79, 1, 10, -8, 0),
        ins(0x0f, 0, 1, 0, 0),
        exit(),
        ins(0x7a, 10, 0, -8, 100),
        mov(6, 99),
        mov(0, 1000),
        exit(),
    ];
    assert_eq!(r0(&prog), 1006);
    // Unbounded recursion runs out of frames.
    let err = run(&[ins(0x85, 0, 1, 0, -1), exit()]).expect_err("recursion");
    assert!(matches!(err, InterpError::CallDepth { .. }), "{err}");
}

#[test]
fn unknown_helpers_are_named() {
    let err = run(&[call(113), exit()]).expect_err("probe_read_kernel");
    assert!(
        err.to_string().contains("bpf_probe_read_kernel (#113)"),
        "{err}"
    );
    let err = run(&[call(9999), exit()]).expect_err("no such helper");
    assert!(
        matches!(
            err,
            InterpError::UnknownHelper {
                id: 9999,
                name: "unknown",
                ..
            }
        ),
        "{err}"
    );
}
