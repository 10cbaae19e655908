//! The raw-syscall floor that `cargo xtask bench` measures the library against. Not an API.
//!
//! Each type here does what a careful C programmer would write by hand: `bpf(2)` through
//! `libc::syscall` with the attribute and every buffer allocated once, at construction, and the
//! smallest attribute size the command needs (libbpf's `offsetofend`), no size check, no
//! allocation and no error value in the hot loop (a failed call is a `false`). The rings are read
//! with plain pointer arithmetic over the mmap'd pages. Compiled only with the `floor` feature.
//!
//! Why this is sound without checks in the loops: every buffer the kernel reads or writes is
//! owned by the floor object and sized from the map's own key and value sizes, read from the
//! kernel (`BPF_OBJ_GET_INFO_BY_FD`) when the object is built; the fd is borrowed for the
//! object's lifetime, so the map cannot change under it. The rings follow the same protocol and
//! memory ordering as [`crate::mmap`] (Acquire on the producer position and on ring buffer
//! headers, Release on the consumer position); only the safety checks are left out.
//!
//! [`pin_current_thread`] is here too: the benchmark pins its producer and consumer threads.
#![allow(
    missing_docs,
    reason = "hidden benchmark support, documented at the module level"
)]

use std::ffi::{c_long, CStr};
use std::io;
use std::mem::offset_of;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::ptr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::map::{MapCreateAttr, MapFd};
use crate::uapi::{self, bpf_attr, bpf_insn};
use crate::{ProgramType, SysError};

/// Pins the calling thread to `cpu` (`sched_setaffinity(0, ...)`).
pub fn pin_current_thread(cpu: u32) -> io::Result<()> {
    let cpu = cpu as usize;
    // SAFETY: `cpu_set_t` is a plain bit array; all zeroes is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    if cpu >= 8 * size_of::<libc::cpu_set_t>() {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    // SAFETY: `cpu` is below the set's capacity in bits (checked above).
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: `set` is a valid, initialised `cpu_set_t` and we pass its exact size; pid 0 is the
    // calling thread.
    let r = unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// libbpf's attribute size for the element commands: up to the end of `flags` (32).
pub const ELEM_ATTR_SIZE: usize = crate::bpf::ELEM_ATTR_SIZE;
/// libbpf's attribute size for the batch commands: up to the end of `batch.flags` (56).
pub const BATCH_ATTR_SIZE: usize = crate::map_batch::BATCH_ATTR_SIZE;
/// The attribute size for `BPF_MAP_CREATE` and `BPF_PROG_LOAD`: the whole union (both commands
/// read fields up to near its end on current kernels).
pub const FULL_ATTR_SIZE: usize = size_of::<bpf_attr>();

fn addr<T>(p: *const T) -> u64 {
    p as usize as u64
}

/// Raw element commands on one map: a key, a value and a next-key buffer of the map's sizes,
/// and one prebuilt attribute per command shape.
pub struct ElemFloor<'fd> {
    fd: BorrowedFd<'fd>,
    key: Box<[u8]>,
    next: Box<[u8]>,
    value: Box<[u8]>,
    elem: bpf_attr,
    next_attr: bpf_attr,
    /// Key only: `BPF_MAP_DELETE_ELEM` refuses a non-zero value pointer (`CHECK_ATTR`).
    del: bpf_attr,
    /// The attribute size passed to the kernel ([`ELEM_ATTR_SIZE`] by default).
    pub attr_size: usize,
}

