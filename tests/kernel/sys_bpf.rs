//! bpf-sys against the real kernel: every `bpf(2)` wrapper and the feature probes.

use std::collections::BTreeSet;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use ebpf::sys::bpf::{c_name, LogBuf};
use ebpf::sys::btf::{self, RawBtf};
use ebpf::sys::link::{self, LinkCreateAttr, LinkDetail, LinkExtra, Relative};
use ebpf::sys::map::{self, MapCreateAttr, MapFd};
use ebpf::sys::map_batch::BatchFlags;
use ebpf::sys::obj::{self, ObjKind};
use ebpf::sys::probe::{self, LinkKind, Misc, Probe};
use ebpf::sys::prog::{self, AttachTarget, ProgLoadAttr, TestRunAttr};
use ebpf::sys::{uapi, AttachType, MapType, ProgramType, SysError};
use rustix::io::Errno;
use tests::{fail, require_feature, require_root, unique_name, BpfFs, TestResult, VethPair};

// errnos, from rustix (this crate does not depend on libc).
const EACCES: i32 = Errno::ACCESS.raw_os_error();
const EEXIST: i32 = Errno::EXIST.raw_os_error();
const EINVAL: i32 = Errno::INVAL.raw_os_error();
const ENOENT: i32 = Errno::NOENT.raw_os_error();
const ESTALE: i32 = Errno::STALE.raw_os_error();
const ENOSPC: i32 = Errno::NOSPC.raw_os_error();
const EPERM: i32 = Errno::PERM.raw_os_error();

/// Fails unless `r` is an error from the kernel with `errno`.
#[track_caller]
fn expect_errno<T: std::fmt::Debug>(r: Result<T, SysError>, errno: i32) -> TestResult {
    match r {
        Err(e) if e.errno() == Some(errno) => Ok(()),
        other => Err(fail(format!(
            "expected errno {errno} ({}), got {other:?}",
            std::io::Error::from_raw_os_error(errno)
        ))),
    }
}

/// Every test here needs root. `RLIMIT_MEMLOCK`, which kernels before 5.11 charge BPF memory
/// to, is raised once for the whole run by the harness (`tests::main`).
fn setup() -> TestResult {
    require_root()
}

/// Requires the probe to have decided; absent features skip.
#[track_caller]
fn require_probe(p: Probe) -> TestResult {
    match p {
        Probe::Supported => Ok(()),
        Probe::Unsupported(e) => {
            let running = e
                .running
                .map(|v| format!(", running {v}"))
                .unwrap_or_default();
            require_feature(&format!("{}{running}", e.feature), false)
        }
        Probe::Unknown { feature, reason } => Err(fail(format!(
            "the probe of {feature} could not decide: {reason}"
        ))),
    }
}

fn load(
    t: ProgramType,
    insns: &[uapi::bpf_insn],
    attach: Option<AttachType>,
) -> TestResult<OwnedFd> {
    let name = unique_name("t");
    let mut attr = ProgLoadAttr::new(t, insns, c"GPL");
    attr.name = &name;
    attr.expected_attach_type = attach;
    Ok(prog::load(&attr, None)?)
}

fn ret_prog(t: ProgramType, r0: i32, attach: Option<AttachType>) -> TestResult<OwnedFd> {
    load(t, &[prog::mov64_imm(0, r0), prog::exit()], attach)
}

fn u32k(k: u32) -> [u8; 4] {
    k.to_ne_bytes()
}

