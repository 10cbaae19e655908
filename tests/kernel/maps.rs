//! bpf-maps against the real kernel: goebpf's map suite (itest/map_test.go) in spirit, typed
//! views, batch operations, pinning policy, and bpftool as an independent view.

use std::collections::BTreeMap;
use std::os::fd::{AsFd, AsRawFd};
use std::path::Path;

use ebpf::maps::{
    errno, lpm_key, Array, ArrayOfMaps, BatchCursor, BloomFilter, CreateOptions, DataMap, HashMap,
    HashOfMaps, KernelMap, LpmKey, LpmTrie, Map, MapError, MapExt, MapSpec, MapType, Part,
    PerCpuArray, PerCpuHashMap, PerCpuValues, PinPolicy, Pinning, ProgramArray, Queue, Stack, ANY,
    NOEXIST,
};
use ebpf::sys::probe;
use tests::{bpftool, fail, require_feature, require_root, unique_name, BpfFs, TestResult};

tests::tests!(
    hash_crud_gives_typed_duplicate_and_missing_key_errors,
    arrays_hold_two_and_eight_byte_values,
    lpm_trie_v4_longest_prefix_wins,
    lpm_trie_v6_longest_prefix_wins,
    array_of_maps_stores_inner_maps,
    hash_of_maps_stores_inner_maps,
    per_cpu_values_are_written_read_and_summed,
    pinned_map_is_reused_only_when_compatible,
    pin_policies_fail_and_replace,
    pin_path_off_bpffs_is_a_typed_error,
    existing_maps_open_by_fd_path_and_id,
    typed_views_check_sizes_once,
    typed_hash_iterates_and_drains_while_deleting,
    batch_lookup_of_a_large_hash_equals_a_key_walk,
    per_cpu_batch_update_and_lookup,
    queue_stack_and_bloom_filter,
    prog_array_slots_are_empty_until_set,
    data_map_reads_and_writes_variables,
    goebpf_next_key_forms_parse_the_key,
);

fn setup() -> TestResult {
    require_root()
}

#[track_caller]
fn check(cond: bool, what: &str) -> TestResult {
    if cond {
        Ok(())
    } else {
        Err(fail(format!("{what}: not so")))
    }
}

#[track_caller]
fn expect_errno<T: std::fmt::Debug>(r: Result<T, MapError>, errno: i32, what: &str) -> TestResult {
    match r {
        Err(e) if e.errno() == Some(errno) => Ok(()),
        other => Err(fail(format!(
            "{what}: expected errno {errno}, got {other:?}"
        ))),
    }
}

fn create(t: MapType, k: u32, v: u32, max: u32) -> TestResult<KernelMap> {
    let spec = MapSpec::new(&unique_name("m"), t, k, v, max);
    Ok(KernelMap::create(&spec, &CreateOptions::default())?)
}

fn require_map_type(t: MapType) -> TestResult {
    match probe::map_type(t) {
        probe::Probe::Unsupported(e) => require_feature(&e.feature.to_string(), false),
        _ => Ok(()),
    }
}

/// `bpftool map dump id N` as key bytes -> value bytes (maps without BTF).
fn bpftool_dump(id: u32) -> TestResult<BTreeMap<Vec<u8>, Vec<u8>>> {
    let json = bpftool(&["map", "dump", "id", &id.to_string()])?;
    let bytes = |v: &serde_json::Value| -> TestResult<Vec<u8>> {
        v.as_array()
            .ok_or_else(|| fail(format!("not a byte list: {v}")))?
            .iter()
            .map(|b| {
                let s = b.as_str().unwrap_or_default();
                u8::from_str_radix(s.trim_start_matches("0x"), 16)
                    .map_err(|e| fail(format!("byte {s}: {e}")))
            })
            .collect()
    };
    let mut out = BTreeMap::new();
    for e in json.as_array().ok_or_else(|| fail("dump is not a list"))? {
        out.insert(bytes(&e["key"])?, bytes(&e["value"])?);
    }
    Ok(out)
}

