//! Program arrays for tail calls: [`ProgramArray`].

use std::os::fd::{AsFd, AsRawFd};

use crate::error::MapError;
use crate::typed::{check, found, view_common};
use crate::{Map, MapType, ANY};

/// A program array (`BPF_MAP_TYPE_PROG_ARRAY`, Linux 4.2): the table of `bpf_tail_call`.
/// Slots are set from program fds and read back as program ids.
///
/// ```no_run
/// # fn prog() -> std::os::fd::OwnedFd { unimplemented!() }
/// use bpf_maps::{KernelMap, ProgramArray};
///
/// let jmp = KernelMap::from_pin("/sys/fs/bpf/jmp_table")?;
/// let table = ProgramArray::new(&jmp)?;
/// table.set(0, &prog())?;
/// # Ok::<(), bpf_maps::MapError>(())
/// ```
#[doc(alias = "BPF_MAP_TYPE_PROG_ARRAY")]
#[derive(Debug)]
pub struct ProgramArray<M> {
    map: M,
}

view_common!(ProgramArray<M>);

impl<M: Map> ProgramArray<M> {
    /// A typed view of a program array.
    pub fn new(map: M) -> Result<Self, MapError> {
        check(
            &map,
            "ProgramArray",
            &[MapType::ProgArray],
            Some(4),
            Some(4),
        )?;
        Ok(ProgramArray { map })
    }

    /// Puts the program `prog` at `index`.
    pub fn set(&self, index: u32, prog: &impl AsFd) -> Result<(), MapError> {
        let fd = prog.as_fd().as_raw_fd().to_ne_bytes();
        self.map.update_elem(&index.to_ne_bytes(), &fd, ANY)
    }

    /// The id of the program at `index`, `None` for an empty slot.
    pub fn get(&self, index: u32) -> Result<Option<u32>, MapError> {
        let mut id = [0u8; 4];
        found(self.map.lookup_elem(&index.to_ne_bytes(), &mut id, 0))
            .map(|o| o.map(|()| u32::from_ne_bytes(id)))
    }

    /// Empties the slot at `index` (`ENOENT` if it was empty).
    pub fn clear(&self, index: u32) -> Result<(), MapError> {
        self.map.delete_elem(&index.to_ne_bytes())
    }

    /// The indices that hold a program.
    pub fn indices(&self) -> impl Iterator<Item = Result<u32, MapError>> + '_ {
        (0..self.map.max_entries())
            .filter_map(move |i| self.get(i).transpose().map(|r| r.map(|_| i)))
    }
}
