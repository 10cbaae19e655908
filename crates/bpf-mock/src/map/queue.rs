//! Maps without keys: `QUEUE` (FIFO), `STACK` (LIFO) and `BLOOM_FILTER`.
//!
//! Kernel behaviour kept: push with `BPF_ANY` on a full map is `E2BIG`, with `BPF_EXIST` it
//! drops the oldest element (for a stack too: the bottom one); `BPF_NOEXIST` or another flag is
//! `EINVAL`; pop and peek of an empty map are `ENOENT`. The mock bloom filter is exact (no false
//! positives), which the kernel's contract allows.

use std::collections::{BTreeSet, VecDeque};

use bpf_maps::{ANY, EXIST, NOEXIST};

use super::Ctx;
use crate::errno::{E2BIG, EINVAL, ENOENT};

#[derive(Debug)]
pub(crate) struct Fifo {
    stack: bool,
    /// Oldest at the front.
    items: VecDeque<Vec<u8>>,
}

impl Fifo {
    pub(crate) fn new(stack: bool) -> Self {
        Fifo {
            stack,
            items: VecDeque::new(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    pub(crate) fn push(&mut self, ctx: Ctx, value: &[u8], flags: u64) -> Result<(), i32> {
        if flags & NOEXIST != 0 || flags > EXIST {
            return Err(EINVAL);
        }
        if self.items.len() >= ctx.max_entries as usize {
            if flags & EXIST == 0 {
                return Err(E2BIG);
            }
            self.items.pop_front();
        }
        self.items.push_back(value.to_vec());
        Ok(())
    }

    fn next(&self) -> Option<&Vec<u8>> {
        if self.stack {
            self.items.back()
        } else {
            self.items.front()
        }
    }

    pub(crate) fn peek(&self, value: &mut [u8]) -> Result<(), i32> {
        value.copy_from_slice(self.next().ok_or(ENOENT)?);
        Ok(())
    }

    pub(crate) fn pop(&mut self, value: &mut [u8]) -> Result<(), i32> {
        self.peek(value)?;
        if self.stack {
            self.items.pop_back();
        } else {
            self.items.pop_front();
        }
        Ok(())
    }
}

#[derive(Debug, Default)]
pub(crate) struct Bloom {
    values: BTreeSet<Vec<u8>>,
}

impl Bloom {
    pub(crate) fn len(&self) -> usize {
        self.values.len()
    }

    pub(crate) fn push(&mut self, value: &[u8], flags: u64) -> Result<(), i32> {
        if flags != ANY {
            return Err(EINVAL);
        }
        self.values.insert(value.to_vec());
        Ok(())
    }

    pub(crate) fn peek(&self, value: &mut [u8]) -> Result<(), i32> {
        if self.values.contains(value) {
            Ok(())
        } else {
            Err(ENOENT)
        }
    }
}
