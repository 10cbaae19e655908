//! The one chokepoint for the `bpf(2)` system call, and the small pieces every wrapper shares.
//!
//! Every BPF command of this crate goes through [`sys_bpf`]: it takes a typed [`Cmd`], the
//! `bpf_attr` union and the number of its bytes to pass. The safe wrappers live in the modules
//! named after the kernel object they act on ([`crate::map`], [`crate::prog`], [`crate::obj`],
//! [`crate::link`], [`crate::btf`]).
//!
//! How the attribute union is passed: every wrapper starts from an all-zero `bpf_attr`
//! (`bpf_attr::default()` zeroes the whole union), fills in the fields its command reads and
//! passes the full `size_of::<bpf_attr>()`. Older kernels accept a larger attribute as long as
//! the bytes they do not know are zero (`bpf_check_uarg_tail_zero`), and each command's
//! `CHECK_ATTR` wants every field after its last one to be zero, which the zeroed union
//! guarantees. So one layout (the 6.12 UAPI) serves every kernel from 5.10 on.
//!
//! The hot element commands are the exception: they pass an [`ElemAttr`], the 32 bytes of the
//! union up to the end of the element member's `flags` (libbpf's `offsetofend`), built whole
//! on the stack and passed with its own size, so no call zeroes or copies the other 112 bytes.
//! The kernel copies only the `size` bytes it is given and zeroes the rest of its own copy,
//! which is what `CHECK_ATTR` then looks at: the same attribute as far as it can tell.

use std::ffi::{c_long, CString};
use std::mem;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::uapi::{self, bpf_attr};
use crate::SysError;

/// A `bpf(2)` command (`enum bpf_cmd`).
///
/// [`Cmd::name`] is the kernel's name (`BPF_MAP_CREATE`), used as the `call` of every
/// [`SysError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[allow(
    missing_docs,
    reason = "each variant is the kernel command of the same name"
)]
pub enum Cmd {
    #[doc(alias = "BPF_MAP_CREATE")]
    MapCreate,
    #[doc(alias = "BPF_MAP_LOOKUP_ELEM")]
    MapLookupElem,
    #[doc(alias = "BPF_MAP_UPDATE_ELEM")]
    MapUpdateElem,
    #[doc(alias = "BPF_MAP_DELETE_ELEM")]
    MapDeleteElem,
    #[doc(alias = "BPF_MAP_GET_NEXT_KEY")]
    MapGetNextKey,
    #[doc(alias = "BPF_PROG_LOAD")]
    ProgLoad,
    #[doc(alias = "BPF_OBJ_PIN")]
    ObjPin,
    #[doc(alias = "BPF_OBJ_GET")]
    ObjGet,
    #[doc(alias = "BPF_PROG_ATTACH")]
    ProgAttach,
    #[doc(alias = "BPF_PROG_DETACH")]
    ProgDetach,
    #[doc(alias = "BPF_PROG_TEST_RUN")]
    ProgTestRun,
    #[doc(alias = "BPF_PROG_GET_NEXT_ID")]
    ProgGetNextId,
    #[doc(alias = "BPF_MAP_GET_NEXT_ID")]
    MapGetNextId,
    #[doc(alias = "BPF_PROG_GET_FD_BY_ID")]
    ProgGetFdById,
    #[doc(alias = "BPF_MAP_GET_FD_BY_ID")]
    MapGetFdById,
    #[doc(alias = "BPF_OBJ_GET_INFO_BY_FD")]
    ObjGetInfoByFd,
    #[doc(alias = "BPF_PROG_QUERY")]
    ProgQuery,
    #[doc(alias = "BPF_RAW_TRACEPOINT_OPEN")]
    RawTracepointOpen,
    #[doc(alias = "BPF_BTF_LOAD")]
    BtfLoad,
    #[doc(alias = "BPF_BTF_GET_FD_BY_ID")]
    BtfGetFdById,
    #[doc(alias = "BPF_TASK_FD_QUERY")]
    TaskFdQuery,
    #[doc(alias = "BPF_MAP_LOOKUP_AND_DELETE_ELEM")]
    MapLookupAndDeleteElem,
    #[doc(alias = "BPF_MAP_FREEZE")]
    MapFreeze,
    #[doc(alias = "BPF_BTF_GET_NEXT_ID")]
    BtfGetNextId,
    #[doc(alias = "BPF_MAP_LOOKUP_BATCH")]
    MapLookupBatch,
    #[doc(alias = "BPF_MAP_LOOKUP_AND_DELETE_BATCH")]
    MapLookupAndDeleteBatch,
    #[doc(alias = "BPF_MAP_UPDATE_BATCH")]
    MapUpdateBatch,
    #[doc(alias = "BPF_MAP_DELETE_BATCH")]
    MapDeleteBatch,
    #[doc(alias = "BPF_LINK_CREATE")]
    LinkCreate,
    #[doc(alias = "BPF_LINK_UPDATE")]
    LinkUpdate,
    #[doc(alias = "BPF_LINK_GET_FD_BY_ID")]
    LinkGetFdById,
    #[doc(alias = "BPF_LINK_GET_NEXT_ID")]
    LinkGetNextId,
    #[doc(alias = "BPF_ENABLE_STATS")]
    EnableStats,
    #[doc(alias = "BPF_ITER_CREATE")]
    IterCreate,
    #[doc(alias = "BPF_LINK_DETACH")]
    LinkDetach,
    #[doc(alias = "BPF_PROG_BIND_MAP")]
    ProgBindMap,
    #[doc(alias = "BPF_TOKEN_CREATE")]
    TokenCreate,
}

