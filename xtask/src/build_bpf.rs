//! `cargo xtask build-bpf`: compiles `bpf-progs/*.c` into BPF objects.
//!
//! Every source gives two objects: `target/bpf/<stem>.o` (little-endian,
//! `-target bpfel`, what the kernel on x86-64 loads) and
//! `target/bpf/bpfeb/<stem>.o` (big-endian, for the ELF parser's tests).
//! An object is rebuilt only when it is older than its source or than any
//! header clang reported in its dependency file (`-MD -MF`), or when the
//! compiler flags changed since the last build (`target/bpf/.flags`).
//! Objects whose source is gone are removed.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::SystemTime;

use crate::util::{have, root, target_dir};
use crate::Result;

/// Flags shared by both byte orders; `-target`, `-MD -MF`, `-o` and the
/// source are added per object.
const CFLAGS: &[&str] = &[
    "-O2",
    "-g",
    "-Wall",
    "-Werror",
    "-I",
    "bpf-progs/include",
    "-I/usr/include/x86_64-linux-gnu",
    "-c",
];

/// The two byte orders: clang target and the output folder under `target/bpf`.
const TARGETS: &[(&str, &str)] = &[("bpfel", ""), ("bpfeb", "bpfeb")];

const MISSING_TOOLS: &str = "run `cargo xtask setup` (or `apt-get install clang llvm libbpf-dev`)";

pub fn run(args: &[String]) -> Result {
    if let Some(arg) = args.first() {
        return Err(format!(
            "unexpected argument `{arg}` (build-bpf takes none)"
        ));
    }
    build().map(drop)
}

/// Compiles what is out of date and returns the output folder (`target/bpf`).
pub fn build() -> Result<PathBuf> {
    if !have("clang") {
        return Err(format!("clang is not installed: {MISSING_TOOLS}"));
    }
    if !Path::new("/usr/include/bpf/bpf_helpers.h").is_file() {
        return Err(format!(
            "libbpf's headers (/usr/include/bpf) are missing: {MISSING_TOOLS}"
        ));
    }

    let root = root();
    let mut sources = sources(&root.join("bpf-progs"))?;
    let out_dir = target_dir().join("bpf");
    // CO-RE programs (`core_*.c`) include a vmlinux.h generated from this machine's BTF.
    let vmlinux_include = vmlinux_h(&out_dir.join("include"));
    if vmlinux_include.is_none() {
        sources.retain(|s| !is_core(s));
    }
    for (_, sub) in TARGETS {
        let dir = out_dir.join(sub);
        fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    remove_stale(&out_dir, &sources)?;

    let stamp = out_dir.join(".flags");
    let flags = format!("clang {}\n", CFLAGS.join(" "));
    let flags_changed = fs::read_to_string(&stamp).ok().as_deref() != Some(flags.as_str());

    let mut jobs = Vec::new();
    for src in &sources {
        for &(target, sub) in TARGETS {
            let stem = src.file_stem().expect("a .c file has a stem");
            let obj = out_dir.join(sub).join(stem).with_extension("o");
            let job = Job {
                include: vmlinux_include.clone().filter(|_| is_core(src)),
                src: src.clone(),
                target,
                dep: obj.with_extension("d"),
                obj,
            };
            if flags_changed || !job.up_to_date(&root) {
                jobs.push(job);
            }
        }
    }

    compile_all(&root, &jobs)?;
    fs::write(&stamp, flags).map_err(|e| format!("cannot write {}: {e}", stamp.display()))?;
    println!(
        "build-bpf: {} objects up to date in {} ({} compiled)",
        sources.len() * TARGETS.len(),
        out_dir.display(),
        jobs.len()
    );
    Ok(out_dir)
}

/// One object to build.
struct Job {
    /// `target/bpf/include` (vmlinux.h) for `core_*.c`.
    include: Option<PathBuf>,
    src: PathBuf,
    target: &'static str,
    obj: PathBuf,
    dep: PathBuf,
}

impl Job {
    /// Whether the object exists and is at least as new as every dependency
    /// listed in its dependency file (the source included).
    fn up_to_date(&self, root: &Path) -> bool {
        let (Some(built), Ok(deps)) = (mtime(&self.obj), fs::read_to_string(&self.dep)) else {
            return false;
        };
        let deps = parse_depfile(&deps);
        !deps.is_empty()
            && deps
                .iter()
                .all(|dep| mtime(&root.join(dep)).is_some_and(|t| t <= built))
    }

    fn command(&self, root: &Path) -> Command {
        let mut cmd = Command::new("clang");
        cmd.current_dir(root)
            .args(["-target", self.target])
            .args(CFLAGS)
            .args(
                self.include
                    .iter()
                    .flat_map(|i| [Path::new("-I"), i.as_path()]),
            )
            .arg("-MD")
            .arg("-MF")
            .arg(&self.dep)
            .arg("-o")
            .arg(&self.obj)
            .arg(self.src.strip_prefix(root).unwrap_or(&self.src));
        cmd
    }
}

/// Runs the jobs on as many threads as there are CPUs; reports every failure.
fn compile_all(root: &Path, jobs: &[Job]) -> Result {
    let next = AtomicUsize::new(0);
    let errors = Mutex::new(Vec::new());
    let threads = std::thread::available_parallelism()
        .map_or(2, usize::from)
        .min(jobs.len());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                while let Some(job) = jobs.get(next.fetch_add(1, Ordering::Relaxed)) {
                    if let Err(e) = compile(root, job) {
                        errors.lock().unwrap_or_else(|p| p.into_inner()).push(e);
                    }
                }
            });
        }
    });
    let errors = errors.into_inner().unwrap_or_else(|p| p.into_inner());
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("\n"))
    }
}