fn hash_crud_gives_typed_duplicate_and_missing_key_errors() -> TestResult {
    setup()?;
    let map = create(MapType::Hash, 4, 8, 16)?;
    map.insert(&1u32, &100u64)?;
    map.insert(&2, &-3)?;
    check(
        map.insert(&1u32, &5u64).unwrap_err().is_exists(),
        "duplicate insert is EEXIST",
    )?;
    check(
        map.update(&9u32, &5u64).unwrap_err().is_not_found(),
        "update of a missing key is ENOENT",
    )?;
    map.update(&1u32, &101u64)?;
    map.upsert(&3u32, &"abc")?;
    check(map.lookup_int(&1u32)? == 101, "lookup_int")?;
    check(map.lookup_u64(&2u32)? == (-3i64) as u64, "negative value")?;
    check(map.lookup_string(&3u32)? == "abc", "lookup_string")?;
    check(map.lookup(&1u32)? == 101u64.to_ne_bytes(), "lookup bytes")?;
    check(
        map.lookup(&7u32).unwrap_err().is_not_found(),
        "lookup of a missing key",
    )?;

    // bpftool sees what we wrote.
    let dump = bpftool_dump(map.id())?;
    check(dump.len() == 3, "bpftool dumps three entries")?;
    check(
        dump[&1u32.to_ne_bytes().to_vec()] == 101u64.to_ne_bytes(),
        "bpftool value of key 1",
    )?;
    check(
        dump[&3u32.to_ne_bytes().to_vec()] == b"abc\0\0\0\0\0",
        "bpftool value of key 3",
    )?;

    map.delete(&1u32)?;
    check(
        map.delete(&1u32).unwrap_err().is_not_found(),
        "delete of a missing key",
    )?;
    check(map.keys().count() == 2, "two keys left")?;
    Ok(())
}

fn arrays_hold_two_and_eight_byte_values() -> TestResult {
    setup()?;
    // goebpf TestMapArrayInt16: 2-byte values, overflow, index out of range.
    let a16 = create(MapType::Array, 4, 2, 10)?;
    a16.upsert(&0, &1000)?;
    a16.upsert(&9u32, &-2)?;
    check(a16.lookup_u64(&0)? == 1000, "2-byte value")?;
    check(a16.lookup(&9)? == [0xfe, 0xff], "negative 2-byte value")?;
    match a16.upsert(&1, &70000) {
        Err(MapError::TooLong {
            part: Part::Value,
            got: 3,
            expected: 2,
            ..
        }) => {}
        other => return Err(fail(format!("70000 in 2 bytes: {other:?}"))),
    }
    expect_errno(a16.upsert(&10, &1), errno::E2BIG, "update past the end")?;
    expect_errno(a16.lookup(&10), errno::ENOENT, "lookup past the end")?;
    expect_errno(a16.insert(&0, &1), errno::EEXIST, "insert on an array")?;
    expect_errno(a16.delete(&0), errno::EINVAL, "delete on an array")?;

    // TestMapArrayInt / UInt64: negative and large 8-byte values.
    let a64 = create(MapType::Array, 4, 8, 4)?;
    a64.upsert(&0, &-5)?;
    a64.upsert(&1, &i64::MAX)?;
    a64.upsert(&2, &u64::MAX)?;
    check(a64.lookup_int(&0)? == -5, "negative int")?;
    check(a64.lookup_int(&1)? == i64::MAX, "large int")?;
    check(a64.lookup_u64(&2)? == u64::MAX, "u64::MAX")?;
    let typed: Array<_, i64> = Array::new(&a64)?;
    check(typed.get(0)? == -5, "typed view reads the same")?;
    typed.set(3, &42, ANY)?;
    check(
        typed.iter().collect::<Result<Vec<_>, _>>()? == [-5, i64::MAX, -1, 42],
        "iter",
    )?;
    // Key size 0 becomes 4 for arrays (goebpf).
    let spec = MapSpec::new(&unique_name("k0"), MapType::Array, 0, 4, 1);
    check(
        KernelMap::create(&spec, &Default::default())?.key_size() == 4,
        "key size 0 -> 4",
    )?;
    Ok(())
}