impl Cmd {
    /// The command's number (`BPF_MAP_CREATE` is 0).
    pub const fn raw(self) -> uapi::bpf_cmd {
        match self {
            Cmd::MapCreate => uapi::BPF_MAP_CREATE,
            Cmd::MapLookupElem => uapi::BPF_MAP_LOOKUP_ELEM,
            Cmd::MapUpdateElem => uapi::BPF_MAP_UPDATE_ELEM,
            Cmd::MapDeleteElem => uapi::BPF_MAP_DELETE_ELEM,
            Cmd::MapGetNextKey => uapi::BPF_MAP_GET_NEXT_KEY,
            Cmd::ProgLoad => uapi::BPF_PROG_LOAD,
            Cmd::ObjPin => uapi::BPF_OBJ_PIN,
            Cmd::ObjGet => uapi::BPF_OBJ_GET,
            Cmd::ProgAttach => uapi::BPF_PROG_ATTACH,
            Cmd::ProgDetach => uapi::BPF_PROG_DETACH,
            Cmd::ProgTestRun => uapi::BPF_PROG_TEST_RUN,
            Cmd::ProgGetNextId => uapi::BPF_PROG_GET_NEXT_ID,
            Cmd::MapGetNextId => uapi::BPF_MAP_GET_NEXT_ID,
            Cmd::ProgGetFdById => uapi::BPF_PROG_GET_FD_BY_ID,
            Cmd::MapGetFdById => uapi::BPF_MAP_GET_FD_BY_ID,
            Cmd::ObjGetInfoByFd => uapi::BPF_OBJ_GET_INFO_BY_FD,
            Cmd::ProgQuery => uapi::BPF_PROG_QUERY,
            Cmd::RawTracepointOpen => uapi::BPF_RAW_TRACEPOINT_OPEN,
            Cmd::BtfLoad => uapi::BPF_BTF_LOAD,
            Cmd::BtfGetFdById => uapi::BPF_BTF_GET_FD_BY_ID,
            Cmd::TaskFdQuery => uapi::BPF_TASK_FD_QUERY,
            Cmd::MapLookupAndDeleteElem => uapi::BPF_MAP_LOOKUP_AND_DELETE_ELEM,
            Cmd::MapFreeze => uapi::BPF_MAP_FREEZE,
            Cmd::BtfGetNextId => uapi::BPF_BTF_GET_NEXT_ID,
            Cmd::MapLookupBatch => uapi::BPF_MAP_LOOKUP_BATCH,
            Cmd::MapLookupAndDeleteBatch => uapi::BPF_MAP_LOOKUP_AND_DELETE_BATCH,
            Cmd::MapUpdateBatch => uapi::BPF_MAP_UPDATE_BATCH,
            Cmd::MapDeleteBatch => uapi::BPF_MAP_DELETE_BATCH,
            Cmd::LinkCreate => uapi::BPF_LINK_CREATE,
            Cmd::LinkUpdate => uapi::BPF_LINK_UPDATE,
            Cmd::LinkGetFdById => uapi::BPF_LINK_GET_FD_BY_ID,
            Cmd::LinkGetNextId => uapi::BPF_LINK_GET_NEXT_ID,
            Cmd::EnableStats => uapi::BPF_ENABLE_STATS,
            Cmd::IterCreate => uapi::BPF_ITER_CREATE,
            Cmd::LinkDetach => uapi::BPF_LINK_DETACH,
            Cmd::ProgBindMap => uapi::BPF_PROG_BIND_MAP,
            Cmd::TokenCreate => uapi::BPF_TOKEN_CREATE,
        }
    }

