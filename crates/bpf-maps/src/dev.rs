//! XDP redirect targets: [`DevMap`], [`DevMapHash`], [`CpuMap`], [`XskMap`].

use std::marker::PhantomData;
use std::os::fd::{AsRawFd, BorrowedFd};

use crate::error::MapError;
use crate::typed::{check, found, view_common};
use crate::{Map, MapType, ANY};

/// A device or CPU map value: the target (ifindex or queue size) and the id of the XDP
/// program run on it, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TargetValue {
    /// The interface index (device maps) or queue size (CPU maps).
    pub target: u32,
    /// The id of the program attached to the entry (8-byte values only).
    pub prog_id: Option<u32>,
}

/// Writes `{ u32 target; int prog_fd }` (8 bytes) or `u32 target` (4 bytes).
fn encode(map: &impl Map, target: u32, prog: Option<BorrowedFd<'_>>) -> Result<[u8; 8], MapError> {
    let mut v = [0u8; 8];
    v[..4].copy_from_slice(&target.to_ne_bytes());
    match (prog, map.value_size()) {
        (Some(p), 8) => v[4..].copy_from_slice(&p.as_raw_fd().to_ne_bytes()),
        (Some(_), _) => {
            return Err(MapError::Unsupported {
                op: "a program on an entry (4-byte values)",
                map: map.name().to_string(),
                map_type: map.map_type(),
            })
        }
        (None, _) => {}
    }
    Ok(v)
}

fn decode(v: &[u8; 8], size: u32) -> TargetValue {
    let id = u32::from_ne_bytes([v[4], v[5], v[6], v[7]]);
    TargetValue {
        target: u32::from_ne_bytes([v[0], v[1], v[2], v[3]]),
        prog_id: (size == 8 && id != 0).then_some(id),
    }
}

macro_rules! target_map {
    ($(#[$m:meta])* $name:ident, $ty:expr, $what:literal) => {
        $(#[$m])*
        #[derive(Debug)]
        pub struct $name<M> {
            map: M,
        }

        view_common!($name<M>);

        impl<M: Map> $name<M> {
            /// A typed view (values of 4 or 8 bytes).
            pub fn new(map: M) -> Result<Self, MapError> {
                check(&map, stringify!($name), &[$ty], Some(4), None)?;
                if !matches!(map.value_size(), 4 | 8) {
                    check(&map, stringify!($name), &[$ty], None, Some(8))?;
                }
                Ok($name { map })
            }

            #[doc = concat!("Sets `key` to ", $what, ", with an XDP program to run on it (8-byte values only).")]
            pub fn set(&self, key: u32, target: u32, prog: Option<BorrowedFd<'_>>) -> Result<(), MapError> {
                let v = encode(&self.map, target, prog)?;
                let n = self.map.value_size() as usize;
                self.map.update_elem(&key.to_ne_bytes(), &v[..n], ANY)
            }

            /// The entry at `key`, `None` when empty.
            pub fn get(&self, key: u32) -> Result<Option<TargetValue>, MapError> {
                let mut v = [0u8; 8];
                let n = self.map.value_size() as usize;
                found(self.map.lookup_elem(&key.to_ne_bytes(), &mut v[..n], 0))
                    .map(|o| o.map(|()| decode(&v, self.map.value_size())))
            }

            /// Empties `key`.
            pub fn remove(&self, key: u32) -> Result<(), MapError> {
                self.map.delete_elem(&key.to_ne_bytes())
            }
        }
    };
}

target_map!(
    /// Interfaces for `bpf_redirect_map` by index (`BPF_MAP_TYPE_DEVMAP`, Linux 4.14; 8-byte
    /// values with a program, 5.8).
    ///
    /// ```no_run
    /// use bpf_maps::{DevMap, KernelMap};
    ///
    /// let ports = DevMap::new(KernelMap::from_pin("/sys/fs/bpf/ports")?)?;
    /// ports.set(0, 2, None)?; // slot 0 redirects to ifindex 2
    /// # Ok::<(), bpf_maps::MapError>(())
    /// ```
    #[doc(alias = "BPF_MAP_TYPE_DEVMAP")]
    DevMap,
    MapType::DevMap,
    "the interface index `target`"
);
target_map!(
    /// Interfaces for `bpf_redirect_map` by any `u32` key (`BPF_MAP_TYPE_DEVMAP_HASH`, Linux
    /// 5.4).
    ///
    /// ```no_run
    /// use bpf_maps::{DevMapHash, KernelMap};
    ///
    /// let ports = DevMapHash::new(KernelMap::from_pin("/sys/fs/bpf/ports")?)?;
    /// ports.set(2, 2, None)?;
    /// # Ok::<(), bpf_maps::MapError>(())
    /// ```
    #[doc(alias = "BPF_MAP_TYPE_DEVMAP_HASH")]
    DevMapHash,
    MapType::DevMapHash,
    "the interface index `target`"
);
target_map!(
    /// CPUs for `bpf_redirect_map` (`BPF_MAP_TYPE_CPUMAP`, Linux 4.15): key = CPU, value = the
    /// queue size (and a program, 5.9).
    ///
    /// ```no_run
    /// use bpf_maps::{CpuMap, KernelMap};
    ///
    /// let cpus = CpuMap::new(KernelMap::from_pin("/sys/fs/bpf/cpus")?)?;
    /// cpus.set(0, 192, None)?;
    /// # Ok::<(), bpf_maps::MapError>(())
    /// ```
    #[doc(alias = "BPF_MAP_TYPE_CPUMAP")]
    CpuMap,
    MapType::CpuMap,
    "the queue size `target`"
);

/// AF_XDP sockets for `bpf_redirect_map` (`BPF_MAP_TYPE_XSKMAP`, Linux 4.18): key = queue.
///
/// ```no_run
/// # fn xsk() -> std::os::fd::OwnedFd { unimplemented!() }
/// use std::os::fd::AsFd;
/// use bpf_maps::{KernelMap, XskMap};
///
/// let socks = XskMap::new(KernelMap::from_pin("/sys/fs/bpf/xsks")?)?;
/// socks.set(0, xsk().as_fd())?;
/// # Ok::<(), bpf_maps::MapError>(())
/// ```
#[doc(alias = "BPF_MAP_TYPE_XSKMAP")]
#[derive(Debug)]
pub struct XskMap<M> {
    map: M,
    _p: PhantomData<()>,
}

view_common!(XskMap<M>);

impl<M: Map> XskMap<M> {
    /// A typed view.
    pub fn new(map: M) -> Result<Self, MapError> {
        check(&map, "XskMap", &[MapType::XskMap], Some(4), Some(4))?;
        Ok(XskMap {
            map,
            _p: PhantomData,
        })
    }

    /// Puts the AF_XDP socket `sock` at `queue`.
    pub fn set(&self, queue: u32, sock: BorrowedFd<'_>) -> Result<(), MapError> {
        self.map
            .update_elem(&queue.to_ne_bytes(), &sock.as_raw_fd().to_ne_bytes(), ANY)
    }

    /// Empties `queue`.
    pub fn remove(&self, queue: u32) -> Result<(), MapError> {
        self.map.delete_elem(&queue.to_ne_bytes())
    }
}
