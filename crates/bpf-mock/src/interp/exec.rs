//! Decoding once, and the instruction loop.

use bpf_elf::Instruction;

use super::memory::{
    addr, Fault, Frame, Kind, Region, RunState, CTX, FIRST_GLOBAL, FUNC_BASE, MAP_BASE, PACKET,
    STACK,
};
use super::{
    context, BoundMap, Environment, Input, InterpError, Prog, RunResult, Vm, MAP_FD_BASE,
    MAX_CALL_FRAMES, STACK_FRAME,
};

/// One decoded slot. `ld_imm64` keeps its resolved 64-bit value in the `imm` of its two slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Insn {
    pub(crate) code: u8,
    pub(crate) dst: u8,
    pub(crate) src: u8,
    pub(crate) off: i16,
    pub(crate) imm: i32,
}

const PSEUDO_MAP_FD: u8 = 1;
const PSEUDO_MAP_VALUE: u8 = 2;
const PSEUDO_FUNC: u8 = 4;
const PSEUDO_CALL: u8 = 1;
const HELPER_TAIL_CALL: i32 = 12;

/// Decodes `instructions`, resolving `ld_imm64` map and function forms.
pub(crate) fn decode(
    vm: &mut Vm<'_>,
    name: &str,
    instructions: &[Instruction],
) -> Result<Vec<Insn>, InterpError> {
    let mut out: Vec<Insn> = instructions
        .iter()
        .map(|i| Insn {
            code: i.code,
            dst: i.dst & 15,
            src: i.src & 15,
            off: i.off,
            imm: i.imm,
        })
        .collect();
    let bad = |insn: usize, opcode: u8, reason: &'static str| InterpError::BadInstruction {
        program: name.to_string(),
        insn,
        opcode,
        reason,
    };
    let mut pc = 0;
    while pc < out.len() {
        let i = out[pc];
        if i.dst > 10 || i.src > 10 {
            return Err(bad(pc, i.code, "register number above r10"));
        }
        if i.code != 0x18 {
            pc += 1;
            continue;
        }
        let next = *out
            .get(pc + 1)
            .ok_or_else(|| bad(pc, i.code, "ld_imm64 without its second slot"))?;
        let value = match i.src {
            0 => (i.imm as u32 as u64) | ((next.imm as u32 as u64) << 32),
            PSEUDO_MAP_FD | PSEUDO_MAP_VALUE => {
                let index = (i.imm as u32)
                    .checked_sub(MAP_FD_BASE)
                    .map(|v| v as usize)
                    .filter(|&v| v < vm.maps.len())
                    .ok_or_else(|| {
                        bad(
                            pc,
                            i.code,
                            "ld_imm64 of a map fd the interpreter did not give out",
                        )
                    })?;
                if i.src == PSEUDO_MAP_FD {
                    MAP_BASE | index as u64
                } else {
                    let global = match vm.maps[index].global {
                        Some(g) => g,
                        None => {
                            vm.globals.push(index);
                            vm.maps[index].global = Some(vm.globals.len() - 1);
                            vm.globals.len() - 1
                        }
                    };
                    addr(FIRST_GLOBAL + global, next.imm as u32 as usize)
                }
            }
            PSEUDO_FUNC => {
                let target = pc as i64 + i.imm as i64 + 1;
                if target < 0 || target as usize >= out.len() {
                    return Err(bad(pc, i.code, "function pointer outside the program"));
                }
                FUNC_BASE | target as u64
            }
            _ => {
                return Err(bad(
                    pc,
                    i.code,
                    "ld_imm64 of a BTF id or map index is not supported",
                ))
            }
        };
        out[pc].imm = value as u32 as i32;
        out[pc].src = 0;
        out[pc + 1].imm = (value >> 32) as u32 as i32;
        pc += 2;
    }
    Ok(out)
}

/// The running machine: what a run borrows from the [`Vm`].
pub(crate) struct Machine<'a, 'm> {
    pub(crate) progs: &'a [Prog],
    pub(crate) maps: &'a [BoundMap<'m>],
    pub(crate) env: &'a mut Environment,
    pub(crate) map_ids: &'a [(u32, usize)],
    pub(crate) prog_ids: &'a [(u32, usize)],
    pub(crate) st: &'a mut RunState,
}

