//! The VM's initramfs: busybox, an `/init` script, the kernel test binary, Debian's `ip`, `tc`
//! and `bpftool` with their shared libraries, the BPF objects, and the kernel modules the tests
//! need. Written as a newc cpio (the format is simple; no `cpio` needed) through `gzip`.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::modules::Module;
use super::{Payload, RESULT_PREFIX, SETUP_FAILED};
use crate::util::{root, target_dir};
use crate::Result;

/// Debian tools the tests use as an independent view; busybox's applets of the same name
/// (its `ip` cannot create a veth) are left out.
const TOOLS: &[&str] = &["ip", "tc", "bpftool", "setpriv"];

/// Where the test binary goes inside the VM.
const TEST_BINARY: &str = "bin/kernel-tests";

/// What goes into one initramfs.
pub struct Spec<'a> {
    /// `BPF_TEST_KERNEL` inside the VM.
    pub label: &'a str,
    /// `boot/` of the unpacked kernel package: its `config-*` goes to `/boot` in the VM, where
    /// libbpf and `bpftool feature probe` look for the kernel configuration.
    pub boot: &'a Path,
    /// Kernel modules, dependencies first.
    pub modules: &'a [Module],
    pub payload: &'a Payload,
}

/// Builds the initramfs for `spec` into `out` and returns its size in bytes.
pub fn build(spec: &Spec<'_>, out: &Path) -> Result<u64> {
    let mut tree = Tree::default();
    base(&mut tree);
    busybox(&mut tree)?;
    let mut binaries = tools(&mut tree)?;
    if let Payload::Tests { binary, .. } = spec.payload {
        tree.copy(TEST_BINARY, binary, 0o755)?;
        binaries.push(binary.clone());
    }
    for binary in &binaries {
        libraries(&mut tree, binary)?;
    }
    for module in spec.modules {
        tree.file(&module_path(module), module.bytes.clone(), 0o644);
    }
    kernel_config(&mut tree, spec.boot)?;
    bpf_objects(&mut tree)?;
    example_binaries(&mut tree)?;
    tree.dir(&relative(&root()));
    // Paths built as `CARGO_MANIFEST_DIR/../..` need the crate directories to exist.
    for dir in ["crates/ebpf", "tests"] {
        tree.dir(&relative(&root().join(dir)));
    }
    tree.file("init", init_script(spec).into_bytes(), 0o755);
    write_gzip(&tree, out)?;
    std::fs::metadata(out)
        .map(|m| m.len())
        .map_err(|e| format!("cannot stat {}: {e}", out.display()))
}

/// Mount points, `/dev/console` for the kernel's first console, `/var/run` for `ip netns`.
fn base(tree: &mut Tree) {
    for dir in ["proc", "sys", "dev", "tmp", "run", "root", "etc", "var"] {
        tree.dir(dir);
    }
    tree.symlink("var/run", "/run");
    tree.insert("dev/console", Entry::CharDev(5, 1));
    tree.insert("dev/null", Entry::CharDev(1, 3));
}

fn busybox(tree: &mut Tree) -> Result {
    let busybox = find_program("busybox")
        .ok_or("busybox not found (cargo xtask setup installs busybox-static)")?;
    tree.copy("bin/busybox", &busybox, 0o755)?;
    let mut cmd = Command::new(&busybox);
    let list = crate::util::output(cmd.arg("--list-full"))?;
    for applet in list.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let name = applet.rsplit('/').next().unwrap_or(applet);
        if applet != "bin/busybox" && !TOOLS.contains(&name) {
            tree.symlink(applet, "/bin/busybox");
        }
    }
    Ok(())
}

/// Debian's `ip`, `tc`, `bpftool` and `setpriv` under `/usr/sbin` (ahead of busybox's applets on
/// `PATH`); returns their host paths.
fn tools(tree: &mut Tree) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for tool in TOOLS {
        let path = find_program(tool)
            .ok_or_else(|| format!("{tool} not found (cargo xtask setup installs it)"))?;
        tree.copy(&format!("usr/sbin/{tool}"), &path, 0o755)?;
        found.push(path);
    }
    Ok(found)
}

