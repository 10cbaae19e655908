//! BTF: `BPF_BTF_LOAD`, and a tiny builder for hand-assembled BTF blobs.
//!
//! The builder ([`RawBtf`]) covers what the feature probes and tests need (integers and structs);
//! parsing and emitting real BTF belongs to `bpf-elf`.

use std::os::fd::OwnedFd;

use crate::bpf::{len_u32, slice_u64, sys_bpf_fd, Cmd, LogBuf};
use crate::uapi::{self, bpf_attr};
use crate::SysError;

/// `BPF_BTF_LOAD` (Linux 4.18): loads a raw BTF blob (header, type and string sections),
/// returning its fd.
///
/// With `log`, the BTF checker writes its log there; after the call [`LogBuf::text`] holds it
/// and [`LogBuf::true_size`] the size it needs (`btf_log_true_size`, Linux 6.4). A malformed blob
/// gives `EINVAL` and a log that says why.
#[doc(alias = "BPF_BTF_LOAD")]
pub fn load(data: &[u8], log: Option<&mut LogBuf<'_>>) -> Result<OwnedFd, SysError> {
    let call = Cmd::BtfLoad.name();
    // Field by field into the zeroed union (a whole-struct assignment would copy padding).
    let mut attr = bpf_attr::default();
    attr.__bindgen_anon_7.btf = slice_u64(data);
    attr.__bindgen_anon_7.btf_size = len_u32(call, "btf", data.len())?;
    let mut log = log;
    if let Some(log) = log.as_deref_mut() {
        let (buf, size, level) = log.raw_parts();
        attr.__bindgen_anon_7.btf_log_buf = buf;
        attr.__bindgen_anon_7.btf_log_size = size;
        attr.__bindgen_anon_7.btf_log_level = level;
    }
    // SAFETY: `btf` points to `data` (`btf_size` bytes the kernel reads), `btf_log_buf` to the
    // log's buffer of `btf_log_size` bytes it writes; both outlive the call. BTF_LOAD returns a
    // new fd.
    let ret = unsafe { sys_bpf_fd(Cmd::BtfLoad, &mut attr) };
    if let Some(log) = log {
        // SAFETY: reading a plain `u32` of the union the kernel filled.
        log.set_true_size(unsafe { attr.__bindgen_anon_7.btf_log_true_size });
    }
    ret
}

/// A hand-assembled BTF blob: integer and struct types, and their names.
///
/// ```
/// # use bpf_sys::btf::RawBtf;
/// let mut btf = RawBtf::new();
/// let int = btf.add_int("int", 4, true);
/// let pair = btf.add_struct("pair", 8, &[("a", int, 0), ("b", int, 32)]);
/// assert_eq!((int, pair), (1, 2));
/// let blob = btf.to_bytes();
/// assert_eq!(&blob[..2], &0xeb9fu16.to_le_bytes());
/// ```
#[derive(Debug, Clone)]
pub struct RawBtf {
    types: Vec<u8>,
    strings: Vec<u8>,
    count: u32,
}

impl Default for RawBtf {
    fn default() -> Self {
        Self::new()
    }
}

impl RawBtf {
    /// An empty blob (type 0 is `void`; the string section starts with the empty string).
    pub fn new() -> Self {
        RawBtf {
            types: Vec::new(),
            strings: vec![0],
            count: 0,
        }
    }

    /// Adds a name to the string section, returning its offset (0 for the empty name).
    pub fn add_string(&mut self, s: &str) -> u32 {
        if s.is_empty() {
            return 0;
        }
        let off = self.strings.len() as u32;
        self.strings.extend_from_slice(s.as_bytes());
        self.strings.push(0);
        off
    }

    fn push_u32(&mut self, v: u32) {
        self.types.extend_from_slice(&v.to_ne_bytes());
    }

    fn push_type(&mut self, name_off: u32, kind: u32, vlen: u32, size_or_type: u32) -> u32 {
        self.push_u32(name_off);
        self.push_u32((kind << 24) | (vlen & 0xffff));
        self.push_u32(size_or_type);
        self.count += 1;
        self.count
    }

