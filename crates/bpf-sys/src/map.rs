//! Maps: `BPF_MAP_CREATE`, `BPF_MAP_FREEZE` and the element commands.
//!
//! [`create`] takes a [`MapCreateAttr`] and returns the new map's `OwnedFd`.
//!
//! The element commands (`BPF_MAP_LOOKUP_ELEM`, `UPDATE`, `DELETE`, `GET_NEXT_KEY`,
//! `LOOKUP_AND_DELETE`, and the batch commands in [`crate::map_batch`]) are methods of
//! [`MapFd`]: a map fd together with the key and value sizes the kernel copies for it, read from
//! the kernel once ([`MapFd::new`]). The kernel copies a map's own key and value size from and to
//! the pointers it is given, whatever the caller meant; checking each slice against those sizes
//! is what keeps these calls safe, so a plain fd is not enough. Keys and values are byte slices
//! the caller sizes: a key is exactly [`MapLayout::key_size`] bytes, a value exactly
//! [`MapLayout::value_len`] bytes (for per-CPU maps, one 8-byte-aligned slot per possible CPU).
//! A slice of any other length is refused with an `InvalidInput` error naming the command,
//! before the call. The typed maps of `bpf-maps` size their buffers once, when built.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use crate::bpf::{
    object_name, slice_mut_u64, slice_u64, sys_bpf, sys_bpf_fd, Cmd, ElemAttr, ATTR_SIZE,
    ELEM_ATTR_SIZE,
};
use crate::uapi::{self, bpf_attr};
use crate::{MapType, SysError};

/// What `BPF_MAP_CREATE` needs: the map's type, sizes, flags and the optional extras.
///
/// Build it with [`MapCreateAttr::new`] and set the public fields you need:
///
/// ```
/// # use bpf_sys::{map::MapCreateAttr, MapType, uapi};
/// let mut attr = MapCreateAttr::new(MapType::LpmTrie, 8, 4, 128);
/// attr.map_flags = uapi::BPF_F_NO_PREALLOC;
/// attr.name = "routes";
/// ```
#[derive(Debug, Clone, Copy)]
pub struct MapCreateAttr<'a> {
    /// The map type.
    pub map_type: MapType,
    /// Key size in bytes (0 for queue, stack, bloom filter, ring buffers, arena).
    pub key_size: u32,
    /// Value size in bytes.
    pub value_size: u32,
    /// The capacity (for ring buffers: the size in bytes, a power-of-two multiple of the page).
    pub max_entries: u32,
    /// `BPF_F_*` map flags (`BPF_F_NO_PREALLOC`, `BPF_F_MMAPABLE`, `BPF_F_RDONLY_PROG`...).
    /// `BPF_F_NUMA_NODE` is added when [`MapCreateAttr::numa_node`] is set.
    pub map_flags: u32,
    /// The map's name, cut to 15 bytes (see [`object_name`]); empty for none.
    pub name: &'a str,
    /// For map-in-map types: a map of the shape the inner maps have.
    pub inner_map_fd: Option<BorrowedFd<'a>>,
    /// The NUMA node to allocate on; `None` for any.
    pub numa_node: Option<u32>,
    /// The interface to offload the map to; 0 for none.
    pub map_ifindex: u32,
    /// `map_extra` (bloom filter: number of hash functions; arena: the mmap address).
    pub map_extra: u64,
    /// BTF describing the key and value, with the type ids below.
    pub btf_fd: Option<BorrowedFd<'a>>,
    /// BTF type id of the key.
    pub btf_key_type_id: u32,
    /// BTF type id of the value.
    pub btf_value_type_id: u32,
    /// For struct_ops maps: the type id of the value in vmlinux BTF.
    pub btf_vmlinux_value_type_id: u32,
}

impl<'a> MapCreateAttr<'a> {
    /// A map of `map_type` with these sizes and no flags, name or extras.
    pub fn new(map_type: MapType, key_size: u32, value_size: u32, max_entries: u32) -> Self {
        MapCreateAttr {
            map_type,
            key_size,
            value_size,
            max_entries,
            map_flags: 0,
            name: "",
            inner_map_fd: None,
            numa_node: None,
            map_ifindex: 0,
            map_extra: 0,
            btf_fd: None,
            btf_key_type_id: 0,
            btf_value_type_id: 0,
            btf_vmlinux_value_type_id: 0,
        }
    }

