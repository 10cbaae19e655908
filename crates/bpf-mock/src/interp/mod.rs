//! A userspace eBPF interpreter: run the very bytecode the kernel would, with no root and no
//! kernel.
//!
//! Take a program from an object ([`Vm::load`]), bind its map references to any
//! [`bpf_maps::Map`] (the mock maps of this crate, or [`MemMap`]), and run it on a packet, a
//! `pt_regs` or raw tracepoint bytes. The result says what the program returned, the packet as it
//! left, and what it wrote to trace output, perf and ring buffers, and which redirects it asked
//! for; the maps hold what it stored.
//!
//! ```no_run
//! use bpf_elf::ObjectSpec;
//! use bpf_maps::{Map, MapExt};
//! use bpf_mock::interp::{MemMap, Vm, XDP_PASS};
//!
//! let obj = ObjectSpec::from_path("target/bpf/xdp_packet_counter.o")?;
//! let protocols = MemMap::from_spec(obj.map("protocols").expect("map"), 2);
//! let mut vm = Vm::new();
//! let prog = vm.load(&obj, "packet_count", |_| Some(&protocols as &dyn Map))?;
//! let mut frame = vec![0u8; 34];
//! frame[12..14].copy_from_slice(&[0x08, 0x00]); // IPv4
//! frame[23] = 17; // UDP
//! let out = vm.run_xdp(prog, &frame)?;
//! assert_eq!(out.return_value, u64::from(XDP_PASS));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Semantics worth knowing
//!
//! - **Map values are copies.** The kernel hands a program a pointer into a map's value; here the
//!   program gets a region holding a copy (for per-CPU maps: the slot of [`Environment::cpu`]).
//!   Writes through that pointer, atomics included, land in the map when the run ends, and before
//!   any later map helper call on the same map (so a lookup, update or `for_each_map_elem` sees
//!   them). Two lookups of one key in a run return the same pointer. Global data (`.data`,
//!   `.bss`, `.rodata`) is the value of key 0 of its map, under the same rule.
//! - **Memory is checked.** Every load and store must fall inside one region: the context, the
//!   packet between `data_meta` (or `data`) and `data_end`, the stack frames, a map value, a ring
//!   buffer record. Anything else is [`InterpError::Memory`] naming the instruction and address.
//! - **Nothing is verified.** The interpreter runs what it is given; the kernel's verifier may
//!   still reject a program this runs. Run the differential test for the real answer.
//! - **Ids stand for fds.** Program arrays hold [`ProgramId::fd`] values and maps of maps hold
//!   the numbers [`Vm::add_map`] returns.
//! - Only little-endian objects run (`-target bpfel`).

mod context;
mod exec;
mod helpers;
mod mem_map;
mod memory;
mod names;
mod packet;
mod printk;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_helpers;
#[cfg(test)]
mod tests_objects;

use std::time::{Duration, Instant};

use bpf_elf::{ElfError, Endianness, Instruction, ObjectSpec, ProgramType};
use bpf_maps::{Map, MapError};

pub use context::{PtRegs, SkbFields, XdpFields};
pub use mem_map::MemMap;

use exec::Insn;
use memory::RunState;

/// `XDP_ABORTED`.
pub const XDP_ABORTED: u32 = 0;
/// `XDP_DROP`.
pub const XDP_DROP: u32 = 1;
/// `XDP_PASS`.
pub const XDP_PASS: u32 = 2;
/// `XDP_TX`.
pub const XDP_TX: u32 = 3;
/// `XDP_REDIRECT`.
pub const XDP_REDIRECT: u32 = 4;
/// The kernel's limit on chained tail calls (`MAX_TAIL_CALL_CNT`).
pub const MAX_TAIL_CALLS: u32 = 33;
/// The kernel's limit on nested frames: bpf-to-bpf calls and callbacks (`MAX_CALL_FRAMES`).
pub const MAX_CALL_FRAMES: usize = 8;
/// Bytes of one stack frame (`MAX_BPF_STACK`).
pub const STACK_FRAME: usize = 512;