    /// The kernel's name of the command (`BPF_MAP_CREATE`).
    pub const fn name(self) -> &'static str {
        match self {
            Cmd::MapCreate => "BPF_MAP_CREATE",
            Cmd::MapLookupElem => "BPF_MAP_LOOKUP_ELEM",
            Cmd::MapUpdateElem => "BPF_MAP_UPDATE_ELEM",
            Cmd::MapDeleteElem => "BPF_MAP_DELETE_ELEM",
            Cmd::MapGetNextKey => "BPF_MAP_GET_NEXT_KEY",
            Cmd::ProgLoad => "BPF_PROG_LOAD",
            Cmd::ObjPin => "BPF_OBJ_PIN",
            Cmd::ObjGet => "BPF_OBJ_GET",
            Cmd::ProgAttach => "BPF_PROG_ATTACH",
            Cmd::ProgDetach => "BPF_PROG_DETACH",
            Cmd::ProgTestRun => "BPF_PROG_TEST_RUN",
            Cmd::ProgGetNextId => "BPF_PROG_GET_NEXT_ID",
            Cmd::MapGetNextId => "BPF_MAP_GET_NEXT_ID",
            Cmd::ProgGetFdById => "BPF_PROG_GET_FD_BY_ID",
            Cmd::MapGetFdById => "BPF_MAP_GET_FD_BY_ID",
            Cmd::ObjGetInfoByFd => "BPF_OBJ_GET_INFO_BY_FD",
            Cmd::ProgQuery => "BPF_PROG_QUERY",
            Cmd::RawTracepointOpen => "BPF_RAW_TRACEPOINT_OPEN",
            Cmd::BtfLoad => "BPF_BTF_LOAD",
            Cmd::BtfGetFdById => "BPF_BTF_GET_FD_BY_ID",
            Cmd::TaskFdQuery => "BPF_TASK_FD_QUERY",
            Cmd::MapLookupAndDeleteElem => "BPF_MAP_LOOKUP_AND_DELETE_ELEM",
            Cmd::MapFreeze => "BPF_MAP_FREEZE",
            Cmd::BtfGetNextId => "BPF_BTF_GET_NEXT_ID",
            Cmd::MapLookupBatch => "BPF_MAP_LOOKUP_BATCH",
            Cmd::MapLookupAndDeleteBatch => "BPF_MAP_LOOKUP_AND_DELETE_BATCH",
            Cmd::MapUpdateBatch => "BPF_MAP_UPDATE_BATCH",
            Cmd::MapDeleteBatch => "BPF_MAP_DELETE_BATCH",
            Cmd::LinkCreate => "BPF_LINK_CREATE",
            Cmd::LinkUpdate => "BPF_LINK_UPDATE",
            Cmd::LinkGetFdById => "BPF_LINK_GET_FD_BY_ID",
            Cmd::LinkGetNextId => "BPF_LINK_GET_NEXT_ID",
            Cmd::EnableStats => "BPF_ENABLE_STATS",
            Cmd::IterCreate => "BPF_ITER_CREATE",
            Cmd::LinkDetach => "BPF_LINK_DETACH",
            Cmd::ProgBindMap => "BPF_PROG_BIND_MAP",
            Cmd::TokenCreate => "BPF_TOKEN_CREATE",
        }
    }
}

