//! bpf-mock against the kernel: proptest generates sequences of operations and runs each on a
//! kernel map (`KernelMap::create`) and on a `MockMap` of the same spec, asserting the same
//! results and the same errnos, 256 cases per map type.
//!
//! What is compared: every answer (values, errors with their errno) and, after each case, the
//! set of keys a full walk gives. Next key after a known key is not compared for hashes (the
//! kernel walks in bucket order, the mock in key order); next key after an unknown key must
//! restart at the first key in both. Arrays and LPM tries walk in the same order in both, and
//! that order is compared. LRU hashes: the same answers while at most half full (the kernel
//! evicts in per-CPU batches before it is full); after a fill past `max_entries`, both hold at
//! most `max_entries` keys, the last one inserted, and only keys that were inserted.

use std::collections::BTreeSet;

use ebpf::maps::{KernelMap, Map, MapError, MapSpec, MapType, ANY, EXIST, F_LOCK, NOEXIST};
use ebpf::mock::MockMap;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};
use tests::{fail, require_feature, require_root, TestResult};

tests::tests!(
    hash_matches_the_kernel,
    per_cpu_hash_matches_the_kernel,
    lru_hash_matches_the_kernel,
    array_matches_the_kernel,
    per_cpu_array_matches_the_kernel,
    lpm_trie_matches_the_kernel,
    queue_matches_the_kernel,
    stack_matches_the_kernel,
);

const CASES: u32 = 256;

#[derive(Debug, Clone)]
enum Op {
    Update(Vec<u8>, Vec<u8>, u64),
    Lookup(Vec<u8>, u64),
    Delete(Vec<u8>),
    NextKey(Option<Vec<u8>>),
    LookupAndDelete(Vec<u8>),
    Push(Vec<u8>, u64),
    Pop,
    Peek,
}

#[derive(Debug, Clone)]
struct Case {
    spec: MapSpec,
    ops: Vec<Op>,
}

#[derive(Debug, PartialEq, Eq)]
enum Out {
    Done,
    Value(Vec<u8>),
    Next(Option<Vec<u8>>),
    /// Next key of a hash: whether there was one, and whether the key asked was unknown and
    /// the answer was the first key.
    HashNext {
        some: bool,
        restarted: bool,
    },
    Failed(String),
}

fn failed(e: MapError) -> Out {
    Out::Failed(match e.errno() {
        Some(n) => format!("errno {n}"),
        None => e.to_string(),
    })
}

fn next(map: &dyn Map, key: Option<&[u8]>) -> Result<Option<Vec<u8>>, MapError> {
    let mut n = vec![0u8; map.key_size() as usize];
    Ok(map.get_next_key(key, &mut n)?.then_some(n))
}

fn apply(map: &dyn Map, op: &Op, hash_order: bool) -> Out {
    let mut v = vec![0u8; map.value_len()];
    let r = match op {
        Op::Update(k, val, f) => map.update_elem(k, val, *f).map(|()| Out::Done),
        Op::Push(val, f) => map.push_elem(val, *f).map(|()| Out::Done),
        Op::Lookup(k, f) => map.lookup_elem(k, &mut v, *f).map(|()| Out::Value(v)),
        Op::Peek => map.peek_elem(&mut v).map(|()| Out::Value(v)),
        Op::Pop => map.pop_elem(&mut v).map(|()| Out::Value(v)),
        Op::LookupAndDelete(k) => map
            .lookup_and_delete_elem(k, &mut v, 0)
            .map(|()| Out::Value(v)),
        Op::Delete(k) => map.delete_elem(k).map(|()| Out::Done),
        Op::NextKey(k) if hash_order => {
            let known = k
                .as_ref()
                .is_some_and(|k| map.lookup_elem(k, &mut v, 0).is_ok());
            next(map, k.as_deref()).and_then(|n| {
                let restarted = !known && k.is_some() && n == next(map, None)?;
                Ok(Out::HashNext {
                    some: n.is_some() || known,
                    restarted,
                })
            })
        }
        Op::NextKey(k) => next(map, k.as_deref()).map(Out::Next),
    };
    r.unwrap_or_else(failed)
}

fn walk(map: &dyn Map) -> Result<Vec<Vec<u8>>, MapError> {
    let mut keys = Vec::new();
    let mut key = None;
    while let Some(k) = next(map, key.as_deref())? {
        if keys.len() > map.max_entries() as usize + 1 {
            break;
        }
        keys.push(k.clone());
        key = Some(k);
    }
    Ok(keys)
}

fn check(c: bool, msg: impl FnOnce() -> String) -> Result<(), TestCaseError> {
    if c {
        Ok(())
    } else {
        Err(TestCaseError::fail(msg()))
    }
}