impl<'fd> ElemFloor<'fd> {
    /// Reads the map's key size and value length from the kernel and allocates the buffers.
    pub fn new(fd: BorrowedFd<'fd>) -> Result<Self, SysError> {
        let layout = *MapFd::new(fd)?.layout();
        let mut f = ElemFloor {
            fd,
            key: vec![0u8; layout.key_size as usize].into_boxed_slice(),
            next: vec![0u8; layout.key_size as usize].into_boxed_slice(),
            value: vec![0u8; layout.value_len].into_boxed_slice(),
            elem: bpf_attr::default(),
            next_attr: bpf_attr::default(),
            del: bpf_attr::default(),
            attr_size: ELEM_ATTR_SIZE,
        };
        let map_fd = fd.as_raw_fd() as u32;
        f.elem.__bindgen_anon_2.map_fd = map_fd;
        f.elem.__bindgen_anon_2.key = addr(f.key.as_ptr());
        f.elem.__bindgen_anon_2.__bindgen_anon_1.value = addr(f.value.as_ptr());
        f.del.__bindgen_anon_2.map_fd = map_fd;
        f.del.__bindgen_anon_2.key = addr(f.key.as_ptr());
        f.next_attr.__bindgen_anon_2.map_fd = map_fd;
        f.next_attr.__bindgen_anon_2.key = addr(f.key.as_ptr());
        f.next_attr.__bindgen_anon_2.__bindgen_anon_1.next_key = addr(f.next.as_ptr());
        Ok(f)
    }

    /// The map fd.
    pub fn fd(&self) -> BorrowedFd<'fd> {
        self.fd
    }

    /// The key buffer (key size bytes).
    #[inline]
    pub fn key_mut(&mut self) -> &mut [u8] {
        &mut self.key
    }

    /// The value buffer (value length bytes: one padded slot per possible CPU for per-CPU maps).
    #[inline]
    pub fn value(&self) -> &[u8] {
        &self.value
    }

    /// The value buffer, to write before [`update`](Self::update).
    #[inline]
    pub fn value_mut(&mut self) -> &mut [u8] {
        &mut self.value
    }

    /// The key [`next_key`](Self::next_key) wrote.
    #[inline]
    pub fn next(&self) -> &[u8] {
        &self.next
    }

    /// Copies the next-key buffer into the key buffer (to walk on).
    #[inline]
    pub fn advance(&mut self) {
        self.key.copy_from_slice(&self.next);
    }

    #[inline]
    fn call(&mut self, cmd: u32) -> bool {
        let attr: *mut bpf_attr = match cmd {
            uapi::BPF_MAP_GET_NEXT_KEY => &mut self.next_attr,
            uapi::BPF_MAP_DELETE_ELEM => &mut self.del,
            _ => &mut self.elem,
        };
        let size = self.attr_size.min(FULL_ATTR_SIZE);
        // SAFETY: the attribute points at `self.key` (key size bytes, read), `self.value` (value
        // length bytes, read or written) and `self.next` (key size bytes, written), all owned by
        // `self`, allocated with the sizes the kernel reported for this map (whose fd `self`
        // borrows, so it cannot change), and alive and not otherwise borrowed during the call
        // (`&mut self`). `size` is at most the union's size.
        let r: c_long = unsafe { libc::syscall(libc::SYS_bpf, cmd as c_long, attr, size) };
        r >= 0
    }

    /// `BPF_MAP_LOOKUP_ELEM` of the key buffer into the value buffer.
    #[inline]
    pub fn lookup(&mut self) -> bool {
        self.elem.__bindgen_anon_2.flags = 0;
        self.call(uapi::BPF_MAP_LOOKUP_ELEM)
    }

    /// `BPF_MAP_UPDATE_ELEM` of the key buffer to the value buffer.
    #[inline]
    pub fn update(&mut self, flags: u64) -> bool {
        self.elem.__bindgen_anon_2.flags = flags;
        self.call(uapi::BPF_MAP_UPDATE_ELEM)
    }

    /// `BPF_MAP_DELETE_ELEM` of the key buffer.
    #[inline]
    pub fn delete(&mut self) -> bool {
        self.call(uapi::BPF_MAP_DELETE_ELEM)
    }

    /// `BPF_MAP_GET_NEXT_KEY` after the key buffer (`first`: from the start) into the next-key
    /// buffer; `false` at the end.
    #[inline]
    pub fn next_key(&mut self, first: bool) -> bool {
        self.next_attr.__bindgen_anon_2.key = if first { 0 } else { addr(self.key.as_ptr()) };
        self.call(uapi::BPF_MAP_GET_NEXT_KEY)
    }
}