/// The size of the attribute union this crate passes: the whole union of the 6.12 UAPI.
pub const ATTR_SIZE: usize = mem::size_of::<bpf_attr>();

mod sealed {
    pub trait Sealed {}
    impl Sealed for crate::uapi::bpf_attr {}
    impl Sealed for super::ElemAttr {}
}

/// An attribute [`sys_bpf`] can pass: the whole `bpf_attr` union, or [`ElemAttr`], a `repr(C)`
/// prefix of it (sealed).
///
/// # Safety
///
/// Implementors are `repr(C)` plain data whose first `size_of::<Self>()` bytes have the layout
/// of the same bytes of `bpf_attr` for the commands they are passed with, and for which every
/// bit pattern is valid (the kernel writes some members back).
pub unsafe trait Attr: sealed::Sealed {}
// SAFETY: the union itself.
unsafe impl Attr for bpf_attr {}
// SAFETY: `ElemAttr` is `repr(C)` integers laid out as the element member of the union (checked
// at compile time below), with its hole made an explicit field.
unsafe impl Attr for ElemAttr {}

/// The attribute of the element commands (`BPF_MAP_LOOKUP_ELEM`, `UPDATE`, `DELETE`,
/// `GET_NEXT_KEY`, `LOOKUP_AND_DELETE`): the union's element member up to the end of `flags`,
/// 32 bytes, as libbpf passes it. Every byte is a field, so a whole-struct copy copies no
/// unspecified padding.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(C)]
pub struct ElemAttr {
    /// The map fd.
    pub map_fd: u32,
    /// The hole before `key` in the union's layout: always 0.
    pub pad: u32,
    /// The key's address (0: none).
    pub key: u64,
    /// The value's address, or for `BPF_MAP_GET_NEXT_KEY` the next key's.
    pub value: u64,
    /// The command's flags (`BPF_ANY`, `BPF_F_LOCK`...).
    pub flags: u64,
}

/// The bytes of the union the element commands read: up to the end of the element member's
/// `flags` (libbpf's `offsetofend(union bpf_attr, flags)`).
pub const ELEM_ATTR_SIZE: usize =
    mem::offset_of!(uapi::bpf_attr__bindgen_ty_2, flags) + mem::size_of::<u64>();

const _: () = {
    type E = uapi::bpf_attr__bindgen_ty_2;
    assert!(mem::size_of::<ElemAttr>() == ELEM_ATTR_SIZE);
    assert!(mem::offset_of!(ElemAttr, map_fd) == mem::offset_of!(E, map_fd));
    assert!(mem::offset_of!(ElemAttr, key) == mem::offset_of!(E, key));
    assert!(mem::offset_of!(ElemAttr, value) == mem::offset_of!(E, __bindgen_anon_1));
    assert!(mem::offset_of!(ElemAttr, flags) == mem::offset_of!(E, flags));
    assert!(mem::offset_of!(uapi::bpf_attr, __bindgen_anon_2) == 0);
    assert!(ELEM_ATTR_SIZE <= ATTR_SIZE);
};