/// Every shared library `ldd` lists for `binary`: the loader under `lib64/`, the others under
/// `lib/x86_64-linux-gnu/` (both on glibc's default search path).
fn libraries(tree: &mut Tree, binary: &Path) -> Result {
    for lib in ldd(binary)? {
        let name = lib
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| format!("odd library path {}", lib.display()))?;
        let dest = if name.starts_with("ld-linux") {
            format!("lib64/{name}")
        } else {
            format!("lib/x86_64-linux-gnu/{name}")
        };
        tree.copy(&dest, &lib, 0o755)?;
    }
    Ok(())
}

/// The libraries `ldd` resolves for `binary` (none for a static binary).
fn ldd(binary: &Path) -> Result<Vec<PathBuf>> {
    let out = Command::new("ldd")
        .arg(binary)
        .output()
        .map_err(|e| format!("cannot run ldd: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        if text.contains("not a dynamic executable") || stderr.contains("not a dynamic executable")
        {
            return Ok(Vec::new());
        }
        return Err(format!(
            "ldd {} failed: {}",
            binary.display(),
            stderr.trim()
        ));
    }
    parse_ldd(&text).map_err(|line| format!("ldd {}: cannot resolve `{line}`", binary.display()))
}

/// Paths from `ldd` output; the line of a library that is `not found` is the error.
fn parse_ldd(text: &str) -> std::result::Result<Vec<PathBuf>, String> {
    let mut libs = Vec::new();
    for line in text.lines().map(str::trim) {
        let target = line
            .split_once("=>")
            .map_or(line, |(_, right)| right.trim());
        if target.starts_with("not found") {
            return Err(line.to_owned());
        }
        if let Some(path) = target
            .split_whitespace()
            .next()
            .filter(|p| p.starts_with('/'))
        {
            libs.push(PathBuf::from(path));
        }
    }
    Ok(libs)
}

fn kernel_config(tree: &mut Tree, boot: &Path) -> Result {
    let entries =
        std::fs::read_dir(boot).map_err(|e| format!("cannot read {}: {e}", boot.display()))?;
    for path in entries.filter_map(|e| e.ok()).map(|e| e.path()) {
        if let Some(name) = path
            .file_name()
            .and_then(|n| n.to_str())
            .filter(|n| n.starts_with("config-"))
        {
            tree.copy(&format!("boot/{name}"), &path, 0o644)?;
        }
    }
    Ok(())
}

/// The compiled BPF objects (`target/bpf/`) at the same absolute path as on the host, so that
/// tests find them the same way in the VM (the init `cd`s to the same workspace root).
fn bpf_objects(tree: &mut Tree) -> Result {
    let dir = target_dir().join("bpf");
    if dir.is_dir() {
        copy_dir(tree, &dir)?;
    }
    Ok(())
}

/// The facade's example binaries (`target/debug/examples/NAME`, built by `cargo xtask test`
/// before the kernel tests), at the same absolute path: the kernel tests run them as a user would.
fn example_binaries(tree: &mut Tree) -> Result {
    let sources = root().join("crates/ebpf/examples");
    let built = target_dir().join("debug/examples");
    let entries = std::fs::read_dir(&sources)
        .map_err(|e| format!("cannot read {}: {e}", sources.display()))?;
    for path in entries.filter_map(|e| e.ok()).map(|e| e.path()) {
        let is_example = path.extension().is_some_and(|e| e == "rs");
        let Some(stem) = path
            .file_stem()
            .and_then(|s| s.to_str())
            .filter(|_| is_example)
        else {
            continue;
        };
        let binary = built.join(stem);
        if binary.is_file() {
            // Debug info makes each one ~40 MB; stripped they fit the VM's memory easily.
            let stripped = target_dir().join("vm").join("examples").join(stem);
            if let Some(dir) = stripped.parent() {
                std::fs::create_dir_all(dir)
                    .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            }
            crate::util::run(
                Command::new("strip")
                    .arg("--strip-debug")
                    .arg("-o")
                    .arg(&stripped)
                    .arg(&binary),
            )?;
            tree.copy(&relative(&binary), &stripped, 0o755)?;
        }
    }
    Ok(())
}

fn copy_dir(tree: &mut Tree, dir: &Path) -> Result {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    for entry in entries {
        let path = entry
            .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
            .path();
        if path.is_dir() {
            copy_dir(tree, &path)?;
        } else {
            tree.copy(&relative(&path), &path, 0o644)?;
        }
    }
    Ok(())
}

fn module_path(module: &Module) -> String {
    format!("lib/modules/{}.ko", module.name)
}

/// The `/init` script: mounts, modules, loopback, the payload, the result line, power off.
fn init_script(spec: &Spec<'_>) -> String {
    let mut s = String::from(
        "#!/bin/sh\n\
         # /init of the `cargo xtask vm-test` initramfs (generated; see docs/testing.md)\n\
         export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root\n",
    );
    s += &format!("try() {{ \"$@\" || echo \"{SETUP_FAILED} $*\"; }}\n");
    for (kind, dir) in [
        ("proc", "/proc"),
        ("sysfs", "/sys"),
        ("devtmpfs", "/dev"),
        ("tmpfs", "/run"),
        ("tracefs", "/sys/kernel/tracing"),
        ("debugfs", "/sys/kernel/debug"),
        ("bpf", "/sys/fs/bpf"),
    ] {
        s += &format!("try mount -t {kind} {kind} {dir}\n");
    }
    // No tmpfs over /tmp: the initramfs is already writable, and a workspace that lives under
    // /tmp on the host (a fresh clone in CI, say) is copied there at its own path.
    s += "try mkdir -p /run/netns /tmp\ntry chmod 1777 /tmp\n";
    for module in spec.modules {
        s += &format!("try insmod /{}\n", module_path(module));
    }
    s += "try ip link set lo up\n";
    s += &format!("try cd {}\n", quote(&root().to_string_lossy()));
    s += &format!(
        "echo \"ebpf-vm-test: kernel $(uname -r), {} modules loaded\"\n",
        spec.modules.len()
    );
    s += &format!(
        "BPF_TEST_STRICT=1 BPF_TEST_KERNEL={} {}\n",
        quote(spec.label),
        payload_command(spec.payload)
    );
    s += &format!("echo \"{RESULT_PREFIX}$?\"\n");
    s += "poweroff -f\n";
    s
}

fn payload_command(payload: &Payload) -> String {
    match payload {
        Payload::Tests { args, .. } => {
            // As many test threads as the VM has CPUs (libtest's default), as on the host.
            let mut cmd = format!("/{TEST_BINARY}");
            for arg in args {
                cmd += " ";
                cmd += &quote(arg);
            }
            cmd
        }
        Payload::Shell(script) => format!("sh -c {}", quote(script)),
    }
}

/// Single-quotes `s` for the shell.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// `/a/b` -> `a/b`: paths in the archive have no leading slash.
fn relative(path: &Path) -> String {
    path.to_string_lossy().trim_start_matches('/').to_owned()
}

/// A program on `PATH` or in the usual `sbin` folders (not always on a user's `PATH`).
fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

fn write_gzip(tree: &Tree, out: &Path) -> Result {
    let file =
        std::fs::File::create(out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let mut gzip = Command::new("gzip")
        .args(["-1", "-n", "-c"])
        .stdin(Stdio::piped())
        .stdout(file)
        .spawn()
        .map_err(|e| format!("cannot run gzip: {e}"))?;
    let stdin = gzip.stdin.take().ok_or("gzip has no stdin")?;
    let written = tree.write_newc(io::BufWriter::new(stdin));
    let status = gzip.wait().map_err(|e| format!("gzip: {e}"))?;
    written.map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "gzip failed with {status} writing {}",
            out.display()
        ))
    }
}

