//! Tidy: the house rules checked by machine on every `cargo test`.
//!
//! The layer table of `docs/ARCHITECTURE.md` (from the house style), syscalls confined to
//! bpf-sys, `#![forbid(unsafe_code)]` everywhere else, shared lints, and no ignored tests.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// crate -> the workspace crates it may depend on (normal dependencies).
const LAYERS: &[(&str, &[&str])] = &[
    ("bpf-sys", &[]),
    ("bpf-elf", &["bpf-sys"]),
    ("bpf-maps", &["bpf-sys", "bpf-elf"]),
    ("bpf-attach", &["bpf-sys", "bpf-elf", "bpf-maps"]),
    ("bpf-perf", &["bpf-sys", "bpf-maps"]),
    ("bpf-mock", &["bpf-elf", "bpf-maps", "bpf-attach"]),
    (
        "ebpf",
        &[
            "bpf-sys",
            "bpf-elf",
            "bpf-maps",
            "bpf-attach",
            "bpf-perf",
            "bpf-mock",
        ],
    ),
    ("xtask", &[]),
];

/// Crates that make system calls; only bpf-sys may depend on them.
const SYSCALL_CRATES: &[&str] = &["libc", "rustix", "nix"];

/// Crates outside the layer table that may use syscall crates: the kernel test harness and xtask.
const TOOLING: &[&str] = &["tests", "xtask"];

struct Package {
    name: String,
    dir: PathBuf,
    normal_deps: BTreeSet<String>,
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask is in the workspace")
        .to_path_buf()
}

