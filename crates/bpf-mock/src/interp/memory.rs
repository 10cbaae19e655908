//! Memory regions and checked loads and stores.
//!
//! An address is `(region index + 1) << 32 | offset`: a region is found with one shift, and an
//! offset that strays below 0 or past 4 GiB lands in no region. Map handles and function pointers
//! live far above every region ([`MAP_BASE`], [`FUNC_BASE`]) so a load through them fails too.

use super::{PerfRecord, Redirect, RingbufRecord, MAX_CALL_FRAMES, STACK_FRAME};

/// Region index of the context.
pub(crate) const CTX: usize = 0;
/// Region index of the packet (empty for programs without one).
pub(crate) const PACKET: usize = 1;
/// Region index of the stack (all frames).
pub(crate) const STACK: usize = 2;
/// Region index of the first global-data region.
pub(crate) const FIRST_GLOBAL: usize = 3;
/// Bytes of the stack region.
pub(crate) const STACK_SIZE: usize = STACK_FRAME * (MAX_CALL_FRAMES + 1);

/// `ld_imm64` of a map: `MAP_BASE | map index`.
pub(crate) const MAP_BASE: u64 = 0xf000_0000_0000_0000;
/// `ld_imm64` of a function: `FUNC_BASE | instruction index`.
pub(crate) const FUNC_BASE: u64 = 0xe000_0000_0000_0000;
const TAG_MASK: u64 = 0xff00_0000_0000_0000;

/// The address of `offset` in region `id`.
#[inline(always)]
pub(crate) fn addr(id: usize, offset: usize) -> u64 {
    ((id as u64 + 1) << 32) | offset as u64
}

/// The map index of a map handle.
pub(crate) fn map_index(handle: u64) -> Option<usize> {
    (handle & TAG_MASK == MAP_BASE).then_some((handle & !TAG_MASK) as usize)
}

/// The instruction index of a function pointer.
pub(crate) fn func_index(ptr: u64) -> Option<usize> {
    (ptr & TAG_MASK == FUNC_BASE).then_some((ptr & !TAG_MASK) as usize)
}

/// What a region is; the context needs its loads and stores translated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Plain bytes (stack, packet, tracepoint and kprobe context).
    Plain,
    /// An `xdp_md` or `__sk_buff`: loads of data pointers are rewritten as the kernel does.
    Ctx,
    /// A copy of a map value: `map`, the key, and for per-CPU maps the CPU slot.
    Value { map: usize },
    /// A reserved ring buffer record of map `map`.
    Ringbuf { map: usize },
    /// Gone (a submitted or discarded ring buffer record).
    Dead,
}

/// One region of memory.
#[derive(Debug, Clone)]
pub(crate) struct Region {
    pub(crate) data: Vec<u8>,
    /// Accessible bytes are `lo..hi`.
    pub(crate) lo: usize,
    pub(crate) hi: usize,
    pub(crate) kind: Kind,
    pub(crate) writable: bool,
    /// Written since the last write-back (map values) or at all.
    pub(crate) dirty: bool,
    /// Map value regions: the key.
    pub(crate) key: Vec<u8>,
}

impl Region {
    pub(crate) fn new(data: Vec<u8>, kind: Kind, writable: bool) -> Self {
        let hi = data.len();
        Region {
            data,
            lo: 0,
            hi,
            kind,
            writable,
            dirty: false,
            key: Vec::new(),
        }
    }

    fn empty() -> Self {
        Region::new(Vec::new(), Kind::Plain, false)
    }
}

/// Why an access failed (the caller adds the program and instruction).
#[derive(Debug, Clone)]
pub(crate) struct Fault {
    pub(crate) addr: u64,
    pub(crate) size: usize,
    pub(crate) write: bool,
    pub(crate) reason: String,
}

/// The XDP packet's pointers, as offsets in the packet region.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct XdpPtrs {
    pub(crate) meta: usize,
    pub(crate) data: usize,
    pub(crate) end: usize,
    /// One past the last byte the tail may grow to.
    pub(crate) hard_end: usize,
}

/// A caller's state saved by a bpf-to-bpf call.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Frame {
    pub(crate) prog: usize,
    pub(crate) ret_pc: usize,
    pub(crate) saved: [u64; 4],
    pub(crate) fp: u64,
}

