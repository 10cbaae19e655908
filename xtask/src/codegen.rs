//! `cargo xtask codegen [--check]`: the UAPI bindings of `bpf-sys`.
//!
//! The headers come from Debian trixie's `linux-libc-dev` (kernel 6.12 UAPI), fetched into
//! `target/debian/` so that the bindings do not depend on the build machine's older headers.
//! Two files are written: `uapi.rs` (bindgen) and `enums.rs` (`MapType`, `ProgramType`,
//! `AttachType`, from the same parse). `--check` regenerates in memory and fails on any drift.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bindgen::callbacks::{EnumVariantValue, ParseCallbacks};

use crate::debian::{extract, Archive};
use crate::util::{root, target_dir};
use crate::Result;

const HEADER_SUITE: &str = "trixie";

const WRAPPER: &str = "\
#include <linux/types.h>
#include <linux/bpf.h>
#include <linux/btf.h>
#include <linux/perf_event.h>
#include <linux/if_link.h>
#include <linux/pkt_cls.h>
#include <linux/if_ether.h>
";

/// The C enums turned into Rust enums: (C name, Rust name, variant prefix, doc).
const ENUMS: &[(&str, &str, &str, &str)] = &[
    ("bpf_map_type", "MapType", "BPF_MAP_TYPE_", "The kind of a BPF map (`enum bpf_map_type`)."),
    ("bpf_prog_type", "ProgramType", "BPF_PROG_TYPE_", "The kind of a BPF program (`enum bpf_prog_type`)."),
    (
        "bpf_attach_type",
        "AttachType",
        "BPF_",
        "Where a program is attached, or what it expects to be attached to (`enum bpf_attach_type`).",
    ),
];

/// goebpf's display names, kept where goebpf had one; every other value displays as the
/// kernel's lowercase name.
const GOEBPF_NAMES: &[(&str, &str)] = &[
    ("BPF_MAP_TYPE_HASH", "Hash"),
    ("BPF_MAP_TYPE_ARRAY", "Array"),
    ("BPF_MAP_TYPE_PROG_ARRAY", "Array of programs"),
    ("BPF_MAP_TYPE_PERF_EVENT_ARRAY", "Event array"),
    ("BPF_MAP_TYPE_PERCPU_HASH", "Per-CPU hash"),
    ("BPF_MAP_TYPE_PERCPU_ARRAY", "Per-CPU array"),
    ("BPF_MAP_TYPE_STACK_TRACE", "Stack trace"),
    ("BPF_MAP_TYPE_CGROUP_ARRAY", "Cgroup array"),
    ("BPF_MAP_TYPE_LRU_HASH", "LRU hash"),
    ("BPF_MAP_TYPE_LRU_PERCPU_HASH", "LRU per-CPU hash"),
    ("BPF_MAP_TYPE_LPM_TRIE", "Longest prefix match trie"),
    ("BPF_MAP_TYPE_ARRAY_OF_MAPS", "Array of maps"),
    ("BPF_MAP_TYPE_HASH_OF_MAPS", "Hash of maps"),
    ("BPF_MAP_TYPE_DEVMAP", "Device map"),
    ("BPF_MAP_TYPE_SOCKMAP", "Socket map"),
    ("BPF_MAP_TYPE_CPUMAP", "CPU map"),
    ("BPF_MAP_TYPE_XSKMAP", "AF_XDP socket map"),
    ("BPF_MAP_TYPE_SOCKHASH", "Socket hash"),
    ("BPF_MAP_TYPE_CGROUP_STORAGE", "CGroup storage"),
    ("BPF_MAP_TYPE_REUSEPORT_SOCKARRAY", "Reuseport socket array"),
    (
        "BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE",
        "per-CPU CGroup storage",
    ),
    ("BPF_MAP_TYPE_QUEUE", "Queue"),
    ("BPF_MAP_TYPE_STACK", "Stack"),
    ("BPF_MAP_TYPE_SK_STORAGE", "Socket storage"),
    ("BPF_PROG_TYPE_SOCKET_FILTER", "SocketFilter"),
    ("BPF_PROG_TYPE_KPROBE", "Kprobe"),
    ("BPF_PROG_TYPE_SCHED_CLS", "SchedCLS"),
    ("BPF_PROG_TYPE_SCHED_ACT", "SchedACT"),
    ("BPF_PROG_TYPE_TRACEPOINT", "Tracepoint"),
    ("BPF_PROG_TYPE_XDP", "XDP"),
    ("BPF_PROG_TYPE_PERF_EVENT", "PerfEvent"),
    ("BPF_PROG_TYPE_CGROUP_SKB", "CgroupSkb"),
    ("BPF_PROG_TYPE_CGROUP_SOCK", "CgroupSock"),
    ("BPF_PROG_TYPE_LWT_IN", "LWTin"),
    ("BPF_PROG_TYPE_LWT_OUT", "LWTout"),
    ("BPF_PROG_TYPE_LWT_XMIT", "LWTxmit"),
    ("BPF_PROG_TYPE_SOCK_OPS", "SockOps"),
];

