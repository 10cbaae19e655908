//! The harness's own guards against the real kernel: namespaces, veth pairs, bpffs.

use tests::{cmd, fail, require_root, BpfFs, TestResult, VethPair};

fn veth_pair_carries_traffic_between_its_namespaces() -> TestResult {
    require_root()?;
    let pair = VethPair::new()?;
    // A socket belongs to the namespace it was created in, whichever thread uses it later.
    let receiver = pair
        .ns_b
        .run(|| std::net::UdpSocket::bind((std::net::Ipv4Addr::UNSPECIFIED, 0)))??;
    let port = receiver.local_addr()?.port();
    let addr_b = pair.addr_b;
    pair.ns_a.run(move || -> std::io::Result<usize> {
        let sock = std::net::UdpSocket::bind("0.0.0.0:0")?;
        sock.send_to(b"hello", (addr_b, port))
    })??;
    receiver.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
    let mut buf = [0u8; 16];
    let (n, from) = receiver.recv_from(&mut buf)?;
    assert_eq!(&buf[..n], b"hello");
    assert_eq!(from.ip(), std::net::IpAddr::V4(pair.addr_a));
    Ok(())
}

fn veth_pair_and_namespaces_are_gone_after_drop() -> TestResult {
    require_root()?;
    let pair = VethPair::new()?;
    let (a, b) = (pair.ns_a.name().to_owned(), pair.ns_b.name().to_owned());
    drop(pair);
    let list = cmd("ip", &["netns", "list"])?;
    if list.contains(&a) || list.contains(&b) {
        return Err(fail(format!("namespaces left behind: {list}")));
    }
    Ok(())
}

fn private_bpffs_is_mounted_and_removed() -> TestResult {
    let fs = BpfFs::new()?;
    let path = fs.path().to_path_buf();
    let mounts = std::fs::read_to_string("/proc/self/mounts")?;
    assert!(mounts
        .lines()
        .any(|l| l.contains(&*path.to_string_lossy()) && l.contains(" bpf ")));
    drop(fs);
    let mounts = std::fs::read_to_string("/proc/self/mounts")?;
    assert!(!mounts.contains(&*path.to_string_lossy()));
    assert!(!path.exists());
    Ok(())
}

tests::tests![
    veth_pair_carries_traffic_between_its_namespaces,
    veth_pair_and_namespaces_are_gone_after_drop,
    private_bpffs_is_mounted_and_removed,
];