/// Calls `bpf(cmd, attr, size)`: the only place in the workspace that enters `bpf(2)`.
///
/// `attr` is the whole `bpf_attr` union or a prefix of it ([`Attr`]: [`ElemAttr`]).
/// Returns the kernel's non-negative result (an fd for the commands that create one, else 0),
/// or a [`SysError`] naming the command with the errno. A `size` larger than `attr` is
/// refused with `EINVAL` before the call (the kernel would read past `attr`). `EINTR` is not
/// retried here: no BPF command returns it today, and a wrapper knows better.
///
/// # Safety
///
/// Every pointer the command reads from `attr` (keys, values, buffers, paths, instruction
/// arrays, logs, info structs) must point to memory that is valid for the whole call, for reads
/// of the length the kernel reads and, where the kernel writes, for writes of the length it
/// writes; that length is the one given in `attr` next to the pointer, or, for map elements,
/// the map's key and value size. Memory the kernel writes must not be aliased by a shared Rust
/// reference during the call.
#[inline]
pub unsafe fn sys_bpf<A: Attr>(cmd: Cmd, attr: &mut A, size: usize) -> Result<c_long, SysError> {
    if size > mem::size_of::<A>() {
        return Err(SysError::invalid_input(
            cmd.name(),
            "attr size larger than bpf_attr",
        ));
    }
    // SAFETY: `attr` is a live, exclusively borrowed attribute of at least `size` bytes (checked
    // above) laid out as the start of `bpf_attr` (`Attr`); the caller guarantees the pointers
    // inside it (see `# Safety`).
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd.raw() as libc::c_long,
            attr as *mut A,
            size,
        )
    };
    if ret < 0 {
        Err(SysError::last(cmd.name()))
    } else {
        Ok(ret)
    }
}

/// Calls [`sys_bpf`] with the whole union and takes ownership of the fd the kernel returns.
///
/// # Safety
///
/// As for [`sys_bpf`]; moreover `cmd` must be a command that returns a new fd on success
/// (`BPF_MAP_CREATE`, `BPF_PROG_LOAD`, `BPF_OBJ_GET`, `*_GET_FD_BY_ID`, `BPF_LINK_CREATE`,
/// `BPF_BTF_LOAD`, `BPF_RAW_TRACEPOINT_OPEN`).
pub unsafe fn sys_bpf_fd(cmd: Cmd, attr: &mut bpf_attr) -> Result<OwnedFd, SysError> {
    // SAFETY: forwarded from this function's own contract.
    let ret = unsafe { sys_bpf(cmd, attr, ATTR_SIZE) }?;
    let fd = RawFd::try_from(ret)
        .map_err(|_| SysError::invalid_input(cmd.name(), "kernel returned an out-of-range fd"))?;
    // SAFETY: `cmd` returns a fresh fd on success (this function's contract): the kernel just
    // installed it in our table and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A pointer as the `__u64` the kernel's attribute fields want (`0` for null).
pub(crate) fn ptr_u64<T>(ptr: *const T) -> u64 {
    ptr as usize as u64
}

/// The address of a slice's data, or 0 for an empty slice (so the kernel sees no buffer).
pub(crate) fn slice_u64<T>(s: &[T]) -> u64 {
    if s.is_empty() {
        0
    } else {
        ptr_u64(s.as_ptr())
    }
}

/// As [`slice_u64`], for a slice the kernel writes.
pub(crate) fn slice_mut_u64<T>(s: &mut [T]) -> u64 {
    if s.is_empty() {
        0
    } else {
        ptr_u64(s.as_mut_ptr())
    }
}

/// A slice's length as the `__u32` the kernel wants, or an error naming `call` when it does not
/// fit.
pub(crate) fn len_u32(call: &'static str, what: &str, len: usize) -> Result<u32, SysError> {
    match u32::try_from(len) {
        Ok(n) => Ok(n),
        Err(_) => Err(too_long(call, what)),
    }
}

/// The error of [`len_u32`], built out of line: every call that sends a slice counts it.
#[cold]
#[inline(never)]
fn too_long(call: &'static str, what: &str) -> SysError {
    SysError::invalid_input(call, format!("{what} is longer than u32::MAX"))
}

/// Cuts `name` to what the kernel keeps of an object name: at most
/// `BPF_OBJ_NAME_LEN - 1` (15) bytes, stopped at the first NUL, NUL-padded.
///
/// Like goebpf, longer names are cut, not refused. The kernel accepts only ASCII letters,
/// digits, `_` and `.` in the name and answers `EINVAL` to anything else; that check is left to
/// it, so the error names the command.
#[inline]
pub fn object_name(name: &str) -> [libc::c_char; uapi::BPF_OBJ_NAME_LEN as usize] {
    // Every program and map creation copies a name: only the bytes kept are looked at (not
    // the whole name for its NUL), and they are copied as one slice.
    let mut bytes_out = [0u8; uapi::BPF_OBJ_NAME_LEN as usize];
    let bytes = name.as_bytes();
    let kept = &bytes[..bytes.len().min(bytes_out.len() - 1)];
    let kept = &kept[..kept.iter().position(|&b| b == 0).unwrap_or(kept.len())];
    bytes_out[..kept.len()].copy_from_slice(kept);
    // A fixed-length loop, which compiles to one copy (`array::map` is a call of its own).
    let mut out = [0 as libc::c_char; uapi::BPF_OBJ_NAME_LEN as usize];
    for (o, b) in out.iter_mut().zip(bytes_out) {
        *o = b as libc::c_char;
    }
    out
}

/// A path as the NUL-terminated string the kernel wants; a path with a NUL byte is refused with
/// an error naming `call`.
pub(crate) fn path_cstring(call: &'static str, path: &Path) -> Result<CString, SysError> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| SysError::invalid_input(call, "path contains a NUL byte"))
}

/// A `&str` as a NUL-terminated string; a NUL byte inside is refused with an error naming
/// `call`.
pub(crate) fn str_cstring(call: &'static str, s: &str) -> Result<CString, SysError> {
    CString::new(s).map_err(|_| SysError::invalid_input(call, "string contains a NUL byte"))
}

/// The text a kernel log buffer holds: the bytes before the first NUL.
pub fn log_text(buf: &[u8]) -> &[u8] {
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    &buf[..end]
}

/// A caller-provided buffer for the verifier's or BTF checker's log, and what the kernel said
/// about it.
///
/// Give it to [`crate::prog::load`] or [`crate::btf::load`]. After the call (success or
/// failure) [`LogBuf::text`] holds the log and [`LogBuf::true_size`] the size the whole log
/// needs, on kernels that report it (`log_true_size`, Linux 6.4). A log that did not fit makes
/// the load fail with `ENOSPC` (even for a program the verifier accepted); the buffer then holds
/// the start of the log before 6.4 or with [`LogBuf::FIXED`], and its end on 6.4+ without it.
#[derive(Debug)]
pub struct LogBuf<'a> {
    buf: &'a mut [u8],
    level: u32,
    true_size: Option<u32>,
}

