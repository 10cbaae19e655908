//! What `.kconfig` and `__ksym` externs need from the running kernel: its build configuration
//! (`/boot/config-RELEASE`, else `/proc/config.gz`), its version, and `/proc/kallsyms`. Each is
//! read on first use and kept for the life of the process.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// The kernel's configuration could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KernelConfigError {
    /// Neither `/boot/config-RELEASE` nor `/proc/config.gz` could be read.
    #[error("cannot read the kernel config from {tried:?}")]
    NotFound {
        /// The files tried.
        tried: Vec<PathBuf>,
        /// The last error.
        #[source]
        source: std::io::Error,
    },
}

/// Parses a kernel config (`CONFIG_X=y`, `CONFIG_Y="str"`, `# CONFIG_Z is not set`): the set
/// options and their values as written.
pub fn parse_config(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter(|l| l.starts_with("CONFIG_"))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

fn read_config() -> Result<HashMap<String, String>, KernelConfigError> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let boot = PathBuf::from(format!("/boot/config-{}", release.trim()));
    let gz = PathBuf::from("/proc/config.gz");
    let mut last = match std::fs::read_to_string(&boot) {
        Ok(text) => return Ok(parse_config(&text)),
        Err(e) => e,
    };
    if gz.exists() {
        // No inflate in our dependencies: gzip(1) is on every system that has the file.
        match std::process::Command::new("gzip")
            .arg("-dc")
            .arg(&gz)
            .output()
        {
            Ok(out) if out.status.success() => {
                return Ok(parse_config(&String::from_utf8_lossy(&out.stdout)))
            }
            Ok(out) => {
                last = std::io::Error::other(format!(
                    "gzip -dc exited with {}: {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                ))
            }
            Err(e) => last = e,
        }
    }
    Err(KernelConfigError::NotFound {
        tried: vec![boot, gz],
        source: last,
    })
}

/// The running kernel's configuration, read once.
pub fn kernel_config() -> Result<Arc<HashMap<String, String>>, KernelConfigError> {
    static CACHE: Mutex<Option<Arc<HashMap<String, String>>>> = Mutex::new(None);
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(c) = cache.as_ref() {
        return Ok(c.clone());
    }
    let c = Arc::new(read_config()?);
    *cache = Some(c.clone());
    Ok(c)
}

/// The value of a `.kconfig` extern as a kernel config would write it: `LINUX_KERNEL_VERSION`
/// from the running kernel, `CONFIG_*` from [`kernel_config`]; `None` when unknown (a weak
/// extern then reads 0, a strong one fails the load).
pub fn kconfig_value(name: &str) -> Option<String> {
    let yes_no = |b: bool| Some(if b { "y" } else { "n" }.to_string());
    match name {
        "LINUX_KERNEL_VERSION" => bpf_sys::kernel::KernelVersion::current()
            .ok()
            .map(|v| v.code().to_string()),
        // libbpf's computed values, which its headers declare (strong): `BPF_KSYSCALL` in
        // bpf_tracing.h reads the first, usdt.bpf.h the second.
        "LINUX_HAS_SYSCALL_WRAPPER" => yes_no(has_syscall_wrapper()),
        "LINUX_HAS_BPF_COOKIE" => yes_no(bpf_sys::probe::helper_supported(
            bpf_sys::ProgramType::Tracepoint,
            bpf_sys::uapi::BPF_FUNC_get_attach_cookie,
        )),
        _ if name.starts_with("CONFIG_") => match kernel_config() {
            Ok(c) => c.get(name).cloned(),
            Err(e) => {
                log::warn!("{e}");
                None
            }
        },
        _ => None,
    }
}

/// Parses `/proc/kallsyms` text: the first address of each symbol (module symbols included).
pub fn parse_kallsyms(text: &str) -> HashMap<String, u64> {
    let mut out = HashMap::new();
    for line in text.lines() {
        let mut f = line.split_whitespace();
        let (Some(addr), Some(_), Some(name)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        if let Ok(a) = u64::from_str_radix(addr, 16) {
            out.entry(name.to_string()).or_insert(a);
        }
    }
    out
}

/// Whether system calls enter the kernel through the architecture's `pt_regs` wrapper
/// (`__x64_sys_bpf` and the like, Linux 4.17), so that a kprobe on a system call sees its
/// arguments behind a `struct pt_regs *` (libbpf's `LINUX_HAS_SYSCALL_WRAPPER`): whether
/// `/proc/kallsyms` lists the wrapper of `bpf(2)`. `false` on architectures without one.
pub fn has_syscall_wrapper() -> bool {
    let wrapper = crate::kprobe::syscall_prefixes()[0];
    wrapper.starts_with("__")
        && wrapper != "__se_sys_"
        && kallsyms().is_some_and(|t| t.contains_key(&format!("{wrapper}bpf")))
}

/// `/proc/kallsyms`, parsed once.
fn kallsyms() -> Option<Arc<HashMap<String, u64>>> {
    static CACHE: Mutex<Option<Arc<HashMap<String, u64>>>> = Mutex::new(None);
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    if cache.is_none() {
        let text = std::fs::read_to_string("/proc/kallsyms").ok()?;
        *cache = Some(Arc::new(parse_kallsyms(&text)));
    }
    cache.clone()
}

/// The address of a kernel symbol from `/proc/kallsyms` (read once; addresses are 0 without
/// `CAP_SYSLOG`, which counts as not found).
pub fn kallsyms_address(name: &str) -> Option<u64> {
    kallsyms()?.get(name).copied().filter(|&a| a != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_lines_are_parsed_and_unset_options_left_out() {
        let c = parse_config("# comment\nCONFIG_HZ=250\nCONFIG_BPF=y\n# CONFIG_KPROBES is not set\nCONFIG_NAME=\"x y\"\n");
        assert_eq!(c.get("CONFIG_HZ").map(String::as_str), Some("250"));
        assert_eq!(c.get("CONFIG_NAME").map(String::as_str), Some("\"x y\""));
        assert!(!c.contains_key("CONFIG_KPROBES"));
    }

    #[test]
    fn kallsyms_keeps_the_first_address() {
        let k = parse_kallsyms(
            "ffffffff81000000 T _text\nffffffff82000000 t dup\nffffffff83000000 t dup [mod]\n",
        );
        assert_eq!(k.get("dup"), Some(&0xffffffff82000000));
        assert_eq!(k.get("_text"), Some(&0xffffffff81000000));
    }
}