/// Runs `case` on both maps; `ordered`: compare the walk's order too.
fn run(case: &Case, cpus: usize, ordered: bool, walkable: bool) -> Result<(), TestCaseError> {
    let kernel = KernelMap::create(&case.spec, &Default::default())
        .map_err(|e| TestCaseError::fail(format!("create {:?}: {e}", case.spec)))?;
    let mock = MockMap::with_cpus(&case.spec, cpus)
        .map_err(|e| TestCaseError::fail(format!("mock {e}")))?;
    for (i, op) in case.ops.iter().enumerate() {
        let k = apply(&kernel, op, !ordered);
        let m = apply(&mock, op, !ordered);
        check(k == m, || {
            format!("op {i} {op:?}: kernel {k:?}, mock {m:?}")
        })?;
    }
    if walkable {
        let (mut k, mut m) = (walk(&kernel), walk(&mock));
        if !ordered {
            for w in [&mut k, &mut m].into_iter().flatten() {
                w.sort();
            }
        }
        check(format!("{k:?}") == format!("{m:?}"), || {
            format!("walk: kernel {k:?}, mock {m:?}")
        })?;
    }
    Ok(())
}

fn key_of(i: u8, size: u32) -> Vec<u8> {
    (0..size as u8)
        .map(|j| {
            if j == 0 {
                i
            } else {
                i.wrapping_mul(31).wrapping_add(j)
            }
        })
        .collect()
}

fn update_flags() -> impl Strategy<Value = u64> {
    prop::sample::select(vec![ANY, ANY, NOEXIST, EXIST, 3, F_LOCK])
}

/// Whether the running kernel's LPM trie has Linux 6.13's update semantics, which the mock
/// models (`BPF_NOEXIST`/`BPF_EXIST` honoured, in-place updates of a full trie allowed):
/// probed by its behaviour, an `EXIST` update of a missing prefix.
fn lpm_honours_update_flags() -> bool {
    let mut spec = MapSpec::new("lpmflags", MapType::LpmTrie, 8, 4, 4);
    spec.flags = 1; // BPF_F_NO_PREALLOC
    let Ok(map) = KernelMap::create(&spec, &Default::default()) else {
        return true;
    };
    let key = [32u8, 0, 0, 0, 198, 18, 0, 1];
    map.update_elem(&key, &[0; 4], EXIST).is_err()
}

fn lookup_flags() -> impl Strategy<Value = u64> {
    prop::sample::select(vec![0, 0, 0, 0, 0, F_LOCK])
}

/// Hash-like maps: keys from a pool about 1.5 times `max_entries`.
/// Lookup-and-delete on hash maps came with Linux 5.14 (probed); before it the kernel answers
/// ENOTSUPP, which the mock, modelling today's kernel, does not: a plain lookup stands in there.
fn hash_lookup_and_delete(key: impl Strategy<Value = Vec<u8>> + 'static) -> BoxedStrategy<Op> {
    use ebpf::sys::probe::{misc, Misc};
    if misc(Misc::HashLookupAndDelete).is_supported() {
        key.prop_map(Op::LookupAndDelete).boxed()
    } else {
        key.prop_map(|k| Op::Lookup(k, 0)).boxed()
    }
}

fn hash_case(t: MapType, cpus: usize, prealloc_choice: bool) -> impl Strategy<Value = Case> {
    (
        prop::sample::select(vec![1u32, 4, 8, 13]),
        prop::sample::select(vec![1u32, 4, 8, 12]),
        2u32..=16,
        any::<bool>(),
    )
        .prop_flat_map(move |(ks, vs, max, no_prealloc)| {
            let mut spec = MapSpec::new("diff", t, ks, vs, max);
            if prealloc_choice && no_prealloc {
                spec.flags = 1; // BPF_F_NO_PREALLOC
            }
            let per_cpu = matches!(t, MapType::PerCpuHash | MapType::PerCpuArray);
            let vlen = if per_cpu {
                vs.div_ceil(8) as usize * 8 * cpus
            } else {
                vs as usize
            };
            let pool = (max * 3 / 2) as u8;
            let key = (0..pool).prop_map(move |i| key_of(i, ks));
            let op = prop_oneof![
                4 => (key.clone(), prop::collection::vec(any::<u8>(), vlen), update_flags())
                    .prop_map(|(k, v, f)| Op::Update(k, v, f)),
                2 => (key.clone(), lookup_flags()).prop_map(|(k, f)| Op::Lookup(k, f)),
                2 => key.clone().prop_map(Op::Delete),
                1 => prop::option::of(key.clone()).prop_map(Op::NextKey),
                1 => hash_lookup_and_delete(key),
            ];
            prop::collection::vec(op, 1..48).prop_map(move |ops| Case {
                spec: spec.clone(),
                ops,
            })
        })
}

