//! Kernel modules for the VM: which files, and in which order.
//!
//! Debian's kernel packages ship no `modules.dep` (their postinst runs `depmod`, and the host
//! may not have kmod), so the dependencies come from each module's own `.modinfo` section
//! (`depends=`, written by modpost when the kernel was built). Compressed modules are
//! decompressed on the host, since busybox's `insmod` loads only plain `.ko`.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::have;
use crate::Result;

/// A module to load: its name (as `lsmod` shows it) and its plain ELF bytes.
pub struct Module {
    pub name: String,
    pub bytes: Vec<u8>,
}

/// The modules `wanted` and everything they depend on, dependencies first, from the modules
/// folder of one kernel (`lib/modules/VERSION`). Modules built into the kernel are left out.
pub fn resolve(dir: &Path, wanted: &[&str]) -> Result<Vec<Module>> {
    let files = index(dir)?;
    let builtin: HashSet<String> = std::fs::read_to_string(dir.join("modules.builtin"))
        .unwrap_or_default()
        .lines()
        .map(module_name)
        .collect();
    let mut loaded = HashMap::new();
    let order = load_order(wanted, |name| {
        if builtin.contains(name) {
            return Ok(None);
        }
        let path = files
            .get(name)
            .ok_or_else(|| format!("module {name} is neither in {} nor built in", dir.display()))?;
        let bytes = read(path)?;
        let deps = depends(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        loaded.insert(name.to_owned(), bytes);
        Ok(Some(deps))
    })?;
    Ok(order
        .into_iter()
        .map(|name| Module {
            bytes: loaded.remove(&name).unwrap_or_default(),
            name,
        })
        .collect())
}

/// The dependencies of one module: `None` when it is built in (nothing to load).
type DepsOf<'a> = dyn FnMut(&str) -> Result<Option<Vec<String>>> + 'a;

/// The names to load in order for `wanted`: every dependency before its dependents, once.
fn load_order(
    wanted: &[&str],
    mut deps_of: impl FnMut(&str) -> Result<Option<Vec<String>>>,
) -> Result<Vec<String>> {
    let mut seen = HashSet::new();
    let mut order = Vec::new();
    for want in wanted {
        visit(&want.replace('-', "_"), &mut deps_of, &mut seen, &mut order)?;
    }
    Ok(order)
}

fn visit(
    name: &str,
    deps_of: &mut DepsOf<'_>,
    seen: &mut HashSet<String>,
    order: &mut Vec<String>,
) -> Result {
    if !seen.insert(name.to_owned()) {
        return Ok(());
    }
    let Some(deps) = deps_of(name)? else {
        return Ok(());
    };
    for dep in deps {
        visit(&dep, deps_of, seen, order)?;
    }
    order.push(name.to_owned());
    Ok(())
}

/// Every module file under `dir`, by module name.
fn index(dir: &Path) -> Result<HashMap<String, PathBuf>> {
    let mut files = HashMap::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let entries =
            std::fs::read_dir(&dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
        for entry in entries {
            let path = entry
                .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
                .path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.to_string_lossy().contains(".ko") {
                files.insert(module_name(&path.to_string_lossy()), path);
            }
        }
    }
    Ok(files)
}

/// `kernel/net/sched/cls_bpf.ko.xz` -> `cls_bpf` (the kernel spells `-` in names as `_`).
fn module_name(path: &str) -> String {
    let file = path.trim().rsplit('/').next().unwrap_or(path);
    let stem = file.split_once(".ko").map_or(file, |(stem, _)| stem);
    stem.replace('-', "_")
}

/// The module's bytes, decompressed if the file is `.ko.xz`, `.ko.zst` or `.ko.gz`.
fn read(path: &Path) -> Result<Vec<u8>> {
    let name = path.to_string_lossy();
    let tool = match () {
        () if name.ends_with(".ko") => None,
        () if name.ends_with(".ko.xz") => Some("xz"),
        () if name.ends_with(".ko.zst") => Some("zstd"),
        () if name.ends_with(".ko.gz") => Some("gzip"),
        () => return Err(format!("{name}: unknown module file kind")),
    };
    let Some(tool) = tool else {
        return std::fs::read(path).map_err(|e| format!("cannot read {name}: {e}"));
    };
    if !have(tool) {
        return Err(format!(
            "{name}: `{tool}` is needed to decompress it (apt-get install xz-utils zstd)"
        ));
    }
    let out = Command::new(tool).arg("-dc").arg(path).output();
    let out = out.map_err(|e| format!("cannot run {tool} to decompress {name}: {e}"))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(format!(
            "{tool} -dc {name} failed with {}: {}",
            out.status,
            stderr.trim()
        ));
    }
    Ok(out.stdout)
}