/// Runs program `prog` on `input`.
pub(crate) fn run(
    vm: &mut Vm<'_>,
    prog: usize,
    input: Input<'_>,
    out: &mut RunResult,
) -> Result<(), InterpError> {
    let Vm {
        progs,
        maps,
        globals,
        map_ids,
        prog_ids,
        env,
        state,
    } = vm;
    state.reset(globals.len());
    context::setup(state, input)?;
    let mut m = Machine {
        progs,
        maps,
        env,
        map_ids,
        prog_ids,
        st: state,
    };
    for (g, &map) in globals.iter().enumerate() {
        m.load_global(prog, g, map)?;
    }
    let ret = m.exec(prog, 0, [addr(CTX, 0), 0, 0, 0, 0]);
    let flushed = m.flush_all(prog);
    let r0 = ret?;
    flushed?;
    let st = &mut *m.st;
    let (data, end) = context::packet_bounds(st);
    let packet_region = &st.regions[PACKET];
    out.return_value = r0;
    out.packet.clear();
    out.packet.extend_from_slice(&packet_region.data[data..end]);
    out.metadata.clear();
    if st.ctx == super::memory::CtxKind::Xdp {
        out.metadata
            .extend_from_slice(&packet_region.data[st.xdp.meta..st.xdp.data]);
    }
    out.context.clear();
    out.context.extend_from_slice(&st.regions[CTX].data);
    if st.ctx == super::memory::CtxKind::Skb {
        out.context[0..4].copy_from_slice(&((end - data) as u32).to_le_bytes());
    }
    out.trace.clear();
    out.trace.append(&mut st.trace);
    out.perf.clear();
    out.perf.append(&mut st.perf);
    out.ringbuf.clear();
    out.ringbuf.append(&mut st.ringbuf);
    out.redirects.clear();
    out.redirects.append(&mut st.redirects);
    out.instructions = st.steps;
    out.tail_calls = st.tail_calls;
    Ok(())
}

impl Machine<'_, '_> {
    pub(crate) fn fault(&self, prog: usize, insn: usize, f: Fault) -> InterpError {
        InterpError::Memory {
            program: self.progs[prog].name.clone(),
            insn,
            access: if f.write { "store" } else { "load" },
            addr: f.addr,
            size: f.size,
            reason: f.reason,
        }
    }

    fn bad(&self, prog: usize, insn: usize, opcode: u8, reason: &'static str) -> InterpError {
        InterpError::BadInstruction {
            program: self.progs[prog].name.clone(),
            insn,
            opcode,
            reason,
        }
    }

    /// Zeroes frame `depth` and makes it the top of the accessible stack.
    fn zero_frame(&mut self, depth: usize) {
        let s = &mut self.st.regions[STACK];
        s.data[depth * STACK_FRAME..(depth + 1) * STACK_FRAME].fill(0);
        s.hi = (depth + 1) * STACK_FRAME;
    }

    /// Makes frame `self.st.depth` the top of the accessible stack (after a return).
    pub(crate) fn restore_stack_top(&mut self) {
        self.st.regions[STACK].hi = (self.st.depth + 1) * STACK_FRAME;
    }