fn map_create_makes_every_map_type_this_kernel_has() -> TestResult {
    setup()?;
    let page = rustix::param::page_size() as u32;
    let mut absent = Vec::new();
    for &t in MapType::ALL {
        if t == MapType::Unspec {
            continue;
        }
        match probe::map_type(t) {
            Probe::Supported => {}
            Probe::Unsupported(e) => {
                absent.push(e.feature.to_string());
                continue;
            }
            Probe::Unknown { reason, .. } => {
                return Err(fail(format!(
                    "the probe of the {t} map could not decide: {reason}"
                )))
            }
        }
        if t == MapType::StructOps {
            // A real struct_ops map needs a struct_ops type of vmlinux BTF; the probe's
            // ENOTSUPP for a bogus type id is what tells it exists.
            continue;
        }
        let p = probe::map_probe_params(t, page).expect("a real map type");
        let inner = match t {
            MapType::ArrayOfMaps | MapType::HashOfMaps => {
                Some(map::create(&MapCreateAttr::new(MapType::Array, 4, 4, 1))?)
            }
            _ => None,
        };
        let btf = if p.local_storage_btf {
            Some(btf::load(&btf::local_storage_probe_btf(), None)?)
        } else {
            None
        };
        let name = unique_name("every");
        let mut attr = MapCreateAttr::new(t, p.key_size, p.value_size, p.max_entries);
        attr.map_flags = p.map_flags;
        attr.name = &name;
        attr.inner_map_fd = inner.as_ref().map(AsFd::as_fd);
        if let Some(btf) = &btf {
            attr.btf_fd = Some(btf.as_fd());
            (attr.btf_key_type_id, attr.btf_value_type_id) = (1, 3);
        }
        let fd = map::create(&attr).map_err(|e| fail(format!("{t}: {e}: {}", e.source)))?;
        let info = obj::map_info(&fd)?;
        assert_eq!(info.type_, t.as_u32(), "{t}");
        assert_eq!(
            (info.key_size, info.value_size),
            (p.key_size, p.value_size),
            "{t}"
        );
        assert_eq!(c_name(&info.name), name, "{t}");
        assert_ne!(info.id, 0, "{t}");
        // `MapFd::create` builds the layout from the attribute without asking the kernel: it
        // must be the layout the kernel reports (sizes, capacity, flags, per-CPU slots).
        let created = MapFd::create(&attr).map_err(|e| fail(format!("{t}: {e}")))?;
        let reported = MapFd::new(created.fd())?;
        if created.layout() != reported.layout() {
            return Err(fail(format!(
                "{t}: layout from the attribute {:?}, from the kernel {:?}",
                created.layout(),
                reported.layout()
            )));
        }
    }
    if !absent.is_empty() {
        println!(
            "sys_bpf: map types this kernel lacks (probed): {}",
            absent.join(", ")
        );
    }
    Ok(())
}

fn hash_map_crud_gives_the_documented_errnos() -> TestResult {
    setup()?;
    let name = unique_name("crud");
    let mut attr = MapCreateAttr::new(MapType::Hash, 4, 8, 16);
    attr.name = &name;
    let map = MapFd::create(&attr)?;
    let (k, missing) = (u32k(7), u32k(8));
    let mut out = [0u8; 8];
    expect_errno(map.lookup(&k, &mut out, 0), ENOENT)?;
    map.update(&k, &42u64.to_ne_bytes(), uapi::BPF_NOEXIST.into())?;
    expect_errno(
        map.update(&k, &1u64.to_ne_bytes(), uapi::BPF_NOEXIST.into()),
        EEXIST,
    )?;
    map.update(&k, &43u64.to_ne_bytes(), uapi::BPF_EXIST.into())?;
    map.lookup(&k, &mut out, 0)?;
    assert_eq!(u64::from_ne_bytes(out), 43);
    expect_errno(
        map.update(&missing, &1u64.to_ne_bytes(), uapi::BPF_EXIST.into()),
        ENOENT,
    )?;
    map.update(&missing, &9u64.to_ne_bytes(), uapi::BPF_ANY.into())?;
    map.delete(&k)?;
    expect_errno(map.delete(&k), ENOENT)?;
    expect_errno(map.lookup(&k, &mut out, 0), ENOENT)?;
    // Wrong sizes are refused before the kernel sees them, naming the command.
    let e = map.lookup(&[0; 3], &mut out, 0).unwrap_err();
    assert_eq!((e.call, e.errno()), ("BPF_MAP_LOOKUP_ELEM", None));
    let e = map.update(&k, &[0; 4], 0).unwrap_err();
    assert_eq!((e.call, e.errno()), ("BPF_MAP_UPDATE_ELEM", None));
    Ok(())
}