/// Running a program in the interpreter failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InterpError {
    /// The object has no program of that name.
    #[error("object has no program {program}")]
    NoProgram {
        /// The name asked for.
        program: String,
    },
    /// Linking or relocating the program failed.
    #[error("cannot link program {program}")]
    Link {
        /// The program.
        program: String,
        /// What bpf-elf said.
        #[source]
        source: Box<ElfError>,
    },
    /// The program refers to a map the caller did not bind.
    #[error("program {program} refers to map {map}, which is not bound")]
    UnboundMap {
        /// The program.
        program: String,
        /// The map's name.
        map: String,
    },
    /// The object is big-endian.
    #[error("program {program} is big-endian; the interpreter runs little-endian objects")]
    BigEndian {
        /// The program.
        program: String,
    },
    /// An instruction the interpreter does not know (or a malformed one).
    #[error("program {program}, instruction {insn}: {reason} (opcode {opcode:#04x})")]
    BadInstruction {
        /// The program.
        program: String,
        /// The instruction index.
        insn: usize,
        /// The opcode.
        opcode: u8,
        /// What is wrong.
        reason: &'static str,
    },
    /// A load or store outside every region the instruction may touch.
    #[error(
        "program {program}, instruction {insn}: {access} of {size} bytes at {addr:#x}: {reason}"
    )]
    Memory {
        /// The program.
        program: String,
        /// The instruction index.
        insn: usize,
        /// `"load"` or `"store"`.
        access: &'static str,
        /// The address.
        addr: u64,
        /// The access size.
        size: usize,
        /// Why it failed.
        reason: String,
    },
    /// The instruction budget ran out (a runaway loop).
    #[error("program {program}: instruction budget of {budget} exhausted at instruction {insn}")]
    Budget {
        /// The program.
        program: String,
        /// The instruction index.
        insn: usize,
        /// The budget.
        budget: u64,
    },
    /// More than [`MAX_CALL_FRAMES`] nested calls.
    #[error("program {program}, instruction {insn}: more than {max} nested call frames", max = MAX_CALL_FRAMES)]
    CallDepth {
        /// The program.
        program: String,
        /// The instruction index.
        insn: usize,
    },
    /// A helper the interpreter does not implement.
    #[error("program {program}, instruction {insn}: helper bpf_{name} (#{id}) is not implemented by the interpreter")]
    UnknownHelper {
        /// The program.
        program: String,
        /// The instruction index.
        insn: usize,
        /// The helper id.
        id: u32,
        /// The helper's kernel name (without `bpf_`), or `unknown`.
        name: &'static str,
    },
    /// A helper was called with arguments the kernel would not accept.
    #[error("program {program}, instruction {insn}: bpf_{helper}: {reason}")]
    Helper {
        /// The program.
        program: String,
        /// The instruction index.
        insn: usize,
        /// The helper's name.
        helper: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A map operation failed in a way a program cannot see as an errno (writing a value back).
    #[error("program {program}: map {map}: {operation} failed")]
    Map {
        /// The program.
        program: String,
        /// The map.
        map: String,
        /// The operation.
        operation: &'static str,
        /// The map's error.
        #[source]
        source: Box<MapError>,
    },
    /// The input does not fit the program's type.
    #[error("program {program} is of type {program_type:?}; it cannot run on {input}")]
    WrongInput {
        /// The program.
        program: String,
        /// Its type.
        program_type: ProgramType,
        /// The kind of input given.
        input: &'static str,
    },
    /// A packet larger than the interpreter's frame.
    #[error("packet of {got} bytes is larger than {max}")]
    PacketTooLarge {
        /// The packet's length.
        got: usize,
        /// The largest packet.
        max: usize,
    },
    /// An unknown program id.
    #[error("no program with id {0}")]
    NoSuchProgram(u32),
}

/// A program loaded into a [`Vm`]. Its [`ProgramId::fd`] is what program arrays hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProgramId(u32);

/// The first number [`ProgramId::fd`] gives out.
const PROG_FD_BASE: u32 = 10_000;
/// The first number [`Vm::add_map`] gives out.
const MAP_FD_BASE: u32 = 1_000;

impl ProgramId {
    /// The number standing for the program's fd: put it in a program array for tail calls.
    pub fn fd(self) -> u32 {
        self.0 + PROG_FD_BASE
    }