    /// Runs from `pc` of `prog` in frame `self.st.depth` until that frame exits; returns `r0`.
    pub(crate) fn exec(
        &mut self,
        mut prog: usize,
        mut pc: usize,
        args: [u64; 5],
    ) -> Result<u64, InterpError> {
        let base = self.st.depth;
        if base >= MAX_CALL_FRAMES {
            return Err(InterpError::CallDepth {
                program: self.progs[prog].name.clone(),
                insn: pc,
            });
        }
        self.zero_frame(base);
        let progs = self.progs;
        let budget = self.env.budget;
        let mut code: &[Insn] = &progs[prog].insns;
        let mut r = [0u64; 16];
        r[1..6].copy_from_slice(&args);
        r[10] = RunState::frame_pointer(base);
        let fbase = self.st.frames.len();
        let mut steps = self.st.steps;
        loop {
            let Some(&i) = code.get(pc) else {
                self.st.steps = steps;
                return Err(self.bad(prog, pc, 0, "execution left the program"));
            };
            pc += 1;
            steps += 1;
            if steps > budget {
                self.st.steps = steps;
                return Err(InterpError::Budget {
                    program: progs[prog].name.clone(),
                    insn: pc - 1,
                    budget,
                });
            }
            let dst = (i.dst & 15) as usize;
            let src = (i.src & 15) as usize;
            // The common opcodes in one jump table; the rest (and every edge case) below.
            let b64 = if i.code & 8 != 0 {
                r[src]
            } else {
                i.imm as i64 as u64
            };
            macro_rules! jump_if {
                ($cond:expr) => {{
                    if $cond {
                        pc = (pc as i64 + i.off as i64) as usize;
                    }
                    continue;
                }};
            }
            match i.code {
                0x07 | 0x0f => {
                    r[dst] = r[dst].wrapping_add(b64);
                    continue;
                }
                0x17 | 0x1f => {
                    r[dst] = r[dst].wrapping_sub(b64);
                    continue;
                }
                0x47 | 0x4f => {
                    r[dst] |= b64;
                    continue;
                }
                0x57 | 0x5f => {
                    r[dst] &= b64;
                    continue;
                }
                0x67 | 0x6f => {
                    r[dst] <<= b64 & 63;
                    continue;
                }
                0x77 | 0x7f => {
                    r[dst] >>= b64 & 63;
                    continue;
                }
                0xa7 | 0xaf => {
                    r[dst] ^= b64;
                    continue;
                }
                0xb7 => {
                    r[dst] = b64;
                    continue;
                }
                0xbf if i.off == 0 => {
                    r[dst] = b64;
                    continue;
                }
                0x04 | 0x0c => {
                    r[dst] = (r[dst] as u32).wrapping_add(b64 as u32) as u64;
                    continue;
                }
                0xb4 => {
                    r[dst] = b64 as u32 as u64;
                    continue;
                }
                0xbc if i.off == 0 => {
                    r[dst] = b64 as u32 as u64;
                    continue;
                }
                0x05 => {
                    pc = (pc as i64 + i.off as i64) as usize;
                    continue;
                }
                0x15 | 0x1d => jump_if!(r[dst] == b64),
                0x55 | 0x5d => jump_if!(r[dst] != b64),
                0x25 | 0x2d => jump_if!(r[dst] > b64),
                0x35 | 0x3d => jump_if!(r[dst] >= b64),
                0xa5 | 0xad => jump_if!(r[dst] < b64),
                0xb5 | 0xbd => jump_if!(r[dst] <= b64),
                0x45 | 0x4d => jump_if!(r[dst] & b64 != 0),
                0x65 | 0x6d => jump_if!((r[dst] as i64) > (b64 as i64)),
                0x75 | 0x7d => jump_if!((r[dst] as i64) >= (b64 as i64)),
                0xc5 | 0xcd => jump_if!((r[dst] as i64) < (b64 as i64)),
                0xd5 | 0xdd => jump_if!((r[dst] as i64) <= (b64 as i64)),
                0x16 | 0x1e => jump_if!(r[dst] as u32 == b64 as u32),
                0x56 | 0x5e => jump_if!(r[dst] as u32 != b64 as u32),
                0x26 | 0x2e => jump_if!(r[dst] as u32 > b64 as u32),
                0x36 | 0x3e => jump_if!(r[dst] as u32 >= b64 as u32),
                0xa6 | 0xae => jump_if!((r[dst] as u32) < b64 as u32),
                0xb6 | 0xbe => jump_if!(r[dst] as u32 <= b64 as u32),
                _ => {}
            }
            match i.code & 7 {
                // ALU64
                0x07 => {
                    let b = if i.code & 8 != 0 {
                        r[src]
                    } else {
                        i.imm as i64 as u64
                    };
                    let a = r[dst];
                    r[dst] = match i.code & 0xf0 {
                        0x00 => a.wrapping_add(b),
                        0x10 => a.wrapping_sub(b),
                        0x20 => a.wrapping_mul(b),
                        0x30 => match (b, i.off) {
                            (0, _) => 0,
                            (_, 1) => (a as i64).wrapping_div(b as i64) as u64,
                            _ => a / b,
                        },
                        0x40 => a | b,
                        0x50 => a & b,
                        0x60 => a << (b & 63),
                        0x70 => a >> (b & 63),
                        0x80 => (a as i64).wrapping_neg() as u64,
                        0x90 => match (b, i.off) {
                            (0, _) => a,
                            (_, 1) => (a as i64).wrapping_rem(b as i64) as u64,
                            _ => a % b,
                        },
                        0xa0 => a ^ b,
                        0xb0 => match i.off {
                            8 => b as i8 as i64 as u64,
                            16 => b as i16 as i64 as u64,
                            32 => b as i32 as i64 as u64,
                            _ => b,
                        },
                        0xc0 => ((a as i64) >> (b & 63)) as u64,
                        0xd0 => match i.imm {
                            16 => (a as u16).swap_bytes() as u64,
                            32 => (a as u32).swap_bytes() as u64,
                            64 => a.swap_bytes(),
                            _ => {
                                return Err(self.bad(
                                    prog,
                                    pc - 1,
                                    i.code,
                                    "bswap width is not 16, 32 or 64",
                                ))
                            }
                        },
                        _ => return Err(self.bad(prog, pc - 1, i.code, "unknown ALU64 operation")),
                    };
                }
                // ALU (32-bit)
                0x04 => {
                    let b = if i.code & 8 != 0 {
                        r[src] as u32
                    } else {
                        i.imm as u32
                    };
                    let a = r[dst] as u32;
                    r[dst] = match i.code & 0xf0 {
                        0x00 => a.wrapping_add(b) as u64,
                        0x10 => a.wrapping_sub(b) as u64,
                        0x20 => a.wrapping_mul(b) as u64,
                        0x30 => match (b, i.off) {
                            (0, _) => 0,
                            (_, 1) => (a as i32).wrapping_div(b as i32) as u32 as u64,
                            _ => (a / b) as u64,
                        },
                        0x40 => (a | b) as u64,
                        0x50 => (a & b) as u64,
                        0x60 => (a << (b & 31)) as u64,
                        0x70 => (a >> (b & 31)) as u64,
                        0x80 => (a as i32).wrapping_neg() as u32 as u64,
                        0x90 => match (b, i.off) {
                            (0, _) => a as u64,
                            (_, 1) => (a as i32).wrapping_rem(b as i32) as u32 as u64,
                            _ => (a % b) as u64,
                        },
                        0xa0 => (a ^ b) as u64,
                        0xb0 => match i.off {
                            8 => b as i8 as i32 as u32 as u64,
                            16 => b as i16 as i32 as u32 as u64,
                            _ => b as u64,
                        },
                        0xc0 => ((a as i32) >> (b & 31)) as u32 as u64,
                        0xd0 => {
                            let v = r[dst];
                            // TO_LE on a little-endian machine truncates; TO_BE swaps.
                            let to_be = i.code & 8 != 0;
                            match (i.imm, to_be) {
                                (16, false) => v as u16 as u64,
                                (32, false) => v as u32 as u64,
                                (64, false) => v,
                                (16, true) => (v as u16).swap_bytes() as u64,
                                (32, true) => (v as u32).swap_bytes() as u64,
                                (64, true) => v.swap_bytes(),
                                _ => {
                                    return Err(self.bad(
                                        prog,
                                        pc - 1,
                                        i.code,
                                        "byte swap width is not 16, 32 or 64",
                                    ))
                                }
                            }
                        }
                        _ => return Err(self.bad(prog, pc - 1, i.code, "unknown ALU operation")),
                    };
                }
                // JMP and JMP32
                0x05 | 0x06 => {
                    let wide = i.code & 7 == 0x05;
                    let op = i.code & 0xf0;
                    match op {
                        0x00 => {
                            // ja (JMP32: gotol with the offset in imm)
                            let off = if wide { i.off as i64 } else { i.imm as i64 };
                            pc = (pc as i64 + off) as usize;
                            continue;
                        }
                        0x80 if wide => {
                            if i.src == PSEUDO_CALL {
                                if self.st.depth + 1 >= MAX_CALL_FRAMES {
                                    self.st.steps = steps;
                                    return Err(InterpError::CallDepth {
                                        program: progs[prog].name.clone(),
                                        insn: pc - 1,
                                    });
                                }
                                self.st.frames.push(Frame {
                                    prog,
                                    ret_pc: pc,
                                    saved: [r[6], r[7], r[8], r[9]],
                                    fp: r[10],
                                });
                                self.st.depth += 1;
                                let depth = self.st.depth;
                                self.zero_frame(depth);
                                r[10] = RunState::frame_pointer(depth);
                                pc = (pc as i64 + i.imm as i64) as usize;
                                continue;
                            }
                            if i.src != 0 {
                                return Err(self.bad(
                                    prog,
                                    pc - 1,
                                    i.code,
                                    "kfunc calls are not supported",
                                ));
                            }
                            self.st.steps = steps;
                            if i.imm == HELPER_TAIL_CALL {
                                if let Some(next) = self.tail_call(prog, pc - 1, r[2], r[3])? {
                                    prog = next;
                                    code = &progs[prog].insns;
                                    pc = 0;
                                    continue;
                                }
                                r[0] = (-2i64) as u64;
                            } else {
                                r[0] = self.helper(
                                    prog,
                                    pc - 1,
                                    i.imm,
                                    [r[1], r[2], r[3], r[4], r[5]],
                                )?;
                            }
                            steps = self.st.steps;
                            continue;
                        }
                        0x90 if wide => {
                            if self.st.frames.len() <= fbase {
                                self.st.steps = steps;
                                return Ok(r[0]);
                            }
                            let Some(f) = self.st.frames.pop() else {
                                continue;
                            };
                            self.st.depth -= 1;
                            self.restore_stack_top();
                            [r[6], r[7], r[8], r[9]] = f.saved;
                            r[10] = f.fp;
                            pc = f.ret_pc;
                            if f.prog != prog {
                                prog = f.prog;
                                code = &progs[prog].insns;
                            }
                            continue;
                        }
                        _ => {}
                    }
                    let (a, b) = if i.code & 8 != 0 {
                        (r[dst], r[src])
                    } else {
                        (r[dst], i.imm as i64 as u64)
                    };
                    let (a, b) = if wide {
                        (a, b)
                    } else {
                        (a as u32 as u64, b as u32 as u64)
                    };
                    let (sa, sb) = if wide {
                        (a as i64, b as i64)
                    } else {
                        (a as u32 as i32 as i64, b as u32 as i32 as i64)
                    };
                    let taken = match op {
                        0x10 => a == b,
                        0x20 => a > b,
                        0x30 => a >= b,
                        0x40 => a & b != 0,
                        0x50 => a != b,
                        0x60 => sa > sb,
                        0x70 => sa >= sb,
                        0xa0 => a < b,
                        0xb0 => a <= b,
                        0xc0 => sa < sb,
                        0xd0 => sa <= sb,
                        _ => return Err(self.bad(prog, pc - 1, i.code, "unknown jump")),
                    };
                    if taken {
                        pc = (pc as i64 + i.off as i64) as usize;
                    }
                }
                // LDX
                0x01 => {
                    let size = size_of(i.code);
                    let a = r[src].wrapping_add(i.off as i64 as u64);
                    let v = if RunState::is_ctx(a) {
                        context::load(self.st, a, size)
                    } else {
                        self.st.load(a, size)
                    };
                    let v = match v {
                        Ok(v) => v,
                        Err(f) => {
                            self.st.steps = steps;
                            return Err(self.fault(prog, pc - 1, f));
                        }
                    };
                    r[dst] = match i.code & 0xe0 {
                        0x60 => v,
                        0x80 => match size {
                            1 => v as i8 as i64 as u64,
                            2 => v as i16 as i64 as u64,
                            4 => v as i32 as i64 as u64,
                            _ => {
                                return Err(self.bad(
                                    prog,
                                    pc - 1,
                                    i.code,
                                    "sign-extending load of 8 bytes",
                                ))
                            }
                        },
                        _ => return Err(self.bad(prog, pc - 1, i.code, "unknown load mode")),
                    };
                }
                // ST and STX
                0x02 | 0x03 => {
                    let size = size_of(i.code);
                    let a = r[dst].wrapping_add(i.off as i64 as u64);
                    match i.code & 0xe0 {
                        0x60 => {
                            let v = if i.code & 7 == 0x03 {
                                r[src]
                            } else {
                                i.imm as i64 as u64
                            };
                            let res = if RunState::is_ctx(a) {
                                context::store(self.st, a, size, v)
                            } else {
                                self.st.store(a, size, v)
                            };
                            if let Err(f) = res {
                                self.st.steps = steps;
                                return Err(self.fault(prog, pc - 1, f));
                            }
                        }
                        0xc0 if i.code & 7 == 0x03 => {
                            if let Err(e) = self.atomic(&mut r, i, a, size) {
                                self.st.steps = steps;
                                return Err(match e {
                                    Ok(f) => self.fault(prog, pc - 1, f),
                                    Err(reason) => self.bad(prog, pc - 1, i.code, reason),
                                });
                            }
                        }
                        _ => return Err(self.bad(prog, pc - 1, i.code, "unknown store mode")),
                    }
                }
                // LD
                _ => match i.code {
                    0x18 => {
                        let hi = code.get(pc).map(|n| n.imm as u32 as u64).unwrap_or(0);
                        r[dst] = (i.imm as u32 as u64) | (hi << 32);
                        pc += 1;
                    }
                    0x20 | 0x28 | 0x30 | 0x40 | 0x48 | 0x50 => {
                        let size = size_of(i.code);
                        let mut off = i.imm as i64;
                        if i.code & 0xe0 == 0x40 {
                            off += r[src] as u32 as i32 as i64;
                        }
                        match self.load_abs(off, size) {
                            Some(v) => r[0] = v,
                            None => {
                                // The kernel ends the program with 0 when the bytes are not there.
                                self.st.steps = steps;
                                self.st.depth = base;
                                self.st.frames.truncate(fbase);
                                return Ok(0);
                            }
                        }
                    }
                    _ => return Err(self.bad(prog, pc - 1, i.code, "unknown opcode")),
                },
            }
        }
    }

