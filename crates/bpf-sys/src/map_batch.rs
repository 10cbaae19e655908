//! The batch map commands (Linux 5.6): `BPF_MAP_LOOKUP_BATCH`, `BPF_MAP_LOOKUP_AND_DELETE_BATCH`,
//! `BPF_MAP_UPDATE_BATCH`, `BPF_MAP_DELETE_BATCH`, as methods of [`MapFd`].
//!
//! Keys and values travel as packed arrays: `count` keys of [`MapLayout::key_size`] bytes each
//! and `count` values of [`MapLayout::value_len`] bytes each. The slices may be longer than
//! `count` elements, never shorter (checked before the call).
//!
//! A lookup walks the map in steps: pass `None` as `in_batch` the first time and the `out_batch`
//! the kernel filled as `in_batch` the next time, until [`Batch::done`]. The kernel says "that was
//! the last batch" with `ENOENT`, which may come with elements (`count > 0`); that is reported as
//! `Ok(Batch { done: true, count })`, not as an error. A hash bucket with more elements than
//! `count` gives `ENOSPC`: retry with larger buffers.
//!
//! [`MapLayout::key_size`]: crate::map::MapLayout::key_size
//! [`MapLayout::value_len`]: crate::map::MapLayout::value_len

use crate::bpf::{slice_mut_u64, slice_u64, sys_bpf, Cmd};
use crate::error::BatchError;
use crate::map::{raw_fd, MapFd, StableFd};
use crate::uapi::bpf_attr;
use crate::SysError;

/// The bytes of the union the batch commands read: up to the end of the batch member's `flags`
/// (libbpf's `offsetofend(union bpf_attr, batch.flags)`, 56). The rest of the zeroed union is not
/// passed: the kernel zeroes its own copy past `size`.
pub const BATCH_ATTR_SIZE: usize =
    std::mem::offset_of!(crate::uapi::bpf_attr__bindgen_ty_3, flags) + size_of::<u64>();

/// The flags of a batch command.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchFlags {
    /// Per-element flags (`BPF_ANY`, `BPF_NOEXIST`, `BPF_EXIST`, `BPF_F_LOCK`).
    pub elem_flags: u64,
    /// Flags of the whole command (none are defined yet: 0).
    pub flags: u64,
}

/// What a lookup batch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batch {
    /// Elements copied into the key and value buffers.
    pub count: u32,
    /// The walk reached the end of the map (the kernel answered `ENOENT`); `count` may still be
    /// non-zero.
    pub done: bool,
}

impl<F: StableFd> MapFd<F> {
    /// Checks the buffers of a batch of `count` elements and fills the attribute.
    fn batch_attr(
        &self,
        call: &'static str,
        keys: (u64, usize),
        values: Option<(u64, usize)>,
        count: u32,
        flags: BatchFlags,
    ) -> Result<bpf_attr, BatchError> {
        let err = |msg: String| BatchError {
            count: 0,
            source: SysError::invalid_input(call, msg),
        };
        let layout = self.layout();
        let need_keys = (count as usize).checked_mul(layout.key_size as usize);
        if need_keys.is_none_or(|n| keys.1 < n) {
            return Err(err(format!(
                "keys buffer is {} bytes, {count} keys of {} bytes do not fit",
                keys.1, layout.key_size
            )));
        }
        if let Some(values) = values {
            let need = (count as usize).checked_mul(layout.value_len);
            if need.is_none_or(|n| values.1 < n) {
                return Err(err(format!(
                    "values buffer is {} bytes, {count} values of {} bytes do not fit",
                    values.1, layout.value_len
                )));
            }
        }
        let mut attr = bpf_attr::default();
        attr.batch.map_fd = raw_fd(self.fd());
        attr.batch.keys = keys.0;
        attr.batch.values = values.map_or(0, |v| v.0);
        attr.batch.count = count;
        attr.batch.elem_flags = flags.elem_flags;
        attr.batch.flags = flags.flags;
        Ok(attr)
    }