    /// The program with this fd number, if it looks like one.
    pub fn from_fd(fd: u32) -> Option<Self> {
        fd.checked_sub(PROG_FD_BASE).map(ProgramId)
    }
}

/// What the test controls: the clocks, the random numbers, the CPU and the current task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Environment {
    /// What `bpf_ktime_get_ns` returns.
    pub ktime_ns: u64,
    /// What `bpf_ktime_get_boot_ns` returns.
    pub boot_ns: u64,
    /// Added to both clocks after each read (0: the clocks stand still).
    pub clock_step_ns: u64,
    /// The state of `bpf_get_prandom_u32` (a splitmix64 sequence): set it to seed.
    pub prandom_state: u64,
    /// What `bpf_get_smp_processor_id` returns; per-CPU maps use this CPU's slot.
    pub cpu: u32,
    /// Thread id (low half of `bpf_get_current_pid_tgid`).
    pub pid: u32,
    /// Process id (high half of `bpf_get_current_pid_tgid`).
    pub tgid: u32,
    /// Low half of `bpf_get_current_uid_gid`.
    pub uid: u32,
    /// High half of `bpf_get_current_uid_gid`.
    pub gid: u32,
    /// What `bpf_get_current_comm` copies (up to 15 bytes and a NUL).
    pub comm: String,
    /// Instructions one run may execute before [`InterpError::Budget`] (callbacks and tail calls
    /// included).
    pub budget: u64,
}

impl Default for Environment {
    fn default() -> Self {
        Environment {
            ktime_ns: 1_000_000_000,
            boot_ns: 1_000_000_000,
            clock_step_ns: 0,
            prandom_state: 0x5eed,
            cpu: 0,
            pid: 1000,
            tgid: 1000,
            uid: 0,
            gid: 0,
            comm: "bpf-mock".to_string(),
            budget: 1_000_000,
        }
    }
}

/// A record a program wrote with `bpf_perf_event_output`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PerfRecord {
    /// The perf event array's name.
    pub map: String,
    /// The CPU (array index) it went to.
    pub cpu: u32,
    /// The bytes: the data, then the packet bytes the flags asked for.
    pub data: Vec<u8>,
}

/// A record a program submitted to a ring buffer (`bpf_ringbuf_output` or reserve and submit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RingbufRecord {
    /// The ring buffer's name.
    pub map: String,
    /// The bytes.
    pub data: Vec<u8>,
}

/// A redirect a program asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redirect {
    /// `bpf_redirect(ifindex, flags)`.
    Ifindex {
        /// The interface index.
        ifindex: u32,
        /// The flags.
        flags: u64,
    },
    /// `bpf_redirect_map(map, key, flags)` whose key was in the map.
    Map {
        /// The map's name.
        map: String,
        /// The key.
        key: u32,
        /// The flags.
        flags: u64,
    },
}

/// What a run produced.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RunResult {
    /// `r0` at exit: the XDP action, TC verdict, socket filter length, ...
    pub return_value: u64,
    /// The packet as it left (XDP: from `data` to `data_end`; skb: the data); empty for kprobes
    /// and tracepoints.
    pub packet: Vec<u8>,
    /// XDP metadata in front of the packet (`data_meta` to `data`).
    pub metadata: Vec<u8>,
    /// The context as it left (`__sk_buff` with the fields the program wrote; `xdp_md`;
    /// `pt_regs`; the tracepoint bytes).
    pub context: Vec<u8>,
    /// `bpf_trace_printk` output, one entry per call.
    pub trace: Vec<String>,
    /// `bpf_perf_event_output` records.
    pub perf: Vec<PerfRecord>,
    /// Ring buffer records, in submit order.
    pub ringbuf: Vec<RingbufRecord>,
    /// Redirects asked for.
    pub redirects: Vec<Redirect>,
    /// Instructions executed (callbacks and tail calls included).
    pub instructions: u64,
    /// Tail calls taken.
    pub tail_calls: u32,
}