/// Raw `BPF_MAP_LOOKUP_BATCH` over one map with buffers for `count` elements.
pub struct BatchFloor<'fd> {
    fd: BorrowedFd<'fd>,
    keys: Box<[u8]>,
    values: Box<[u8]>,
    /// Two cursor tokens, used alternately as in and out.
    tokens: [Box<[u8]>; 2],
    out: usize,
    first: bool,
    count: u32,
    key_size: usize,
    value_len: usize,
    attr: bpf_attr,
}

impl<'fd> BatchFloor<'fd> {
    /// Buffers for `count` elements of the map's sizes (read from the kernel).
    pub fn new(fd: BorrowedFd<'fd>, count: u32) -> Result<Self, SysError> {
        let layout = *MapFd::new(fd)?.layout();
        let token = layout.batch_token_size();
        Ok(BatchFloor {
            fd,
            keys: vec![0u8; count as usize * layout.key_size as usize].into_boxed_slice(),
            values: vec![0u8; count as usize * layout.value_len].into_boxed_slice(),
            tokens: [
                vec![0u8; token].into_boxed_slice(),
                vec![0u8; token].into_boxed_slice(),
            ],
            out: 0,
            first: true,
            count,
            key_size: layout.key_size as usize,
            value_len: layout.value_len,
            attr: bpf_attr::default(),
        })
    }

    /// Back to the start of the map.
    pub fn reset(&mut self) {
        self.first = true;
    }

    /// The next batch: `Some((count, done))`, where `done` means the kernel said `ENOENT` (the
    /// last batch, maybe with elements); `None` on any other error.
    #[inline]
    pub fn next_batch(&mut self) -> Option<(u32, bool)> {
        let (a, b) = self.tokens.split_at_mut(1);
        let (out, inp) = if self.out == 0 {
            (&mut a[0], &b[0])
        } else {
            (&mut b[0], &a[0])
        };
        self.attr.batch.map_fd = self.fd.as_raw_fd() as u32;
        self.attr.batch.in_batch = if self.first { 0 } else { addr(inp.as_ptr()) };
        self.attr.batch.out_batch = addr(out.as_mut_ptr());
        self.attr.batch.keys = addr(self.keys.as_mut_ptr());
        self.attr.batch.values = addr(self.values.as_mut_ptr());
        self.attr.batch.count = self.count;
        // SAFETY: the kernel reads the in token and writes the out token (each batch token size
        // bytes), and writes at most `count` keys and values into buffers allocated for `count`
        // elements of the map's own sizes; all are owned by `self` and exclusively borrowed for
        // the call. The attribute size covers exactly the batch member.
        let r: c_long = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                uapi::BPF_MAP_LOOKUP_BATCH as c_long,
                &mut self.attr as *mut bpf_attr,
                BATCH_ATTR_SIZE,
            )
        };
        // SAFETY: reading the plain-integer batch member the kernel filled.
        let n = unsafe { self.attr.batch.count };
        self.first = false;
        self.out ^= 1;
        if r >= 0 {
            Some((n, false))
        } else if io::Error::last_os_error().raw_os_error() == Some(libc::ENOENT) {
            Some((n, true))
        } else {
            None
        }
    }

    /// The key of element `i` of the last batch.
    #[inline]
    pub fn key(&self, i: usize) -> &[u8] {
        &self.keys[i * self.key_size..(i + 1) * self.key_size]
    }

    /// The value of element `i` of the last batch.
    #[inline]
    pub fn value(&self, i: usize) -> &[u8] {
        &self.values[i * self.value_len..(i + 1) * self.value_len]
    }
}

/// A raw mapping; unmapped on drop.
#[derive(Debug)]
struct Mapping {
    ptr: *mut u8,
    len: usize,
}