impl<'a> LogBuf<'a> {
    /// Level 1: the verifier's instruction trace of the failing path.
    pub const LEVEL_ERRORS: u32 = 1;
    /// Level 2: the full trace of every path.
    pub const LEVEL_VERBOSE: u32 = 2;
    /// Level 4 (`BPF_LOG_STATS`): statistics only.
    pub const LEVEL_STATS: u32 = 4;
    /// `BPF_LOG_FIXED` (Linux 6.4): keep the start of a log that does not fit, as older kernels
    /// do, instead of its end. Kernels before 6.4 refuse this flag with `EINVAL`.
    pub const FIXED: u32 = 8;

    /// The largest buffer the kernel accepts (`UINT_MAX >> 2`); a larger buffer is used up to
    /// this size.
    pub const MAX_SIZE: usize = (u32::MAX >> 2) as usize;

    /// A log of `level` (a combination of the `LEVEL_*` constants and [`LogBuf::FIXED`]) into
    /// `buf`. The kernel refuses buffers under 128 bytes before 6.4.
    pub fn new(buf: &'a mut [u8], level: u32) -> Self {
        if let Some(first) = buf.first_mut() {
            *first = 0;
        }
        LogBuf {
            buf,
            level,
            true_size: None,
        }
    }

    /// The log level given to the kernel.
    pub fn level(&self) -> u32 {
        self.level
    }

    /// The log the kernel wrote, up to its terminating NUL.
    pub fn text(&self) -> &[u8] {
        log_text(self.buf)
    }

    /// The log as text, lossily decoded.
    pub fn to_string_lossy(&self) -> String {
        String::from_utf8_lossy(self.text()).into_owned()
    }

    /// The size in bytes (with the NUL) the whole log needs, when the kernel reported it
    /// (`log_true_size`, Linux 6.4); `None` on older kernels.
    pub fn true_size(&self) -> Option<u32> {
        self.true_size
    }