/// What a program runs on.
#[derive(Debug, Clone, Copy)]
pub enum Input<'a> {
    /// An XDP packet (the bytes from the Ethernet header on) and the `xdp_md` fields.
    Xdp(&'a [u8], XdpFields),
    /// An skb for socket filters and TC: the bytes `skb->data` points to, and the `__sk_buff`
    /// fields.
    Skb(&'a [u8], &'a SkbFields),
    /// Kprobe registers.
    Kprobe(&'a PtRegs),
    /// A tracepoint's (or any other program's) raw context bytes, read-only.
    Raw(&'a [u8]),
}

impl Input<'_> {
    fn kind(&self) -> &'static str {
        match self {
            Input::Xdp(..) => "an xdp packet",
            Input::Skb(..) => "an skb",
            Input::Kprobe(_) => "pt_regs",
            Input::Raw(_) => "raw context bytes",
        }
    }
}

#[derive(Debug)]
pub(crate) struct Prog {
    pub(crate) name: String,
    pub(crate) program_type: ProgramType,
    pub(crate) insns: Vec<Insn>,
}

/// A map bound into the interpreter, with its layout read once.
#[derive(Debug)]
pub(crate) struct BoundMap<'m> {
    pub(crate) map: &'m dyn Map,
    pub(crate) name: String,
    pub(crate) key_size: usize,
    pub(crate) value_size: usize,
    pub(crate) value_len: usize,
    pub(crate) per_cpu: bool,
    /// The global region (index in `Vm::globals`) when instructions point into its value.
    pub(crate) global: Option<usize>,
}

/// The interpreter: programs, the maps they are bound to, and the [`Environment`].
///
/// Runs take `&mut self`; the maps are borrowed for `'m` and written through [`Map`]'s `&self`
/// methods.
#[derive(Debug, Default)]
pub struct Vm<'m> {
    progs: Vec<Prog>,
    maps: Vec<BoundMap<'m>>,
    /// Map indices with a global region, in region order.
    globals: Vec<usize>,
    /// Other numbers standing for maps in maps of maps (mock map ids): (number, map index).
    map_ids: Vec<(u32, usize)>,
    /// Other numbers standing for programs in program arrays (mock program ids).
    prog_ids: Vec<(u32, usize)>,
    env: Environment,
    state: RunState,
}

impl<'m> Vm<'m> {
    /// An empty interpreter with the default [`Environment`].
    pub fn new() -> Self {
        Self::default()
    }

    /// The environment the programs see.
    pub fn env(&self) -> &Environment {
        &self.env
    }

    /// The environment, to change the clock, CPU, task or budget between runs.
    pub fn env_mut(&mut self) -> &mut Environment {
        &mut self.env
    }

    /// Binds a map and returns the number standing for its fd (the same number for the same
    /// map): what `ld_imm64` map-fd instructions and maps of maps hold.
    pub fn add_map(&mut self, map: &'m dyn Map) -> u32 {
        let existing = self
            .maps
            .iter()
            .position(|b| std::ptr::addr_eq(b.map as *const dyn Map, map as *const dyn Map));
        let index = existing.unwrap_or_else(|| {
            self.maps.push(BoundMap {
                map,
                name: map.name().to_string(),
                key_size: map.key_size() as usize,
                value_size: map.value_size() as usize,
                value_len: map.value_len(),
                per_cpu: map.is_per_cpu(),
                global: None,
            });
            self.maps.len() - 1
        });
        index as u32 + MAP_FD_BASE
    }

    /// Binds `map` (as [`Vm::add_map`]) and lets maps of maps name it by `id` too: a
    /// [`MockMap`](crate::MockMap) of maps holds its inner maps' [`MockMap::id`](crate::MockMap::id).
    pub fn set_map_id(&mut self, id: u32, map: &'m dyn Map) {
        let index = (self.add_map(map) - MAP_FD_BASE) as usize;
        self.map_ids.retain(|(n, _)| *n != id);
        self.map_ids.push((id, index));
    }

    /// Lets program arrays name `prog` by `id` too (a mock program array holds the
    /// [`MockProgram::id`](crate::MockProgram::id) of its programs).
    pub fn set_program_id(&mut self, id: u32, prog: ProgramId) {
        self.prog_ids.retain(|(n, _)| *n != id);
        self.prog_ids.push((id, prog.0 as usize));
    }

    /// The fd number of a map already bound with [`Vm::add_map`] or [`Vm::load`], by name.
    pub fn map_fd(&self, name: &str) -> Option<u32> {
        self.maps
            .iter()
            .position(|b| b.name == name)
            .map(|i| i as u32 + MAP_FD_BASE)
    }