/// The state of one run, kept between runs to reuse its buffers.
#[derive(Debug)]
pub(crate) struct RunState {
    pub(crate) regions: Vec<Region>,
    /// How the context is laid out.
    pub(crate) ctx: CtxKind,
    pub(crate) xdp: XdpPtrs,
    pub(crate) trace: Vec<String>,
    pub(crate) perf: Vec<PerfRecord>,
    pub(crate) ringbuf: Vec<RingbufRecord>,
    pub(crate) redirects: Vec<Redirect>,
    pub(crate) steps: u64,
    pub(crate) tail_calls: u32,
    /// Frames in use (the program's own is frame 0).
    pub(crate) depth: usize,
    /// Callers' saved state, innermost last.
    pub(crate) frames: Vec<Frame>,
    /// Bytes of the packet buffer the last run may have written (zeroed before the next).
    pub(crate) touched: (usize, usize),
    /// A reusable buffer for whole map values.
    pub(crate) scratch: Vec<u8>,
    /// A reusable buffer for keys.
    pub(crate) key_scratch: Vec<u8>,
}

/// The context's layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CtxKind {
    /// `xdp_md` over the packet region.
    Xdp,
    /// `__sk_buff` over the packet region.
    Skb,
    /// Plain bytes.
    Raw,
}

impl Default for RunState {
    fn default() -> Self {
        RunState {
            regions: Vec::new(),
            ctx: CtxKind::Raw,
            xdp: XdpPtrs::default(),
            trace: Vec::new(),
            perf: Vec::new(),
            ringbuf: Vec::new(),
            redirects: Vec::new(),
            steps: 0,
            tail_calls: 0,
            depth: 0,
            frames: Vec::with_capacity(MAX_CALL_FRAMES),
            touched: (0, 0),
            scratch: Vec::new(),
            key_scratch: Vec::new(),
        }
    }
}

impl RunState {
    /// Clears the state for a run with `globals` global regions, keeping the buffers of the
    /// context, packet and stack.
    pub(crate) fn reset(&mut self, globals: usize) {
        while self.regions.len() < FIRST_GLOBAL {
            self.regions.push(Region::empty());
        }
        self.regions.truncate(FIRST_GLOBAL);
        for _ in 0..globals {
            self.regions.push(Region::empty());
        }
        let stack = &mut self.regions[STACK];
        // Each frame is zeroed when entered.
        stack.data.resize(STACK_SIZE, 0);
        stack.lo = 0;
        stack.hi = STACK_SIZE;
        stack.kind = Kind::Plain;
        stack.writable = true;
        self.trace.clear();
        self.perf.clear();
        self.ringbuf.clear();
        self.redirects.clear();
        self.steps = 0;
        self.tail_calls = 0;
        self.depth = 0;
        self.frames.clear();
    }

    /// `r10` of frame `depth`.
    pub(crate) fn frame_pointer(depth: usize) -> u64 {
        addr(STACK, STACK_FRAME * (depth + 1))
    }

    /// Adds a region and returns its index.
    pub(crate) fn push(&mut self, region: Region) -> usize {
        self.regions.push(region);
        self.regions.len() - 1
    }

    /// The region and offset of `[addr, addr + size)`, checked.
    #[inline(always)]
    fn locate(&self, addr: u64, size: usize, write: bool) -> Result<(usize, usize), Fault> {
        let id = ((addr >> 32) as usize).wrapping_sub(1);
        let off = addr as u32 as usize;
        match self.regions.get(id) {
            Some(r) if off >= r.lo && off + size <= r.hi && (!write || r.writable) => Ok((id, off)),
            _ => Err(self.explain(addr, size, write)),
        }
    }

    #[cold]
    fn explain(&self, addr: u64, size: usize, write: bool) -> Fault {
        let id = ((addr >> 32) as usize).wrapping_sub(1);
        let off = addr as u32 as usize;
        let reason = match self.regions.get(id) {
            _ if addr == 0 => "null pointer".to_string(),
            _ if map_index(addr).is_some() => "a map pointer is not memory".to_string(),
            _ if func_index(addr).is_some() => "a function pointer is not memory".to_string(),
            None => "not in any region".to_string(),
            Some(r) if r.kind == Kind::Dead => {
                "the ring buffer record was already submitted or discarded".to_string()
            }
            Some(r) if off < r.lo || off + size > r.hi => format!(
                "outside {} (offset {off}, accessible {}..{})",
                region_name(id, r),
                r.lo,
                r.hi
            ),
            Some(r) => format!("{} is read-only", region_name(id, r)),
        };
        Fault {
            addr,
            size,
            write,
            reason,
        }
    }