fn packages() -> Vec<Package> {
    let out = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(root())
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON");
    meta["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|p| Package {
            name: p["name"].as_str().expect("name").to_owned(),
            dir: Path::new(p["manifest_path"].as_str().expect("manifest_path"))
                .parent()
                .expect("manifest dir")
                .to_path_buf(),
            normal_deps: p["dependencies"]
                .as_array()
                .expect("dependencies")
                .iter()
                .filter(|d| d["kind"].is_null())
                .map(|d| d["name"].as_str().expect("dependency name").to_owned())
                .collect(),
        })
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n == "target") {
                continue;
            }
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_workspace_dependency_follows_the_layer_table() {
    let pkgs = packages();
    let names: BTreeSet<&str> = pkgs.iter().map(|p| p.name.as_str()).collect();
    let table: BTreeMap<&str, &[&str]> = LAYERS.iter().copied().collect();
    let mut problems = Vec::new();
    for (layer, _) in LAYERS {
        if !names.contains(layer) {
            problems.push(format!("crate {layer} is missing from the workspace"));
        }
    }
    for p in &pkgs {
        let inner: BTreeSet<&str> = p
            .normal_deps
            .iter()
            .map(String::as_str)
            .filter(|d| names.contains(d))
            .collect();
        match table.get(p.name.as_str()) {
            Some(allowed) => {
                for dep in inner.iter().filter(|d| !allowed.contains(d)) {
                    problems.push(format!(
                        "{} depends on {dep}, outside the layer table",
                        p.name
                    ));
                }
            }
            None if TOOLING.contains(&p.name.as_str()) => {}
            None => problems.push(format!("crate {} is not in the layer table", p.name)),
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn only_bpf_sys_depends_on_syscall_crates() {
    let offenders: Vec<String> = packages()
        .iter()
        .filter(|p| p.name != "bpf-sys" && !TOOLING.contains(&p.name.as_str()))
        .flat_map(|p| {
            p.normal_deps
                .iter()
                .filter(|d| SYSCALL_CRATES.contains(&d.as_str()))
                .map(move |d| format!("{} depends on {d}", p.name))
        })
        .collect();
    assert!(
        offenders.is_empty(),
        "only bpf-sys may make system calls: {offenders:?}"
    );
}

#[test]
fn bpf_mock_never_reaches_bpf_sys() {
    let pkgs = packages();
    let mock = pkgs
        .iter()
        .find(|p| p.name == "bpf-mock")
        .expect("bpf-mock exists");
    let manifest = std::fs::read_to_string(mock.dir.join("Cargo.toml")).expect("bpf-mock manifest");
    assert!(
        !manifest.contains("bpf-sys"),
        "bpf-mock/Cargo.toml names bpf-sys"
    );
}

#[test]
fn every_crate_but_bpf_sys_forbids_unsafe_code() {
    let mut problems = Vec::new();
    for p in packages().iter().filter(|p| p.name != "bpf-sys") {
        let src = p.dir.join("src");
        for root_file in ["lib.rs", "main.rs"] {
            let path = src.join(root_file);
            if let Ok(text) = std::fs::read_to_string(&path) {
                if !text.contains("#![forbid(unsafe_code)]") && p.name != "xtask" {
                    problems.push(format!("{} lacks #![forbid(unsafe_code)]", path.display()));
                }
            }
        }
        let mut files = Vec::new();
        for dir in ["src", "examples", "tests", "kernel", "benches"] {
            rust_files(&p.dir.join(dir), &mut files);
        }
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap_or_default();
            let has_unsafe = text
                .lines()
                .any(|l| uses_unsafe(l.split("//").next().unwrap_or("")));
            if has_unsafe {
                problems.push(format!(
                    "{} has unsafe code; only bpf-sys may",
                    file.display()
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Whether a line of code opens an unsafe block, fn, impl or extern block.
fn uses_unsafe(code: &str) -> bool {
    let keyword = concat!("un", "safe");
    code.match_indices(keyword).any(|(at, _)| {
        let before = code[..at].chars().next_back();
        let after = code[at + keyword.len()..].trim_start();
        !before.is_some_and(|c| c.is_alphanumeric() || c == '_')
            && ["{", "fn", "impl", "extern", "trait"]
                .iter()
                .any(|k| after.starts_with(k))
    })
}

#[test]
fn the_unsafe_detector_sees_blocks_and_not_names() {
    assert!(uses_unsafe(concat!("let x = un", "safe { f() };")));
    assert!(uses_unsafe(concat!("pub un", "safe fn f() {}")));
    assert!(!uses_unsafe(concat!("if has_un", "safe {")));
    assert!(!uses_unsafe("#![forbid(unsafe_code)]"));
}

#[test]
fn every_crate_uses_the_workspace_lints() {
    let missing: Vec<String> = packages()
        .iter()
        .filter(|p| {
            let manifest = std::fs::read_to_string(p.dir.join("Cargo.toml")).unwrap_or_default();
            !manifest.contains("[lints]\nworkspace = true")
        })
        .map(|p| p.name.clone())
        .collect();
    assert!(
        missing.is_empty(),
        "crates without `[lints] workspace = true`: {missing:?}"
    );
}

#[test]
fn no_test_is_ignored() {
    let mut files = Vec::new();
    for dir in ["crates", "tests", "xtask"] {
        rust_files(&root().join(dir), &mut files);
    }
    let needle = concat!("#[", "ignore");
    let found: Vec<String> = files
        .iter()
        .filter(|f| std::fs::read_to_string(f).is_ok_and(|t| t.contains(needle)))
        .map(|f| f.display().to_string())
        .collect();
    assert!(
        found.is_empty(),
        "use a guard that says why, not an ignore attribute: {found:?}"
    );
}

#[test]
fn generated_bindings_say_so() {
    for file in ["uapi.rs", "enums.rs"] {
        let text = std::fs::read_to_string(root().join("crates/bpf-sys/src").join(file))
            .expect("generated file");
        assert!(
            text.contains("Generated by `cargo xtask codegen`"),
            "{file} lacks the generated header"
        );
        assert!(
            text.contains("do not edit"),
            "{file} lacks the do-not-edit note"
        );
    }
}

#[test]
fn bpf_progs_holds_only_c_sources_and_headers() {
    fn walk(dir: &Path, bad: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, bad);
            } else if !path
                .extension()
                .is_some_and(|e| e == "c" || e == "h" || e == "md")
            {
                bad.push(path.display().to_string());
            }
        }
    }
    let mut bad = Vec::new();
    walk(&root().join("bpf-progs"), &mut bad);
    assert!(
        bad.is_empty(),
        "bpf-progs/ holds only C sources, headers and a README: {bad:?}"
    );
}