fn compile(root: &Path, job: &Job) -> Result {
    let out = job
        .command(root)
        .output()
        .map_err(|e| format!("cannot run clang: {e} ({MISSING_TOOLS})"))?;
    let src = job.src.strip_prefix(root).unwrap_or(&job.src);
    if !out.status.success() {
        // A failed compile must not leave a dependency file that could make
        // an older object look current.
        let _ = fs::remove_file(&job.dep);
        return Err(format!(
            "clang -target {} {} failed with {}:\n{}",
            job.target,
            src.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim_end()
        ));
    }
    let obj = job.obj.strip_prefix(root).unwrap_or(&job.obj);
    println!("  compiled {} -> {}", src.display(), obj.display());
    Ok(())
}

fn is_core(src: &Path) -> bool {
    src.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("core_"))
}

/// Generates `dir/vmlinux.h` with `bpftool btf dump file /sys/kernel/btf/vmlinux format c`
/// unless it exists; `None` (and a note) when bpftool or the kernel's BTF is missing, in which
/// case the CO-RE programs are not built.
fn vmlinux_h(dir: &Path) -> Option<PathBuf> {
    let header = dir.join("vmlinux.h");
    if header.is_file() {
        return Some(dir.to_path_buf());
    }
    const BTF: &str = "/sys/kernel/btf/vmlinux";
    if !have("bpftool") || !Path::new(BTF).is_file() {
        println!("build-bpf: no bpftool or no {BTF}: skipping bpf-progs/core_*.c");
        return None;
    }
    let out = Command::new("bpftool")
        .args(["btf", "dump", "file", BTF, "format", "c"])
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    fs::create_dir_all(dir).ok()?;
    let tmp = header.with_extension("h.tmp");
    fs::write(&tmp, &out.stdout).ok()?;
    fs::rename(&tmp, &header).ok()?;
    println!("  generated {}", header.display());
    Some(dir.to_path_buf())
}

/// `bpf-progs/*.c`, sorted.
fn sources(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let mut sources = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
            .path();
        if path.extension().is_some_and(|ext| ext == "c") && path.is_file() {
            sources.push(path);
        }
    }
    sources.sort();
    Ok(sources)
}

/// Removes `.o`/`.d` files of both byte orders whose source no longer exists.
fn remove_stale(out_dir: &Path, sources: &[PathBuf]) -> Result {
    let stems: BTreeSet<_> = sources.iter().filter_map(|s| s.file_stem()).collect();
    for (_, sub) in TARGETS {
        let dir = out_dir.join(sub);
        let entries =
            fs::read_dir(&dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
        for entry in entries.flatten() {
            let path = entry.path();
            let ours = path.extension().is_some_and(|ext| ext == "o" || ext == "d");
            if ours && path.is_file() && !path.file_stem().is_some_and(|s| stems.contains(s)) {
                fs::remove_file(&path)
                    .map_err(|e| format!("cannot remove {}: {e}", path.display()))?;
                println!("  removed {} (its source is gone)", path.display());
            }
        }
    }
    Ok(())
}

fn mtime(path: &Path) -> Option<SystemTime> {
    fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// The prerequisites of a Makefile-style dependency file as clang writes it
/// (`obj.o: src.c dir/a.h \` continued over lines, spaces in names escaped
/// as `\ `, `$` as `$$`). The target before the first `: ` is skipped.
fn parse_depfile(text: &str) -> Vec<PathBuf> {
    let text = text.replace("\\\r\n", " ").replace("\\\n", " ");
    let Some((_, prereqs)) = text.split_once(": ") else {
        return Vec::new();
    };
    let mut deps = Vec::new();
    let mut word = String::new();
    let mut chars = prereqs.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek().is_some_and(|n| *n == ' ' || *n == '#') => {
                word.push(chars.next().expect("peeked"));
            }
            '$' if chars.peek() == Some(&'$') => {
                chars.next();
                word.push('$');
            }
            c if c.is_whitespace() => {
                if !word.is_empty() {
                    deps.push(PathBuf::from(std::mem::take(&mut word)));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        deps.push(PathBuf::from(word));
    }
    deps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depfile_lists_every_prerequisite_across_continuation_lines() {
        let text = "/t/bpf/x.o: bpf-progs/x.c bpf-progs/include/goebpf.h \\\n  /usr/include/linux/bpf.h \\\n  /usr/include/bpf/bpf_helpers.h\n";
        assert_eq!(
            parse_depfile(text),
            [
                "bpf-progs/x.c",
                "bpf-progs/include/goebpf.h",
                "/usr/include/linux/bpf.h",
                "/usr/include/bpf/bpf_helpers.h",
            ]
            .map(PathBuf::from)
        );
    }

    #[test]
    fn depfile_unescapes_spaces_and_dollars() {
        let text = "a.o: dir\\ with\\ space/a.c cost$$.h\n";
        assert_eq!(
            parse_depfile(text),
            [
                PathBuf::from("dir with space/a.c"),
                PathBuf::from("cost$.h")
            ]
        );
    }

    #[test]
    fn depfile_without_a_rule_lists_nothing() {
        assert!(parse_depfile("").is_empty());
        assert!(parse_depfile("garbage").is_empty());
    }
}
