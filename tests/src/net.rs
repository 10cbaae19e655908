//! Network namespaces and veth pairs that tests create and always remove.
//!
//! Addresses come from 198.18.0.0/15 (reserved for network device testing) and never leave the
//! pair. Nothing here touches the machine's own interfaces.

use std::net::Ipv4Addr;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::{cmd, fail, require_root, require_tool, unique_name, TestResult};

/// A network namespace (`ip netns add`), deleted on drop.
#[derive(Debug)]
pub struct NetNs {
    name: String,
}

impl NetNs {
    /// Creates a namespace with a unique name and brings its loopback up.
    pub fn new() -> TestResult<Self> {
        require_root()?;
        require_tool("ip")?;
        let name = unique_name("ebpfns");
        cmd("ip", &["netns", "add", &name])?;
        let ns = NetNs { name };
        ns.exec("ip", &["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// Its name (as `ip netns` knows it).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs a command inside the namespace (`ip netns exec`).
    pub fn exec(&self, program: &str, args: &[&str]) -> TestResult<String> {
        let mut all = vec!["netns", "exec", self.name.as_str(), program];
        all.extend_from_slice(args);
        cmd("ip", &all)
    }

    /// Runs `f` on a new thread that has entered the namespace, and returns its result. Sockets
    /// and netlink requests made by `f` live in the namespace.
    pub fn run<R: Send>(&self, f: impl FnOnce() -> R + Send) -> TestResult<R> {
        let path = format!("/run/netns/{}", self.name);
        let file = std::fs::File::open(&path).map_err(|e| fail(format!("open {path}: {e}")))?;
        std::thread::scope(|s| {
            s.spawn(|| {
                rustix::thread::move_into_link_name_space(
                    file.as_fd(),
                    Some(rustix::thread::LinkNameSpaceType::Network),
                )
                .map_err(|e| fail(format!("setns {path}: {e}")))?;
                Ok(f())
            })
            .join()
            .map_err(|_| fail("the namespace thread panicked"))?
        })
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// Two namespaces joined by a veth pair: `a` (198.18.x.1/30) and `b` (198.18.x.2/30), both up.
#[derive(Debug)]
pub struct VethPair {
    /// The namespace of the first end.
    pub ns_a: NetNs,
    /// The namespace of the second end.
    pub ns_b: NetNs,
    /// The first end's name.
    pub if_a: String,
    /// The second end's name.
    pub if_b: String,
    /// The first end's address.
    pub addr_a: Ipv4Addr,
    /// The second end's address.
    pub addr_b: Ipv4Addr,
}

impl VethPair {
    /// Creates both namespaces, the pair, its addresses, and brings everything up.
    pub fn new() -> TestResult<Self> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let ns_a = NetNs::new()?;
        let ns_b = NetNs::new()?;
        let if_a = unique_name("vetha");
        let if_b = unique_name("vethb");
        // A /30 block of 198.18.0.0/15 chosen by pid and counter: 32768 blocks.
        let block = (std::process::id()
            .wrapping_mul(64)
            .wrapping_add(NEXT.fetch_add(1, Ordering::Relaxed)))
            % 32768;
        let base = u32::from(Ipv4Addr::new(198, 18, 0, 0)) + block * 4;
        let (addr_a, addr_b) = (Ipv4Addr::from(base + 1), Ipv4Addr::from(base + 2));
        cmd(
            "ip",
            &[
                "link",
                "add",
                &if_a,
                "netns",
                ns_a.name(),
                "type",
                "veth",
                "peer",
                "name",
                &if_b,
                "netns",
                ns_b.name(),
            ],
        )?;
        let pair = VethPair {
            ns_a,
            ns_b,
            if_a,
            if_b,
            addr_a,
            addr_b,
        };
        for (ns, ifname, addr) in [
            (&pair.ns_a, &pair.if_a, addr_a),
            (&pair.ns_b, &pair.if_b, addr_b),
        ] {
            ns.exec("ip", &["addr", "add", &format!("{addr}/30"), "dev", ifname])?;
            ns.exec("ip", &["link", "set", ifname, "up"])?;
        }
        Ok(pair)
    }

    /// The ifindex of `a` inside its namespace.
    pub fn ifindex_a(&self) -> TestResult<u32> {
        ifindex(&self.ns_a, &self.if_a)
    }

    /// The ifindex of `b` inside its namespace.
    pub fn ifindex_b(&self) -> TestResult<u32> {
        ifindex(&self.ns_b, &self.if_b)
    }
}

fn ifindex(ns: &NetNs, ifname: &str) -> TestResult<u32> {
    let text = ns.exec("cat", &[&format!("/sys/class/net/{ifname}/ifindex")]);
    // `ip netns exec` remounts /sys for the namespace, so sysfs shows its interfaces.
    let text = text?;
    text.trim()
        .parse()
        .map_err(|e| fail(format!("ifindex of {ifname}: {e}")))
}
