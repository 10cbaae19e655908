//! Tests of the generated enumerations.

use crate::{AttachType, MapType, ProgramType};

#[test]
fn map_types_keep_goebpf_names_and_kernel_names() {
    assert_eq!(MapType::PerCpuArray.to_string(), "Per-CPU array");
    assert_eq!(MapType::LpmTrie.to_string(), "Longest prefix match trie");
    assert_eq!(MapType::PerCpuArray.kernel_name(), "percpu_array");
    // A type goebpf never knew displays as the kernel names it.
    assert_eq!(MapType::RingBuf.to_string(), "ringbuf");
    assert_eq!(
        MapType::from_kernel_name("lru_percpu_hash"),
        Some(MapType::LruPerCpuHash)
    );
}

#[test]
fn program_types_keep_goebpf_names() {
    assert_eq!(ProgramType::SchedCls.to_string(), "SchedCLS");
    assert_eq!(ProgramType::Xdp.to_string(), "XDP");
    assert_eq!(ProgramType::SchedCls.kernel_name(), "sched_cls");
    assert_eq!(ProgramType::Syscall.to_string(), "syscall");
}

#[test]
fn every_value_round_trips_through_u32_and_its_kernel_name() {
    for &t in MapType::ALL {
        assert_eq!(MapType::try_from(t.as_u32()), Ok(t));
        assert_eq!(MapType::from_kernel_name(t.kernel_name()), Some(t));
    }
    for &t in ProgramType::ALL {
        assert_eq!(ProgramType::try_from(t.as_u32()), Ok(t));
        assert_eq!(ProgramType::from_kernel_name(t.kernel_name()), Some(t));
    }
    for &t in AttachType::ALL {
        assert_eq!(AttachType::try_from(t.as_u32()), Ok(t));
        assert_eq!(AttachType::from_kernel_name(t.kernel_name()), Some(t));
    }
}

#[test]
fn values_are_the_kernel_abi() {
    assert_eq!(MapType::Hash as u32, 1);
    assert_eq!(MapType::PerCpuArray as u32, 6);
    assert_eq!(MapType::RingBuf as u32, 27);
    assert_eq!(ProgramType::Xdp as u32, 6);
    assert_eq!(AttachType::Xdp as u32, 37);
    assert_eq!(AttachType::TcxIngress as u32, 46);
}

#[test]
fn a_value_from_a_newer_kernel_is_handed_back() {
    assert_eq!(MapType::try_from(10_000), Err(10_000));
    assert_eq!(ProgramType::try_from(u32::MAX), Err(u32::MAX));
}