/// The `depends=` list of a module's `.modinfo` section.
fn depends(elf: &[u8]) -> Result<Vec<String>> {
    let modinfo =
        section(elf, ".modinfo").ok_or("no .modinfo section (not an x86-64 kernel module?)")?;
    Ok(modinfo
        .split(|&b| b == 0)
        .filter_map(|field| field.strip_prefix(b"depends="))
        .flat_map(|list| {
            String::from_utf8_lossy(list)
                .split(',')
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .filter(|dep| !dep.is_empty())
        .map(|dep| dep.replace('-', "_"))
        .collect())
}

/// The contents of the section `wanted` of a little-endian ELF64 file.
fn section<'a>(elf: &'a [u8], wanted: &str) -> Option<&'a [u8]> {
    if elf.get(..6)? != b"\x7fELF\x02\x01" {
        return None;
    }
    let shoff = usize::try_from(le(elf, 0x28, 8)?).ok()?;
    let (entsize, count, names) = (le(elf, 0x3a, 2)?, le(elf, 0x3c, 2)?, le(elf, 0x3e, 2)?);
    let header = |i: u64| {
        usize::try_from(i * entsize)
            .ok()
            .and_then(|off| off.checked_add(shoff))
    };
    let contents = |h: usize| -> Option<&'a [u8]> {
        let (off, size) = (
            usize::try_from(le(elf, h + 24, 8)?).ok()?,
            usize::try_from(le(elf, h + 32, 8)?).ok()?,
        );
        elf.get(off..off.checked_add(size)?)
    };
    let strings = contents(header(names)?)?;
    (0..count).find_map(|i| {
        let h = header(i)?;
        let name_at = usize::try_from(le(elf, h, 4)?).ok()?;
        let name = strings.get(name_at..)?.split(|&b| b == 0).next()?;
        (name == wanted.as_bytes()).then(|| contents(h)).flatten()
    })
}

/// The little-endian unsigned number of `len` bytes at `at`.
fn le(bytes: &[u8], at: usize, len: usize) -> Option<u64> {
    let field = bytes.get(at..at.checked_add(len)?)?;
    Some(field.iter().rev().fold(0, |n, &b| (n << 8) | u64::from(b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deps(table: &[(&str, &[&str])], builtin: &[&str], wanted: &[&str]) -> Result<Vec<String>> {
        load_order(wanted, |name| {
            if builtin.contains(&name) {
                return Ok(None);
            }
            let (_, deps) = table
                .iter()
                .find(|(n, _)| *n == name)
                .ok_or(format!("no {name}"))?;
            Ok(Some(deps.iter().map(|d| d.to_string()).collect()))
        })
    }

    #[test]
    fn dependencies_come_first_and_once() {
        let table: &[(&str, &[&str])] = &[
            ("top", &["mid", "low"]),
            ("mid", &["low"]),
            ("low", &[]),
            ("veth", &[]),
        ];
        assert_eq!(
            deps(table, &[], &["top", "mid", "veth"]),
            Ok(["low", "mid", "top", "veth"].map(String::from).to_vec())
        );
    }

    #[test]
    fn builtin_modules_are_skipped_and_unknown_ones_fail() {
        assert_eq!(
            deps(&[("a", &["b_c"])], &["b_c"], &["a"]),
            Ok(vec!["a".to_string()])
        );
        assert!(deps(&[], &[], &["nothing"]).is_err());
    }

    #[test]
    fn names_drop_folders_and_suffixes() {
        assert_eq!(module_name("kernel/net/sched/cls_bpf.ko.zst"), "cls_bpf");
        assert_eq!(module_name("kernel/x/nf-nat.ko"), "nf_nat");
    }

    /// A minimal ELF64 with a null section, `.modinfo` and the section name table.
    fn elf_with_modinfo(modinfo: &[u8]) -> Vec<u8> {
        let names = b"\0.modinfo\0.shstrtab\0";
        let mut elf = vec![0u8; 64];
        elf[..6].copy_from_slice(b"\x7fELF\x02\x01");
        let modinfo_at = elf.len() as u64;
        elf.extend_from_slice(modinfo);
        let names_at = elf.len() as u64;
        elf.extend_from_slice(names);
        let shoff = elf.len() as u64;
        elf[0x28..0x30].copy_from_slice(&shoff.to_le_bytes());
        elf[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
        elf[0x3c..0x3e].copy_from_slice(&3u16.to_le_bytes());
        elf[0x3e..0x40].copy_from_slice(&2u16.to_le_bytes());
        for (name, off, size) in [
            (0u32, 0, 0),
            (1, modinfo_at, modinfo.len() as u64),
            (10, names_at, names.len() as u64),
        ] {
            let mut header = [0u8; 64];
            header[..4].copy_from_slice(&name.to_le_bytes());
            header[24..32].copy_from_slice(&off.to_le_bytes());
            header[32..40].copy_from_slice(&size.to_le_bytes());
            elf.extend_from_slice(&header);
        }
        elf
    }

    #[test]
    fn depends_are_read_from_the_modinfo_section() {
        let elf = elf_with_modinfo(b"license=GPL\0depends=nf-conntrack,libcrc32c\0name=x\0");
        assert_eq!(
            depends(&elf),
            Ok(vec!["nf_conntrack".to_string(), "libcrc32c".to_string()])
        );
        let elf = elf_with_modinfo(b"license=GPL\0depends=\0");
        assert_eq!(depends(&elf), Ok(vec![]));
        assert!(depends(b"not an elf").is_err());
    }
}
