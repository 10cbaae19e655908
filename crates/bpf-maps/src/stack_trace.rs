//! Stack traces collected by `bpf_get_stackid`: [`StackTraceMap`].

use crate::error::MapError;
use crate::iter::TypedKeys;
use crate::typed::{check, found, view_common};
use crate::{Map, MapType};

/// Stack traces by id (`BPF_MAP_TYPE_STACK_TRACE`, Linux 4.6): each value is up to
/// `value_size / 8` instruction pointers, unused frames zero.
///
/// ```no_run
/// use bpf_maps::{KernelMap, StackTraceMap};
///
/// let stacks = StackTraceMap::new(KernelMap::from_pin("/sys/fs/bpf/stacks")?)?;
/// let mut frames = vec![0u64; stacks.max_depth()];
/// for id in stacks.stack_ids() {
///     let id = id?;
///     if let Some(n) = stacks.get_into(id, &mut frames)? {
///         println!("{id}: {:x?}", &frames[..n]);
///     }
/// }
/// # Ok::<(), bpf_maps::MapError>(())
/// ```
#[doc(alias = "BPF_MAP_TYPE_STACK_TRACE")]
#[derive(Debug)]
pub struct StackTraceMap<M> {
    map: M,
}

view_common!(StackTraceMap<M>);

impl<M: Map> StackTraceMap<M> {
    /// A typed view (values of 8-byte frames).
    pub fn new(map: M) -> Result<Self, MapError> {
        check(&map, "StackTraceMap", &[MapType::StackTrace], Some(4), None)?;
        if map.value_size() % 8 != 0 || map.value_size() == 0 {
            let v = (map.value_size() as usize).div_ceil(8).max(1) * 8;
            check(&map, "StackTraceMap", &[MapType::StackTrace], None, Some(v))?;
        }
        Ok(StackTraceMap { map })
    }

    /// The most frames a trace holds.
    pub fn max_depth(&self) -> usize {
        self.map.value_size() as usize / 8
    }

    /// Reads the trace `id` into `frames` (at least [`StackTraceMap::max_depth`] long) and
    /// returns the number of frames, `None` when there is no such trace.
    pub fn get_into(&self, id: u32, frames: &mut [u64]) -> Result<Option<usize>, MapError> {
        let depth = self.max_depth();
        if frames.len() < depth {
            return Err(MapError::size(
                self.map.name(),
                crate::Part::Value,
                frames.len() * 8,
                depth * 8,
            ));
        }
        let buf = bytemuck::cast_slice_mut(&mut frames[..depth]);
        found(self.map.lookup_elem(&id.to_ne_bytes(), buf, 0))
            .map(|o| o.map(|()| frames[..depth].iter().take_while(|&&ip| ip != 0).count()))
    }

    /// The trace `id` (allocates; see [`StackTraceMap::get_into`]).
    pub fn get(&self, id: u32) -> Result<Option<Vec<u64>>, MapError> {
        let mut frames = vec![0u64; self.max_depth()];
        Ok(self.get_into(id, &mut frames)?.map(|n| {
            frames.truncate(n);
            frames
        }))
    }

    /// Removes the trace `id`.
    pub fn remove(&self, id: u32) -> Result<(), MapError> {
        self.map.delete_elem(&id.to_ne_bytes())
    }

    /// The ids of the stored traces.
    pub fn stack_ids(&self) -> TypedKeys<'_, M, u32> {
        TypedKeys::new(&self.map)
    }
}