    /// The attribute union for `BPF_MAP_CREATE` (pure; holds no pointers, only fd numbers).
    pub fn to_attr(&self) -> bpf_attr {
        // Field by field into the zeroed union: assigning a whole struct would copy its padding
        // bytes, which are not guaranteed zero, and the kernel refuses non-zero unknown bytes.
        let mut attr = bpf_attr::default();
        attr.__bindgen_anon_1.map_type = self.map_type.as_u32();
        attr.__bindgen_anon_1.key_size = self.key_size;
        attr.__bindgen_anon_1.value_size = self.value_size;
        attr.__bindgen_anon_1.max_entries = self.max_entries;
        attr.__bindgen_anon_1.map_flags = self.map_flags
            | if self.numa_node.is_some() {
                uapi::BPF_F_NUMA_NODE
            } else {
                0
            };
        attr.__bindgen_anon_1.inner_map_fd = fd_u32(self.inner_map_fd);
        attr.__bindgen_anon_1.numa_node = self.numa_node.unwrap_or(0);
        attr.__bindgen_anon_1.map_name = object_name(self.name);
        attr.__bindgen_anon_1.map_ifindex = self.map_ifindex;
        attr.__bindgen_anon_1.btf_fd = fd_u32(self.btf_fd);
        attr.__bindgen_anon_1.btf_key_type_id = self.btf_key_type_id;
        attr.__bindgen_anon_1.btf_value_type_id = self.btf_value_type_id;
        attr.__bindgen_anon_1.btf_vmlinux_value_type_id = self.btf_vmlinux_value_type_id;
        attr.__bindgen_anon_1.map_extra = self.map_extra;
        attr
    }
}

/// An optional fd as the `__u32` the kernel wants (0 for none).
pub(crate) fn fd_u32(fd: Option<BorrowedFd<'_>>) -> u32 {
    use std::os::fd::AsRawFd;
    fd.map_or(0, |fd| fd.as_raw_fd() as u32)
}

/// `BPF_MAP_CREATE`: creates a map and returns its fd.
#[doc(alias = "BPF_MAP_CREATE")]
pub fn create(attr: &MapCreateAttr<'_>) -> Result<OwnedFd, SysError> {
    let mut raw = attr.to_attr();
    // SAFETY: the MAP_CREATE attribute holds no pointers (the name is inline, fds are numbers
    // the kernel resolves itself); BPF_MAP_CREATE returns a new fd.
    unsafe { sys_bpf_fd(Cmd::MapCreate, &mut raw) }
}

/// `BPF_MAP_FREEZE`: makes the map read-only for user space (Linux 5.2). Writes from programs
/// still work unless the map was created with `BPF_F_RDONLY_PROG`.
#[doc(alias = "BPF_MAP_FREEZE")]
pub fn freeze(map: impl AsFd) -> Result<(), SysError> {
    let mut attr = bpf_attr::default();
    attr.__bindgen_anon_2.map_fd = raw_fd(map.as_fd());
    // SAFETY: MAP_FREEZE reads only the map fd; the attribute holds no pointer.
    unsafe { sys_bpf(Cmd::MapFreeze, &mut attr, ATTR_SIZE) }.map(drop)
}

pub(crate) fn raw_fd(fd: BorrowedFd<'_>) -> u32 {
    use std::os::fd::AsRawFd;
    fd.as_raw_fd() as u32
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for std::os::fd::OwnedFd {}
    impl Sealed for std::os::fd::BorrowedFd<'_> {}
    impl Sealed for &std::os::fd::OwnedFd {}
}

/// An fd that names the same open file for as long as it lives: `OwnedFd`, `BorrowedFd<'_>` or
/// `&OwnedFd` (sealed: a [`MapFd`]'s sizes stay true only if its fd cannot change under it).
pub trait StableFd: AsFd + sealed::Sealed {}
impl StableFd for OwnedFd {}
impl StableFd for BorrowedFd<'_> {}
impl StableFd for &OwnedFd {}

