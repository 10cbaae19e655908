//! Packet helpers: `skb_load_bytes`, `skb_store_bytes`, the checksum helpers and the XDP
//! head, meta and tail adjustments.

use super::context::XDP_FRAME_SIZE;
use super::exec::Machine;
use super::memory::{CtxKind, PACKET};
use super::InterpError;

const EINVAL: i64 = 22;
const EFAULT: i64 = 14;
const EACCES: i64 = 13;
const ETH_HLEN: usize = 14;

fn neg(errno: i64) -> u64 {
    (-errno) as u64
}

impl Machine<'_, '_> {
    fn skb_bytes(&self, off: u64, len: u64) -> Option<(usize, usize)> {
        if self.st.ctx == CtxKind::Raw {
            return None;
        }
        let (start, end) = super::context::packet_bounds(self.st);
        let off = usize::try_from(off as u32).ok()?;
        let s = start.checked_add(off)?;
        let e = s.checked_add(len as usize)?;
        (e <= end).then_some((s, e))
    }

    pub(crate) fn skb_load_bytes(
        &mut self,
        prog: usize,
        insn: usize,
        a: [u64; 5],
    ) -> Result<u64, InterpError> {
        match self.skb_bytes(a[1], a[3]) {
            Some((s, e)) => {
                let bytes = self.st.regions[PACKET].data[s..e].to_vec();
                self.write(prog, insn, a[2], &bytes)?;
                Ok(0)
            }
            None => {
                self.write(prog, insn, a[2], &vec![0u8; a[3] as usize])?;
                Ok(neg(EFAULT))
            }
        }
    }

    pub(crate) fn skb_store_bytes(
        &mut self,
        prog: usize,
        insn: usize,
        a: [u64; 5],
    ) -> Result<u64, InterpError> {
        let from = self.read(prog, insn, a[2], a[3] as usize)?;
        if a[4] & !3 != 0 {
            return Ok(neg(EINVAL));
        }
        match self.skb_bytes(a[1], a[3]) {
            Some((s, e)) => {
                let p = &mut self.st.regions[PACKET];
                p.data[s..e].copy_from_slice(&from);
                p.dirty = true;
                Ok(0)
            }
            None => Ok(neg(EFAULT)),
        }
    }

    pub(crate) fn csum_replace(
        &mut self,
        prog: usize,
        insn: usize,
        id: i32,
        a: [u64; 5],
    ) -> Result<u64, InterpError> {
        let flags = a[4];
        let size = flags & 0xf;
        let mangled0 = id == 11 && flags & 0x20 != 0;
        let allowed = if id == 10 {
            0xf
        } else {
            0xf | 0x10 | 0x20 | 0x40
        };
        if flags & !allowed != 0 || !matches!(size, 0 | 2 | 4) {
            return Ok(neg(EINVAL));
        }
        let Some((s, _)) = self.skb_bytes(a[1], 2) else {
            return Ok(neg(EFAULT));
        };
        let _ = (prog, insn);
        let p = &mut self.st.regions[PACKET];
        let old = u16::from_le_bytes([p.data[s], p.data[s + 1]]);
        if mangled0 && old == 0 {
            return Ok(0);
        }
        let (from, to) = (a[2], a[3]);
        let acc = match size {
            0 => csum_add(to as u32, !(old as u32) & 0xffff),
            2 => csum_add(
                csum_add(!(old as u32) & 0xffff, !(from as u16) as u32),
                to as u16 as u32,
            ),
            _ => csum_add(csum_add(!(old as u32) & 0xffff, !(from as u32)), to as u32),
        };
        let mut new = csum_fold(acc);
        if mangled0 && new == 0 {
            new = 0xffff;
        }
        p.data[s..s + 2].copy_from_slice(&new.to_le_bytes());
        p.dirty = true;
        Ok(0)
    }

    pub(crate) fn xdp_adjust_head(&mut self, delta: i64) -> u64 {
        if self.st.ctx != CtxKind::Xdp {
            return neg(EINVAL);
        }
        let x = self.st.xdp;
        let metalen = x.data - x.meta;
        let data = x.data as i64 + delta;
        if data < (XDP_FRAME_SIZE + metalen) as i64 || data > x.end as i64 - ETH_HLEN as i64 {
            return neg(EINVAL);
        }
        let data = data as usize;
        let meta = (x.meta as i64 + delta) as usize;
        let p = &mut self.st.regions[PACKET];
        if metalen > 0 {
            p.data.copy_within(x.meta..x.data, meta);
        }
        self.st.xdp.meta = meta;
        self.st.xdp.data = data;
        p.lo = meta;
        self.st.touched.0 = self.st.touched.0.min(meta);
        0
    }

    pub(crate) fn xdp_adjust_meta(&mut self, delta: i64) -> u64 {
        if self.st.ctx != CtxKind::Xdp {
            return neg(EINVAL);
        }
        let x = self.st.xdp;
        let meta = x.meta as i64 + delta;
        if meta < XDP_FRAME_SIZE as i64 || meta > x.data as i64 {
            return neg(EINVAL);
        }
        let metalen = x.data - meta as usize;
        if metalen % 4 != 0 || metalen > 32 {
            return neg(EACCES);
        }
        self.st.xdp.meta = meta as usize;
        self.st.regions[PACKET].lo = meta as usize;
        self.st.touched.0 = self.st.touched.0.min(meta as usize);
        0
    }

    pub(crate) fn xdp_adjust_tail(&mut self, delta: i64) -> u64 {
        if self.st.ctx != CtxKind::Xdp {
            return neg(EINVAL);
        }
        let x = self.st.xdp;
        let end = x.end as i64 + delta;
        if end > x.hard_end as i64 {
            return neg(EINVAL);
        }
        if end < (x.data + ETH_HLEN) as i64 {
            return neg(EINVAL);
        }
        let end = end as usize;
        let p = &mut self.st.regions[PACKET];
        if end > x.end {
            p.data[x.end..end].fill(0);
        }
        self.st.xdp.end = end;
        p.hi = end;
        self.st.touched.1 = self.st.touched.1.max(end);
        0
    }
}

/// Ones'-complement 32-bit addition.
fn csum_add(a: u32, b: u32) -> u32 {
    let (s, carry) = a.overflowing_add(b);
    s.wrapping_add(carry as u32)
}

/// `csum_fold`: the 16-bit complement of the folded sum.
fn csum_fold(c: u32) -> u16 {
    let mut s = (c & 0xffff) + (c >> 16);
    s = (s & 0xffff) + (s >> 16);
    !(s as u16)
}

/// `bpf_csum_diff`: `csum_partial` of the complemented `from` words then the `to` words, seeded.
pub(crate) fn csum_diff(from: &[u8], to: &[u8], seed: u32) -> u32 {
    let mut sum: u64 = 0;
    for w in from.chunks_exact(4) {
        sum += !u32::from_le_bytes([w[0], w[1], w[2], w[3]]) as u64;
    }
    for w in to.chunks_exact(4) {
        sum += u32::from_le_bytes([w[0], w[1], w[2], w[3]]) as u64;
    }
    let folded = csum_add((sum >> 32) as u32, sum as u32);
    csum_add(folded, seed)
}

#[cfg(test)]
pub(crate) fn csum_fold_for_tests(c: u32) -> u16 {
    csum_fold(c)
}

#[cfg(test)]
pub(crate) fn csum_diff_for_tests(from: &[u8], to: &[u8], seed: u32) -> u32 {
    csum_diff(from, to, seed)
}