    /// The buffer's capacity.
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// Pointer, size and level to put in the attribute.
    pub(crate) fn raw_parts(&mut self) -> (u64, u32, u32) {
        let len = self.buf.len().min(Self::MAX_SIZE);
        // `len` fits: MAX_SIZE < u32::MAX.
        (slice_mut_u64(&mut self.buf[..len]), len as u32, self.level)
    }

    /// Records `log_true_size` as the kernel left it (0: not reported).
    pub(crate) fn set_true_size(&mut self, size: u32) {
        self.true_size = (size != 0).then_some(size);
    }
}

/// Reads a NUL-terminated kernel name (an object name) into a `String`.
pub fn c_name(name: &[libc::c_char]) -> String {
    let bytes: Vec<u8> = name
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_name_cuts_at_fifteen_bytes_and_pads_with_nul() {
        let n = object_name("a_very_long_map_name_indeed");
        assert_eq!(c_name(&n), "a_very_long_map");
        assert_eq!(n[15], 0);
        assert_eq!(c_name(&object_name("short")), "short");
        assert_eq!(object_name("")[0], 0);
    }

    #[test]
    fn object_name_stops_at_an_inner_nul() {
        assert_eq!(c_name(&object_name("ab\0cd")), "ab");
    }

    #[test]
    fn every_command_has_its_kernel_number_and_name() {
        let all = [
            Cmd::MapCreate,
            Cmd::MapLookupElem,
            Cmd::MapUpdateElem,
            Cmd::MapDeleteElem,
            Cmd::MapGetNextKey,
            Cmd::ProgLoad,
            Cmd::ObjPin,
            Cmd::ObjGet,
            Cmd::ProgAttach,
            Cmd::ProgDetach,
            Cmd::ProgTestRun,
            Cmd::ProgGetNextId,
            Cmd::MapGetNextId,
            Cmd::ProgGetFdById,
            Cmd::MapGetFdById,
            Cmd::ObjGetInfoByFd,
            Cmd::ProgQuery,
            Cmd::RawTracepointOpen,
            Cmd::BtfLoad,
            Cmd::BtfGetFdById,
            Cmd::TaskFdQuery,
            Cmd::MapLookupAndDeleteElem,
            Cmd::MapFreeze,
            Cmd::BtfGetNextId,
            Cmd::MapLookupBatch,
            Cmd::MapLookupAndDeleteBatch,
            Cmd::MapUpdateBatch,
            Cmd::MapDeleteBatch,
            Cmd::LinkCreate,
            Cmd::LinkUpdate,
            Cmd::LinkGetFdById,
            Cmd::LinkGetNextId,
            Cmd::EnableStats,
            Cmd::IterCreate,
            Cmd::LinkDetach,
            Cmd::ProgBindMap,
            Cmd::TokenCreate,
        ];
        for (i, c) in all.iter().enumerate() {
            assert_eq!(c.raw() as usize, i, "{c:?}");
            assert!(c.name().starts_with("BPF_"));
        }
        assert_eq!(all.len(), uapi::__MAX_BPF_CMD as usize);
    }

    #[test]
    fn oversized_attr_is_refused_before_the_call() {
        let mut attr = bpf_attr::default();
        // SAFETY: the call is refused before reaching the kernel; no pointer is read.
        let err = unsafe { sys_bpf(Cmd::MapCreate, &mut attr, ATTR_SIZE + 1) }.unwrap_err();
        assert_eq!(err.call, "BPF_MAP_CREATE");
        assert_eq!(err.source.kind(), std::io::ErrorKind::InvalidInput);
    }

    #[test]
    fn log_buf_reports_text_up_to_nul_and_true_size_only_when_set() {
        let mut raw = *b"hello\0garbage";
        let mut log = LogBuf::new(&mut raw, 1);
        assert_eq!(log.text(), b"");
        log.buf[..6].copy_from_slice(b"hello\0");
        assert_eq!(log.text(), b"hello");
        log.set_true_size(0);
        assert_eq!(log.true_size(), None);
        log.set_true_size(200);
        assert_eq!(log.true_size(), Some(200));
    }
}