fn lpm_trie_v4_longest_prefix_wins() -> TestResult {
    setup()?;
    let trie = create(MapType::LpmTrie, 8, 4, 16)?;
    check(trie.flags() & 1 == 1, "created with BPF_F_NO_PREALLOC")?;
    trie.upsert(&lpm_key("10.0.0.0/8")?, &8u32)?;
    trie.upsert(&lpm_key("10.1.0.0/16")?, &16u32)?;
    trie.upsert(&lpm_key("10.1.2.0/24")?, &24u32)?;
    check(trie.lookup_int(&lpm_key("10.1.2.3")?)? == 24, "/24 wins")?;
    check(trie.lookup_int(&lpm_key("10.1.3.3")?)? == 16, "/16 wins")?;
    check(trie.lookup_int(&lpm_key("10.200.0.1")?)? == 8, "/8 wins")?;
    check(
        trie.lookup(&lpm_key("192.168.0.1")?)
            .unwrap_err()
            .is_not_found(),
        "miss",
    )?;
    trie.upsert(&lpm_key("0.0.0.0/0")?, &0u32)?;
    check(
        trie.lookup_int(&lpm_key("192.168.0.1")?)? == 0,
        "default route",
    )?;
    check(lpm_key("10.0.0.0/33").is_err(), "bad CIDR is an error")?;

    let typed: LpmTrie<_, [u8; 4], u32> = LpmTrie::new(&trie)?;
    check(
        typed.get(&LpmKey::new(32, [10, 1, 2, 200]))? == Some(24),
        "typed lookup",
    )?;
    typed.remove(&LpmKey::new(24, [10, 1, 2, 0]))?;
    check(
        typed.get(&LpmKey::new(32, [10, 1, 2, 200]))? == Some(16),
        "after removing /24",
    )?;
    check(typed.keys().count() == 3, "three prefixes left")?;
    Ok(())
}

fn lpm_trie_v6_longest_prefix_wins() -> TestResult {
    setup()?;
    let trie = create(MapType::LpmTrie, 20, 4, 16)?;
    trie.upsert(&lpm_key("2001:db8::/32")?, &32u32)?;
    trie.upsert(&lpm_key("2001:db8:1::/48")?, &48u32)?;
    check(
        trie.lookup_int(&lpm_key("2001:db8:1::5")?)? == 48,
        "/48 wins",
    )?;
    check(
        trie.lookup_int(&lpm_key("2001:db8:2::5")?)? == 32,
        "/32 wins",
    )?;
    check(
        trie.lookup(&lpm_key("fe80::1")?)
            .unwrap_err()
            .is_not_found(),
        "miss",
    )?;
    trie.upsert(&lpm_key("::/0")?, &0u32)?;
    check(trie.lookup_int(&lpm_key("fe80::1")?)? == 0, "default route")?;
    // A v6 key does not fit a v4 trie.
    let v4 = create(MapType::LpmTrie, 8, 4, 4)?;
    match v4.upsert(&lpm_key("::1")?, &1u32) {
        Err(MapError::TooLong {
            part: Part::Key,
            got: 20,
            expected: 8,
            ..
        }) => Ok(()),
        other => Err(fail(format!("v6 key in a v4 trie: {other:?}"))),
    }
}

fn inner_template() -> MapSpec {
    MapSpec::new("inner", MapType::Array, 4, 4, 1)
}

fn array_of_maps_stores_inner_maps() -> TestResult {
    setup()?;
    let mut spec = MapSpec::new(&unique_name("aom"), MapType::ArrayOfMaps, 4, 0, 4);
    spec.inner_map = Some(Box::new(inner_template()));
    let outer = KernelMap::create(&spec, &Default::default())?;
    check(outer.value_size() == 4, "fd-array value size forced to 4")?;
    let a = KernelMap::create(&inner_template(), &Default::default())?;
    a.upsert(&0, &11u32)?;
    let b = a.new_inner()?;
    b.upsert(&0, &22u32)?;
    let slots = ArrayOfMaps::new(&outer)?;
    slots.set(0, &a)?;
    // goebpf: the fd as an int, and insert forced to BPF_ANY on arrays of maps.
    outer.insert(&2, &b.as_raw_fd())?;
    outer.insert(&2, &b.as_raw_fd())?;
    check(slots.get(0)? == Some(a.id()), "slot 0 holds a")?;
    check(slots.get(2)? == Some(b.id()), "slot 2 holds b")?;
    check(slots.get(1)?.is_none(), "slot 1 is empty")?;
    let got = slots.get_map(2)?.ok_or_else(|| fail("slot 2 empty"))?;
    check(
        got.lookup_int(&0)? == 22,
        "inner map opened by id reads b's value",
    )?;
    slots.clear(0)?;
    check(slots.get(0)?.is_none(), "cleared")?;
    Ok(())
}

