//! Socket maps for redirection: [`SockMap`], [`SockHash`].

use std::marker::PhantomData;
use std::os::fd::{AsRawFd, BorrowedFd};

use bytemuck::Pod;

use crate::error::MapError;
use crate::iter::TypedKeys;
use crate::typed::{check, view_common};
use crate::{Map, MapType};

fn sock_value(sock: BorrowedFd<'_>) -> [u8; 8] {
    let mut v = [0u8; 8];
    v[..4].copy_from_slice(&sock.as_raw_fd().to_ne_bytes());
    v
}

/// Sockets by index (`BPF_MAP_TYPE_SOCKMAP`, Linux 4.14), for `bpf_sk_redirect_map` and
/// sockmap programs. Values are written as socket fds (4 or 8 bytes).
///
/// ```no_run
/// # fn sock() -> std::net::TcpStream { unimplemented!() }
/// use std::os::fd::AsFd;
/// use bpf_maps::{KernelMap, SockMap, ANY};
///
/// let socks = SockMap::new(KernelMap::from_pin("/sys/fs/bpf/socks")?)?;
/// let s = sock();
/// socks.set(0, s.as_fd(), ANY)?;
/// # Ok::<(), bpf_maps::MapError>(())
/// ```
#[doc(alias = "BPF_MAP_TYPE_SOCKMAP")]
#[derive(Debug)]
pub struct SockMap<M> {
    map: M,
}

view_common!(SockMap<M>);

impl<M: Map> SockMap<M> {
    /// A typed view.
    pub fn new(map: M) -> Result<Self, MapError> {
        check(&map, "SockMap", &[MapType::SockMap], Some(4), None)?;
        if !matches!(map.value_size(), 4 | 8) {
            check(&map, "SockMap", &[MapType::SockMap], None, Some(4))?;
        }
        Ok(SockMap { map })
    }

    /// Puts the socket `sock` at `index`.
    pub fn set(&self, index: u32, sock: BorrowedFd<'_>, flags: u64) -> Result<(), MapError> {
        let v = sock_value(sock);
        let n = self.map.value_size() as usize;
        self.map.update_elem(&index.to_ne_bytes(), &v[..n], flags)
    }

    /// Removes the socket at `index`.
    pub fn remove(&self, index: u32) -> Result<(), MapError> {
        self.map.delete_elem(&index.to_ne_bytes())
    }
}

/// Sockets by key (`BPF_MAP_TYPE_SOCKHASH`, Linux 4.18).
///
/// ```no_run
/// # fn sock() -> std::net::TcpStream { unimplemented!() }
/// use std::os::fd::AsFd;
/// use bpf_maps::{KernelMap, SockHash, ANY};
///
/// let socks: SockHash<_, u64> = SockHash::new(KernelMap::from_pin("/sys/fs/bpf/socks")?)?;
/// socks.insert(&7, sock().as_fd(), ANY)?;
/// # Ok::<(), bpf_maps::MapError>(())
/// ```
#[doc(alias = "BPF_MAP_TYPE_SOCKHASH")]
#[derive(Debug)]
pub struct SockHash<M, K> {
    map: M,
    _types: PhantomData<fn() -> K>,
}

view_common!(SockHash<M, K>);

impl<M: Map, K: Pod> SockHash<M, K> {
    /// A typed view with keys of `K`.
    pub fn new(map: M) -> Result<Self, MapError> {
        check(
            &map,
            "SockHash",
            &[MapType::SockHash],
            Some(size_of::<K>()),
            None,
        )?;
        if !matches!(map.value_size(), 4 | 8) {
            check(&map, "SockHash", &[MapType::SockHash], None, Some(4))?;
        }
        Ok(SockHash {
            map,
            _types: PhantomData,
        })
    }

    /// Puts the socket `sock` at `key`.
    pub fn insert(&self, key: &K, sock: BorrowedFd<'_>, flags: u64) -> Result<(), MapError> {
        let v = sock_value(sock);
        let n = self.map.value_size() as usize;
        self.map
            .update_elem(bytemuck::bytes_of(key), &v[..n], flags)
    }

    /// Removes `key`.
    pub fn remove(&self, key: &K) -> Result<(), MapError> {
        self.map.delete_elem(bytemuck::bytes_of(key))
    }

    /// The keys.
    pub fn keys(&self) -> TypedKeys<'_, M, K> {
        TypedKeys::new(&self.map)
    }
}
