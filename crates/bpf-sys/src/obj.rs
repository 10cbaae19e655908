//! Commands on any BPF object: pinning (`BPF_OBJ_PIN`, `BPF_OBJ_GET`), info
//! (`BPF_OBJ_GET_INFO_BY_FD`), and ids (`*_GET_FD_BY_ID`, `*_GET_NEXT_ID`).

use std::mem;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use crate::bpf::{path_cstring, ptr_u64, slice_mut_u64, sys_bpf, sys_bpf_fd, Cmd, ATTR_SIZE};
use crate::map::raw_fd;
use crate::uapi::{self, bpf_attr, bpf_btf_info, bpf_link_info, bpf_map_info, bpf_prog_info};
use crate::SysError;

/// `BPF_OBJ_PIN`: pins the map, program, link or BTF `fd` at `path` in a bpffs.
#[doc(alias = "BPF_OBJ_PIN")]
pub fn pin(fd: impl AsFd, path: &Path) -> Result<(), SysError> {
    let path = path_cstring(Cmd::ObjPin.name(), path)?;
    let mut attr = bpf_attr::default();
    attr.__bindgen_anon_4.pathname = ptr_u64(path.as_ptr());
    attr.__bindgen_anon_4.bpf_fd = raw_fd(fd.as_fd());
    // SAFETY: `pathname` points to the NUL-terminated `path`, alive for the call.
    unsafe { sys_bpf(Cmd::ObjPin, &mut attr, ATTR_SIZE) }.map(drop)
}

/// `BPF_OBJ_GET`: opens the object pinned at `path`.
///
/// `file_flags`: 0 (read-write), `BPF_F_RDONLY` or `BPF_F_WRONLY`.
#[doc(alias = "BPF_OBJ_GET")]
pub fn get(path: &Path, file_flags: u32) -> Result<OwnedFd, SysError> {
    let path = path_cstring(Cmd::ObjGet.name(), path)?;
    let mut attr = bpf_attr::default();
    attr.__bindgen_anon_4.pathname = ptr_u64(path.as_ptr());
    attr.__bindgen_anon_4.file_flags = file_flags;
    // SAFETY: `pathname` points to the NUL-terminated `path`, alive for the call; OBJ_GET
    // returns a new fd.
    unsafe { sys_bpf_fd(Cmd::ObjGet, &mut attr) }
}

/// The kernel's info structs: plain `repr(C)` data with every field an integer.
///
/// # Safety
///
/// Implementors must be `repr(C)` structs of integers (and integer arrays or bindgen bitfield
/// units) only, for which every bit pattern is valid, so the kernel may write any bytes into
/// them.
pub unsafe trait InfoStruct: Copy {}

/// An all-zero info struct, padding included (a struct literal or `Default` leaves padding
/// bytes unspecified, and kernels older than the struct refuse non-zero bytes they do not know).
pub fn zeroed_info<T: InfoStruct>() -> T {
    // SAFETY: `InfoStruct` guarantees every bit pattern, all zeros included, is a valid `T`.
    unsafe { mem::zeroed() }
}
// SAFETY: the four info structs are bindgen `repr(C)` structs (or a union for link info's tail)
// of integers only.
unsafe impl InfoStruct for bpf_prog_info {}
// SAFETY: as above.
unsafe impl InfoStruct for bpf_map_info {}
// SAFETY: as above.
unsafe impl InfoStruct for bpf_btf_info {}
// SAFETY: as above.
unsafe impl InfoStruct for bpf_link_info {}

/// `BPF_OBJ_GET_INFO_BY_FD` into `info`, which may carry user buffers (see [`prog_info_with_map_ids`]).
///
/// # Safety
///
/// Every pointer field of `info` must point to a buffer valid for writes of the length given in
/// the matching count field, for the duration of the call.
unsafe fn info_raw<T: InfoStruct>(fd: impl AsFd, info: &mut T) -> Result<u32, SysError> {
    let mut attr = bpf_attr::default();
    attr.info.bpf_fd = raw_fd(fd.as_fd());
    attr.info.info_len = mem::size_of::<T>() as u32;
    attr.info.info = ptr_u64(info as *mut T);
    // SAFETY: `info` is an exclusively borrowed `T` of `info_len` bytes the kernel writes (any
    // bytes are a valid `T`: `InfoStruct`); its own pointers are the caller's (see `# Safety`).
    unsafe { sys_bpf(Cmd::ObjGetInfoByFd, &mut attr, ATTR_SIZE) }?;
    // SAFETY: reading a plain `u32` of the union the kernel filled.
    Ok(unsafe { attr.info.info_len })
}

/// `BPF_OBJ_GET_INFO_BY_FD` with an all-zero `T` (no user buffers): the info of `fd`.
///
/// Fields the running kernel does not know stay zero.
fn info<T: InfoStruct>(fd: impl AsFd) -> Result<T, SysError> {
    let mut info: T = zeroed_info();
    // SAFETY: an all-zero info struct carries no pointers.
    unsafe { info_raw(fd, &mut info) }?;
    Ok(info)
}