    /// Links program `program` of `obj`, binds each map it refers to with `maps(name)`, and
    /// decodes it once.
    pub fn load<F>(
        &mut self,
        obj: &ObjectSpec,
        program: &str,
        maps: F,
    ) -> Result<ProgramId, InterpError>
    where
        F: Fn(&str) -> Option<&'m dyn Map>,
    {
        let spec = obj.program(program).ok_or_else(|| InterpError::NoProgram {
            program: program.to_string(),
        })?;
        let mut linked = obj.link(program).map_err(|source| InterpError::Link {
            program: program.to_string(),
            source: Box::new(source),
        })?;
        if linked.endianness == Endianness::Big {
            return Err(InterpError::BigEndian {
                program: program.to_string(),
            });
        }
        let mut fds = Vec::new();
        for r in &linked.map_references {
            let map = maps(&r.map).ok_or_else(|| InterpError::UnboundMap {
                program: program.to_string(),
                map: r.map.to_string(),
            })?;
            fds.push((r.map.clone(), self.add_map(map)));
        }
        linked
            .relocate(|name| {
                fds.iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, fd)| *fd as i32)
            })
            .map_err(|source| InterpError::Link {
                program: program.to_string(),
                source: Box::new(source),
            })?;
        self.load_instructions(program, spec.program_type, &linked.instructions)
    }

    /// Loads program `program` of `obj` bound to the mock maps of `system` (by name), as
    /// [`Vm::load`] does, and lets maps of maps and program arrays of `system` name the maps and
    /// the program by their mock ids ([`Vm::set_map_id`], [`Vm::set_program_id`]). Load every
    /// program a tail call may reach this way (after [`bpf_attach::System::load_all`], so the
    /// mock programs have ids).
    pub fn load_mock(
        &mut self,
        system: &'m crate::MockSystem,
        obj: &ObjectSpec,
        program: &str,
    ) -> Result<ProgramId, InterpError> {
        let id = self.load(obj, program, |name| {
            system.mock_map(name).map(|m| m as &dyn Map)
        })?;
        for spec in &obj.maps {
            if let Some(m) = system.mock_map(&spec.name) {
                self.set_map_id(m.id(), m);
            }
        }
        if let Some(mock_id) = system.mock_program(program).and_then(|p| p.id()) {
            self.set_program_id(mock_id, id);
        }
        Ok(id)
    }

    /// Loads hand-assembled (or already relocated) instructions: `ld_imm64` map-fd and map-value
    /// forms hold numbers from [`Vm::add_map`].
    pub fn load_instructions(
        &mut self,
        name: &str,
        program_type: ProgramType,
        instructions: &[Instruction],
    ) -> Result<ProgramId, InterpError> {
        let insns = exec::decode(self, name, instructions)?;
        self.progs.push(Prog {
            name: name.to_string(),
            program_type,
            insns,
        });
        Ok(ProgramId(self.progs.len() as u32 - 1))
    }

    /// A loaded program's name.
    pub fn program_name(&self, id: ProgramId) -> Option<&str> {
        self.progs.get(id.0 as usize).map(|p| p.name.as_str())
    }

    /// Runs an XDP program on `packet` with default `xdp_md` fields (ifindex 1, queue 0).
    pub fn run_xdp(&mut self, prog: ProgramId, packet: &[u8]) -> Result<RunResult, InterpError> {
        self.run(prog, Input::Xdp(packet, XdpFields::default()))
    }

    /// Runs a socket filter or TC program on `data` (what `skb->data` points to: the Ethernet
    /// header for TC, the network header for socket filters), filling `__sk_buff` from
    /// [`SkbFields::for_packet`].
    pub fn run_skb(&mut self, prog: ProgramId, data: &[u8]) -> Result<RunResult, InterpError> {
        let fields = SkbFields::for_packet(data, self.program_type(prog)?);
        self.run(prog, Input::Skb(data, &fields))
    }

    /// Runs a kprobe program on `regs`.
    pub fn run_kprobe(&mut self, prog: ProgramId, regs: &PtRegs) -> Result<RunResult, InterpError> {
        self.run(prog, Input::Kprobe(regs))
    }

    /// Runs a tracepoint (or other raw-context) program on `raw`.
    pub fn run_tracepoint(
        &mut self,
        prog: ProgramId,
        raw: &[u8],
    ) -> Result<RunResult, InterpError> {
        self.run(prog, Input::Raw(raw))
    }

    fn program_type(&self, prog: ProgramId) -> Result<ProgramType, InterpError> {
        self.progs
            .get(prog.0 as usize)
            .map(|p| p.program_type)
            .ok_or(InterpError::NoSuchProgram(prog.0))
    }

    /// Runs `prog` on `input`.
    pub fn run(&mut self, prog: ProgramId, input: Input<'_>) -> Result<RunResult, InterpError> {
        let mut out = RunResult::default();
        self.run_into(prog, input, &mut out)?;
        Ok(out)
    }

    /// As [`Vm::run`], filling `out` and reusing its buffers: no allocation per run once they
    /// have grown (for loops that run a program many times). `out` is unspecified on error.
    pub fn run_into(
        &mut self,
        prog: ProgramId,
        input: Input<'_>,
        out: &mut RunResult,
    ) -> Result<(), InterpError> {
        let p = self
            .progs
            .get(prog.0 as usize)
            .ok_or(InterpError::NoSuchProgram(prog.0))?;
        let ok = match input {
            Input::Xdp(..) => p.program_type == ProgramType::Xdp,
            Input::Skb(..) => matches!(
                p.program_type,
                ProgramType::SocketFilter
                    | ProgramType::SchedCls
                    | ProgramType::SchedAct
                    | ProgramType::CgroupSkb
            ),
            Input::Kprobe(_) => p.program_type == ProgramType::Kprobe,
            Input::Raw(_) => !matches!(
                p.program_type,
                ProgramType::Xdp
                    | ProgramType::SocketFilter
                    | ProgramType::SchedCls
                    | ProgramType::SchedAct
                    | ProgramType::CgroupSkb
            ),
        };
        if !ok {
            return Err(InterpError::WrongInput {
                program: p.name.clone(),
                program_type: p.program_type,
                input: input.kind(),
            });
        }
        exec::run(self, prog.0 as usize, input, out)
    }
}