    /// Adds an integer of `size` bytes (`BTF_KIND_INT`), returning its type id.
    pub fn add_int(&mut self, name: &str, size: u32, signed: bool) -> u32 {
        let name_off = self.add_string(name);
        let id = self.push_type(name_off, uapi::BTF_KIND_INT, 0, size);
        let encoding = if signed { uapi::BTF_INT_SIGNED } else { 0 };
        self.push_u32((encoding << 24) | (size * 8));
        id
    }

    /// Adds a struct of `size` bytes (`BTF_KIND_STRUCT`) with members `(name, type id, bit
    /// offset)`, returning its type id.
    pub fn add_struct(&mut self, name: &str, size: u32, members: &[(&str, u32, u32)]) -> u32 {
        let name_off = self.add_string(name);
        let names: Vec<u32> = members.iter().map(|(n, _, _)| self.add_string(n)).collect();
        let id = self.push_type(name_off, uapi::BTF_KIND_STRUCT, members.len() as u32, size);
        for ((_, ty, off), n) in members.iter().zip(names) {
            self.push_u32(n);
            self.push_u32(*ty);
            self.push_u32(*off);
        }
        id
    }

    /// The blob: header, types, strings (native byte order, as the kernel wants).
    pub fn to_bytes(&self) -> Vec<u8> {
        let hdr_len = std::mem::size_of::<uapi::btf_header>() as u32;
        let type_len = self.types.len() as u32;
        let mut out = Vec::with_capacity(hdr_len as usize + self.types.len() + self.strings.len());
        out.extend_from_slice(&(uapi::BTF_MAGIC as u16).to_ne_bytes());
        out.push(uapi::BTF_VERSION as u8);
        out.push(0); // flags
        for v in [hdr_len, 0, type_len, type_len, self.strings.len() as u32] {
            out.extend_from_slice(&v.to_ne_bytes());
        }
        out.extend_from_slice(&self.types);
        out.extend_from_slice(&self.strings);
        out
    }
}

/// The BTF libbpf loads to probe local-storage maps: `[1] int`, `[2] struct bpf_spin_lock { int
/// val; }`, `[3] struct val { int cnt; struct bpf_spin_lock l; }` (8 bytes).
pub fn local_storage_probe_btf() -> Vec<u8> {
    let mut b = RawBtf::new();
    let int = b.add_int("", 4, true);
    let lock = b.add_struct("bpf_spin_lock", 4, &[("val", int, 0)]);
    b.add_struct("val", 8, &[("cnt", int, 0), ("l", lock, 32)]);
    b.to_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_describes_the_sections() {
        let mut b = RawBtf::new();
        b.add_int("int", 4, true);
        let blob = b.to_bytes();
        let u32_at = |o: usize| u32::from_ne_bytes(blob[o..o + 4].try_into().unwrap());
        assert_eq!(u16::from_ne_bytes([blob[0], blob[1]]), 0xeb9f);
        assert_eq!(blob[2], 1);
        assert_eq!(u32_at(4), 24); // hdr_len
        assert_eq!(u32_at(8), 0); // type_off
        assert_eq!(u32_at(12), 16); // one int: 12 + 4 bytes
        assert_eq!(u32_at(16), 16); // str_off
        assert_eq!(u32_at(20), 5); // "\0int\0"
        assert_eq!(&blob[24 + 16..], b"\0int\0");
        // name_off 1, kind INT, size 4, encoding signed, 32 bits.
        assert_eq!(u32_at(24), 1);
        assert_eq!(u32_at(28), 1 << 24);
        assert_eq!(u32_at(32), 4);
        assert_eq!(u32_at(36), (1 << 24) | 32);
    }

    #[test]
    fn local_storage_btf_matches_libbpfs_layout() {
        let blob = local_storage_probe_btf();
        // types: int (16) + struct with 1 member (24) + struct with 2 members (36).
        assert_eq!(u32::from_ne_bytes(blob[12..16].try_into().unwrap()), 76);
        assert_eq!(&blob[24 + 76..], b"\0bpf_spin_lock\0val\0val\0cnt\0l\0");
    }
}