fn next_key_walks_every_key_once() -> TestResult {
    setup()?;
    let map = MapFd::create(&MapCreateAttr::new(MapType::Hash, 4, 4, 128))?;
    for k in 0..100u32 {
        map.update(&u32k(k), &u32k(k * 2), 0)?;
    }
    let mut seen = Vec::new();
    let mut key: Option<[u8; 4]> = None;
    let mut next = [0u8; 4];
    while map.next_key(key.as_ref().map(|k| &k[..]), &mut next)? {
        seen.push(u32::from_ne_bytes(next));
        key = Some(next);
    }
    seen.sort_unstable();
    assert_eq!(seen, (0..100).collect::<Vec<_>>());
    // An empty map has no first key.
    let empty = MapFd::create(&MapCreateAttr::new(MapType::Hash, 4, 4, 1))?;
    assert!(!empty.next_key(None, &mut next)?);
    Ok(())
}

fn queue_and_stack_pop_in_their_order() -> TestResult {
    setup()?;
    let queue = MapFd::create(&MapCreateAttr::new(MapType::Queue, 0, 4, 8))?;
    let stack = MapFd::create(&MapCreateAttr::new(MapType::Stack, 0, 4, 8))?;
    for v in [1u32, 2, 3] {
        queue.update(&[], &u32k(v), 0)?;
        stack.update(&[], &u32k(v), 0)?;
    }
    let mut out = [0u8; 4];
    queue.lookup(&[], &mut out, 0)?; // peek
    assert_eq!(u32::from_ne_bytes(out), 1);
    for (map, order) in [(&queue, [1u32, 2, 3]), (&stack, [3, 2, 1])] {
        for want in order {
            map.lookup_and_delete(&[], &mut out, 0)?;
            assert_eq!(u32::from_ne_bytes(out), want);
        }
        expect_errno(map.lookup_and_delete(&[], &mut out, 0), ENOENT)?;
    }
    Ok(())
}

fn lookup_and_delete_takes_the_element_out_of_a_hash() -> TestResult {
    setup()?;
    require_probe(probe::misc(Misc::HashLookupAndDelete))?;
    let map = MapFd::create(&MapCreateAttr::new(MapType::Hash, 4, 4, 4))?;
    map.update(&u32k(1), &u32k(11), 0)?;
    let mut out = [0u8; 4];
    map.lookup_and_delete(&u32k(1), &mut out, 0)?;
    assert_eq!(u32::from_ne_bytes(out), 11);
    expect_errno(map.lookup(&u32k(1), &mut out, 0), ENOENT)?;
    expect_errno(map.lookup_and_delete(&u32k(1), &mut out, 0), ENOENT)?;
    Ok(())
}