impl Mapping {
    fn new(fd: BorrowedFd<'_>, len: usize, offset: usize, write: bool) -> io::Result<Self> {
        let prot = if write {
            libc::PROT_READ | libc::PROT_WRITE
        } else {
            libc::PROT_READ
        };
        // SAFETY: a fresh shared mapping chosen by the kernel (null hint); nothing aliases it yet.
        let p = unsafe {
            libc::mmap(
                ptr::null_mut(),
                len,
                prot,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                offset as libc::off_t,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Mapping { ptr: p.cast(), len })
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly what mmap returned, unmapped once here.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

/// The hand-written perf ring reader: head with Acquire, records walked in place (a record that
/// wraps is copied into a scratch buffer, as libbpf does), tail stored with Release once per
/// drain.
#[derive(Debug)]
pub struct PerfRingFloor {
    map: Mapping,
    data: *const u8,
    size: u64,
    tail: u64,
    scratch: Box<[u8]>,
}

impl PerfRingFloor {
    /// Maps the ring of perf event `fd` with `pages` data pages (a power of two).
    pub fn new(fd: BorrowedFd<'_>, pages: usize) -> io::Result<Self> {
        let ps = crate::mmap::page_size();
        if !pages.is_power_of_two() {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        let map = Mapping::new(fd, (pages + 1) * ps, 0, true)?;
        // SAFETY: the data pages start one page into the mapping of `pages + 1` pages.
        let data = unsafe { map.ptr.add(ps) };
        let size = (pages * ps) as u64;
        let mut r = PerfRingFloor {
            map,
            data,
            size,
            tail: 0,
            scratch: vec![0u8; 1 << 16].into_boxed_slice(),
        };
        r.tail = r.tail_atomic().load(Ordering::Relaxed);
        Ok(r)
    }

    fn head_atomic(&self) -> &AtomicU64 {
        // SAFETY: `data_head` is 8-aligned inside the mapped metadata page, which lives as long
        // as `self`; the kernel writes it with WRITE_ONCE, we only load it atomically.
        unsafe {
            &*self
                .map
                .ptr
                .add(offset_of!(uapi::perf_event_mmap_page, data_head))
                .cast::<AtomicU64>()
        }
    }

    fn tail_atomic(&self) -> &AtomicU64 {
        // SAFETY: as for `head_atomic`, for `data_tail`, which the kernel only reads.
        unsafe {
            &*self
                .map
                .ptr
                .add(offset_of!(uapi::perf_event_mmap_page, data_tail))
                .cast::<AtomicU64>()
        }
    }

    /// Hands every sample's raw bytes to `f`; returns (samples, lost).
    #[inline]
    pub fn drain(&mut self, mut f: impl FnMut(&[u8])) -> (u64, u64) {
        let head = self.head_atomic().load(Ordering::Acquire);
        let mask = self.size - 1;
        let mut tail = self.tail;
        let (mut samples, mut lost) = (0u64, 0u64);
        // A head more than a ring ahead is not the kernel's: read nothing.
        if head.wrapping_sub(tail) > self.size {
            return (0, 0);
        }
        while tail != head {
            let off = (tail & mask) as usize;
            // SAFETY: records are 8-aligned and the ring a multiple of 8, so the 8-byte header at
            // `off < size` lies inside the data area; the kernel wrote it before its release of
            // `data_head`, observed above, and does not rewrite it before the tail passes it.
            let (ty, rec_size) = unsafe {
                let h = self.data.add(off);
                (
                    ptr::read(h.cast::<u32>()),
                    ptr::read_unaligned(h.add(6).cast::<u16>()) as usize,
                )
            };
            if rec_size < 8 || (rec_size as u64) > head.wrapping_sub(tail) {
                break;
            }
            let rec: &[u8] = if off + rec_size <= self.size as usize {
                // SAFETY: the record `[off, off + rec_size)` lies inside the data area and between
                // tail and head (checked above): written, published and not reused before the
                // tail moves, which only this `&mut self` method does, after `rec` is dropped.
                unsafe { std::slice::from_raw_parts(self.data.add(off), rec_size) }
            } else {
                let first = self.size as usize - off;
                if rec_size > self.scratch.len() {
                    break;
                }
                // SAFETY: the two pieces `[off, size)` and `[0, rec_size - first)` lie inside the
                // data area and between tail and head (as above); `scratch` holds `rec_size`
                // bytes (checked) and does not overlap the mapping.
                unsafe {
                    ptr::copy_nonoverlapping(self.data.add(off), self.scratch.as_mut_ptr(), first);
                    ptr::copy_nonoverlapping(
                        self.data,
                        self.scratch.as_mut_ptr().add(first),
                        rec_size - first,
                    );
                }
                &self.scratch[..rec_size]
            };
            if ty == uapi::PERF_RECORD_SAMPLE && rec_size >= 12 {
                let raw = u32::from_ne_bytes([rec[8], rec[9], rec[10], rec[11]]) as usize;
                f(&rec[12..(12 + raw).min(rec_size)]);
                samples += 1;
            } else if ty == uapi::PERF_RECORD_LOST && rec_size >= 24 {
                lost += u64::from_ne_bytes(rec[16..24].try_into().unwrap_or([0; 8]));
            }
            tail = tail.wrapping_add(rec_size as u64);
        }
        self.tail_atomic().store(tail, Ordering::Release);
        self.tail = tail;
        (samples, lost)
    }
}

/// The hand-written BPF ring buffer reader: producer position with Acquire, each header with
/// Acquire, samples in place (the data pages are mapped twice), consumer position stored with
/// Release once per drain.
#[derive(Debug)]
pub struct RingBufFloor {
    consumer: Mapping,
    producer: Mapping,
    data: *const u8,
    size: u64,
    cons: u64,
}

impl RingBufFloor {
    /// Maps ring buffer map `fd` of `size` bytes (its `max_entries`).
    pub fn new(fd: BorrowedFd<'_>, size: usize) -> io::Result<Self> {
        let ps = crate::mmap::page_size();
        if !size.is_power_of_two() || size % ps != 0 {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        let consumer = Mapping::new(fd, ps, 0, true)?;
        let producer = Mapping::new(fd, ps + 2 * size, ps, false)?;
        // SAFETY: the data pages start one page into the producer mapping.
        let data = unsafe { producer.ptr.add(ps) };
        let mut r = RingBufFloor {
            consumer,
            producer,
            data,
            size: size as u64,
            cons: 0,
        };
        r.cons = r.cons_atomic().load(Ordering::Relaxed);
        Ok(r)
    }

    fn cons_atomic(&self) -> &AtomicU64 {
        // SAFETY: `consumer_pos` is at the start of the page-aligned consumer page, mapped for as
        // long as `self`; the kernel only reads it.
        unsafe { &*self.consumer.ptr.cast::<AtomicU64>() }
    }

    fn prod_atomic(&self) -> &AtomicU64 {
        // SAFETY: `producer_pos` is at the start of the page-aligned producer page; the kernel
        // writes it with smp_store_release, we only load it.
        unsafe { &*self.producer.ptr.cast::<AtomicU64>() }
    }

    /// Hands every committed sample to `f`, skips discarded ones, stops at a busy one; returns
    /// the samples.
    #[inline]
    pub fn drain(&mut self, mut f: impl FnMut(&[u8])) -> u64 {
        let prod = self.prod_atomic().load(Ordering::Acquire);
        let mask = self.size - 1;
        let mut cons = self.cons;
        let mut samples = 0;
        if prod.wrapping_sub(cons) > self.size {
            return 0;
        }
        while cons != prod {
            let off = (cons & mask) as usize;
            // SAFETY: `off < size` and 8-aligned: the length word lies in the data area; the
            // kernel writes it only atomically (store at reserve, xchg at commit).
            let word = unsafe { &*self.data.add(off).cast::<AtomicU32>() }.load(Ordering::Acquire);
            if word & uapi::BPF_RINGBUF_BUSY_BIT != 0 {
                break;
            }
            let len = (word & !(uapi::BPF_RINGBUF_BUSY_BIT | uapi::BPF_RINGBUF_DISCARD_BIT)) as u64;
            let total = (len + uapi::BPF_RINGBUF_HDR_SZ as u64 + 7) & !7;
            if total > prod.wrapping_sub(cons) {
                break;
            }
            if word & uapi::BPF_RINGBUF_DISCARD_BIT == 0 {
                // SAFETY: the sample `[off + 8, off + 8 + len)` ends before `2 * size` (it lies
                // between consumer and producer, `total <= size`), inside the double mapping; it is
                // committed (Acquire load of its header) and not reused before the consumer
                // position passes it, which only this `&mut self` method does after `f` returns.
                let s = unsafe {
                    std::slice::from_raw_parts(
                        self.data.add(off + uapi::BPF_RINGBUF_HDR_SZ as usize),
                        len as usize,
                    )
                };
                f(s);
                samples += 1;
            }
            cons = cons.wrapping_add(total);
        }
        self.cons_atomic().store(cons, Ordering::Release);
        self.cons = cons;
        samples
    }
}

/// One program of an [`ObjectFloor`].
struct ProgFloor {
    insns: Vec<bpf_insn>,
    /// (instruction index, map index) of each `BPF_PSEUDO_MAP_FD` load.
    refs: Vec<(usize, usize)>,
    /// `struct bpf_func_info` and `struct bpf_line_info` records, read by the kernel through
    /// `attr` when the object has BTF.
    func_info: Box<[u8]>,
    line_info: Box<[u8]>,
    attr: bpf_attr,
}

/// `struct bpf_func_info`'s size.
pub const FUNC_INFO_REC_SIZE: usize = 8;
/// `struct bpf_line_info`'s size.
pub const LINE_INFO_REC_SIZE: usize = 16;

/// What [`ObjectFloor::new`] takes for one program.
#[derive(Debug)]
pub struct ProgInput<'a> {
    /// The program type.
    pub prog_type: ProgramType,
    /// The name.
    pub name: &'a str,
    /// The instructions as the ELF holds them (8 bytes each, native byte order).
    pub insn_bytes: &'a [u8],
    /// (instruction index, map index) of each map fd load.
    pub map_refs: Vec<(usize, usize)>,
    /// The program's `struct bpf_func_info` records ([`FUNC_INFO_REC_SIZE`] bytes each, host
    /// order), passed with the object's BTF ([`ObjectFloor::with_btf`]); empty for none.
    pub func_info: &'a [u8],
    /// The program's `struct bpf_line_info` records ([`LINE_INFO_REC_SIZE`] bytes each).
    pub line_info: &'a [u8],
}

/// Raw `BPF_MAP_CREATE` of every map and `BPF_PROG_LOAD` of every program with the map fds
/// written into their instructions, then close: an object's load with nothing else.
///
/// With [`ObjectFloor::with_file`] each run first reads the object file (into a buffer kept
/// between runs); with [`ObjectFloor::with_btf`] it loads the object's BTF (`BPF_BTF_LOAD`) and
/// passes it with each program's func_info and line_info, as a loader does. Parsing is left
/// out: the floor's instructions and records come from a parse done once, before.
pub struct ObjectFloor {
    maps: Vec<bpf_attr>,
    /// Whether each map names BTF key/value types: its attribute then gets the fd of the
    /// object's BTF, loaded anew at each run.
    map_btf: Vec<bool>,
    progs: Vec<ProgFloor>,
    /// Read by the kernel through the programs' attributes.
    _license: Box<CStr>,
    fds: Vec<RawFd>,
    /// The object's BTF, read by the kernel through `btf_attr`.
    btf: Option<Box<[u8]>>,
    btf_attr: bpf_attr,
    file: Option<std::path::PathBuf>,
    file_buf: Vec<u8>,
}

impl ObjectFloor {
    /// Prepares the attributes and instruction copies once.
    pub fn new(maps: &[MapCreateAttr<'_>], progs: Vec<ProgInput<'_>>, license: &CStr) -> Self {
        let license: Box<CStr> = license.into();
        let progs = progs
            .into_iter()
            .map(|p| {
                let insns: Vec<bpf_insn> = p
                    .insn_bytes
                    .chunks_exact(8)
                    .map(|c| {
                        crate::prog::insn(
                            c[0],
                            c[1] & 0xf,
                            c[1] >> 4,
                            i16::from_ne_bytes([c[2], c[3]]),
                            i32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
                        )
                    })
                    .collect();
                let mut attr = bpf_attr::default();
                attr.__bindgen_anon_3.prog_type = p.prog_type.as_u32();
                attr.__bindgen_anon_3.insn_cnt = insns.len() as u32;
                attr.__bindgen_anon_3.insns = addr(insns.as_ptr());
                attr.__bindgen_anon_3.license = addr(license.as_ptr());
                attr.__bindgen_anon_3.prog_name = crate::bpf::object_name(p.name);
                let refs = p
                    .map_refs
                    .into_iter()
                    .filter(|&(i, m)| i < insns.len() && m < maps.len())
                    .collect();
                ProgFloor {
                    insns,
                    refs,
                    func_info: p.func_info.into(),
                    line_info: p.line_info.into(),
                    attr,
                }
            })
            .collect();
        ObjectFloor {
            maps: maps.iter().map(MapCreateAttr::to_attr).collect(),
            map_btf: maps
                .iter()
                .map(|m| m.btf_key_type_id != 0 || m.btf_value_type_id != 0)
                .collect(),
            fds: Vec::with_capacity(maps.len() + 8),
            progs,
            _license: license,
            btf: None,
            btf_attr: bpf_attr::default(),
            file: None,
            file_buf: Vec::new(),
        }
    }

    /// Loads `btf` (the object's BTF as the loader sends it) at each run and passes it, with
    /// each program's func_info and line_info, to `BPF_PROG_LOAD`.
    pub fn with_btf(mut self, btf: &[u8]) -> Self {
        let btf: Box<[u8]> = btf.into();
        self.btf_attr = bpf_attr::default();
        self.btf_attr.__bindgen_anon_7.btf = addr(btf.as_ptr());
        self.btf_attr.__bindgen_anon_7.btf_size = btf.len() as u32;
        self.btf = Some(btf);
        for p in &mut self.progs {
            if !p.func_info.is_empty() {
                p.attr.__bindgen_anon_3.func_info_rec_size = FUNC_INFO_REC_SIZE as u32;
                p.attr.__bindgen_anon_3.func_info = addr(p.func_info.as_ptr());
                p.attr.__bindgen_anon_3.func_info_cnt =
                    (p.func_info.len() / FUNC_INFO_REC_SIZE) as u32;
            }
            if !p.line_info.is_empty() {
                p.attr.__bindgen_anon_3.line_info_rec_size = LINE_INFO_REC_SIZE as u32;
                p.attr.__bindgen_anon_3.line_info = addr(p.line_info.as_ptr());
                p.attr.__bindgen_anon_3.line_info_cnt =
                    (p.line_info.len() / LINE_INFO_REC_SIZE) as u32;
            }
        }
        self
    }

    /// Reads the file at `path` (open, read to the end, close) at the start of each run, as a
    /// loader opening an object from a path does; the bytes are not parsed.
    pub fn with_file(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.file = Some(path.into());
        self
    }

    /// The system calls of `std::fs::read` (what the loader uses): open, `statx` for the size,
    /// reads until the size is reached, a short read to see the end, close. (`read_to_end` on
    /// a `File` would add an `lseek`.) Only the buffer is kept between runs.
    fn read_file(&mut self) -> bool {
        use std::io::Read;
        let Some(path) = &self.file else {
            return true;
        };
        let buf = &mut self.file_buf;
        let mut read = || -> io::Result<()> {
            let mut f = std::fs::File::open(path)?;
            let size = f.metadata()?.len() as usize;
            // Kept at the last run's length, so the bytes are not zeroed again each run.
            if buf.len() != size {
                buf.resize(size, 0);
            }
            let mut done = 0;
            while done < size {
                match f.read(&mut buf[done..])? {
                    0 => break,
                    n => done += n,
                }
            }
            buf.truncate(done);
            let mut probe = [0u8; 32];
            match f.read(&mut probe)? {
                0 => Ok(()),
                _ => Err(io::Error::other("the file grew while it was read")),
            }
        };
        read().is_ok()
    }

    fn load_btf(&mut self) -> Option<Option<RawFd>> {
        if self.btf.is_none() {
            return Some(None);
        }
        // SAFETY: the BTF_LOAD attribute points at `self.btf` (`btf_size` bytes), owned by
        // `self` and alive for the call; no log buffer. The result is a new fd.
        let r = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                uapi::BPF_BTF_LOAD as c_long,
                &mut self.btf_attr as *mut bpf_attr,
                FULL_ATTR_SIZE,
            )
        };
        (r >= 0).then_some(Some(r as RawFd))
    }

    /// Creates the maps, loads the programs, closes everything. `false` if a call failed.
    pub fn run(&mut self) -> bool {
        self.fds.clear();
        if !self.read_file() {
            return false;
        }
        let Some(btf_fd) = self.load_btf() else {
            return false;
        };
        if let Some(fd) = btf_fd {
            self.fds.push(fd);
        }
        let mut ok = true;
        for (attr, &uses_btf) in self.maps.iter_mut().zip(&self.map_btf) {
            if let (Some(fd), true) = (btf_fd, uses_btf) {
                attr.__bindgen_anon_1.btf_fd = fd as u32;
            }
            // SAFETY: a MAP_CREATE attribute holds no pointers; the result is a new fd.
            let r = unsafe {
                libc::syscall(
                    libc::SYS_bpf,
                    uapi::BPF_MAP_CREATE as c_long,
                    attr as *mut bpf_attr,
                    FULL_ATTR_SIZE,
                )
            };
            if r < 0 {
                ok = false;
                break;
            }
            self.fds.push(r as RawFd);
        }
        let first_map = usize::from(btf_fd.is_some());
        let nmaps = self.fds.len() - first_map;
        if ok {
            for p in &mut self.progs {
                for &(i, m) in &p.refs {
                    if m >= nmaps {
                        continue;
                    }
                    p.insns[i].set_src_reg(uapi::BPF_PSEUDO_MAP_FD as u8);
                    p.insns[i].imm = self.fds[first_map + m];
                }
                if let Some(fd) = btf_fd {
                    p.attr.__bindgen_anon_3.prog_btf_fd = fd as u32;
                }
                // SAFETY: the attribute points at `p.insns` (`insn_cnt` instructions), the
                // license (NUL-terminated) and, with BTF, `p.func_info` and `p.line_info`
                // (`*_cnt` records of `*_rec_size` bytes), all owned by `self` and alive for the
                // call; no log.
                let r = unsafe {
                    libc::syscall(
                        libc::SYS_bpf,
                        uapi::BPF_PROG_LOAD as c_long,
                        &mut p.attr as *mut bpf_attr,
                        FULL_ATTR_SIZE,
                    )
                };
                if r < 0 {
                    ok = false;
                    break;
                }
                self.fds.push(r as RawFd);
            }
        }
        for fd in self.fds.drain(..) {
            // SAFETY: each fd was just returned by the kernel to us and is owned by nothing else.
            drop(unsafe { OwnedFd::from_raw_fd(fd) });
        }
        ok
    }
}

macro_rules! opaque_debug {
    ($($t:ty),*) => {$(
        impl std::fmt::Debug for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($t)).finish_non_exhaustive()
            }
        }
    )*};
}
opaque_debug!(ElemFloor<'_>, BatchFloor<'_>, ProgFloor, ObjectFloor);