/// The sizes the kernel copies for one map, as its `bpf_map_info` gives them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapLayout {
    /// The map type's number (see [`MapLayout::map_type`]).
    pub type_raw: u32,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes, as the map was created.
    pub value_size: u32,
    /// Bytes of one value as the element commands copy it: `value_size`, or for per-CPU maps
    /// `round_up(value_size, 8) * possible CPUs`.
    pub value_len: usize,
    /// Capacity.
    pub max_entries: u32,
    /// `BPF_F_*` flags.
    pub map_flags: u32,
}

impl MapLayout {
    /// The layout of a map of `type_raw` with these sizes, on a machine with `possible_cpus`
    /// possible CPUs (pure).
    pub fn compute(
        type_raw: u32,
        key_size: u32,
        value_size: u32,
        max_entries: u32,
        map_flags: u32,
        possible_cpus: usize,
    ) -> Self {
        let value_len = if is_per_cpu(type_raw) {
            (value_size as usize).div_ceil(8) * 8 * possible_cpus
        } else {
            value_size as usize
        };
        MapLayout {
            type_raw,
            key_size,
            value_size,
            value_len,
            max_entries,
            map_flags,
        }
    }

    /// The map type, if this crate knows it.
    pub fn map_type(&self) -> Option<MapType> {
        MapType::try_from(self.type_raw).ok()
    }

    /// The bytes of the batch cursor ([`crate::map_batch`]): hash maps use a 4-byte bucket
    /// index, arrays a key.
    pub fn batch_token_size(&self) -> usize {
        (self.key_size as usize).max(4)
    }
}

/// The value slots an element command copies for a map of this type: one per possible CPU for
/// per-CPU maps, else one.
#[inline]
fn value_slots(type_raw: u32) -> Result<usize, SysError> {
    if !is_per_cpu(type_raw) {
        return Ok(1);
    }
    possible_cpu_slots()
}

/// The possible CPUs, for a per-CPU map's values; out of line, as most maps have one slot.
#[inline(never)]
fn possible_cpu_slots() -> Result<usize, SysError> {
    crate::cpu::num_possible_cpus().map_err(|e| {
        SysError::new(
            "read /sys/devices/system/cpu/possible",
            std::io::Error::other(e),
        )
    })
}

/// Whether the element commands copy one value slot per possible CPU for maps of this type
/// (the kernel's `bpf_map_value_size`).
pub fn is_per_cpu(type_raw: u32) -> bool {
    [
        uapi::BPF_MAP_TYPE_PERCPU_HASH,
        uapi::BPF_MAP_TYPE_LRU_PERCPU_HASH,
        uapi::BPF_MAP_TYPE_PERCPU_ARRAY,
        uapi::BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE,
    ]
    .contains(&type_raw)
}

/// A map fd with the sizes the kernel copies for it: the handle of the element commands.
///
/// `F` is `OwnedFd` (the handle owns the map), `BorrowedFd<'_>` or `&OwnedFd`.
#[derive(Debug)]
pub struct MapFd<F: StableFd = OwnedFd> {
    fd: F,
    layout: MapLayout,
}

impl MapFd<OwnedFd> {
    /// Creates a map ([`create`]), with the layout the attribute asked for (one system call).
    pub fn create(attr: &MapCreateAttr<'_>) -> Result<Self, SysError> {
        // The kernel keeps the sizes and the capacity exactly as the attribute gives them
        // (`bpf_map_init_from_attr`), and of the flags drops only the fd-access ones
        // (`bpf_map_flags_retain_permanent`): the layout is known without asking. Device maps
        // are the exception, where the kernel adds `BPF_F_RDONLY_PROG` itself (on the kernels
        // that do): for them, ask.
        if matches!(attr.map_type, MapType::DevMap | MapType::DevMapHash) {
            return MapFd::new(create(attr)?);
        }
        let type_raw = attr.map_type as u32;
        let cpus = value_slots(type_raw)?;
        let layout = MapLayout::compute(
            type_raw,
            attr.key_size,
            attr.value_size,
            attr.max_entries,
            attr.map_flags & !(uapi::BPF_F_RDONLY | uapi::BPF_F_WRONLY),
            cpus,
        );
        Ok(MapFd {
            fd: create(attr)?,
            layout,
        })
    }