    /// `BPF_ABS`/`BPF_IND`: big-endian bytes of the skb data.
    fn load_abs(&self, off: i64, size: usize) -> Option<u64> {
        if self.st.ctx != super::memory::CtxKind::Skb || off < 0 {
            return None;
        }
        let p = &self.st.regions[PACKET];
        let start = p.lo.checked_add(off as usize)?;
        let b = p.data.get(start..start.checked_add(size)?)?;
        if start + size > p.hi {
            return None;
        }
        Some(b.iter().fold(0u64, |acc, &x| (acc << 8) | x as u64))
    }

    /// An atomic read-modify-write (or load-acquire / store-release).
    #[allow(clippy::type_complexity)]
    fn atomic(
        &mut self,
        r: &mut [u64; 16],
        i: Insn,
        a: u64,
        size: usize,
    ) -> Result<(), Result<Fault, &'static str>> {
        let src = (i.src & 15) as usize;
        let dst = (i.dst & 15) as usize;
        let mask = if size == 8 {
            u64::MAX
        } else {
            (1u64 << (size * 8)) - 1
        };
        match i.imm {
            0x100 => {
                r[dst] = self.st.load(a, size).map_err(Ok)?;
                return Ok(());
            }
            0x110 => return self.st.store(a, size, r[src]).map_err(Ok),
            _ => {}
        }
        if size != 4 && size != 8 {
            return Err(Err("atomic read-modify-write of 1 or 2 bytes"));
        }
        let old = self.st.load(a, size).map_err(Ok)?;
        let s = r[src] & mask;
        let (new, fetch) = match i.imm & !1 {
            0x00 => (old.wrapping_add(s), i.imm & 1 != 0),
            0x40 => (old | s, i.imm & 1 != 0),
            0x50 => (old & s, i.imm & 1 != 0),
            0xa0 => (old ^ s, i.imm & 1 != 0),
            0xe0 if i.imm == 0xe1 => (s, true),
            0xf0 if i.imm == 0xf1 => {
                let new = if r[0] & mask == old { s } else { old };
                self.st.store(a, size, new & mask).map_err(Ok)?;
                r[0] = old;
                return Ok(());
            }
            _ => return Err(Err("unknown atomic operation")),
        };
        self.st.store(a, size, new & mask).map_err(Ok)?;
        if fetch {
            r[src] = old;
        }
        Ok(())
    }

    /// Fills global region `g` with the value of key 0 of map `map`.
    fn load_global(&mut self, prog: usize, g: usize, map: usize) -> Result<(), InterpError> {
        let b = &self.maps[map];
        let mut value = vec![0u8; b.value_len];
        let key = vec![0u8; b.key_size];
        b.map
            .lookup_elem(&key, &mut value, 0)
            .map_err(|source| InterpError::Map {
                program: self.progs[prog].name.clone(),
                map: b.name.clone(),
                operation: "reading global data",
                source: Box::new(source),
            })?;
        if b.per_cpu {
            value = self.slot(map, &value, prog)?.to_vec();
        }
        let mut region = Region::new(value, Kind::Value { map }, true);
        region.key = key;
        self.st.regions[FIRST_GLOBAL + g] = region;
        Ok(())
    }
}

fn size_of(code: u8) -> usize {
    match code & 0x18 {
        0x00 => 4,
        0x08 => 2,
        0x10 => 1,
        _ => 8,
    }
}