/// Words whose Rust spelling is not plain title case.
const WORDS: &[(&str, &str)] = &[
    ("PERCPU", "PerCpu"),
    ("DEVMAP", "DevMap"),
    ("CPUMAP", "CpuMap"),
    ("XSKMAP", "XskMap"),
    ("SOCKMAP", "SockMap"),
    ("SOCKHASH", "SockHash"),
    ("SOCKARRAY", "SockArray"),
    ("RINGBUF", "RingBuf"),
    ("KPROBE", "Kprobe"),
    ("UPROBE", "Uprobe"),
];

#[derive(Debug, Default)]
struct Collected {
    variants: BTreeMap<String, Vec<(String, u64)>>,
}

#[derive(Debug)]
struct Collector(Arc<Mutex<Collected>>);

impl ParseCallbacks for Collector {
    fn enum_variant_name(
        &self,
        enum_name: Option<&str>,
        variant: &str,
        value: EnumVariantValue,
    ) -> Option<String> {
        let name = enum_name?.trim_start_matches("enum ").to_owned();
        if ENUMS.iter().any(|(c, ..)| *c == name) {
            let v = match value {
                EnumVariantValue::Boolean(b) => u64::from(b),
                EnumVariantValue::Signed(v) => v as u64,
                EnumVariantValue::Unsigned(v) => v,
            };
            self.0
                .lock()
                .expect("collector lock")
                .variants
                .entry(name)
                .or_default()
                .push((variant.to_owned(), v));
        }
        None
    }
}

pub fn run(args: &[String]) -> Result {
    let check = match args {
        [] => false,
        [flag] if flag == "--check" => true,
        _ => return Err("usage: cargo xtask codegen [--check]".into()),
    };
    let include = headers()?;
    let (uapi, enums) = generate(&include)?;
    let dir = root().join("crates/bpf-sys/src");
    // Formatted as `cargo fmt` would, so that formatting the workspace never looks like drift.
    let files = [
        (dir.join("uapi.rs"), rustfmt(&uapi)?),
        (dir.join("enums.rs"), rustfmt(&enums)?),
    ];
    let mut drift = Vec::new();
    for (path, text) in &files {
        let old = std::fs::read_to_string(path).unwrap_or_default();
        if old != *text {
            if check {
                drift.push(
                    path.strip_prefix(root())
                        .unwrap_or(path)
                        .display()
                        .to_string(),
                );
            } else {
                std::fs::write(path, text)
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                println!("wrote {}", path.display());
            }
        }
    }
    if drift.is_empty() {
        if check {
            println!("codegen: bindings up to date");
        }
        Ok(())
    } else {
        Err(format!(
            "generated files differ from the headers: {} (run `cargo xtask codegen`)",
            drift.join(", ")
        ))
    }
}

