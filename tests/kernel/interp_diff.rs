//! The userspace interpreter against the kernel: every XDP, TC and socket-filter program of
//! `target/bpf/` runs on the same generated packets through `BPF_PROG_TEST_RUN` and through
//! `bpf_mock::interp`, with mock maps of the same specs; return values, output packets and map
//! contents must match.
//!
//! Each proptest case starts by copying the kernel maps into the mock maps (so cases are
//! independent and shrink), runs 1 to 6 packets through both, and compares every array, hash
//! and LPM trie (global data included) key by key. The thread is pinned to one CPU and the
//! interpreter is told that CPU, so per-CPU values compare slot by slot.

use std::path::{Path, PathBuf};

use ebpf::attach::{KernelSystem, LoadOptions, TestRun};
use ebpf::elf::{MapSpec, ObjectSpec, ProgramType, SlotValue};
use ebpf::maps::{Map, MapType, ANY};
use ebpf::mock::interp::{MemMap, ProgramId, RunResult, Vm};
use ebpf::mock::MockMap;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};
use tests::{fail, require_root, BpfFs, TestResult};

tests::tests!(
    xdp_programs_match_the_kernel,
    tc_programs_match_the_kernel,
    socket_filters_match_the_kernel,
);

const CASES: u32 = 48;

/// Programs left out, and why (`object/program`).
const EXCLUDED: &[(&str, &str)] = &[
    (
        "xdp_redirect_map/xdp_test",
        "calls bpf_fib_lookup, which needs the kernel's routing table",
    ),
    (
        "core_kfunc/core_kfunc_task_pid",
        "calls kfuncs (kernel functions found in the kernel's BTF), which the interpreter lacks",
    ),
    (
        "core_kfunc_ct/core_kfunc_ct_lookup",
        "calls nf_conntrack's kfuncs, which the interpreter lacks",
    ),
    (
        "sock_perf_btf/perf_seq",
        "without a perf reader the kernel answers -ENOENT and counts a loss; the interpreter is the reader",
    ),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Xdp,
    Tc,
    Socket,
}

fn kind_of(t: ProgramType) -> Option<Kind> {
    match t {
        ProgramType::Xdp => Some(Kind::Xdp),
        ProgramType::SchedCls | ProgramType::SchedAct => Some(Kind::Tc),
        ProgramType::SocketFilter => Some(Kind::Socket),
        _ => None,
    }
}

fn bpf_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/bpf")
}

/// Every object with at least one program of `kind`, and those programs.
fn objects(kind: Kind) -> TestResult<Vec<(PathBuf, ObjectSpec, Vec<String>)>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(bpf_dir())
        .map_err(|e| {
            fail(format!(
                "{}: {e}; run `cargo xtask build-bpf`",
                bpf_dir().display()
            ))
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "o"))
        .collect();
    paths.sort();
    let mut out = Vec::new();
    for path in paths {
        let obj = ObjectSpec::from_path(&path)?;
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("")
            .to_string();
        let names: Vec<String> = obj
            .programs
            .iter()
            .filter(|p| kind_of(p.program_type) == Some(kind))
            .map(|p| p.name.to_string())
            .filter(|name| !EXCLUDED.iter().any(|(e, _)| *e == format!("{stem}/{name}")))
            .collect();
        if !names.is_empty() {
            out.push((path, obj, names));
        }
    }
    Ok(out)
}

fn comparable(t: MapType) -> bool {
    matches!(
        t,
        MapType::Array
            | MapType::PerCpuArray
            | MapType::Hash
            | MapType::PerCpuHash
            | MapType::LpmTrie
    )
}

fn fd_holding(t: MapType) -> bool {
    matches!(
        t,
        MapType::ProgArray
            | MapType::ArrayOfMaps
            | MapType::HashOfMaps
            | MapType::PerfEventArray
            | MapType::DevMap
            | MapType::RingBuf
    )
}

fn keys(map: &dyn Map) -> Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::new();
    let mut next = vec![0u8; map.key_size() as usize];
    let mut cur: Option<Vec<u8>> = None;
    while map
        .get_next_key(cur.as_deref(), &mut next)
        .map_err(|e| format!("{}: next key: {e}", map.name()))?
    {
        out.push(next.clone());
        cur = Some(next.clone());
        if out.len() > map.max_entries() as usize + 1 {
            return Err(format!("{}: the walk does not end", map.name()));
        }
    }
    Ok(out)
}