    /// Creates a map ([`create`]) and reads its info back once: the handle and the whole
    /// `bpf_map_info` (id, name, flags as the kernel keeps them), for callers that need both.
    pub fn create_with_info(
        attr: &MapCreateAttr<'_>,
    ) -> Result<(Self, uapi::bpf_map_info), SysError> {
        MapFd::with_info(create(attr)?)
    }
}

impl<F: StableFd> MapFd<F> {
    /// Wraps a map fd, reading its sizes from the kernel (`BPF_OBJ_GET_INFO_BY_FD`, and the
    /// possible CPUs for per-CPU maps).
    pub fn new(fd: F) -> Result<Self, SysError> {
        Self::with_info(fd).map(|(map, _)| map)
    }

    /// As [`MapFd::new`], also giving back the `bpf_map_info` it read: one
    /// `BPF_OBJ_GET_INFO_BY_FD` for the sizes and for whatever else the caller wants to know.
    pub fn with_info(fd: F) -> Result<(Self, uapi::bpf_map_info), SysError> {
        let info = crate::obj::map_info(fd.as_fd())?;
        let cpus = value_slots(info.type_)?;
        let layout = MapLayout::compute(
            info.type_,
            info.key_size,
            info.value_size,
            info.max_entries,
            info.map_flags,
            cpus,
        );
        Ok((MapFd { fd, layout }, info))
    }

    /// The sizes the element commands check slices against.
    pub fn layout(&self) -> &MapLayout {
        &self.layout
    }

    /// The fd, borrowed.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Gives the fd back.
    pub fn into_inner(self) -> F {
        self.fd
    }

    /// A handle of its own on the same map: the fd duplicated (`F_DUPFD_CLOEXEC`), the layout
    /// copied (a duplicate names the same map, so no `BPF_OBJ_GET_INFO_BY_FD` is needed).
    pub fn try_clone_owned(&self) -> std::io::Result<MapFd<OwnedFd>> {
        Ok(MapFd {
            fd: self.fd.as_fd().try_clone_to_owned()?,
            layout: self.layout,
        })
    }

    #[inline]
    pub(crate) fn check_key(&self, call: &'static str, key: &[u8]) -> Result<(), SysError> {
        check_len(call, "key", key.len(), self.layout.key_size as usize)
    }

    #[inline]
    pub(crate) fn check_value(&self, call: &'static str, value: &[u8]) -> Result<(), SysError> {
        check_len(call, "value", value.len(), self.layout.value_len)
    }

    /// The element commands' attribute: 32 bytes built whole, passed with their own size.
    #[inline]
    fn elem_attr(&self, key: &[u8], value: u64, flags: u64) -> ElemAttr {
        ElemAttr {
            map_fd: raw_fd(self.fd()),
            pad: 0,
            key: slice_u64(key),
            value,
            flags,
        }
    }

    /// `BPF_MAP_LOOKUP_ELEM`: copies the value of `key` into `value`.
    ///
    /// `flags`: 0 or `BPF_F_LOCK` (copy under the value's spin lock). A missing key gives
    /// `ENOENT`. For queue and stack maps, an empty key peeks at the next element.
    #[doc(alias = "BPF_MAP_LOOKUP_ELEM")]
    #[inline]
    pub fn lookup(&self, key: &[u8], value: &mut [u8], flags: u64) -> Result<(), SysError> {
        let call = Cmd::MapLookupElem.name();
        self.check_key(call, key)?;
        self.check_value(call, value)?;
        let mut attr = self.elem_attr(key, slice_mut_u64(value), flags);
        // SAFETY: `key` is key_size bytes the kernel reads and `value` value_len bytes it writes
        // (both checked against the map's own sizes above); both borrows outlive the call.
        unsafe { sys_bpf(Cmd::MapLookupElem, &mut attr, ELEM_ATTR_SIZE) }.map(drop)
    }