fn hash_of_maps_stores_inner_maps() -> TestResult {
    setup()?;
    let inner = KernelMap::create(&inner_template(), &Default::default())?;
    let opts = CreateOptions {
        inner_map: Some(inner.as_fd()),
        ..Default::default()
    };
    let outer = KernelMap::create(
        &MapSpec::new(&unique_name("hom"), MapType::HashOfMaps, 8, 0, 4),
        &opts,
    )?;
    let hom: HashOfMaps<_, u64> = HashOfMaps::new(&outer)?;
    let spare = inner.new_inner()?;
    hom.insert(&7, &inner)?;
    hom.insert(&9, &spare)?;
    check(hom.get(&7)? == Some(inner.id()), "key 7")?;
    check(hom.get(&9)? == Some(spare.id()), "key 9")?;
    check(hom.get(&8)?.is_none(), "key 8 missing")?;
    let mut keys: Vec<u64> = hom.keys().collect::<Result<_, _>>()?;
    keys.sort();
    check(keys == [7, 9], "keys")?;
    // An inner map of another shape is refused by the kernel.
    let wrong = create(MapType::Hash, 4, 4, 1)?;
    expect_errno(
        hom.insert(&1, &wrong),
        errno::EINVAL,
        "inner map of the wrong type",
    )?;
    Ok(())
}

fn per_cpu_values_are_written_read_and_summed() -> TestResult {
    setup()?;
    // 4-byte values: 8-byte slots, so the padded stride matters.
    let map = create(MapType::PerCpuArray, 4, 4, 2)?;
    let typed: PerCpuArray<_, u32> = PerCpuArray::new(&map)?;
    let cpus = typed.cpus();
    check(
        cpus == ebpf::sys::cpu::num_possible_cpus().map_err(fail)?,
        "one slot per possible CPU",
    )?;
    check(map.value_len() == 8 * cpus, "raw buffer of 8-byte slots")?;
    let values: PerCpuValues<u32> = (1..=cpus as u32).collect::<Vec<_>>().into();
    typed.set(0, &values, ANY)?;
    check(typed.get(0)? == values, "per-CPU values read back")?;
    let n = cpus as u64;
    check(
        map.lookup_u64(&0)? == n * (n + 1) / 2,
        "lookup_u64 sums with the padded stride",
    )?;
    let raw = map.lookup(&0)?;
    check(
        raw[8..12] == 2u32.to_ne_bytes() || cpus == 1,
        "CPU 1's slot at byte 8",
    )?;
    // goebpf: a scalar lands in CPU 0 and zeroes the others.
    map.upsert(&1, &5u32)?;
    check(
        typed.get(1)?[0] == 5 && typed.get(1)?.iter().skip(1).all(|&v| v == 0),
        "scalar upsert",
    )?;
    check(
        map.lookup_string(&0).is_err(),
        "lookup_string refuses per-CPU maps",
    )?;
    match typed.set(0, &PerCpuValues::from(vec![1u32; cpus + 1]), ANY) {
        Err(MapError::Size { .. }) => {}
        other => return Err(fail(format!("wrong CPU count: {other:?}"))),
    }

    let hash = create(MapType::PerCpuHash, 4, 8, 8)?;
    let th: PerCpuHashMap<_, u32, u64> = PerCpuHashMap::new(&hash)?;
    th.insert(&3, &PerCpuValues::filled(cpus, 7), ANY)?;
    check(hash.lookup_u64(&3u32)? == 7 * n, "per-CPU hash sum")?;
    check(th.get(&4)?.is_none(), "missing key")?;
    let entries: Vec<_> = th.iter().collect::<Result<_, _>>()?;
    check(
        entries.len() == 1 && entries[0].1.iter().all(|&v| v == 7),
        "iter",
    )?;
    Ok(())
}

fn by_name(name: &str, t: MapType, k: u32, v: u32, max: u32) -> MapSpec {
    let mut spec = MapSpec::new(name, t, k, v, max);
    spec.pinning = Pinning::ByName;
    spec
}