    /// Loads `size` (1, 2, 4, 8) bytes, little-endian, zero-extended. Context loads are
    /// translated by the caller; this is for plain regions.
    #[inline(always)]
    pub(crate) fn load(&self, addr: u64, size: usize) -> Result<u64, Fault> {
        let (id, off) = self.locate(addr, size, false)?;
        let r = &self.regions[id];
        if r.kind == Kind::Ctx {
            return Err(Fault {
                addr,
                size,
                write: false,
                reason: "context".to_string(),
            });
        }
        Ok(read_le(&r.data[off..off + size]))
    }

    /// Stores the low `size` bytes of `value`, little-endian.
    #[inline(always)]
    pub(crate) fn store(&mut self, addr: u64, size: usize, value: u64) -> Result<(), Fault> {
        let (id, off) = self.locate(addr, size, true)?;
        let r = &mut self.regions[id];
        if r.kind == Kind::Ctx {
            return Err(Fault {
                addr,
                size,
                write: true,
                reason: "context".to_string(),
            });
        }
        r.dirty = true;
        r.data[off..off + size].copy_from_slice(&value.to_le_bytes()[..size]);
        Ok(())
    }

    /// Whether `addr` is in the context region.
    #[inline(always)]
    pub(crate) fn is_ctx(addr: u64) -> bool {
        (addr >> 32) == CTX as u64 + 1
    }

    /// Reads `len` bytes at `addr` (helpers' memory arguments).
    pub(crate) fn read_bytes(&self, addr: u64, len: usize) -> Result<&[u8], Fault> {
        let (id, off) = self.locate(addr, len, false)?;
        Ok(&self.regions[id].data[off..off + len])
    }

    /// Writes `bytes` at `addr`.
    pub(crate) fn write_bytes(&mut self, addr: u64, bytes: &[u8]) -> Result<(), Fault> {
        let (id, off) = self.locate(addr, bytes.len(), true)?;
        let r = &mut self.regions[id];
        r.dirty = true;
        r.data[off..off + bytes.len()].copy_from_slice(bytes);
        Ok(())
    }

    /// A NUL-terminated string at `addr`, at most `max` bytes (without the NUL).
    pub(crate) fn read_cstr(&self, addr: u64, max: usize) -> Result<Vec<u8>, Fault> {
        let (id, off) = self.locate(addr, 1, false)?;
        let r = &self.regions[id];
        let avail = &r.data[off..r.hi];
        let end = avail
            .iter()
            .take(max)
            .position(|&b| b == 0)
            .unwrap_or(avail.len().min(max));
        Ok(avail[..end].to_vec())
    }
}

fn region_name(id: usize, r: &Region) -> String {
    match (id, r.kind) {
        (CTX, _) => "the context".to_string(),
        (PACKET, _) => "the packet".to_string(),
        (STACK, _) => "the stack".to_string(),
        (_, Kind::Value { .. }) => format!("a map value of {} bytes", r.hi - r.lo),
        (_, Kind::Ringbuf { .. }) => format!("a ring buffer record of {} bytes", r.hi - r.lo),
        _ if id >= FIRST_GLOBAL => format!("global data of {} bytes", r.hi - r.lo),
        _ => "a region".to_string(),
    }
}

/// A little-endian integer of 1 to 8 bytes.
#[inline(always)]
pub(crate) fn read_le(b: &[u8]) -> u64 {
    match b.len() {
        1 => b[0] as u64,
        2 => u16::from_le_bytes([b[0], b[1]]) as u64,
        4 => u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as u64,
        8 => u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]),
        _ => {
            let mut v = [0u8; 8];
            v[..b.len().min(8)].copy_from_slice(&b[..b.len().min(8)]);
            u64::from_le_bytes(v)
        }
    }
}