fn batch_ops_walk_update_and_delete_a_large_hash() -> TestResult {
    setup()?;
    require_probe(probe::misc(Misc::BatchOps))?;
    const N: u32 = 1500;
    let map = MapFd::create(&MapCreateAttr::new(MapType::Hash, 4, 8, 2048))?;
    let keys: Vec<u8> = (0..N).flat_map(u32k).collect();
    let values: Vec<u8> = (0..N)
        .flat_map(|k| (u64::from(k) * 3).to_ne_bytes())
        .collect();
    assert_eq!(
        map.update_batch(&keys, &values, N, BatchFlags::default())?,
        N
    );

    // Walk it in batches of 64 until the kernel says it was the last one.
    let chunk = 64u32;
    let token_len = map.layout().batch_token_size();
    let walk = |delete: bool| -> TestResult<Vec<(u32, u64)>> {
        let (mut token, mut next) = (vec![0u8; token_len], vec![0u8; token_len]);
        let (mut kbuf, mut vbuf) = (vec![0u8; 4 * chunk as usize], vec![0u8; 8 * chunk as usize]);
        let mut got = Vec::new();
        let mut first = true;
        for _ in 0..10_000 {
            let in_batch = if first { None } else { Some(&token[..]) };
            let b = if delete {
                map.lookup_and_delete_batch(
                    in_batch,
                    &mut next,
                    &mut kbuf,
                    &mut vbuf,
                    chunk,
                    BatchFlags::default(),
                )?
            } else {
                map.lookup_batch(
                    in_batch,
                    &mut next,
                    &mut kbuf,
                    &mut vbuf,
                    chunk,
                    BatchFlags::default(),
                )?
            };
            for i in 0..b.count as usize {
                let k = u32::from_ne_bytes(kbuf[i * 4..i * 4 + 4].try_into().unwrap());
                let v = u64::from_ne_bytes(vbuf[i * 8..i * 8 + 8].try_into().unwrap());
                got.push((k, v));
            }
            if b.done {
                return Ok(got);
            }
            first = false;
            token.copy_from_slice(&next);
        }
        Err(fail("the batch walk never ended"))
    };
    let mut all = walk(false)?;
    all.sort_unstable();
    assert_eq!(all.len(), N as usize);
    assert!(all
        .iter()
        .enumerate()
        .all(|(i, &(k, v))| k == i as u32 && v == u64::from(k) * 3));

    // Delete the first 500 keys in one batch; a missing key stops a batch and says how far.
    assert_eq!(
        map.delete_batch(&keys[..4 * 500], 500, BatchFlags::default())?,
        500
    );
    let err = map
        .delete_batch(&keys[4 * 499..4 * 510], 11, BatchFlags::default())
        .unwrap_err();
    assert_eq!((err.errno(), err.count), (Some(ENOENT), 0));

    // Take the rest out with lookup-and-delete batches; the map ends empty.
    let mut rest = walk(true)?;
    rest.sort_unstable();
    assert_eq!(rest.len(), (N - 500) as usize);
    assert_eq!(rest.first().map(|e| e.0), Some(500));
    assert!(!map.next_key(None, &mut [0u8; 4])?);
    Ok(())
}

fn frozen_map_refuses_writes_from_user_space() -> TestResult {
    setup()?;
    let map = MapFd::create(&MapCreateAttr::new(MapType::Array, 4, 4, 2))?;
    map.update(&u32k(0), &u32k(5), 0)?;
    map.freeze()?;
    expect_errno(map.update(&u32k(1), &u32k(6), 0), EPERM)?;
    let mut out = [0u8; 4];
    map.lookup(&u32k(0), &mut out, 0)?;
    assert_eq!(u32::from_ne_bytes(out), 5);
    Ok(())
}

fn trivial_programs_load_and_test_run_returns_their_value() -> TestResult {
    setup()?;
    let packet: Vec<u8> = (0..64u8).collect();
    // XDP_PASS; the packet comes back unchanged.
    let xdp = ret_prog(ProgramType::Xdp, 2, None)?;
    let mut out = vec![0u8; 256];
    let mut run = TestRunAttr {
        data_in: &packet,
        data_out: Some(&mut out),
        repeat: 10,
        ..Default::default()
    };
    let r = prog::test_run(&xdp, &mut run)?;
    assert_eq!(r.retval, 2);
    assert_eq!(r.data_size_out, 64);
    assert_eq!(&out[..64], &packet[..]);
    // A socket filter returning 2: keep two bytes.
    let filter = ret_prog(ProgramType::SocketFilter, 2, None)?;
    let r = prog::test_run(
        &filter,
        &mut TestRunAttr {
            data_in: &packet,
            ..Default::default()
        },
    )?;
    assert_eq!(r.retval, 2);
    // A too-small output buffer: the kernel copies what fits and says ENOSPC.
    let mut small = [0u8; 8];
    let mut run = TestRunAttr {
        data_in: &packet,
        data_out: Some(&mut small),
        ..Default::default()
    };
    expect_errno(prog::test_run(&xdp, &mut run), ENOSPC)?;
    assert_eq!(&small[..], &packet[..8]);
    Ok(())
}