fn pinned_map_is_reused_only_when_compatible() -> TestResult {
    setup()?;
    let fs = BpfFs::new()?;
    let opts = CreateOptions::with_pin_root(fs.path());
    let spec = by_name("counts", MapType::Hash, 4, 8, 16);
    let first = KernelMap::create(&spec, &opts)?;
    let path = fs.path().join("counts");
    check(
        first.pin_path() == Some(path.as_path()),
        "pinned by name under the root",
    )?;
    first.upsert(&1u32, &42u64)?;
    let shown = bpftool(&["map", "show", "pinned", &path.to_string_lossy()])?;
    check(
        shown["id"] == first.id(),
        "bpftool shows our map at the pin",
    )?;
    check(
        shown["name"] == "counts" && shown["type"] == "hash",
        "bpftool name and type",
    )?;

    // Same spec again: the pinned map, with its contents (goebpf TestMapPersistent).
    let again = KernelMap::create(&spec, &opts)?;
    check(again.id() == first.id(), "same map id")?;
    check(
        again.lookup_int(&1u32)? == 42,
        "value visible through the reused map",
    )?;
    let clone = KernelMap::create(&first.clone_template(), &opts)?;
    check(
        clone.id() == first.id(),
        "clone_template + create reopens the pin",
    )?;

    // Incompatible: each differing field named.
    let bad = by_name("counts", MapType::Hash, 4, 16, 32);
    match KernelMap::create(&bad, &opts) {
        Err(MapError::Incompatible { differences, .. }) => {
            let fields: Vec<_> = differences.iter().map(|d| d.field).collect();
            check(
                fields == ["value_size", "max_entries"],
                "value_size and max_entries differ",
            )?;
        }
        other => return Err(fail(format!("incompatible spec: {other:?}"))),
    }
    // goebpf's persistent_path under /sys/fs/bpf lands under the pin root.
    let mut legacy = MapSpec::new("txcnt", MapType::PerCpuArray, 4, 8, 4);
    legacy.pinning = Pinning::Path("/sys/fs/bpf/sub/txcnt".into());
    let mut l = KernelMap::create(&legacy, &opts)?;
    check(
        fs.path().join("sub/txcnt").exists(),
        "persistent path moved under the root",
    )?;
    check(
        !Path::new("/sys/fs/bpf/sub/txcnt").exists(),
        "nothing on the host's bpffs",
    )?;
    l.unpin()?;
    check(!fs.path().join("sub/txcnt").exists(), "unpinned")?;
    drop((first, again, clone));
    Ok(())
}

fn pin_policies_fail_and_replace() -> TestResult {
    setup()?;
    let fs = BpfFs::new()?;
    let spec = by_name("pol", MapType::Array, 4, 4, 2);
    let mut opts = CreateOptions::with_pin_root(fs.path());
    let first = KernelMap::create(&spec, &opts)?;
    opts.pin_policy = PinPolicy::Fail;
    check(
        matches!(
            KernelMap::create(&spec, &opts),
            Err(MapError::PinExists { .. })
        ),
        "Fail refuses an existing pin",
    )?;
    opts.pin_policy = PinPolicy::Replace;
    let second = KernelMap::create(&spec, &opts)?;
    check(second.id() != first.id(), "Replace makes a new map")?;
    let now = KernelMap::from_pin(fs.path().join("pol"))?;
    check(now.id() == second.id(), "the pin names the new map")?;
    Ok(())
}

fn pin_path_off_bpffs_is_a_typed_error() -> TestResult {
    setup()?;
    let dir = std::env::temp_dir().join(unique_name("notbpf"));
    let mut spec = MapSpec::new("off", MapType::Hash, 4, 4, 1);
    spec.pinning = Pinning::Path(dir.join("m").to_string_lossy().into_owned());
    let r = KernelMap::create(&spec, &Default::default());
    check(
        matches!(r, Err(MapError::NotBpffs { .. })),
        "create with a pin off bpffs",
    )?;
    let mut map = create(MapType::Hash, 4, 4, 1)?;
    check(
        matches!(map.pin(dir.join("m")), Err(MapError::NotBpffs { .. })),
        "pin off bpffs",
    )?;
    check(!dir.exists(), "no directory made off bpffs")?;
    Ok(())
}