    /// `BPF_MAP_UPDATE_ELEM`: sets `key` to `value`.
    ///
    /// `flags`: `BPF_ANY`, `BPF_NOEXIST` (`EEXIST` if the key exists), `BPF_EXIST` (`ENOENT`
    /// if it does not), optionally with `BPF_F_LOCK`. For queue and stack maps, an empty key
    /// pushes `value`.
    #[doc(alias = "BPF_MAP_UPDATE_ELEM")]
    #[inline]
    pub fn update(&self, key: &[u8], value: &[u8], flags: u64) -> Result<(), SysError> {
        let call = Cmd::MapUpdateElem.name();
        self.check_key(call, key)?;
        self.check_value(call, value)?;
        let mut attr = self.elem_attr(key, slice_u64(value), flags);
        // SAFETY: the kernel reads key_size bytes of `key` and value_len bytes of `value`
        // (checked above); both borrows outlive the call.
        unsafe { sys_bpf(Cmd::MapUpdateElem, &mut attr, ELEM_ATTR_SIZE) }.map(drop)
    }

    /// `BPF_MAP_DELETE_ELEM`: removes `key` (`ENOENT` if it is missing; arrays answer
    /// `EINVAL`).
    #[doc(alias = "BPF_MAP_DELETE_ELEM")]
    #[inline]
    pub fn delete(&self, key: &[u8]) -> Result<(), SysError> {
        let call = Cmd::MapDeleteElem.name();
        self.check_key(call, key)?;
        let mut attr = self.elem_attr(key, 0, 0);
        // SAFETY: the kernel reads key_size bytes of `key` (checked above).
        unsafe { sys_bpf(Cmd::MapDeleteElem, &mut attr, ELEM_ATTR_SIZE) }.map(drop)
    }