fn verifier_rejection_keeps_errno_and_log() -> TestResult {
    setup()?;
    // `exit` with r0 never written.
    let insns = [prog::exit()];
    let attr = ProgLoadAttr::new(ProgramType::SocketFilter, &insns, c"GPL");
    let mut buf = vec![0u8; 64 * 1024];
    let mut log = LogBuf::new(&mut buf, LogBuf::LEVEL_ERRORS);
    let err = prog::load(&attr, Some(&mut log)).unwrap_err();
    assert_eq!(err.call, "BPF_PROG_LOAD");
    assert_eq!(err.errno(), Some(EACCES), "{err:?}");
    let text = log.to_string_lossy();
    assert!(text.contains("R0 !read_ok"), "log: {text}");
    if probe::log_true_size_supported() {
        assert_eq!(log.true_size(), Some(log.text().len() as u32 + 1));
    } else {
        assert_eq!(log.true_size(), None);
    }
    // A log too small for a verbose trace of a good program: ENOSPC, and since 6.4 the size
    // the whole log needs.
    let insns = [
        prog::mov64_imm(0, 0),
        prog::mov64_imm(1, 1),
        prog::mov64_imm(2, 2),
        prog::exit(),
    ];
    let attr = ProgLoadAttr::new(ProgramType::SocketFilter, &insns, c"GPL");
    let mut small = vec![0u8; 128];
    let mut log = LogBuf::new(&mut small, LogBuf::LEVEL_VERBOSE);
    expect_errno(prog::load(&attr, Some(&mut log)), ENOSPC)?;
    assert!(!log.text().is_empty());
    if probe::log_true_size_supported() {
        assert!(
            log.true_size().is_some_and(|n| n > 128),
            "{:?}",
            log.true_size()
        );
        // With the size it asked for, the same load succeeds.
        let mut big = vec![0u8; log.true_size().unwrap_or(0) as usize];
        let mut log = LogBuf::new(&mut big, LogBuf::LEVEL_VERBOSE);
        prog::load(&attr, Some(&mut log))?;
        assert!(log.to_string_lossy().contains("processed 4 insns"));
    }
    Ok(())
}

fn pinned_objects_are_found_again_by_path() -> TestResult {
    setup()?;
    let fs = BpfFs::new()?;
    let prog_fd = ret_prog(ProgramType::SocketFilter, 0, None)?;
    let map = map::create(&MapCreateAttr::new(MapType::Array, 4, 4, 1))?;
    let (prog_path, map_path) = (fs.path().join("prog"), fs.path().join("map"));
    obj::pin(&prog_fd, &prog_path)?;
    obj::pin(&map, &map_path)?;
    expect_errno(obj::pin(&map, &map_path), EEXIST)?;
    let again = obj::get(&prog_path, 0)?;
    assert_eq!(obj::prog_info(&again)?.id, obj::prog_info(&prog_fd)?.id);
    let ro = obj::get(&map_path, obj::RDONLY)?;
    assert_eq!(obj::map_info(&ro)?.id, obj::map_info(&map)?.id);
    let ro = MapFd::new(ro)?;
    expect_errno(ro.update(&u32k(0), &u32k(1), 0), EPERM)?;
    expect_errno(obj::get(&fs.path().join("missing"), 0), ENOENT)?;
    Ok(())
}

fn prog_and_map_info_describe_what_was_loaded() -> TestResult {
    setup()?;
    let map_name = unique_name("info");
    let mut attr = MapCreateAttr::new(MapType::Hash, 4, 8, 32);
    attr.name = &map_name;
    attr.map_flags = uapi::BPF_F_NO_PREALLOC;
    let map = map::create(&attr)?;
    let minfo = obj::map_info(&map)?;
    assert_eq!(minfo.type_, uapi::BPF_MAP_TYPE_HASH);
    assert_eq!(
        (minfo.key_size, minfo.value_size, minfo.max_entries),
        (4, 8, 32)
    );
    assert_eq!(minfo.map_flags, uapi::BPF_F_NO_PREALLOC);
    assert_eq!(c_name(&minfo.name), map_name);

    // r1 = map; r0 = 0; exit: the program holds the map.
    let [ld0, ld1] = prog::ld_map_fd(1, map.as_fd());
    let insns = [ld0, ld1, prog::mov64_imm(0, 0), prog::exit()];
    let name = unique_name("withmap");
    let mut pattr = ProgLoadAttr::new(ProgramType::SocketFilter, &insns, c"GPL");
    pattr.name = &name;
    let p = prog::load(&pattr, None)?;
    let mut ids = [0u32; 4];
    let (pinfo, n) = obj::prog_info_with_map_ids(&p, &mut ids)?;
    assert_eq!(pinfo.type_, uapi::BPF_PROG_TYPE_SOCKET_FILTER);
    assert_eq!(c_name(&pinfo.name), name);
    assert_eq!((pinfo.nr_map_ids, n), (1, 1));
    assert_eq!(ids[0], minfo.id);
    assert_ne!(pinfo.tag, [0; 8]);
    assert_eq!(pinfo.xlated_prog_len as usize, insns.len() * 8);
    // Without buffers the kernel still counts the maps.
    assert_eq!(obj::prog_info(&p)?.nr_map_ids, 1);
    Ok(())
}