/// One entry of the archive.
enum Entry {
    Dir,
    File(Vec<u8>, u32),
    Symlink(String),
    CharDev(u32, u32),
}

/// The archive's contents by path (no leading slash); sorted, so parents come before children.
#[derive(Default)]
struct Tree {
    entries: BTreeMap<String, Entry>,
}

impl Tree {
    fn insert(&mut self, path: &str, entry: Entry) {
        let mut parent = Path::new(path).parent();
        while let Some(dir) = parent.filter(|d| !d.as_os_str().is_empty()) {
            self.entries
                .entry(dir.to_string_lossy().into_owned())
                .or_insert(Entry::Dir);
            parent = dir.parent();
        }
        self.entries.insert(path.to_owned(), entry);
    }

    fn dir(&mut self, path: &str) {
        self.insert(path, Entry::Dir);
    }

    fn file(&mut self, path: &str, data: Vec<u8>, mode: u32) {
        self.insert(path, Entry::File(data, mode));
    }

    fn symlink(&mut self, path: &str, target: &str) {
        self.insert(path, Entry::Symlink(target.to_owned()));
    }

    /// Copies the host file `from` (following symlinks) to `path`.
    fn copy(&mut self, path: &str, from: &Path, mode: u32) -> Result {
        let data =
            std::fs::read(from).map_err(|e| format!("cannot read {}: {e}", from.display()))?;
        self.file(path, data, mode);
        Ok(())
    }