fn array_case(t: MapType, cpus: usize) -> impl Strategy<Value = Case> {
    (prop::sample::select(vec![1u32, 4, 8, 12]), 1u32..=16).prop_flat_map(move |(vs, max)| {
        let spec = MapSpec::new("diff", t, 4, vs, max);
        let vlen = if t == MapType::PerCpuArray {
            vs.div_ceil(8) as usize * 8 * cpus
        } else {
            vs as usize
        };
        let key = (0..max + 3).prop_map(|i| i.to_ne_bytes().to_vec());
        let op = prop_oneof![
            4 => (key.clone(), prop::collection::vec(any::<u8>(), vlen), update_flags())
                .prop_map(|(k, v, f)| Op::Update(k, v, f)),
            2 => (key.clone(), lookup_flags()).prop_map(|(k, f)| Op::Lookup(k, f)),
            1 => key.clone().prop_map(Op::Delete),
            2 => prop::option::of(key.clone()).prop_map(Op::NextKey),
            1 => key.prop_map(Op::LookupAndDelete),
        ];
        prop::collection::vec(op, 1..48).prop_map(move |ops| Case {
            spec: spec.clone(),
            ops,
        })
    })
}

fn lpm_case() -> impl Strategy<Value = Case> {
    (prop::sample::select(vec![1u32, 2, 4]), 2u32..=16).prop_flat_map(move |(ds, max)| {
        let mut spec = MapSpec::new("diff", MapType::LpmTrie, 4 + ds, 4, max);
        spec.flags = 1; // BPF_F_NO_PREALLOC
        let byte = prop::sample::select(vec![0x00u8, 0x0a, 0x0b, 0x80, 0xc0, 0xff]);
        let key = (0..=ds * 8 + 1, prop::collection::vec(byte, ds as usize)).prop_map(|(p, d)| {
            let mut k = p.to_ne_bytes().to_vec();
            k.extend(d);
            k
        });
        let op = prop_oneof![
            4 => (key.clone(), prop::collection::vec(any::<u8>(), 4), update_flags())
                .prop_map(|(k, v, f)| Op::Update(k, v, f)),
            3 => (key.clone(), lookup_flags()).prop_map(|(k, f)| Op::Lookup(k, f)),
            2 => key.clone().prop_map(Op::Delete),
            2 => prop::option::of(key.clone()).prop_map(Op::NextKey),
            1 => key.prop_map(Op::LookupAndDelete),
        ];
        prop::collection::vec(op, 1..48).prop_map(move |ops| Case {
            spec: spec.clone(),
            ops,
        })
    })
}

fn fifo_case(t: MapType) -> impl Strategy<Value = Case> {
    (1u32..=12, 1u32..=8).prop_flat_map(move |(vs, max)| {
        let spec = MapSpec::new("diff", t, 0, vs, max);
        let flags = prop::sample::select(vec![ANY, ANY, ANY, EXIST, NOEXIST, 3]);
        let op = prop_oneof![
            4 => (prop::collection::vec(any::<u8>(), vs as usize), flags)
                .prop_map(|(v, f)| Op::Push(v, f)),
            2 => Just(Op::Pop),
            2 => Just(Op::Peek),
            1 => lookup_flags().prop_map(|f| Op::Lookup(Vec::new(), f)),
            1 => Just(Op::Delete(Vec::new())),
            1 => Just(Op::NextKey(None)),
        ];
        prop::collection::vec(op, 1..48).prop_map(move |ops| Case {
            spec: spec.clone(),
            ops,
        })
    })
}

fn cpus() -> TestResult<usize> {
    ebpf::sys::cpu::num_possible_cpus().map_err(|e| fail(format!("possible CPUs: {e}")))
}

fn prove<S: Strategy<Value = Case>>(
    strategy: S,
    body: impl Fn(&Case) -> Result<(), TestCaseError>,
) -> TestResult {
    let mut runner = TestRunner::new(Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    });
    let ran = std::cell::Cell::new(0u32);
    match runner.run(&strategy, |case| {
        ran.set(ran.get() + 1);
        body(&case)
    }) {
        Ok(()) if ran.get() >= CASES => Ok(()),
        Ok(()) => Err(fail(format!("only {} of {CASES} cases ran", ran.get()))),
        Err(TestError::Fail(why, case)) => Err(fail(format!("{why}\nminimal case: {case:#?}"))),
        Err(e) => Err(fail(e)),
    }
}

fn hash_matches_the_kernel() -> TestResult {
    require_root()?;
    let cpus = cpus()?;
    prove(hash_case(MapType::Hash, cpus, true), |c| {
        run(c, cpus, false, true)
    })
}

fn per_cpu_hash_matches_the_kernel() -> TestResult {
    require_root()?;
    let cpus = cpus()?;
    prove(hash_case(MapType::PerCpuHash, cpus, true), |c| {
        run(c, cpus, false, true)
    })
}