    fn check_token(&self, call: &'static str, what: &str, len: usize) -> Result<(), BatchError> {
        let need = self.layout().batch_token_size();
        if len < need {
            return Err(BatchError {
                count: 0,
                source: SysError::invalid_input(
                    call,
                    format!("{what} is {len} bytes, the map's batch cursor needs {need}"),
                ),
            });
        }
        Ok(())
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "the two public lookups forward their own"
    )]
    fn lookup_batch_cmd(
        &self,
        cmd: Cmd,
        in_batch: Option<&[u8]>,
        out_batch: &mut [u8],
        keys: &mut [u8],
        values: &mut [u8],
        count: u32,
        flags: BatchFlags,
    ) -> Result<Batch, BatchError> {
        let call = cmd.name();
        if let Some(b) = in_batch {
            self.check_token(call, "in_batch", b.len())?;
        }
        self.check_token(call, "out_batch", out_batch.len())?;
        let mut attr = self.batch_attr(
            call,
            (slice_mut_u64(keys), keys.len()),
            Some((slice_mut_u64(values), values.len())),
            count,
            flags,
        )?;
        attr.batch.in_batch = in_batch.map_or(0, slice_u64);
        attr.batch.out_batch = slice_mut_u64(out_batch);
        // SAFETY: the kernel reads the cursor from `in_batch` and writes one to `out_batch`
        // (both at least the cursor size, checked), writes at most `count` keys and values to
        // `keys` and `values` (checked to hold `count` of the map's sizes); all borrows outlive
        // the call. It writes the processed count back into `attr.batch.count`.
        let ret = unsafe { sys_bpf(cmd, &mut attr, BATCH_ATTR_SIZE) };
        // SAFETY: reading a plain `u32` of the union the kernel filled.
        let done_count = unsafe { attr.batch.count };
        match ret {
            Ok(_) => Ok(Batch {
                count: done_count,
                done: false,
            }),
            Err(e) if e.is_errno(libc::ENOENT) => Ok(Batch {
                count: done_count,
                done: true,
            }),
            Err(source) => Err(BatchError {
                count: done_count,
                source,
            }),
        }
    }

    /// `BPF_MAP_LOOKUP_BATCH`: copies up to `count` elements after the cursor `in_batch`
    /// (`None`: from the start) into `keys` and `values`, and the next cursor into `out_batch`
    /// ([`MapLayout::batch_token_size`](crate::map::MapLayout::batch_token_size) bytes).
    #[doc(alias = "BPF_MAP_LOOKUP_BATCH")]
    pub fn lookup_batch(
        &self,
        in_batch: Option<&[u8]>,
        out_batch: &mut [u8],
        keys: &mut [u8],
        values: &mut [u8],
        count: u32,
        flags: BatchFlags,
    ) -> Result<Batch, BatchError> {
        self.lookup_batch_cmd(
            Cmd::MapLookupBatch,
            in_batch,
            out_batch,
            keys,
            values,
            count,
            flags,
        )
    }

    /// `BPF_MAP_LOOKUP_AND_DELETE_BATCH`: as [`MapFd::lookup_batch`], and removes the elements
    /// it returns (hash maps only).
    #[doc(alias = "BPF_MAP_LOOKUP_AND_DELETE_BATCH")]
    pub fn lookup_and_delete_batch(
        &self,
        in_batch: Option<&[u8]>,
        out_batch: &mut [u8],
        keys: &mut [u8],
        values: &mut [u8],
        count: u32,
        flags: BatchFlags,
    ) -> Result<Batch, BatchError> {
        self.lookup_batch_cmd(
            Cmd::MapLookupAndDeleteBatch,
            in_batch,
            out_batch,
            keys,
            values,
            count,
            flags,
        )
    }

    /// `BPF_MAP_UPDATE_BATCH`: sets the first `count` keys of `keys` to the matching values.
    ///
    /// Returns `count`; on failure the error says how many elements were applied before it.
    #[doc(alias = "BPF_MAP_UPDATE_BATCH")]
    pub fn update_batch(
        &self,
        keys: &[u8],
        values: &[u8],
        count: u32,
        flags: BatchFlags,
    ) -> Result<u32, BatchError> {
        let cmd = Cmd::MapUpdateBatch;
        let mut attr = self.batch_attr(
            cmd.name(),
            (slice_u64(keys), keys.len()),
            Some((slice_u64(values), values.len())),
            count,
            flags,
        )?;
        // SAFETY: the kernel reads `count` keys and values of the map's sizes from `keys` and
        // `values` (checked to hold them); both borrows outlive the call.
        let ret = unsafe { sys_bpf(cmd, &mut attr, BATCH_ATTR_SIZE) };
        finish(ret, &attr)
    }

    /// `BPF_MAP_DELETE_BATCH`: removes the first `count` keys of `keys`.
    ///
    /// Returns `count`; on failure (`ENOENT` for a missing key) the error says how many keys were
    /// removed before it.
    #[doc(alias = "BPF_MAP_DELETE_BATCH")]
    pub fn delete_batch(
        &self,
        keys: &[u8],
        count: u32,
        flags: BatchFlags,
    ) -> Result<u32, BatchError> {
        let cmd = Cmd::MapDeleteBatch;
        let mut attr = self.batch_attr(
            cmd.name(),
            (slice_u64(keys), keys.len()),
            None,
            count,
            flags,
        )?;
        // SAFETY: the kernel reads `count` keys of the map's key size from `keys` (checked);
        // the borrow outlives the call.
        let ret = unsafe { sys_bpf(cmd, &mut attr, BATCH_ATTR_SIZE) };
        finish(ret, &attr)
    }
}

fn finish(ret: Result<libc::c_long, SysError>, attr: &bpf_attr) -> Result<u32, BatchError> {
    // SAFETY: reading a plain `u32` of the union the kernel filled.
    let count = unsafe { attr.batch.count };
    match ret {
        Ok(_) => Ok(count),
        Err(source) => Err(BatchError { count, source }),
    }
}