fn value(map: &dyn Map, key: &[u8]) -> Result<Vec<u8>, String> {
    let mut v = vec![0u8; map.value_len()];
    map.lookup_elem(key, &mut v, 0)
        .map_err(|e| format!("{}: lookup {key:02x?}: {e}", map.name()))?;
    Ok(v)
}

/// An Ethernet frame: IPv4 with chosen fields, another EtherType, or random bytes.
fn packet() -> impl Strategy<Value = Vec<u8>> {
    let ipv4 = (
        prop::sample::select(vec![1u8, 6, 17, 47, 255]),
        prop::sample::select(vec![
            [10u8, 1, 2, 3],
            [10, 1, 200, 9],
            [10, 2, 0, 1],
            [198, 18, 0, 1],
        ]),
        0usize..64,
        any::<u8>(),
    )
        .prop_map(|(proto, src, payload, ttl)| {
            let mut f = vec![0u8; 14 + 20 + payload];
            f[0..6].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
            f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
            f[12..14].copy_from_slice(&[0x08, 0x00]);
            f[14] = 0x45;
            f[16..18].copy_from_slice(&((20 + payload) as u16).to_be_bytes());
            f[22] = ttl;
            f[23] = proto;
            f[26..30].copy_from_slice(&src);
            f[30..34].copy_from_slice(&[198, 18, 0, 2]);
            for (i, b) in f[34..].iter_mut().enumerate() {
                *b = i as u8;
            }
            f
        });
    let other = (
        prop::sample::select(vec![[0x08u8, 0x06], [0x86, 0xdd], [0x81, 0x00]]),
        0usize..40,
    )
        .prop_map(|(ethertype, extra)| {
            let mut f = vec![0xabu8; 14 + 40 + extra];
            f[12..14].copy_from_slice(&ethertype);
            f
        });
    let random = prop::collection::vec(any::<u8>(), 54..100);
    prop_oneof![4 => ipv4, 1 => other, 1 => random]
}

/// The kernel and interpreter sides of one object.
struct Pair<'m> {
    sys: KernelSystem,
    vm: Vm<'m>,
    ids: Vec<(String, ProgramId)>,
    mocks: &'m [(String, Box<dyn Map>)],
}

fn mock_maps(obj: &ObjectSpec, cpus: usize) -> TestResult<Vec<(String, Box<dyn Map>)>> {
    let mut out: Vec<(String, Box<dyn Map>)> = Vec::new();
    for spec in &obj.maps {
        let map: Box<dyn Map> = if fd_holding(spec.map_type) {
            let max = if spec.max_entries == 0 {
                cpus as u32
            } else {
                spec.max_entries
            };
            Box::new(MemMap::new(
                &spec.name,
                spec.map_type,
                4,
                4,
                max,
                spec.flags,
                cpus,
            ))
        } else {
            Box::new(MockMap::with_cpus(spec, cpus)?)
        };
        out.push((spec.name.to_string(), map));
    }
    Ok(out)
}

fn pair<'m>(
    path: &Path,
    obj: &ObjectSpec,
    fs: &BpfFs,
    mocks: &'m [(String, Box<dyn Map>)],
    cpu: u32,
) -> TestResult<Pair<'m>> {
    let mut sys = KernelSystem::load_elf_with(path, &LoadOptions::default().pin_root(fs.path()))?;
    sys.load_all()?;
    let mut vm = Vm::new();
    vm.env_mut().cpu = cpu;
    let mut ids = Vec::new();
    for p in &obj.programs {
        if kind_of(p.program_type).is_none() {
            continue;
        }
        let id = vm.load(obj, &p.name, |name| {
            mocks
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, m)| m.as_ref())
        })?;
        ids.push((p.name.to_string(), id));
    }
    // Initial slots of program arrays and maps of maps, as the loader fills them.
    for spec in &obj.maps {
        fill_slots(spec, &mut vm, &ids, mocks)?;
    }
    // Something for the firewall to find.
    if let Some(m) = sys.map("blacklist") {
        let mut key = 16u32.to_ne_bytes().to_vec();
        key.extend_from_slice(&[10, 1, 0, 0]);
        m.update_elem(&key, &3u32.to_ne_bytes(), ANY)?;
    }
    Ok(Pair {
        sys,
        vm,
        ids,
        mocks,
    })
}