fn array_matches_the_kernel() -> TestResult {
    require_root()?;
    let cpus = cpus()?;
    prove(array_case(MapType::Array, cpus), |c| {
        run(c, cpus, true, true)
    })
}

fn per_cpu_array_matches_the_kernel() -> TestResult {
    require_root()?;
    let cpus = cpus()?;
    prove(array_case(MapType::PerCpuArray, cpus), |c| {
        run(c, cpus, true, true)
    })
}

fn lpm_trie_matches_the_kernel() -> TestResult {
    require_root()?;
    // The mock models the LPM trie of Linux 6.13 and later (update flags honoured, in-place
    // updates of a full trie, next key after a missing prefix); older kernels differ on each.
    require_feature(
        "the LPM trie semantics of Linux 6.13 (probed by an EXIST update)",
        lpm_honours_update_flags(),
    )?;
    let cpus = cpus()?;
    prove(lpm_case(), |c| run(c, cpus, true, true))
}

fn queue_matches_the_kernel() -> TestResult {
    require_root()?;
    prove(fifo_case(MapType::Queue), |c| run(c, 1, true, false))
}

fn stack_matches_the_kernel() -> TestResult {
    require_root()?;
    prove(fifo_case(MapType::Stack), |c| run(c, 1, true, false))
}

/// LRU: ops on at most `max_entries / 2` keys compared exactly, on one CPU (the kernel's LRU
/// lists are per CPU), then a fill with `2 * max_entries` new keys.
fn lru_hash_matches_the_kernel() -> TestResult {
    require_root()?;
    let cpus = cpus()?;
    // Stay on one CPU: the kernel's LRU keeps free nodes in per-CPU lists.
    let mut set = rustix::thread::CpuSet::new();
    set.set(
        rustix::thread::sched_getaffinity(None)
            .ok()
            .and_then(|s| (0..rustix::thread::CpuSet::MAX_CPU).find(|&c| s.is_set(c)))
            .unwrap_or(0),
    );
    let previous = rustix::thread::sched_getaffinity(None)?;
    rustix::thread::sched_setaffinity(None, &set)?;
    let strategy = (
        4u32..=16,
        prop::collection::vec((0u8..4, 0u8..8, any::<u64>()), 1..48),
    )
        .prop_map(|(max, raw)| {
            let spec = MapSpec::new("diff", MapType::LruHash, 4, 8, max);
            let pool = (max / 2) as u8;
            let ops = raw
                .into_iter()
                .map(|(kind, k, v)| {
                    let key = u32::from(k % pool).to_ne_bytes().to_vec();
                    match kind {
                        0 => Op::Update(key, v.to_ne_bytes().to_vec(), ANY),
                        1 => Op::Update(
                            key,
                            v.to_ne_bytes().to_vec(),
                            [NOEXIST, EXIST][(v % 2) as usize],
                        ),
                        2 => Op::Lookup(key, 0),
                        _ => Op::Delete(key),
                    }
                })
                .collect();
            Case { spec, ops }
        });
    let result = prove(strategy, |case| {
        run(case, cpus, false, true)?;
        lru_fill(case)
    });
    rustix::thread::sched_setaffinity(None, &previous)?;
    result
}

fn lru_fill(case: &Case) -> Result<(), TestCaseError> {
    let kernel = KernelMap::create(&case.spec, &Default::default())
        .map_err(|e| TestCaseError::fail(format!("create: {e}")))?;
    let mock = MockMap::new(&case.spec).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let max = case.spec.max_entries;
    let inserted: BTreeSet<Vec<u8>> = (0..2 * max).map(|k| k.to_ne_bytes().to_vec()).collect();
    for k in 0..2 * max {
        for m in [&kernel as &dyn Map, &mock] {
            m.update_elem(&k.to_ne_bytes(), &u64::from(k).to_ne_bytes(), ANY)
                .map_err(|e| TestCaseError::fail(format!("fill {k}: {e}")))?;
        }
    }
    let last = (2 * max - 1).to_ne_bytes().to_vec();
    for (who, m) in [("kernel", &kernel as &dyn Map), ("mock", &mock)] {
        let keys: BTreeSet<_> = walk(m)
            .map_err(|e| TestCaseError::fail(e.to_string()))?
            .into_iter()
            .collect();
        check(keys.len() <= max as usize && !keys.is_empty(), || {
            format!("{who} holds {} keys, max {max}", keys.len())
        })?;
        check(keys.contains(&last), || format!("{who} lost the last key"))?;
        check(keys.is_subset(&inserted), || {
            format!("{who} holds keys never inserted")
        })?;
    }
    check(mock.len() == max as usize, || {
        format!("mock holds {}", mock.len())
    })?;
    Ok(())
}
