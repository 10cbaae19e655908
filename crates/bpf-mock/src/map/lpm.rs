//! Longest-prefix-match tries (`LPM_TRIE`). A key is the prefix length as a native `u32`, then
//! the data (for IP addresses: network order); bits past the prefix length are ignored for
//! matching but kept, as the kernel keeps the last data written for a prefix.
//!
//! Kernel behaviour kept: a lookup answers the value of the longest stored prefix that covers
//! the key (up to the key's own prefix length; a key longer than the data matches nothing); a
//! prefix length above the data's bits is
//! `EINVAL` for update and delete; `BPF_NOEXIST`/`BPF_EXIST` give `EEXIST`/`ENOENT` (Linux
//! 6.13; older kernels ignore them); a new prefix in a full trie is `ENOSPC` (not `E2BIG`);
//! next key walks in the kernel's post-order (more specific prefixes before the prefix that
//! covers them, 0 bits before 1 bits), and restarts at the first key after a key that is not
//! in the trie or a prefix length out of range.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use bpf_maps::{EXIST, NOEXIST};

use super::Ctx;
use crate::errno::{EEXIST, EINVAL, ENOENT, ENOSPC};

fn bit(data: &[u8], i: u32) -> u8 {
    (data[(i / 8) as usize] >> (7 - i % 8)) & 1
}

fn mask(data: &[u8], prefix: u32) -> Vec<u8> {
    let mut out = data.to_vec();
    for (i, b) in out.iter_mut().enumerate() {
        let start = i as u32 * 8;
        if prefix <= start {
            *b = 0;
        } else if prefix < start + 8 {
            *b &= 0xffu8 << (8 - (prefix - start));
        }
    }
    out
}

/// A prefix, ordered as the kernel's post-order walk visits it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Prefix {
    len: u32,
    bits: Vec<u8>,
}

impl Ord for Prefix {
    fn cmp(&self, other: &Self) -> Ordering {
        let common = self.len.min(other.len);
        for i in 0..common {
            match bit(&self.bits, i).cmp(&bit(&other.bits, i)) {
                Ordering::Equal => {}
                o => return o,
            }
        }
        // One covers the other: the more specific (longer) one comes first.
        other.len.cmp(&self.len)
    }
}

impl PartialOrd for Prefix {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[derive(Debug)]
pub(crate) struct LpmStore {
    data_size: u32,
    /// Prefix → (the data last written for it, the value).
    entries: BTreeMap<Prefix, (Vec<u8>, Vec<u8>)>,
}

impl LpmStore {
    pub(crate) fn new(data_size: u32) -> Self {
        LpmStore {
            data_size,
            entries: BTreeMap::new(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    fn max_prefix(&self) -> u32 {
        self.data_size * 8
    }

    fn split(key: &[u8]) -> (u32, &[u8]) {
        let (p, data) = key.split_at(4.min(key.len()));
        let p = p.try_into().map(u32::from_ne_bytes).unwrap_or(u32::MAX);
        (p, data)
    }

    fn exact(&self, key: &[u8]) -> Option<Prefix> {
        let (len, data) = Self::split(key);
        (len <= self.max_prefix()).then(|| Prefix {
            len,
            bits: mask(data, len),
        })
    }

    pub(crate) fn lookup(&self, key: &[u8], value: &mut [u8]) -> Result<(), i32> {
        let (len, data) = Self::split(key);
        // A key longer than the data's bits matches nothing (Linux 6.x).
        if len > self.max_prefix() {
            return Err(ENOENT);
        }
        let best = self
            .entries
            .iter()
            .filter(|(p, _)| p.len <= len && mask(data, p.len) == p.bits)
            .max_by_key(|(p, _)| p.len)
            .ok_or(ENOENT)?;
        value.copy_from_slice(&best.1 .1);
        Ok(())
    }

    pub(crate) fn update(
        &mut self,
        ctx: Ctx,
        key: &[u8],
        value: &[u8],
        flags: u64,
    ) -> Result<(), i32> {
        if flags > EXIST {
            return Err(EINVAL);
        }
        let prefix = self.exact(key).ok_or(EINVAL)?;
        let exists = self.entries.contains_key(&prefix);
        if flags == NOEXIST && exists {
            return Err(EEXIST);
        }
        if flags == EXIST && !exists {
            return Err(ENOENT);
        }
        if !exists && self.entries.len() >= ctx.max_entries as usize {
            return Err(ENOSPC);
        }
        let (_, data) = Self::split(key);
        self.entries.insert(prefix, (data.to_vec(), value.to_vec()));
        Ok(())
    }

    pub(crate) fn delete(&mut self, key: &[u8]) -> Result<(), i32> {
        let prefix = self.exact(key).ok_or(EINVAL)?;
        self.entries.remove(&prefix).map(|_| ()).ok_or(ENOENT)
    }

    pub(crate) fn next_key(&self, key: Option<&[u8]>) -> Option<Vec<u8>> {
        let known = key
            .and_then(|k| self.exact(k))
            .filter(|p| self.entries.contains_key(p));
        let next = match known {
            None => self.entries.iter().next(),
            Some(p) => {
                use std::ops::Bound::{Excluded, Unbounded};
                self.entries.range((Excluded(p), Unbounded)).next()
            }
        };
        next.map(|(p, (data, _))| {
            let mut k = p.len.to_ne_bytes().to_vec();
            k.extend_from_slice(data);
            k
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(len: u32, bits: [u8; 1]) -> Prefix {
        Prefix {
            len,
            bits: mask(&bits, len),
        }
    }

    #[test]
    fn post_order_puts_children_first_and_zero_bits_left() {
        let mut v = vec![
            p(0, [0]),
            p(1, [0x80]),
            p(2, [0x40]),
            p(1, [0]),
            p(8, [0x01]),
        ];
        v.sort();
        assert_eq!(
            v,
            vec![
                p(8, [0x01]),
                p(2, [0x40]),
                p(1, [0]),
                p(1, [0x80]),
                p(0, [0])
            ]
        );
    }

    #[test]
    fn mask_clears_bits_past_the_prefix() {
        assert_eq!(mask(&[0xff, 0xff], 12), vec![0xff, 0xf0]);
        assert_eq!(mask(&[0xff, 0xff], 0), vec![0, 0]);
        assert_eq!(mask(&[0xab, 0xcd], 16), vec![0xab, 0xcd]);
    }
}