    /// Writes the archive in the newc format (`cpio -H newc`): owner root, mtime 0.
    fn write_newc(&self, mut w: impl Write) -> io::Result<()> {
        for (ino, (path, entry)) in (1..).zip(&self.entries) {
            let (mode, data, rdev): (u32, &[u8], (u32, u32)) = match entry {
                Entry::Dir => (0o040_755, &[], (0, 0)),
                Entry::File(data, mode) => (0o100_000 | mode, data, (0, 0)),
                Entry::Symlink(target) => (0o120_777, target.as_bytes(), (0, 0)),
                Entry::CharDev(major, minor) => (0o020_600, &[], (*major, *minor)),
            };
            write_header(&mut w, ino, mode, data.len(), rdev, path)?;
            w.write_all(data)?;
            pad(&mut w, data.len())?;
        }
        write_header(&mut w, 0, 0, 0, (0, 0), "TRAILER!!!")?;
        w.flush()
    }
}

fn write_header(
    w: &mut impl Write,
    ino: u32,
    mode: u32,
    size: usize,
    rdev: (u32, u32),
    name: &str,
) -> io::Result<()> {
    let size =
        u32::try_from(size).map_err(|_| io::Error::other(format!("{name}: too big for cpio")))?;
    let nlink = if mode & 0o170_000 == 0o040_000 { 2 } else { 1 };
    let namesize = name.len() + 1;
    // magic, ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor, rdevmajor,
    // rdevminor, namesize, check
    write!(
        w,
        "070701{ino:08x}{mode:08x}{:08x}{:08x}{nlink:08x}{:08x}{size:08x}",
        0, 0, 0
    )?;
    write!(
        w,
        "{:08x}{:08x}{:08x}{:08x}{namesize:08x}{:08x}",
        0, 0, rdev.0, rdev.1, 0
    )?;
    w.write_all(name.as_bytes())?;
    w.write_all(b"\0")?;
    pad(w, 110 + namesize)
}

/// Pads to the next multiple of 4 bytes after `len` bytes.
fn pad(w: &mut impl Write, len: usize) -> io::Result<()> {
    w.write_all(&[0; 3][..(4 - len % 4) % 4])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldd_output_gives_paths_and_skips_the_vdso() {
        let text = "\tlinux-vdso.so.1 (0x00007ffd)\n\
                    \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f)\n\
                    \t/lib64/ld-linux-x86-64.so.2 (0x00007f)\n";
        let expected = [
            "/lib/x86_64-linux-gnu/libc.so.6",
            "/lib64/ld-linux-x86-64.so.2",
        ]
        .map(PathBuf::from);
        assert_eq!(parse_ldd(text), Ok(expected.to_vec()));
        assert!(parse_ldd("\tlibfoo.so => not found\n").is_err());
    }

    #[test]
    fn newc_archive_has_parents_padding_and_trailer() {
        let mut tree = Tree::default();
        tree.file("a/b/c", b"hello".to_vec(), 0o644);
        let mut out = Vec::new();
        tree.write_newc(&mut out)
            .expect("writing to a Vec cannot fail");
        assert_eq!(out.len() % 4, 0);
        let text = String::from_utf8_lossy(&out);
        let a = text.find("a\0").expect("parent a");
        let ab = text.find("a/b\0").expect("parent a/b");
        let abc = text.find("a/b/c\0").expect("file");
        assert!(a < ab && ab < abc);
        assert!(text.contains("hello"));
        assert!(text.ends_with("TRAILER!!!\0\0\0\0"));
        assert!(text.starts_with("070701"));
    }

    #[test]
    fn quoting_survives_single_quotes() {
        assert_eq!(quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn the_test_binary_gets_exactly_the_given_arguments() {
        let payload = Payload::Tests {
            binary: PathBuf::from("/x/kernel-tests"),
            args: vec!["--exact".into(), "maps::a b".into()],
        };
        assert_eq!(
            payload_command(&payload),
            "/bin/kernel-tests '--exact' 'maps::a b'"
        );
        let payload = Payload::Tests {
            binary: PathBuf::from("/x/kernel-tests"),
            args: Vec::new(),
        };
        assert_eq!(payload_command(&payload), "/bin/kernel-tests");
    }
}
