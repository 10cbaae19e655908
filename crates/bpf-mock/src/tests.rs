//! Unit tests of the mocks: the kernel's answers for each family, the typed views of
//! `bpf-maps` over mocks, sharing between threads, fd-holding maps, programs, systems and
//! error injection. The same answers are checked against the kernel by
//! `tests/kernel/mock_diff.rs`.

use std::sync::Arc;

use bpf_attach::{LoadError, Program, ProgramError, System};
use bpf_maps::{
    lpm_key, Array, HashMap, LpmKey, LpmTrie, Map, MapError, MapExt, MapSpec, MapType, PerCpuArray,
    PerCpuHashMap, PerCpuValues, ProgramArray, Queue, Stack, ANY, EXIST, NOEXIST,
};

use crate::errno::*;
use crate::*;

fn map(t: MapType, k: u32, v: u32, max: u32) -> MockMap {
    MockMap::new(&MapSpec::new("m", t, k, v, max)).expect("valid spec")
}

fn errno(r: Result<impl Sized, MapError>) -> Option<i32> {
    r.err().and_then(|e| e.errno())
}

#[test]
fn hash_flags_fullness_and_restarting_next_key() {
    let m = map(MapType::Hash, 4, 8, 2);
    m.insert(&1u32, &10u64).unwrap();
    assert_eq!(errno(m.insert(&1u32, &0u64)), Some(EEXIST));
    assert_eq!(errno(m.update(&2u32, &0u64)), Some(ENOENT));
    m.upsert(&2u32, &20u64).unwrap();
    assert_eq!(errno(m.upsert(&3u32, &0u64)), Some(E2BIG));
    // BPF_EXIST on a missing key is ENOENT even when full; replacing in a full map works.
    assert_eq!(errno(m.update(&3u32, &0u64)), Some(ENOENT));
    m.update(&2u32, &21u64).unwrap();
    assert_eq!(m.lookup_int(&2u32).unwrap(), 21);
    let first = m.next_key(None).unwrap().unwrap();
    assert_eq!(m.next_key(Some(&99u32)).unwrap().unwrap(), first);
    let mut keys: Vec<_> = m.keys().map(|k| k.unwrap()).collect();
    keys.sort();
    assert_eq!(keys, [1u32.to_ne_bytes(), 2u32.to_ne_bytes()]);
    m.delete(&1u32).unwrap();
    assert_eq!(errno(m.delete(&1u32)), Some(ENOENT));
    assert_eq!(errno(m.lookup(&1u32)), Some(ENOENT));
    assert_eq!(errno(m.update_elem(&[0; 4], &[0; 8], 3)), Some(EINVAL));
    assert_eq!(
        errno(m.update_elem(&[0; 4], &[0; 8], bpf_maps::F_LOCK)),
        Some(EINVAL)
    );
    let mut v = [0u8; 8];
    m.lookup_and_delete_elem(&2u32.to_ne_bytes(), &mut v, 0)
        .unwrap();
    assert_eq!(u64::from_ne_bytes(v), 21);
    assert!(m.is_empty());
}