/// Measures the interpreter on a packet-parsing XDP program: runs `program` of the object at
/// `object` (its maps are [`MemMap`]s with 2 CPUs) on `packet` for at least `duration`, and
/// returns the instructions executed per second (the time includes each run's setup and the
/// map helpers). `cargo xtask bench` calls this through the `interp_bench` example.
pub fn bench_interpreter(
    object: &std::path::Path,
    program: &str,
    packet: &[u8],
    duration: Duration,
) -> Result<BenchResult, Box<dyn std::error::Error + Send + Sync>> {
    let obj = ObjectSpec::from_path(object)?;
    let maps: Vec<MemMap> = obj.maps.iter().map(|m| MemMap::from_spec(m, 2)).collect();
    let mut vm = Vm::new();
    let prog = vm.load(&obj, program, |name| {
        maps.iter()
            .find(|m| m.name() == name)
            .map(|m| m as &dyn Map)
    })?;
    let start = Instant::now();
    let mut instructions = 0u64;
    let mut runs = 0u64;
    let mut out = RunResult::default();
    while start.elapsed() < duration {
        for _ in 0..1000 {
            vm.run_into(prog, Input::Xdp(packet, XdpFields::default()), &mut out)?;
            instructions += out.instructions;
        }
        runs += 1000;
    }
    let return_value = out.return_value;
    let elapsed = start.elapsed();
    Ok(BenchResult {
        runs,
        instructions,
        elapsed,
        instructions_per_second: instructions as f64 / elapsed.as_secs_f64(),
        return_value,
    })
}

/// What [`bench_interpreter`] measured.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchResult {
    /// Program runs.
    pub runs: u64,
    /// Instructions executed in all.
    pub instructions: u64,
    /// Wall-clock time.
    pub elapsed: Duration,
    /// `instructions / elapsed`.
    pub instructions_per_second: f64,
    /// The last run's return value.
    pub return_value: u64,
}

/// The examples of `docs/interpreter.md`, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../../docs/interpreter.md")]
struct InterpreterDoc;