/// The `bpf_prog_info` of a program.
#[doc(alias = "BPF_OBJ_GET_INFO_BY_FD")]
pub fn prog_info(prog: impl AsFd) -> Result<bpf_prog_info, SysError> {
    info(prog)
}

/// The `bpf_map_info` of a map.
#[doc(alias = "BPF_OBJ_GET_INFO_BY_FD")]
pub fn map_info(map: impl AsFd) -> Result<bpf_map_info, SysError> {
    info(map)
}

/// The `bpf_link_info` of a link (the type-specific tail is zero where the kernel has no data
/// without user buffers).
#[doc(alias = "BPF_OBJ_GET_INFO_BY_FD")]
pub fn link_info(link: impl AsFd) -> Result<bpf_link_info, SysError> {
    info(link)
}

/// The `bpf_btf_info` of a BTF object (without its data or name).
#[doc(alias = "BPF_OBJ_GET_INFO_BY_FD")]
pub fn btf_info(btf: impl AsFd) -> Result<bpf_btf_info, SysError> {
    info(btf)
}

/// The `bpf_prog_info` of a program, with the ids of the maps it uses written into `map_ids`.
///
/// Returns the info and the number of ids written (at most `map_ids.len()`); `info.nr_map_ids`
/// is how many maps the program uses, so a larger buffer is needed when it exceeds the count.
#[doc(alias = "BPF_OBJ_GET_INFO_BY_FD")]
pub fn prog_info_with_map_ids(
    prog: impl AsFd,
    map_ids: &mut [u32],
) -> Result<(bpf_prog_info, usize), SysError> {
    let call = Cmd::ObjGetInfoByFd.name();
    let mut info: bpf_prog_info = zeroed_info();
    info.nr_map_ids = crate::bpf::len_u32(call, "map_ids", map_ids.len())?;
    info.map_ids = slice_mut_u64(map_ids);
    // SAFETY: the only pointer in `info` is `map_ids`, valid for writes of `nr_map_ids` u32s
    // for the call.
    unsafe { info_raw(prog, &mut info) }?;
    let written = (info.nr_map_ids as usize).min(map_ids.len());
    Ok((info, written))
}

/// The `bpf_btf_info` of a BTF object, with its name written into `name` (NUL-terminated, cut
/// to fit) and its raw data into `data` (when `data` is large enough; else `info.btf_size` says
/// how large it must be and the kernel answers `ENOSPC`).
///
/// BTF objects have names since Linux 5.11; older kernels refuse the name fields (`E2BIG`), so
/// the call is then made again without them and `name` is left empty.
#[doc(alias = "BPF_OBJ_GET_INFO_BY_FD")]
pub fn btf_info_with_buffers(
    btf: impl AsFd,
    name: &mut [u8],
    data: &mut [u8],
) -> Result<bpf_btf_info, SysError> {
    let call = Cmd::ObjGetInfoByFd.name();
    let mut info: bpf_btf_info = zeroed_info();
    info.name = slice_mut_u64(name);
    info.name_len = crate::bpf::len_u32(call, "name", name.len())?;
    info.btf = slice_mut_u64(data);
    info.btf_size = crate::bpf::len_u32(call, "data", data.len())?;
    let fd = btf.as_fd();
    // SAFETY: `name` and `btf` point to buffers valid for writes of `name_len` and `btf_size`
    // bytes for the call.
    match unsafe { info_raw(fd, &mut info) } {
        Err(e) if e.is_errno(libc::E2BIG) && info.name_len != 0 => {
            info.name = 0;
            info.name_len = 0;
            // SAFETY: as above, without the name buffer.
            unsafe { info_raw(fd, &mut info) }?;
        }
        other => {
            other?;
        }
    }
    Ok(info)
}

/// Which kind of object an id names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjKind {
    /// A program (`BPF_PROG_*_ID`).
    Prog,
    /// A map (`BPF_MAP_*_ID`).
    Map,
    /// A link (`BPF_LINK_*_ID`, Linux 5.8).
    Link,
    /// A BTF object (`BPF_BTF_*_ID`, Linux 5.4).
    Btf,
}

impl ObjKind {
    fn next_cmd(self) -> Cmd {
        match self {
            ObjKind::Prog => Cmd::ProgGetNextId,
            ObjKind::Map => Cmd::MapGetNextId,
            ObjKind::Link => Cmd::LinkGetNextId,
            ObjKind::Btf => Cmd::BtfGetNextId,
        }
    }

    fn fd_cmd(self) -> Cmd {
        match self {
            ObjKind::Prog => Cmd::ProgGetFdById,
            ObjKind::Map => Cmd::MapGetFdById,
            ObjKind::Link => Cmd::LinkGetFdById,
            ObjKind::Btf => Cmd::BtfGetFdById,
        }
    }
}

