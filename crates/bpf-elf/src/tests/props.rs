//! Property tests: real objects, truncated or with bytes changed, never make the parser, the
//! linker or the relocator panic.

use proptest::prelude::*;

use super::object_bytes;
use crate::btf::{Btf, BtfKind};
use crate::ObjectSpec;

/// Everything a loader would do with an object, minus the kernel.
fn exercise(bytes: &[u8]) {
    let Ok(obj) = ObjectSpec::parse(bytes) else {
        return;
    };
    if let Some(btf) = &obj.btf {
        lazy_types_agree(btf);
    }
    for p in &obj.programs {
        if let Ok(mut linked) = p.link(&obj) {
            let _ = linked.relocate(|m| Some(m.len() as i32));
            let _ = linked.bytes();
        }
    }
}

/// BTF that parsed builds its types (parsing only checks them), as many as it counted, and
/// `find` answers for `DATASEC`s from the parse's list as a scan of the built types does.
fn lazy_types_agree(btf: &Btf) {
    let built = btf.try_build_types().expect("checked BTF builds");
    assert_eq!(built.len() as u32, btf.type_count() - btf.first_id());
    assert_eq!(btf.types(), built.as_slice());
    for t in built.iter().filter(|t| t.kind == BtfKind::DataSec) {
        let first = built
            .iter()
            .position(|u| u.kind == BtfKind::DataSec && u.name == t.name)
            .map(|i| i as u32 + btf.first_id());
        assert_eq!(btf.find(BtfKind::DataSec, &t.name), first, "{}", t.name);
    }
}

fn corpus() -> Vec<Vec<u8>> {
    [
        "xdp_legacy",
        "xdp_btf",
        "xdp_init_btf",
        "globals_btf",
        "kprobe_btf",
        "tc_legacy",
    ]
    .iter()
    .flat_map(|s| [object_bytes(s, false), object_bytes(s, true)])
    .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn truncated_objects_never_panic(which in 0usize..12, cut in any::<prop::sample::Index>()) {
        let objects = corpus();
        let bytes = &objects[which % objects.len()];
        let len = cut.index(bytes.len());
        exercise(&bytes[..len]);
        prop_assert!(ObjectSpec::parse(&bytes[..len]).is_err());
    }

    #[test]
    fn objects_with_flipped_bytes_never_panic(
        which in 0usize..12,
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..16),
    ) {
        let objects = corpus();
        let mut bytes = objects[which % objects.len()].clone();
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        exercise(&bytes);
    }
}