fn fill_slots<'m>(
    spec: &MapSpec,
    vm: &mut Vm<'m>,
    ids: &[(String, ProgramId)],
    mocks: &'m [(String, Box<dyn Map>)],
) -> TestResult {
    let Some((_, outer)) = mocks.iter().find(|(n, _)| *n == spec.name) else {
        return Ok(());
    };
    for slot in &spec.values {
        let number = match &slot.value {
            SlotValue::Program(name) => match ids.iter().find(|(n, _)| n == name) {
                Some((_, id)) => id.fd(),
                None => continue,
            },
            SlotValue::Map(name) => match mocks.iter().find(|(n, _)| n == name) {
                Some((_, m)) => vm.add_map(m.as_ref()),
                None => continue,
            },
        };
        outer.update_elem(&slot.index.to_ne_bytes(), &number.to_ne_bytes(), ANY)?;
    }
    Ok(())
}

impl Pair<'_> {
    /// Copies every comparable kernel map into its mock.
    fn sync(&self) -> Result<(), String> {
        for (name, mock) in self.mocks {
            let Some(kernel) = self.sys.map(name) else {
                continue;
            };
            if !comparable(mock.map_type()) {
                continue;
            }
            for key in keys(mock.as_ref())? {
                if matches!(
                    mock.map_type(),
                    MapType::Hash | MapType::PerCpuHash | MapType::LpmTrie
                ) {
                    mock.delete_elem(&key)
                        .map_err(|e| format!("{name}: delete: {e}"))?;
                }
            }
            for key in keys(kernel)? {
                let v = value(kernel, &key)?;
                if mock.update_elem(&key, &v, ANY).is_err() && value(mock.as_ref(), &key)? != v {
                    return Err(format!("{name}: cannot copy key {key:02x?} into the mock"));
                }
            }
        }
        Ok(())
    }

    fn compare_maps(&self, program: &str) -> Result<(), String> {
        for (name, mock) in self.mocks {
            let Some(kernel) = self.sys.map(name) else {
                continue;
            };
            if !comparable(mock.map_type()) {
                continue;
            }
            let (mut kk, mut mk) = (keys(kernel)?, keys(mock.as_ref())?);
            kk.sort();
            mk.sort();
            if kk != mk {
                return Err(format!(
                    "{program}: map {name}: kernel keys {kk:02x?}, interpreter keys {mk:02x?}"
                ));
            }
            for key in kk {
                let (kv, mv) = (value(kernel, &key)?, value(mock.as_ref(), &key)?);
                if kv != mv {
                    return Err(format!(
                        "{program}: map {name} key {key:02x?}: kernel {kv:02x?}, interpreter {mv:02x?}"
                    ));
                }
            }
        }
        Ok(())
    }

    fn run_case(&mut self, program: &str, kind: Kind, packets: &[Vec<u8>]) -> Result<(), String> {
        self.sync()?;
        let id = self
            .ids
            .iter()
            .find(|(n, _)| n == program)
            .map(|(_, id)| *id)
            .ok_or("no program")?;
        for (i, pkt) in packets.iter().enumerate() {
            let kp = self.sys.program(program).ok_or("no kernel program")?;
            let k = kp
                .test_run(&TestRun::with_data(pkt))
                .map_err(|e| format!("test run: {e}: {:?}", std::error::Error::source(&e)))?;
            let (input, want_packet): (&[u8], Vec<u8>) = match kind {
                Kind::Socket => (&pkt[14..], k.data.get(14..).unwrap_or(&[]).to_vec()),
                _ => (pkt, k.data.clone()),
            };
            let r: RunResult = match kind {
                Kind::Xdp => self.vm.run_xdp(id, input),
                _ => self.vm.run_skb(id, input),
            }
            .map_err(|e| format!("{program}: packet {i}: interpreter: {e}"))?;
            if u64::from(k.return_value) != r.return_value & 0xffff_ffff {
                return Err(format!(
                    "{program}: packet {i}: kernel returned {}, interpreter {}",
                    k.return_value, r.return_value
                ));
            }
            // XDP: the kernel hands back the metadata in front of the packet (since Linux
            // 5.15's xdp_md input; 5.10 hands back the packet alone).
            let got: Vec<u8> = match kind {
                Kind::Xdp if want_packet.len() == r.metadata.len() + r.packet.len() => {
                    [r.metadata.as_slice(), r.packet.as_slice()].concat()
                }
                _ => r.packet.clone(),
            };
            if got != want_packet {
                return Err(format!(
                    "{program}: packet {i}: kernel output {want_packet:02x?}, interpreter {got:02x?}"
                ));
            }
        }
        self.compare_maps(program)
    }
}

