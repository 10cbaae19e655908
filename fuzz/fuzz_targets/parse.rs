//! Any bytes: parse, build the BTF types, link every program, relocate with fake fds. Errors
//! are fine, panics are not.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(obj) = bpf_elf::ObjectSpec::parse(data) else {
        return;
    };
    // Parsing only checks the BTF types; building them (debug-asserted) must not fail.
    if let Some(btf) = &obj.btf {
        let _ = btf.types();
    }
    for p in &obj.programs {
        if let Ok(mut linked) = p.link(&obj) {
            let _ = linked.relocate(|map| Some(map.len() as i32));
            let _ = linked.bytes();
        }
    }
});
