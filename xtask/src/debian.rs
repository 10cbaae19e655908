//! Debian packages from other suites (bullseye, trixie) without touching the machine's own apt
//! configuration: a private source list and lists folder under `target/debian/`, passed to
//! `apt-get` and `apt-cache` with `-o Dir::...` (machine.md, "Testing on other kernels").

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{output, run, target_dir};
use crate::Result;

const KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";
const MIRROR: &str = "http://deb.debian.org/debian";

/// A private view of one or more Debian suites.
pub struct Archive {
    dir: PathBuf,
}

impl Archive {
    /// Opens (and on first use, fetches the package lists of) a private archive for `suites`.
    pub fn open(suites: &[&str]) -> Result<Self> {
        let dir = target_dir().join("debian").join(suites.join("+"));
        let lists = dir.join("lists");
        std::fs::create_dir_all(lists.join("partial"))
            .map_err(|e| format!("cannot create {}: {e}", lists.display()))?;
        let sources: String = suites
            .iter()
            .map(|s| format!("deb [signed-by={KEYRING}] {MIRROR} {s} main\n"))
            .collect();
        let list = dir.join("sources.list");
        let fresh = std::fs::read_to_string(&list).ok().as_deref() == Some(sources.as_str())
            && has_lists(&lists);
        let archive = Archive { dir };
        if !fresh {
            std::fs::write(&list, sources)
                .map_err(|e| format!("cannot write {}: {e}", list.display()))?;
            let mut cmd = Command::new("apt-get");
            cmd.args(["-qq", "update"]).args(archive.options());
            run(&mut cmd)?;
        }
        Ok(archive)
    }

    fn options(&self) -> Vec<String> {
        vec![
            format!(
                "-oDir::Etc::sourcelist={}",
                self.dir.join("sources.list").display()
            ),
            "-oDir::Etc::sourceparts=-".into(),
            format!("-oDir::State::Lists={}", self.dir.join("lists").display()),
            "-oAPT::Sandbox::User=root".into(),
        ]
    }

    /// The first dependency of a metapackage (`linux-image-amd64` -> `linux-image-6.1.0-NN-amd64`).
    pub fn resolve(&self, meta: &str) -> Result<String> {
        let mut cmd = Command::new("apt-cache");
        cmd.args(self.options()).args(["depends", meta]);
        let text = output(&mut cmd)?;
        text.lines()
            .filter_map(|l| l.trim().strip_prefix("Depends: "))
            .map(str::trim)
            .find(|d| d.starts_with("linux-"))
            .map(str::to_owned)
            .ok_or_else(|| {
                format!("cannot resolve {meta}: no linux-* dependency in `apt-cache depends`")
            })
    }

    /// Downloads `package` (a name, optionally `name/suite`) into the cache, once, and returns
    /// the `.deb`'s path.
    pub fn download(&self, package: &str) -> Result<PathBuf> {
        let cache = self.dir.join("debs");
        std::fs::create_dir_all(&cache)
            .map_err(|e| format!("cannot create {}: {e}", cache.display()))?;
        let name = package.split(['/', '=']).next().unwrap_or(package);
        if let Some(found) = find_deb(&cache, name) {
            return Ok(found);
        }
        let mut cmd = Command::new("apt-get");
        cmd.current_dir(&cache)
            .args(["-qq", "download"])
            .args(self.options())
            .arg(package);
        run(&mut cmd)?;
        find_deb(&cache, name).ok_or_else(|| {
            format!(
                "apt-get download {package} left no .deb in {}",
                cache.display()
            )
        })
    }
}

fn has_lists(lists: &Path) -> bool {
    std::fs::read_dir(lists)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .any(|e| e.file_name().to_string_lossy().contains("_Packages"))
        })
        .unwrap_or(false)
}

fn find_deb(dir: &Path, name: &str) -> Option<PathBuf> {
    let prefix = format!("{name}_");
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".deb"))
        })
        .collect();
    found.sort();
    found.pop()
}

/// Unpacks a `.deb` into `dest` (once: an existing `dest` is reused).
pub fn extract(deb: &Path, dest: &Path) -> Result<()> {
    if dest.join(".extracted").exists() {
        return Ok(());
    }
    std::fs::create_dir_all(dest).map_err(|e| format!("cannot create {}: {e}", dest.display()))?;
    run(Command::new("dpkg-deb").arg("-x").arg(deb).arg(dest))?;
    std::fs::write(dest.join(".extracted"), b"").map_err(|e| e.to_string())
}