fn existing_maps_open_by_fd_path_and_id() -> TestResult {
    setup()?;
    let fs = BpfFs::new()?;
    let mut map = create(MapType::Hash, 4, 8, 8)?;
    map.upsert(&1u32, &77u64)?;
    let by_id = KernelMap::from_id(map.id())?;
    let by_fd = KernelMap::from_fd(map.as_fd().try_clone_to_owned().map_err(fail)?)?;
    map.pin(fs.path().join("dir/existing"))?;
    let by_path = KernelMap::from_pin(fs.path().join("dir/existing"))?;
    for (how, m) in [("id", &by_id), ("fd", &by_fd), ("path", &by_path)] {
        check(m.id() == map.id(), how)?;
        check(m.name() == map.name() && m.map_type() == MapType::Hash, how)?;
        check(
            (m.key_size(), m.value_size(), m.max_entries()) == (4, 8, 8),
            how,
        )?;
        check(m.lookup_int(&1u32)? == 77, how)?;
    }
    let info = map.info()?;
    check(info.id == map.id() && info.max_entries == 8, "info")?;
    check(
        ebpf::maps::loaded_maps().any(|i| i.is_ok_and(|i| i.id == map.id())),
        "listed",
    )?;
    match KernelMap::from_pin(fs.path().join("missing")) {
        Err(e) if e.is_not_found() => {}
        other => return Err(fail(format!("missing pin: {other:?}"))),
    }
    map.unpin()?;
    Ok(())
}

fn typed_views_check_sizes_once() -> TestResult {
    setup()?;
    let map = create(MapType::Hash, 4, 8, 4)?;
    match HashMap::<_, u32, u32>::new(&map) {
        Err(MapError::Size {
            part: Part::Value,
            got: 4,
            expected: 8,
            ..
        }) => {}
        other => return Err(fail(format!("u32 values over 8-byte values: {other:?}"))),
    }
    check(
        matches!(
            Array::<_, u64>::new(&map),
            Err(MapError::Unsupported { .. })
        ),
        "array view of a hash",
    )?;
    match map.upsert(&"too long", &1u64) {
        Err(MapError::TooLong {
            part: Part::Key,
            got: 8,
            expected: 4,
            ..
        }) => {}
        other => return Err(fail(format!("key too long: {other:?}"))),
    }
    match map.lookup_elem(&[0; 3], &mut [0; 8], 0) {
        Err(MapError::Size {
            part: Part::Key,
            got: 3,
            expected: 4,
            ..
        }) => Ok(()),
        other => Err(fail(format!("3-byte key slice: {other:?}"))),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, ebpf::maps::Pod, ebpf::maps::Zeroable)]
#[bytemuck(crate = "ebpf::maps::bytemuck")]
#[repr(C)]
struct Flow {
    addr: u32,
    port: u16,
    proto: u16,
}

fn typed_hash_iterates_and_drains_while_deleting() -> TestResult {
    setup()?;
    let map = create(MapType::Hash, 8, 8, 128)?;
    let flows: HashMap<_, Flow, u64> = HashMap::new(&map)?;
    for i in 0..100u32 {
        let f = Flow {
            addr: i,
            port: 80,
            proto: 6,
        };
        flows.insert(&f, &u64::from(i), NOEXIST)?;
    }
    let total: u64 = flows
        .iter()
        .map(|e| e.map(|(_, v)| v))
        .sum::<Result<u64, _>>()?;
    check(total == (0..100).sum::<u64>(), "iter sums every value once")?;
    let mut seen = std::collections::BTreeSet::new();
    for k in flows.keys() {
        let k = k?;
        flows.remove(&k)?;
        check(seen.insert(k.addr), "no key twice while deleting")?;
    }
    check(seen.len() == 100, "every key visited while deleting")?;
    check(flows.keys().next().is_none(), "drained")?;
    Ok(())
}

/// A map that only has the required methods, so batch operations take the per-element
/// fallback.
#[derive(Debug)]
struct NoBatch<'a>(&'a KernelMap);

impl Map for NoBatch<'_> {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn map_type(&self) -> MapType {
        self.0.map_type()
    }
    fn key_size(&self) -> u32 {
        self.0.key_size()
    }
    fn value_size(&self) -> u32 {
        self.0.value_size()
    }
    fn max_entries(&self) -> u32 {
        self.0.max_entries()
    }
    fn flags(&self) -> u32 {
        self.0.flags()
    }
    fn value_len(&self) -> usize {
        self.0.value_len()
    }
    fn lookup_elem(&self, k: &[u8], v: &mut [u8], f: u64) -> Result<(), MapError> {
        self.0.lookup_elem(k, v, f)
    }
    fn update_elem(&self, k: &[u8], v: &[u8], f: u64) -> Result<(), MapError> {
        self.0.update_elem(k, v, f)
    }
    fn delete_elem(&self, k: &[u8]) -> Result<(), MapError> {
        self.0.delete_elem(k)
    }
    fn get_next_key(&self, k: Option<&[u8]>, n: &mut [u8]) -> Result<bool, MapError> {
        self.0.get_next_key(k, n)
    }
    fn lookup_and_delete_elem(&self, k: &[u8], v: &mut [u8], f: u64) -> Result<(), MapError> {
        self.0.lookup_and_delete_elem(k, v, f)
    }
}

