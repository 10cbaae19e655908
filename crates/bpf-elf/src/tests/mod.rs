//! Tests on the objects of `bpf-progs/` (built by `cargo xtask build-bpf`) and on synthetic ELF
//! files built here for the malformed cases.

mod alone;
mod malformed;
mod objects;
mod props;
pub(crate) mod synth;

use std::path::PathBuf;

use crate::ObjectSpec;

/// `<workspace>/target/bpf`.
pub(crate) fn bpf_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/bpf")
}

/// The bytes of `target/bpf/<stem>.o` (or `target/bpf/bpfeb/<stem>.o`).
#[track_caller]
pub(crate) fn object_bytes(stem: &str, big_endian: bool) -> Vec<u8> {
    let mut path = bpf_dir();
    if big_endian {
        path.push("bpfeb");
    }
    path.push(format!("{stem}.o"));
    std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; run `cargo xtask build-bpf` first", path.display()))
}

/// Parses `target/bpf/<stem>.o`, panicking with the error.
#[track_caller]
pub(crate) fn object(stem: &str) -> ObjectSpec {
    ObjectSpec::parse(&object_bytes(stem, false)).unwrap_or_else(|e| panic!("{stem}.o: {e}"))
}

/// Parses `target/bpf/bpfeb/<stem>.o`, panicking with the error.
#[track_caller]
pub(crate) fn object_eb(stem: &str) -> ObjectSpec {
    ObjectSpec::parse(&object_bytes(stem, true)).unwrap_or_else(|e| panic!("bpfeb/{stem}.o: {e}"))
}

/// Every object stem in `bpf-progs/`.
pub(crate) fn all_stems() -> Vec<String> {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../bpf-progs");
    let mut stems: Vec<String> = std::fs::read_dir(&src)
        .unwrap_or_else(|e| panic!("{}: {e}", src.display()))
        .filter_map(|e| {
            let p = e.ok()?.path();
            if p.extension()? != "c" {
                return None;
            }
            Some(p.file_stem()?.to_string_lossy().into_owned())
        })
        .collect();
    stems.sort();
    stems
}