    /// `BPF_MAP_GET_NEXT_KEY`: writes the key after `key` (`None`: the first key) into `next`.
    ///
    /// Returns `Ok(false)` when there is no next key (the kernel's `ENOENT`): the walk is over.
    /// A `key` that is not in the map restarts the walk at the first key (hash maps).
    #[doc(alias = "BPF_MAP_GET_NEXT_KEY")]
    #[inline]
    pub fn next_key(&self, key: Option<&[u8]>, next: &mut [u8]) -> Result<bool, SysError> {
        let call = Cmd::MapGetNextKey.name();
        if let Some(key) = key {
            self.check_key(call, key)?;
        }
        check_len(call, "next key", next.len(), self.layout.key_size as usize)?;
        let mut attr = self.elem_attr(key.unwrap_or(&[]), slice_mut_u64(next), 0);
        // SAFETY: the kernel reads key_size bytes of `key` (or none: null) and writes key_size
        // bytes to `next` (checked above); the borrows outlive the call.
        match unsafe { sys_bpf(Cmd::MapGetNextKey, &mut attr, ELEM_ATTR_SIZE) } {
            Ok(_) => Ok(true),
            Err(e) if e.is_errno(libc::ENOENT) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// `BPF_MAP_LOOKUP_AND_DELETE_ELEM`: copies the value of `key` into `value` and removes it.
    ///
    /// For queue and stack maps pass an empty key: this pops (`ENOENT` when empty). Hash maps
    /// support it since Linux 5.14, with `flags` 0 or `BPF_F_LOCK`.
    #[doc(alias = "BPF_MAP_LOOKUP_AND_DELETE_ELEM")]
    pub fn lookup_and_delete(
        &self,
        key: &[u8],
        value: &mut [u8],
        flags: u64,
    ) -> Result<(), SysError> {
        let call = Cmd::MapLookupAndDeleteElem.name();
        self.check_key(call, key)?;
        self.check_value(call, value)?;
        let mut attr = self.elem_attr(key, slice_mut_u64(value), flags);
        // SAFETY: the kernel reads key_size bytes of `key` and writes value_len bytes to
        // `value` (checked above); both borrows outlive the call.
        unsafe { sys_bpf(Cmd::MapLookupAndDeleteElem, &mut attr, ELEM_ATTR_SIZE) }.map(drop)
    }

    /// `BPF_MAP_FREEZE` on this map (see [`freeze`]).
    pub fn freeze(&self) -> Result<(), SysError> {
        freeze(self.fd())
    }
}

impl<F: StableFd> AsFd for MapFd<F> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Refuses a slice whose length is not the one the kernel will use.
#[inline]
pub(crate) fn check_len(
    call: &'static str,
    what: &str,
    got: usize,
    expected: usize,
) -> Result<(), SysError> {
    if got == expected {
        Ok(())
    } else {
        Err(len_error(call, what, got, expected))
    }
}

#[cold]
#[inline(never)]
fn len_error(call: &'static str, what: &str, got: usize, expected: usize) -> SysError {
    SysError::invalid_input(
        call,
        format!("{what} is {got} bytes, the map uses {expected}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_attr_sets_fields_and_numa_flag() {
        let mut a = MapCreateAttr::new(MapType::Hash, 4, 8, 16);
        a.name = "sixteen_chars_xx";
        a.numa_node = Some(1);
        a.map_flags = uapi::BPF_F_NO_PREALLOC;
        a.map_extra = 3;
        let raw = a.to_attr();
        // SAFETY: reading the MAP_CREATE member of a union built through it.
        let m = unsafe { raw.__bindgen_anon_1 };
        assert_eq!(m.map_type, uapi::BPF_MAP_TYPE_HASH);
        assert_eq!((m.key_size, m.value_size, m.max_entries), (4, 8, 16));
        assert_eq!(m.map_flags, uapi::BPF_F_NO_PREALLOC | uapi::BPF_F_NUMA_NODE);
        assert_eq!(m.numa_node, 1);
        assert_eq!(m.map_extra, 3);
        assert_eq!(crate::bpf::c_name(&m.map_name), "sixteen_chars_x");
        assert_eq!((m.inner_map_fd, m.btf_fd), (0, 0));
    }

    #[test]
    fn create_attr_leaves_every_other_byte_zero() {
        let raw = MapCreateAttr::new(MapType::Array, 4, 4, 1).to_attr();
        // SAFETY: bpf_attr is plain data; viewing its bytes is fine.
        let bytes: [u8; ATTR_SIZE] = unsafe { std::mem::transmute(raw) };
        assert!(bytes[80..].iter().all(|&b| b == 0));
    }

    #[test]
    fn per_cpu_layout_rounds_each_slot_to_eight_bytes() {
        let l = MapLayout::compute(uapi::BPF_MAP_TYPE_PERCPU_ARRAY, 4, 12, 1, 0, 3);
        assert_eq!(l.value_len, 16 * 3);
        let l = MapLayout::compute(uapi::BPF_MAP_TYPE_HASH, 4, 12, 1, 0, 3);
        assert_eq!(l.value_len, 12);
        assert_eq!(l.batch_token_size(), 4);
        assert_eq!(MapLayout::compute(1, 16, 1, 1, 0, 1).batch_token_size(), 16);
    }

    #[test]
    fn element_attribute_is_the_union_prefix_libbpf_passes() {
        assert_eq!(ELEM_ATTR_SIZE, 32);
        // SAFETY: an fd number no process has; `elem_attr` only copies it.
        let fd = unsafe { BorrowedFd::borrow_raw(7) };
        let m = MapFd {
            fd,
            layout: MapLayout::compute(uapi::BPF_MAP_TYPE_HASH, 4, 8, 1, 0, 1),
        };
        let key = [1u8; 4];
        let a = m.elem_attr(&key, 0x1234, 2);
        assert_eq!(a.map_fd, 7);
        assert_eq!(a.pad, 0);
        assert_eq!(a.key, key.as_ptr() as u64);
        assert_eq!((a.value, a.flags), (0x1234, 2));
        assert_eq!(m.elem_attr(&[], 0, 0).key, 0);
    }

    #[test]
    fn wrong_slice_lengths_name_the_command() {
        let e = check_len("BPF_MAP_LOOKUP_ELEM", "key", 3, 4).unwrap_err();
        assert_eq!(e.call, "BPF_MAP_LOOKUP_ELEM");
        assert!(e
            .source
            .to_string()
            .contains("key is 3 bytes, the map uses 4"));
        assert!(check_len("x", "key", 4, 4).is_ok());
    }
}