fn batch_lookup_of_a_large_hash_equals_a_key_walk() -> TestResult {
    setup()?;
    let map = create(MapType::Hash, 4, 8, 8192)?;
    let n = 5000u32;
    let keys: Vec<u32> = (0..n).collect();
    let values: Vec<u64> = keys.iter().map(|&k| u64::from(k) * 3).collect();
    let typed: HashMap<_, u32, u64> = HashMap::new(&map)?;
    check(
        typed.update_batch(&keys, &values, ANY)? == n as usize,
        "batch update count",
    )?;
    let walk: BTreeMap<Vec<u8>, Vec<u8>> = map.entries().collect::<Result<_, _>>()?;
    check(walk.len() == n as usize, "the walk sees every element")?;
    let batch: BTreeMap<Vec<u8>, Vec<u8>> = map.lookup_batch_all()?.into_iter().collect();
    check(batch == walk, "batch lookup equals the next-key walk")?;
    let fallback: BTreeMap<Vec<u8>, Vec<u8>> =
        NoBatch(&map).lookup_batch_all()?.into_iter().collect();
    check(fallback == walk, "per-element fallback equals the walk")?;
    if probe::batch_ops_supported() {
        // Small buffers: the kernel's cursor over many calls.
        let (mut k, mut v) = ([0u32; 7], [0u64; 7]);
        let mut cursor = BatchCursor::new();
        let mut count = 0;
        while !cursor.is_done() {
            match typed.lookup_batch(&mut cursor, &mut k, &mut v) {
                Ok(c) => count += c,
                // A bucket with more than 7 elements: the kernel wants larger buffers.
                Err(e) if e.errno() == Some(errno::ENOSPC) => {
                    return Err(fail("ENOSPC with 7 slots"))
                }
                Err(e) => return Err(e.into()),
            }
        }
        check(count == n as usize, "small batches see every element")?;
    }
    // Delete half in a batch, take the rest with lookup-and-delete.
    check(typed.delete_batch(&keys[..2500])? == 2500, "batch delete")?;
    let (mut k, mut v) = (vec![0u32; 4096], vec![0u64; 4096]);
    let mut cursor = BatchCursor::new();
    let mut taken = 0;
    while !cursor.is_done() {
        taken += typed.lookup_and_delete_batch(&mut cursor, &mut k, &mut v)?;
    }
    check(taken == 2500, "lookup and delete batch takes the rest")?;
    check(map.keys().next().is_none(), "empty")?;
    Ok(())
}

fn per_cpu_batch_update_and_lookup() -> TestResult {
    setup()?;
    let map = create(MapType::PerCpuHash, 4, 4, 64)?;
    let slots = map.value_slots();
    let mut keys = Vec::new();
    let mut values = Vec::new();
    for k in 0..32u32 {
        keys.extend_from_slice(&k.to_ne_bytes());
        for cpu in 0..slots as u32 {
            values.extend_from_slice(&(k * 100 + cpu).to_ne_bytes());
            values.extend_from_slice(&[0; 4]);
        }
    }
    check(
        map.update_batch(&keys, &values, ANY)? == 32,
        "per-CPU batch update",
    )?;
    let all: BTreeMap<_, _> = map.lookup_batch_all()?.into_iter().collect();
    check(all.len() == 32, "32 elements")?;
    let v5 = &all[&5u32.to_ne_bytes().to_vec()];
    check(v5.len() == 8 * slots, "per-CPU value buffer")?;
    check(
        v5[8 * (slots - 1)..][..4] == (500 + slots as u32 - 1).to_ne_bytes(),
        "last CPU's slot",
    )?;
    let typed: PerCpuHashMap<_, u32, u32> = PerCpuHashMap::new(&map)?;
    check(typed.get(&5)?.unwrap()[0] == 500, "typed view agrees")?;
    Ok(())
}