/// `BPF_{PROG,MAP,LINK,BTF}_GET_NEXT_ID`: the first id of `kind` after `start_id` (0: the
/// first), or `None` when there is none.
#[doc(alias = "BPF_PROG_GET_NEXT_ID")]
#[doc(alias = "BPF_MAP_GET_NEXT_ID")]
#[doc(alias = "BPF_LINK_GET_NEXT_ID")]
#[doc(alias = "BPF_BTF_GET_NEXT_ID")]
pub fn next_id(kind: ObjKind, start_id: u32) -> Result<Option<u32>, SysError> {
    // Ids are below INT_MAX; the kernel answers EINVAL to a start at or above it.
    if start_id >= i32::MAX as u32 {
        return Ok(None);
    }
    let mut attr = bpf_attr::default();
    attr.__bindgen_anon_6.__bindgen_anon_1.start_id = start_id;
    // SAFETY: GET_NEXT_ID reads and writes only integers of the attribute.
    match unsafe { sys_bpf(kind.next_cmd(), &mut attr, ATTR_SIZE) } {
        // SAFETY: reading a plain `u32` of the union the kernel filled.
        Ok(_) => Ok(Some(unsafe { attr.__bindgen_anon_6.next_id })),
        Err(e) if e.is_errno(libc::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Every id of `kind` in the system, in increasing order (ids are read as the walk goes: an
/// object created or freed meanwhile may or may not appear).
pub fn ids(kind: ObjKind) -> Ids {
    Ids {
        kind,
        last: 0,
        done: false,
    }
}

/// The iterator of [`ids`].
#[derive(Debug, Clone)]
pub struct Ids {
    kind: ObjKind,
    last: u32,
    done: bool,
}

impl Iterator for Ids {
    type Item = Result<u32, SysError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match next_id(self.kind, self.last) {
            Ok(Some(id)) => {
                self.last = id;
                Some(Ok(id))
            }
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// `BPF_{PROG,MAP,LINK,BTF}_GET_FD_BY_ID`: opens the object of `kind` with `id`.
///
/// `open_flags` (maps only; 0 elsewhere): 0, `BPF_F_RDONLY` or `BPF_F_WRONLY`. A missing id
/// gives `ENOENT`.
#[doc(alias = "BPF_PROG_GET_FD_BY_ID")]
#[doc(alias = "BPF_MAP_GET_FD_BY_ID")]
#[doc(alias = "BPF_LINK_GET_FD_BY_ID")]
#[doc(alias = "BPF_BTF_GET_FD_BY_ID")]
pub fn fd_by_id(kind: ObjKind, id: u32, open_flags: u32) -> Result<OwnedFd, SysError> {
    let mut attr = bpf_attr::default();
    attr.__bindgen_anon_6.__bindgen_anon_1.start_id = id;
    attr.__bindgen_anon_6.open_flags = open_flags;
    // SAFETY: GET_FD_BY_ID reads only integers of the attribute and returns a new fd.
    unsafe { sys_bpf_fd(kind.fd_cmd(), &mut attr) }
}

/// `BPF_PROG_GET_FD_BY_ID`.
pub fn prog_fd_by_id(id: u32) -> Result<OwnedFd, SysError> {
    fd_by_id(ObjKind::Prog, id, 0)
}

/// `BPF_MAP_GET_FD_BY_ID` with `open_flags` (0, `BPF_F_RDONLY`, `BPF_F_WRONLY`).
pub fn map_fd_by_id(id: u32, open_flags: u32) -> Result<OwnedFd, SysError> {
    fd_by_id(ObjKind::Map, id, open_flags)
}

/// `BPF_LINK_GET_FD_BY_ID`.
pub fn link_fd_by_id(id: u32) -> Result<OwnedFd, SysError> {
    fd_by_id(ObjKind::Link, id, 0)
}

/// `BPF_BTF_GET_FD_BY_ID`.
pub fn btf_fd_by_id(id: u32) -> Result<OwnedFd, SysError> {
    fd_by_id(ObjKind::Btf, id, 0)
}

/// The open flags for read-only access (`BPF_F_RDONLY`), for [`get`] and [`map_fd_by_id`].
pub const RDONLY: u32 = uapi::BPF_F_RDONLY;
/// The open flags for write-only access (`BPF_F_WRONLY`).
pub const WRONLY: u32 = uapi::BPF_F_WRONLY;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_with_nul_is_refused_naming_the_command() {
        let e = get(Path::new("/sys/fs/bpf/a\0b"), 0).unwrap_err();
        assert_eq!(e.call, "BPF_OBJ_GET");
        assert_eq!(e.errno(), None);
    }

    #[test]
    fn id_commands_pair_up_by_kind() {
        assert_eq!(ObjKind::Btf.next_cmd().name(), "BPF_BTF_GET_NEXT_ID");
        assert_eq!(ObjKind::Link.fd_cmd().name(), "BPF_LINK_GET_FD_BY_ID");
    }
}