fn id_walks_find_our_objects_and_open_them_by_id() -> TestResult {
    setup()?;
    let p = ret_prog(ProgramType::SocketFilter, 0, None)?;
    let m = map::create(&MapCreateAttr::new(MapType::Array, 4, 4, 1))?;
    let mut b = RawBtf::new();
    b.add_int("int", 4, true);
    let btf_fd = btf::load(&b.to_bytes(), None)?;
    let cases: [(ObjKind, BorrowedFd<'_>, u32); 3] = [
        (ObjKind::Prog, p.as_fd(), obj::prog_info(&p)?.id),
        (ObjKind::Map, m.as_fd(), obj::map_info(&m)?.id),
        (ObjKind::Btf, btf_fd.as_fd(), obj::btf_info(&btf_fd)?.id),
    ];
    for (kind, _, id) in cases {
        let ids: BTreeSet<u32> = obj::ids(kind).collect::<Result<_, _>>()?;
        assert!(ids.contains(&id), "{kind:?} {id} not in the walk");
        let opened = obj::fd_by_id(kind, id, 0)?;
        let again = match kind {
            ObjKind::Prog => obj::prog_info(&opened)?.id,
            ObjKind::Map => obj::map_info(&opened)?.id,
            _ => obj::btf_info(&opened)?.id,
        };
        assert_eq!(again, id);
        assert_eq!(obj::next_id(kind, u32::MAX - 1)?, None);
        assert_eq!(obj::next_id(kind, i32::MAX as u32 - 1)?, None);
    }
    expect_errno(obj::prog_fd_by_id(u32::MAX), ENOENT)?;
    expect_errno(obj::map_fd_by_id(u32::MAX, 0), ENOENT)?;
    Ok(())
}

fn btf_blob_loads_and_reports_its_info() -> TestResult {
    setup()?;
    let mut b = RawBtf::new();
    let int = b.add_int("int", 4, true);
    b.add_struct("pair", 8, &[("a", int, 0), ("b", int, 32)]);
    let blob = b.to_bytes();
    let mut buf = vec![0u8; 4096];
    let mut log = LogBuf::new(&mut buf, 1);
    let fd = btf::load(&blob, Some(&mut log))?;
    let info = obj::btf_info(&fd)?;
    assert_eq!(info.btf_size as usize, blob.len());
    assert_ne!(info.id, 0);
    let (mut name, mut data) = ([0u8; 16], vec![0u8; blob.len()]);
    let info = obj::btf_info_with_buffers(&fd, &mut name, &mut data)?;
    assert_eq!(data, blob);
    assert_eq!(info.kernel_btf, 0);
    // A broken blob: EINVAL, and the log says why.
    let mut bad = blob.clone();
    bad[0] ^= 0xff;
    let mut buf = vec![0u8; 4096];
    let mut log = LogBuf::new(&mut buf, 1);
    expect_errno(btf::load(&bad, Some(&mut log)), EINVAL)?;
    assert!(!log.text().is_empty(), "empty BTF log");
    Ok(())
}

fn xdp_link_attaches_updates_and_detaches_on_a_veth() -> TestResult {
    setup()?;
    require_probe(probe::link_type(LinkKind::Xdp))?;
    let pair = VethPair::new()?;
    let ifindex = pair.ifindex_a()?;
    let pass = ret_prog(ProgramType::Xdp, 2, Some(AttachType::Xdp))?;
    let drop_ = ret_prog(ProgramType::Xdp, 1, Some(AttachType::Xdp))?;
    let (pass_id, drop_id) = (obj::prog_info(&pass)?.id, obj::prog_info(&drop_)?.id);
    let pass_fd = pass.as_fd();
    // The ifindex is resolved in the caller's namespace: create the link inside it.
    let l = pair.ns_a.run(move || {
        link::create(&LinkCreateAttr::new(
            pass_fd,
            AttachTarget::Ifindex(ifindex),
            AttachType::Xdp,
        ))
    })??;
    let info = obj::link_info(&l)?;
    assert_eq!(info.type_, uapi::BPF_LINK_TYPE_XDP);
    assert_eq!(info.prog_id, pass_id);
    assert_eq!(xdp_ifindex(&info), ifindex);
    let ids: BTreeSet<u32> = obj::ids(ObjKind::Link).collect::<Result<_, _>>()?;
    assert!(ids.contains(&info.id));
    assert_eq!(
        obj::link_info(&obj::link_fd_by_id(info.id)?)?.prog_id,
        pass_id
    );

    link::update(&l, &drop_, None, 0)?;
    assert_eq!(obj::link_info(&l)?.prog_id, drop_id);
    // Replacing a program the link no longer runs fails.
    expect_errno(
        link::update(&l, &pass, Some(pass.as_fd()), uapi::BPF_F_REPLACE),
        EPERM,
    )?;
    link::update(&l, &pass, Some(drop_.as_fd()), uapi::BPF_F_REPLACE)?;
    assert_eq!(obj::link_info(&l)?.prog_id, pass_id);

    link::detach(&l)?;
    assert_eq!(xdp_ifindex(&obj::link_info(&l)?), 0);
    Ok(())
}

fn tcx_link_attaches_in_order_and_checks_the_revision() -> TestResult {
    setup()?;
    require_probe(probe::link_type(LinkKind::Tcx))?;
    let pair = VethPair::new()?;
    let ifindex = pair.ifindex_a()?;
    let a = ret_prog(ProgramType::SchedCls, 0, Some(AttachType::TcxIngress))?;
    let b = ret_prog(ProgramType::SchedCls, 0, Some(AttachType::TcxIngress))?;
    let (a_fd, b_fd) = (a.as_fd(), b.as_fd());
    let (first, stale, second) = pair.ns_a.run(move || {
        let mut attr =
            LinkCreateAttr::new(a_fd, AttachTarget::Ifindex(ifindex), AttachType::TcxIngress);
        let first = link::create(&attr);
        // The hook's revision is now 2 (1 when empty): expecting 7 is stale.
        attr.prog = b_fd;
        attr.flags = uapi::BPF_F_BEFORE;
        attr.extra = LinkExtra::Tcx {
            relative: Relative::Fd(a_fd),
            expected_revision: 7,
        };
        let stale = link::create(&attr);
        attr.extra = LinkExtra::Tcx {
            relative: Relative::Fd(a_fd),
            expected_revision: 2,
        };
        let second = link::create(&attr);
        (first, stale, second)
    })?;
    let (first, second) = (first?, second?);
    expect_errno(stale, ESTALE)?;
    for (l, p) in [(&first, &a), (&second, &b)] {
        let info = obj::link_info(l)?;
        assert_eq!(info.prog_id, obj::prog_info(p)?.id);
        assert_eq!(
            link::detail(&info),
            LinkDetail::Tcx {
                ifindex,
                attach_type: uapi::BPF_TCX_INGRESS
            }
        );
    }
    Ok(())
}

fn xdp_ifindex(info: &uapi::bpf_link_info) -> u32 {
    match link::detail(info) {
        LinkDetail::Xdp { ifindex } => ifindex,
        other => panic!("not an XDP link: {other:?}"),
    }
}

fn raw_tracepoint_link_opens_on_sys_enter() -> TestResult {
    setup()?;
    let p = ret_prog(ProgramType::RawTracepoint, 0, None)?;
    let l = link::raw_tracepoint_open(Some("sys_enter"), &p)?;
    let info = obj::link_info(&l)?;
    assert_eq!(info.type_, uapi::BPF_LINK_TYPE_RAW_TRACEPOINT);
    assert_eq!(info.prog_id, obj::prog_info(&p)?.id);
    expect_errno(
        link::raw_tracepoint_open(Some("no_such_tracepoint_x"), &p),
        ENOENT,
    )?;
    Ok(())
}

fn sk_msg_program_attaches_to_a_sockmap_and_detaches() -> TestResult {
    setup()?;
    let sockmap = map::create(&MapCreateAttr::new(MapType::SockMap, 4, 4, 2))?;
    let verdict = ret_prog(ProgramType::SkMsg, 1, None)?; // SK_PASS
    let target = AttachTarget::Fd(sockmap.as_fd());
    prog::attach(target, &verdict, AttachType::SkMsgVerdict, 0, None)?;
    prog::detach(target, Some(verdict.as_fd()), AttachType::SkMsgVerdict)?;
    expect_errno(
        prog::detach(target, Some(verdict.as_fd()), AttachType::SkMsgVerdict),
        ENOENT,
    )?;
    // The wrong program type for the hook is refused.
    let xdp = ret_prog(ProgramType::Xdp, 2, None)?;
    expect_errno(
        prog::attach(target, &xdp, AttachType::SkMsgVerdict, 0, None),
        EINVAL,
    )?;
    Ok(())
}

fn probes_answer_for_this_kernel() -> TestResult {
    setup()?;
    assert!(probe::program_type_supported(ProgramType::SocketFilter));
    assert!(probe::program_type_supported(ProgramType::Xdp));
    assert!(probe::helper_supported(
        ProgramType::SocketFilter,
        uapi::BPF_FUNC_ktime_get_ns
    ));
    assert!(matches!(
        probe::helper(ProgramType::Xdp, 100_000),
        Probe::Unsupported(_)
    ));
    // A helper the kernel has, but not for this program type.
    assert!(probe::helper_supported(
        ProgramType::Xdp,
        uapi::BPF_FUNC_redirect
    ));
    assert!(matches!(
        probe::helper(ProgramType::SocketFilter, uapi::BPF_FUNC_redirect),
        Probe::Unsupported(_)
    ));
    // Every probe decides on a real kernel: present or absent, never unknown.
    for &t in ProgramType::ALL
        .iter()
        .filter(|&&t| t != ProgramType::Unspec)
    {
        let p = probe::program_type(t);
        assert!(!matches!(p, Probe::Unknown { .. }), "{t}: {p:?}");
    }
    for kind in [LinkKind::Xdp, LinkKind::Tcx, LinkKind::PerfEvent] {
        let p = probe::link_type(kind);
        assert!(!matches!(p, Probe::Unknown { .. }), "{kind:?}: {p:?}");
    }
    for m in [
        Misc::LogTrueSize,
        Misc::BatchOps,
        Misc::MmapableArray,
        Misc::HashLookupAndDelete,
    ] {
        let p = probe::misc(m);
        assert!(!matches!(p, Probe::Unknown { .. }), "{m:?}: {p:?}");
    }
    // Cached: the same answer twice.
    assert_eq!(
        probe::map_type(MapType::RingBuf),
        probe::map_type(MapType::RingBuf)
    );
    Ok(())
}

tests::tests![
    map_create_makes_every_map_type_this_kernel_has,
    hash_map_crud_gives_the_documented_errnos,
    next_key_walks_every_key_once,
    queue_and_stack_pop_in_their_order,
    lookup_and_delete_takes_the_element_out_of_a_hash,
    batch_ops_walk_update_and_delete_a_large_hash,
    frozen_map_refuses_writes_from_user_space,
    trivial_programs_load_and_test_run_returns_their_value,
    verifier_rejection_keeps_errno_and_log,
    pinned_objects_are_found_again_by_path,
    prog_and_map_info_describe_what_was_loaded,
    id_walks_find_our_objects_and_open_them_by_id,
    btf_blob_loads_and_reports_its_info,
    xdp_link_attaches_updates_and_detaches_on_a_veth,
    tcx_link_attaches_in_order_and_checks_the_revision,
    raw_tracepoint_link_opens_on_sys_enter,
    sk_msg_program_attaches_to_a_sockmap_and_detaches,
    probes_answer_for_this_kernel,
];