fn queue_stack_and_bloom_filter() -> TestResult {
    setup()?;
    require_map_type(MapType::Queue)?;
    let q = create(MapType::Queue, 0, 4, 4)?;
    let queue: Queue<_, u32> = Queue::new(&q)?;
    for i in 1..=3 {
        queue.push(&i, ANY)?;
    }
    check(queue.peek()? == Some(1), "peek")?;
    check(queue.pop()? == Some(1) && queue.pop()? == Some(2), "FIFO")?;
    let s = create(MapType::Stack, 0, 4, 4)?;
    let stack: Stack<_, u32> = Stack::new(&s)?;
    stack.push(&1, ANY)?;
    stack.push(&2, ANY)?;
    check(stack.pop()? == Some(2) && stack.pop()? == Some(1), "LIFO")?;
    check(stack.pop()?.is_none(), "empty stack")?;
    require_map_type(MapType::BloomFilter)?;
    let b = create(MapType::BloomFilter, 0, 8, 64)?;
    let bloom: BloomFilter<_, u64> = BloomFilter::new(&b)?;
    bloom.insert(&42)?;
    check(bloom.contains(&42)?, "inserted value is found")?;
    Ok(())
}

fn prog_array_slots_are_empty_until_set() -> TestResult {
    setup()?;
    let spec = MapSpec::new(&unique_name("jmp"), MapType::ProgArray, 0, 0, 4);
    let map = KernelMap::create(&spec, &Default::default())?;
    check(
        (map.key_size(), map.value_size()) == (4, 4),
        "prog array sizes normalised",
    )?;
    let table = ProgramArray::new(&map)?;
    check(table.get(0)?.is_none(), "empty slot")?;
    check(table.indices().count() == 0, "no indices")?;
    // A map fd is not a program: the kernel refuses it.
    let not_prog = create(MapType::Array, 4, 4, 1)?;
    expect_errno(
        table.set(0, &not_prog),
        errno::EINVAL,
        "a map fd in a program array",
    )?;
    Ok(())
}

fn data_map_reads_and_writes_variables() -> TestResult {
    setup()?;
    let var = |name: &str, offset, size| ebpf::elf::VariableSpec {
        name: name.into(),
        offset,
        size,
        type_id: 0,
        is_static: false,
    };
    let mut spec = MapSpec::new(".data", MapType::Array, 4, 12, 1);
    spec.variables = vec![var("counter", 0, 8), var("limit", 8, 4)];
    spec.data = Some([7u64.to_ne_bytes().as_slice(), &3u32.to_ne_bytes()].concat());
    ebpf::maps::set_variable(&mut spec, "limit", &5u32.to_ne_bytes())?;
    let map = KernelMap::create(&spec, &Default::default())?;
    let data = DataMap::from_map(&map)?;
    check(data.get_as::<u64>("counter")? == 7, "initial data")?;
    check(data.get_as::<u32>("limit")? == 5, "set before create")?;
    data.set_as("counter", &9u64)?;
    check(data.get_as::<u64>("counter")? == 9, "written after create")?;
    check(data.get_as::<u32>("counter").is_err(), "wrong size")?;

    spec.name = ".rodata".into();
    spec.freeze = true;
    let ro = KernelMap::create(&spec, &Default::default())?;
    let rodata = DataMap::from_map(&ro)?;
    check(
        rodata.get_as::<u64>("counter")? == 7,
        "frozen map keeps its data",
    )?;
    expect_errno(
        rodata.set_as("counter", &1u64),
        errno::EPERM,
        "write to a frozen map",
    )?;
    Ok(())
}

fn goebpf_next_key_forms_parse_the_key() -> TestResult {
    setup()?;
    // Key 2 bytes, value 8: goebpf parsed keys with the value size.
    let map = create(MapType::Hash, 2, 8, 8)?;
    map.upsert(&0x0102u16, &u64::MAX)?;
    check(
        map.next_key_u64(None)? == Some(0x0102),
        "next key parsed with the key size",
    )?;
    check(map.next_key_int(Some(&0x0102u16))?.is_none(), "end of walk")?;
    let names = create(MapType::Hash, 8, 4, 8)?;
    names.upsert("eth0", &1)?;
    check(
        names.next_key_string(None)? == Some("eth0".into()),
        "next key as string",
    )?;
    check(names.next_key(Some(&"eth0"))?.is_none(), "end")?;
    Ok(())
}