/// `text` through `rustfmt`, with the workspace's configuration.
fn rustfmt(text: &str) -> Result<String> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new("rustfmt")
        .args(["--edition", "2021", "--emit", "stdout"])
        .current_dir(root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run rustfmt: {e}"))?;
    let mut stdin = child.stdin.take().ok_or("rustfmt has no stdin")?;
    let input = text.to_owned();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child
        .wait_with_output()
        .map_err(|e| format!("rustfmt: {e}"))?;
    writer
        .join()
        .map_err(|_| "rustfmt writer panicked")?
        .map_err(|e| format!("rustfmt stdin: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "rustfmt failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    String::from_utf8(out.stdout).map_err(|e| format!("rustfmt output: {e}"))
}

/// The include directory of trixie's `linux-libc-dev`, downloaded and unpacked once.
fn headers() -> Result<PathBuf> {
    let archive = Archive::open(&[HEADER_SUITE])?;
    let deb = archive.download(&format!("linux-libc-dev/{HEADER_SUITE}"))?;
    let stem = deb
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("linux-libc-dev")
        .to_owned();
    let dest = target_dir().join("debian").join("headers").join(stem);
    extract(&deb, &dest)?;
    Ok(dest.join("usr/include"))
}

fn generate(include: &std::path::Path) -> Result<(String, String)> {
    let collected = Arc::new(Mutex::new(Collected::default()));
    let version = include
        .ancestors()
        .nth(2)
        .and_then(|p| p.file_name())
        .and_then(|n| n.to_str())
        .unwrap_or("linux-libc-dev")
        .to_owned();
    let bindings = bindgen::Builder::default()
        .header_contents("wrapper.h", WRAPPER)
        .clang_arg(format!("-I{}", include.display()))
        .clang_arg(format!("-I{}", include.join("x86_64-linux-gnu").display()))
        .clang_arg("-nostdinc")
        .use_core()
        .allowlist_type("bpf_.*|btf_.*|perf_event_.*|perf_type_id|perf_sw_ids|perf_event_sample_format|xdp_md|__sk_buff|sk_action|xdp_action")
        .allowlist_var("BPF_.*|BTF_.*|PERF_.*|XDP_FLAGS_.*|TC_ACT_.*|TCA_BPF_.*|ETH_P_ALL|ETH_P_IP|ETH_P_IPV6|MAX_BPF_.*")
        .allowlist_type("tcmsg|tc_.*")
        .default_enum_style(bindgen::EnumVariation::Consts)
        .prepend_enum_name(false)
        .derive_default(true)
        .derive_debug(true)
        .impl_debug(false)
        .generate_comments(false)
        .layout_tests(true)
        .parse_callbacks(Box::new(Collector(collected.clone())))
        .generate()
        .map_err(|e| format!("bindgen failed: {e}"))?;
    let body = bindings.to_string();
    let uapi = format!(
        "//! Linux UAPI types and constants for BPF, perf events and TC.\n//!\n\
         //! Generated by `cargo xtask codegen` from {version}; do not edit.\n\
         #![allow(non_camel_case_types, non_upper_case_globals, non_snake_case, missing_docs, missing_debug_implementations)]\n\
         #![allow(clippy::all, clippy::undocumented_unsafe_blocks, unsafe_op_in_unsafe_fn)]\n\n{body}"
    );
    let collected = collected.lock().expect("collector lock");
    let mut enums = format!(
        "//! The kernel's enumerations of map, program and attach types.\n//!\n\
         //! Generated by `cargo xtask codegen` from {version}; do not edit.\n\n\
         use core::fmt;\n"
    );
    for (c_name, rust, prefix, doc) in ENUMS {
        let variants = collected
            .variants
            .get(*c_name)
            .ok_or_else(|| format!("enum {c_name} not found in the headers"))?;
        enums.push_str(&render_enum(rust, prefix, doc, variants));
    }
    Ok((uapi, enums))
}

fn camel(words: &str) -> String {
    words
        .split('_')
        .map(|w| match WORDS.iter().find(|(k, _)| *k == w) {
            Some((_, v)) => (*v).to_owned(),
            None => {
                let lower = w.to_ascii_lowercase();
                let mut chars = lower.chars();
                chars
                    .next()
                    .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                    .unwrap_or_default()
            }
        })
        .collect()
}

fn render_enum(rust: &str, prefix: &str, doc: &str, raw: &[(String, u64)]) -> String {
    // One variant per value: where the headers alias a value (`CGROUP_STORAGE` and
    // `CGROUP_STORAGE_DEPRECATED`), the name without `_DEPRECATED` wins.
    let mut variants: Vec<(&str, &str, u64)> = Vec::new();
    for (name, v) in raw.iter().filter(|(name, _)| !name.starts_with("__MAX")) {
        let entry = (name.as_str(), name.strip_prefix(prefix).unwrap_or(name), *v);
        match variants.iter_mut().find(|(_, _, seen)| *seen == *v) {
            Some(slot) if slot.0.ends_with("_DEPRECATED") => *slot = entry,
            Some(_) => {}
            None => variants.push(entry),
        }
    }
    let mut s = String::new();
    s.push_str(&format!(
        "\n/// {doc}\n///\n/// Every value the kernel headers define; `Display` gives goebpf's name where goebpf had one,\n\
         /// else the kernel's lowercase name ([`{rust}::kernel_name`]).\n\
         #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]\n#[repr(u32)]\n#[non_exhaustive]\npub enum {rust} {{\n"
    ));
    for (full, short, v) in &variants {
        s.push_str(&format!(
            "    /// `{full}`\n    #[doc(alias = \"{full}\")]\n    {} = {v},\n",
            camel(short)
        ));
    }
    s.push_str("}\n\n");
    s.push_str(&format!("impl {rust} {{\n    /// Every value, in kernel order.\n    pub const ALL: &'static [{rust}] = &[\n"));
    for (_, short, _) in &variants {
        s.push_str(&format!("        {rust}::{},\n", camel(short)));
    }
    s.push_str("    ];\n\n");
    s.push_str("    /// The kernel's name without its prefix, in lowercase (`percpu_array`, `xdp`, `sched_cls`).\n");
    s.push_str("    pub const fn kernel_name(self) -> &'static str {\n        match self {\n");
    for (_, short, _) in &variants {
        s.push_str(&format!(
            "            {rust}::{} => \"{}\",\n",
            camel(short),
            short.to_ascii_lowercase()
        ));
    }
    s.push_str("        }\n    }\n\n");
    s.push_str("    /// The value named by [`kernel_name`](Self::kernel_name), if any.\n");
    s.push_str("    pub fn from_kernel_name(name: &str) -> Option<Self> {\n");
    s.push_str("        Self::ALL.iter().copied().find(|v| v.kernel_name() == name)\n    }\n\n");
    s.push_str("    /// The raw kernel value.\n    pub const fn as_u32(self) -> u32 {\n        self as u32\n    }\n}\n\n");
    s.push_str(&format!(
        "impl TryFrom<u32> for {rust} {{\n    type Error = u32;\n\n    /// Fails with the value itself when this build does not know it (a newer kernel).\n\
         fn try_from(value: u32) -> Result<Self, u32> {{\n        match value {{\n"
    ));
    for (_, short, v) in &variants {
        s.push_str(&format!(
            "            {v} => Ok({rust}::{}),\n",
            camel(short)
        ));
    }
    s.push_str("            other => Err(other),\n        }\n    }\n}\n\n");
    s.push_str(&format!("impl From<{rust}> for u32 {{\n    fn from(value: {rust}) -> u32 {{\n        value as u32\n    }}\n}}\n\n"));
    let named: Vec<String> = variants
        .iter()
        .filter_map(|(full, short, _)| {
            GOEBPF_NAMES
                .iter()
                .find(|(k, _)| k == full)
                .map(|(_, name)| format!("            {rust}::{} => \"{name}\",\n", camel(short)))
        })
        .collect();
    s.push_str(&format!(
        "impl fmt::Display for {rust} {{\n    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {{\n"
    ));
    if named.is_empty() {
        s.push_str("        f.write_str(self.kernel_name())\n    }\n}\n");
    } else {
        s.push_str("        f.write_str(match self {\n");
        s.extend(named);
        s.push_str("            other => other.kernel_name(),\n        })\n    }\n}\n");
    }
    s
}