#[test]
fn sizes_are_checked_with_the_real_maps_error() {
    let m = map(MapType::Hash, 4, 8, 2);
    match m.update_elem(&[0; 3], &[0; 8], ANY) {
        Err(MapError::Size {
            got: 3,
            expected: 4,
            part: bpf_maps::Part::Key,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        m.lookup_elem(&[0; 4], &mut [0; 9], 0),
        Err(MapError::Size {
            got: 9,
            expected: 8,
            ..
        })
    ));
    assert!(matches!(
        HashMap::<_, u64, u64>::new(&m),
        Err(MapError::Size { .. })
    ));
    let bad = MockMap::new(&MapSpec::new("bad", MapType::Hash, 0, 8, 2)).unwrap_err();
    assert!(
        matches!(bad, MapError::Create { .. }) && bad.errno() == Some(EINVAL),
        "{bad:?}"
    );
}

#[test]
fn lru_evicts_the_least_recently_updated() {
    let m = map(MapType::LruHash, 4, 4, 3);
    for k in 0u32..3 {
        m.upsert(&k, &k).unwrap();
    }
    m.update(&0u32, &7u32).unwrap(); // 0 is now the most recent
    m.upsert(&3u32, &3u32).unwrap(); // evicts 1
    assert!(m.lookup(&1u32).unwrap_err().is_not_found());
    assert_eq!(m.len(), 3);
    assert_eq!(m.lookup_int(&0u32).unwrap(), 7);
}

#[test]
fn arrays_hold_every_index_and_refuse_delete() {
    let m = map(MapType::Array, 4, 8, 4);
    let a: Array<_, u64> = Array::new(&m).unwrap();
    assert_eq!(a.get(3).unwrap(), 0);
    a.set(3, &9, ANY).unwrap();
    assert_eq!(a.get(3).unwrap(), 9);
    assert_eq!(errno(a.get(4)), Some(ENOENT));
    assert_eq!(errno(a.set(4, &1, ANY)), Some(E2BIG));
    assert_eq!(errno(a.set(0, &1, NOEXIST)), Some(EEXIST));
    a.set(0, &1, EXIST).unwrap();
    assert_eq!(errno(m.delete(&0u32)), Some(EINVAL));
    let keys: Vec<_> = m.keys().map(|k| k.unwrap()).collect();
    assert_eq!(keys.len(), 4);
    assert_eq!(
        m.next_key(Some(&77u32)).unwrap(),
        Some(0u32.to_ne_bytes().to_vec())
    );
    assert_eq!(m.next_key(Some(&3u32)).unwrap(), None);
}

#[test]
fn per_cpu_layout_is_one_padded_slot_per_cpu_and_sums() {
    let spec = MapSpec::new("pc", MapType::PerCpuArray, 4, 4, 2);
    let m = MockMap::with_cpus(&spec, 3).unwrap();
    assert_eq!(m.value_len(), 24);
    assert_eq!(m.value_slots(), 3);
    let a: PerCpuArray<_, u32> = PerCpuArray::new(&m).unwrap();
    a.set(1, &PerCpuValues::from(vec![1, 2, 3]), ANY).unwrap();
    assert_eq!(m.lookup_u64(&1u32).unwrap(), 6);
    let raw = m.lookup(&1u32).unwrap();
    assert_eq!(&raw[8..12], &2u32.to_ne_bytes());
    let h = MockMap::with_cpus(&MapSpec::new("ph", MapType::PerCpuHash, 4, 8, 2), 2).unwrap();
    let t: PerCpuHashMap<_, u32, u64> = PerCpuHashMap::new(&h).unwrap();
    t.insert(&5, &PerCpuValues::from(vec![4, 5]), ANY).unwrap();
    assert_eq!(t.get(&5).unwrap().unwrap().iter().sum::<u64>(), 9);
    assert_eq!(t.cpus(), 2);
}

#[test]
fn lpm_matches_the_longest_prefix() {
    let m = map(MapType::LpmTrie, 8, 4, 3);
    let t: LpmTrie<_, [u8; 4], u32> = LpmTrie::new(&m).unwrap();
    t.insert(&LpmKey::new(8, [10, 0, 0, 0]), &1, ANY).unwrap();
    t.insert(&LpmKey::new(16, [10, 1, 0, 0]), &2, ANY).unwrap();
    assert_eq!(t.get(&LpmKey::new(32, [10, 1, 2, 3])).unwrap(), Some(2));
    assert_eq!(t.get(&LpmKey::new(32, [10, 2, 2, 3])).unwrap(), Some(1));
    assert_eq!(t.get(&LpmKey::new(12, [10, 1, 2, 3])).unwrap(), Some(1));
    assert_eq!(t.get(&LpmKey::new(32, [11, 0, 0, 0])).unwrap(), None);
    assert_eq!(
        errno(t.insert(&LpmKey::new(33, [0; 4]), &0, ANY)),
        Some(EINVAL)
    );
    assert_eq!(
        errno(t.insert(&LpmKey::new(8, [10, 9, 9, 9]), &0, NOEXIST)),
        Some(EEXIST)
    );
    t.insert(&LpmKey::new(0, [0; 4]), &0, ANY).unwrap();
    assert_eq!(
        errno(t.insert(&LpmKey::new(24, [1, 2, 3, 0]), &0, ANY)),
        Some(ENOSPC)
    );
    let keys: Vec<_> = t.keys().map(|k| k.unwrap().prefix_len).collect();
    assert_eq!(keys, [16, 8, 0]);
    m.upsert(&lpm_key("10.1.0.0/16").unwrap(), &5u32).unwrap();
    assert_eq!(t.get(&LpmKey::new(32, [10, 1, 0, 1])).unwrap(), Some(5));
}

#[test]
fn queues_and_stacks_push_pop_peek() {
    let q: Queue<_, u32> = Queue::new(map(MapType::Queue, 0, 4, 2)).unwrap();
    let s: Stack<_, u32> = Stack::new(map(MapType::Stack, 0, 4, 2)).unwrap();
    for v in [1, 2] {
        q.push(&v, ANY).unwrap();
        s.push(&v, ANY).unwrap();
    }
    assert_eq!(errno(q.push(&3, ANY)), Some(E2BIG));
    assert_eq!(errno(q.push(&3, NOEXIST)), Some(EINVAL));
    q.push(&3, EXIST).unwrap(); // drops the oldest, 1
    s.push(&3, EXIST).unwrap(); // drops the oldest, 1
    assert_eq!(q.peek().unwrap(), Some(2));
    assert_eq!(q.pop().unwrap(), Some(2));
    assert_eq!(s.pop().unwrap(), Some(3));
    assert_eq!(s.pop().unwrap(), Some(2));
    assert_eq!(s.pop().unwrap(), None);
    assert_eq!(errno(s.map().delete_elem(&[])), Some(EINVAL));
}

#[test]
fn fd_maps_hold_mock_maps_and_programs() {
    let mut prog = MockProgram::new("tail", ProgramType::Xdp);
    let jmp = map(MapType::ProgArray, 4, 4, 4);
    assert_eq!(errno(jmp.upsert(&0u32, &12345i32)), Some(EBADF));
    prog.load().unwrap();
    jmp.upsert(&0u32, &prog.mock_fd().unwrap()).unwrap();
    let table = ProgramArray::new(&jmp).unwrap();
    assert_eq!(table.get(0).unwrap(), prog.id());
    assert_eq!(table.indices().map(|i| i.unwrap()).collect::<Vec<_>>(), [0]);
    assert_eq!(
        errno(jmp.upsert(&4u32, &prog.mock_fd().unwrap())),
        Some(E2BIG)
    );

    let mut outer = MapSpec::new("outer", MapType::ArrayOfMaps, 4, 4, 2);
    outer.inner_map = Some(Box::new(MapSpec::new("in", MapType::Hash, 4, 4, 8)));
    let outer = MockMap::new(&outer).unwrap();
    let inner = outer.new_inner().unwrap();
    outer.upsert(&1u32, &inner.mock_fd()).unwrap();
    assert_eq!(outer.lookup_int(&1u32).unwrap(), i64::from(inner.id()));
    outer
        .inner_map(&1u32.to_ne_bytes())
        .unwrap()
        .upsert(&7u32, &8u32)
        .unwrap();
    assert_eq!(inner.lookup_int(&7u32).unwrap(), 8);
    let other = map(MapType::Hash, 4, 8, 8);
    assert_eq!(errno(outer.upsert(&0u32, &other.mock_fd())), Some(EINVAL));
    assert_eq!(
        errno(outer.upsert(&0u32, &prog.mock_fd().unwrap())),
        Some(EINVAL)
    );
}

#[test]
fn maps_are_shared_between_threads() {
    let m = Arc::new(map(MapType::Hash, 4, 8, 1024));
    std::thread::scope(|s| {
        for t in 0u32..4 {
            let m = Arc::clone(&m);
            s.spawn(move || {
                for i in 0u32..100 {
                    m.insert(&(t * 1000 + i), &u64::from(i)).unwrap();
                }
            });
        }
    });
    assert_eq!(m.len(), 400);
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<MockMap>();
    assert_send_sync::<MockProgram>();
}

#[test]
fn injected_faults_answer_with_their_errno() {
    let m = map(MapType::Hash, 4, 8, 4);
    m.fail_times(MapOp::Update, EPERM, 1);
    let e = m.upsert(&1u32, &1u64).unwrap_err();
    assert!(matches!(e, MapError::Op { op: "update", .. }) && e.errno() == Some(EPERM));
    m.upsert(&1u32, &1u64).unwrap();
    m.fail(MapOp::Any, ENOMEM);
    assert_eq!(errno(m.lookup(&1u32)), Some(ENOMEM));
    m.clear_faults();
    m.freeze();
    assert_eq!(errno(m.upsert(&1u32, &2u64)), Some(EPERM));
    assert_eq!(m.lookup_int(&1u32).unwrap(), 1);

    let mut p = MockProgram::new("p", ProgramType::Xdp);
    p.fail_times(ProgramOp::Load, EPERM, 1);
    let e = p.load().unwrap_err();
    assert!(
        matches!(e, ProgramError::Load { .. }) && e.errno() == Some(EPERM),
        "{e:?}"
    );
    p.load().unwrap();
    assert!(matches!(p.load(), Err(ProgramError::AlreadyLoaded { .. })));
    p.fail(ProgramOp::Attach, EBUSY);
    assert_eq!(p.attach_link("veth0").unwrap_err().errno(), Some(EBUSY));
    p.clear_faults();
    let link = p.attach_link("veth0").unwrap();
    p.fail(ProgramOp::Detach, EBUSY);
    assert!(link.detach().is_err());
    assert_eq!(p.attachments(), ["veth0"]);
    p.close().unwrap();
    assert!(!p.is_loaded());
    assert_eq!(p.mock_fd(), None);

    let e = MockSystem::builder()
        .fail_load(LoadError::Map {
            map: "m".into(),
            source: Box::new(MapError::from_errno("create", "m", EPERM)),
        })
        .build()
        .unwrap_err();
    assert_eq!(e.errno(), Some(EPERM));
}

#[test]
fn programs_record_load_pin_attach_detach_close() {
    let mut p = MockProgram::new("p", ProgramType::Xdp).with_section("xdp");
    assert!(matches!(
        p.pin("/sys/fs/bpf/p".as_ref()),
        Err(ProgramError::NotLoaded { .. })
    ));
    assert!(p.attach_link("veth0").is_err());
    p.load().unwrap();
    p.pin("/sys/fs/bpf/p".as_ref()).unwrap();
    let a = p.attach_link("veth0").unwrap();
    let b = p.attach_link("veth1").unwrap();
    assert_eq!(p.attachments(), ["veth0", "veth1"]);
    a.detach().unwrap();
    b.keep();
    p.close().unwrap();
    let mut q = MockProgram::new("q", ProgramType::Xdp);
    assert!(matches!(
        Program::attach(&mut q, bpf_attach::AttachTarget::xdp("veth2")),
        Err(bpf_attach::ProgramAttachError::NotLoaded { .. })
    ));
    q.load().unwrap();
    Program::attach(&mut q, bpf_attach::AttachTarget::xdp("veth2")).unwrap();
    assert!(q.is_attached());
    assert!(Program::attach(&mut q, bpf_attach::AttachTarget::xdp("veth3")).is_err());
    Program::detach(&mut q).unwrap();
    assert!(!q.is_attached());
    assert!(Program::detach(&mut q).is_err());
    assert_eq!(
        q.events(),
        [
            ProgramEvent::Load,
            ProgramEvent::Attach("xdp:veth2".into()),
            ProgramEvent::Detach("xdp:veth2".into())
        ]
    );
    assert_eq!(
        p.events(),
        [
            ProgramEvent::Load,
            ProgramEvent::Pin("/sys/fs/bpf/p".into()),
            ProgramEvent::Attach("veth0".into()),
            ProgramEvent::Attach("veth1".into()),
            ProgramEvent::Detach("veth0".into()),
            ProgramEvent::Close,
        ]
    );
}

fn object(stem: &str) -> Option<std::path::PathBuf> {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../target/bpf/{stem}.o"));
    if path.exists() {
        return Some(path);
    }
    assert!(
        std::env::var_os("BPF_TEST_STRICT").is_none(),
        "{} is missing (run cargo xtask build-bpf)",
        path.display()
    );
    eprintln!(
        "skipped: {} is missing (run cargo xtask build-bpf)",
        path.display()
    );
    None
}

#[test]
fn load_elf_makes_mocks_from_the_real_object() {
    let Some(path) = object("xdp_basic_firewall") else {
        return;
    };
    let mut system = MockSystem::builder().cpus(2).load_elf(&path).unwrap();
    let names: Vec<_> = system.maps().map(|m| m.name().to_string()).collect();
    assert_eq!(names, ["matches", "blacklist"]);
    let blacklist = system.map("blacklist").unwrap();
    assert_eq!(
        (blacklist.map_type(), blacklist.key_size()),
        (MapType::LpmTrie, 8)
    );
    assert_eq!(system.map("matches").unwrap().value_len(), 16);
    assert!(!system.program("firewall").unwrap().is_loaded());
    system.load_all().unwrap();
    let prog = system.mock_program("firewall").unwrap();
    assert_eq!(prog.program_type(), ProgramType::Xdp);
    assert!(prog.size() > 0);
    assert_eq!(prog.events(), [ProgramEvent::Load]);
}

#[test]
fn load_elf_fills_the_objects_initial_slots() {
    let Some(path) = object("xdp_init_btf") else {
        return;
    };
    let spec = bpf_elf::ObjectSpec::from_path(&path).unwrap();
    let mut system = MockSystem::builder().load_spec(&spec).unwrap();
    system.load_all().unwrap();
    for m in spec.maps.iter().filter(|m| !m.values.is_empty()) {
        let mock = system.mock_map(&m.name).unwrap();
        for slot in &m.values {
            let id = mock.lookup_int(&slot.index).unwrap() as u32;
            let want = match &slot.value {
                bpf_elf::SlotValue::Map(n) => system.mock_map(n).unwrap().id(),
                bpf_elf::SlotValue::Program(n) => system.mock_program(n).unwrap().id().unwrap(),
            };
            assert_eq!(id, want, "{} slot {}", m.name, slot.index);
        }
    }
}