/// The first helper a program of `obj` calls that the kernel lacks (probed): every program is
/// loaded, so one such program keeps the whole object out.
fn missing_helper(obj: &ObjectSpec) -> TestResult<Option<String>> {
    for spec in &obj.programs {
        let name = &spec.name;
        let linked = obj.link(name)?;
        for i in &linked.instructions {
            if i.code == 0x85 && i.src == 0 && i.imm > 0 {
                let id = i.imm as u32;
                if !ebpf::sys::probe::helper_supported(spec.program_type, id) {
                    return Ok(Some(format!("helper #{id} (used by {name})")));
                }
            }
        }
    }
    Ok(None)
}

fn first_allowed_cpu() -> TestResult<usize> {
    let set = rustix::thread::sched_getaffinity(None)?;
    (0..rustix::thread::CpuSet::MAX_CPU)
        .find(|&c| set.is_set(c))
        .ok_or_else(|| fail("no CPU in the affinity mask"))
}

fn prove(kind: Kind) -> TestResult {
    require_root()?;
    let cpus = ebpf::sys::cpu::num_possible_cpus()?;
    let cpu = first_allowed_cpu()?;
    let previous = rustix::thread::sched_getaffinity(None)?;
    let mut set = rustix::thread::CpuSet::new();
    set.set(cpu);
    rustix::thread::sched_setaffinity(None, &set)?;
    let result = prove_pinned(kind, cpus, cpu as u32);
    rustix::thread::sched_setaffinity(None, &previous)?;
    result
}

fn prove_pinned(kind: Kind, cpus: usize, cpu: u32) -> TestResult {
    let objects = objects(kind)?;
    if objects.is_empty() {
        return Err(fail(format!(
            "no {kind:?} program in {}",
            bpf_dir().display()
        )));
    }
    let mut checked = 0;
    for (path, obj, programs) in &objects {
        if let Some(missing) = missing_helper(obj)? {
            // Probed: the kernel cannot load this object at all.
            eprintln!(
                "interp_diff: {kind:?}: skipping {}: {missing} not supported by this kernel (probed)",
                path.display()
            );
            continue;
        }
        let fs = BpfFs::new()?;
        let mocks = mock_maps(obj, cpus)?;
        let pair = std::cell::RefCell::new(pair(path, obj, &fs, &mocks, cpu)?);
        for program in programs {
            let mut runner = TestRunner::new(Config {
                cases: CASES,
                failure_persistence: None,
                ..Config::default()
            });
            let strategy = prop::collection::vec(packet(), 1..6);
            let result = runner.run(&strategy, |packets| {
                pair.borrow_mut()
                    .run_case(program, kind, &packets)
                    .map_err(TestCaseError::fail)
            });
            match result {
                Ok(()) => checked += 1,
                Err(TestError::Fail(reason, packets)) => {
                    return Err(fail(format!(
                        "{}: {reason}; minimal packets: {packets:02x?}",
                        path.display()
                    )))
                }
                Err(e) => return Err(fail(format!("{}/{program}: {e}", path.display()))),
            }
        }
    }
    if checked == 0 {
        return Err(fail("no program compared"));
    }
    Ok(())
}

fn xdp_programs_match_the_kernel() -> TestResult {
    prove(Kind::Xdp)
}

fn tc_programs_match_the_kernel() -> TestResult {
    prove(Kind::Tc)
}

fn socket_filters_match_the_kernel() -> TestResult {
    prove(Kind::Socket)
}
