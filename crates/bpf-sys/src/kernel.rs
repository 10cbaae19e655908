//! The running kernel's version.
//!
//! Used for kprobe programs' `kern_version` (kernels before 5.0 check it) and to name the kernel
//! in "not supported" errors. Feature decisions are made by probes, never by this version.
//!
//! The version comes from `uname`'s release (`6.18.44-fc-v669`, `5.10.0-32-amd64`, `4.19.0+`),
//! corrected as libbpf and cilium/ebpf do for distributions whose release string does not carry the
//! upstream patch level: Ubuntu's `/proc/version_signature` (`Ubuntu 5.4.0-104.118-generic 5.4.174`)
//! and Debian's `uname -v` (`#1 SMP PREEMPT_DYNAMIC Debian 6.1.123-1 (2025-01-02)`).

use std::fmt;
use std::sync::OnceLock;

/// Where Ubuntu kernels give their upstream version.
const UBUNTU_SIGNATURE: &str = "/proc/version_signature";

/// A kernel version `major.minor.patch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KernelVersion {
    /// The major number (`6` in 6.1.123).
    pub major: u32,
    /// The minor number (`1` in 6.1.123).
    pub minor: u32,
    /// The patch level (`123` in 6.1.123).
    pub patch: u32,
}

/// A kernel release string that does not start with `major.minor`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
#[error("cannot parse kernel release {release:?}")]
pub struct KernelVersionError {
    /// The release string.
    pub release: String,
}

impl KernelVersion {
    /// The version `major.minor.patch`.
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        KernelVersion {
            major,
            minor,
            patch,
        }
    }

    /// `LINUX_VERSION_CODE`: `(major << 16) + (minor << 8) + min(patch, 255)`, the value kprobe
    /// programs pass as `kern_version` (the patch is capped at 255 as the kernel's own
    /// `KERNEL_VERSION` macro does since 4.9.256 and 4.14.256).
    pub fn code(&self) -> u32 {
        (self.major.min(255) << 16) + (self.minor.min(255) << 8) + self.patch.min(255)
    }

    /// Parses a release string: `major.minor[.patch]` followed by anything (`-32-amd64`, `+`,
    /// `-rc1`). A missing patch is 0.
    ///
    /// ```
    /// # use bpf_sys::kernel::KernelVersion;
    /// assert_eq!(KernelVersion::parse("5.10.0-32-amd64").unwrap(), KernelVersion::new(5, 10, 0));
    /// assert_eq!(KernelVersion::parse("4.19.0+").unwrap(), KernelVersion::new(4, 19, 0));
    /// ```
    pub fn parse(release: &str) -> Result<Self, KernelVersionError> {
        let err = || KernelVersionError {
            release: release.to_owned(),
        };
        let (major, rest) = leading_number(release.trim()).ok_or_else(err)?;
        let rest = rest.strip_prefix('.').ok_or_else(err)?;
        let (minor, rest) = leading_number(rest).ok_or_else(err)?;
        let patch = rest
            .strip_prefix('.')
            .and_then(leading_number)
            .map_or(0, |(p, _)| p);
        Ok(KernelVersion {
            major,
            minor,
            patch,
        })
    }

    /// The running kernel's version, read once and cached (a failure is not cached).
    #[inline]
    pub fn current() -> Result<Self, KernelVersionError> {
        static CURRENT: OnceLock<KernelVersion> = OnceLock::new();
        match CURRENT.get() {
            Some(v) => Ok(*v),
            None => Self::read_current(&CURRENT),
        }
    }

    /// Reads the running kernel's version into `cache` (the first [`KernelVersion::current`]).
    #[cold]
    #[inline(never)]
    fn read_current(cache: &OnceLock<KernelVersion>) -> Result<Self, KernelVersionError> {
        let uts = rustix::system::uname();
        let release = uts.release().to_string_lossy();
        let version = uts.version().to_string_lossy();
        let signature = std::fs::read_to_string(UBUNTU_SIGNATURE).ok();
        let v = resolve(&release, &version, signature.as_deref())?;
        Ok(*cache.get_or_init(|| v))
    }
}

impl fmt::Display for KernelVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// The version from `uname`'s release, corrected by Ubuntu's version signature or Debian's
/// `uname -v` when they name the same `major.minor` (pure: the inputs of [`KernelVersion::current`]).
pub fn resolve(
    release: &str,
    uname_version: &str,
    ubuntu_signature: Option<&str>,
) -> Result<KernelVersion, KernelVersionError> {
    let base = KernelVersion::parse(release)?;
    let upstream = ubuntu_signature
        .and_then(parse_ubuntu_signature)
        .or_else(|| parse_debian_uname_version(uname_version));
    Ok(match upstream {
        Some(v) if v.major == base.major && v.minor == base.minor => v,
        _ => base,
    })
}

/// The upstream version in Ubuntu's `/proc/version_signature`: its third field
/// (`Ubuntu 5.4.0-104.118-generic 5.4.174` gives 5.4.174).
pub fn parse_ubuntu_signature(signature: &str) -> Option<KernelVersion> {
    KernelVersion::parse(signature.split_whitespace().nth(2)?).ok()
}

/// The upstream version in a Debian kernel's `uname -v`: the word after `Debian`
/// (`#1 SMP PREEMPT_DYNAMIC Debian 6.1.123-1 (2025-01-02)` gives 6.1.123).
pub fn parse_debian_uname_version(version: &str) -> Option<KernelVersion> {
    let mut words = version.split_whitespace();
    words.find(|w| *w == "Debian")?;
    KernelVersion::parse(words.next()?).ok()
}

/// The decimal number at the start of `s` and what follows it.
fn leading_number(s: &str) -> Option<(u32, &str)> {
    let end = s
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(s.len());
    let n = s[..end].parse().ok()?;
    Some((n, &s[end..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_release_strings_seen_in_the_wild() {
        assert_eq!(
            KernelVersion::parse("6.18.44-fc-v669").unwrap(),
            KernelVersion::new(6, 18, 44)
        );
        assert_eq!(
            KernelVersion::parse("5.10.0-32-amd64").unwrap(),
            KernelVersion::new(5, 10, 0)
        );
        assert_eq!(
            KernelVersion::parse("4.19.0+").unwrap(),
            KernelVersion::new(4, 19, 0)
        );
        assert_eq!(
            KernelVersion::parse("6.9-rc1").unwrap(),
            KernelVersion::new(6, 9, 0)
        );
        assert_eq!(
            KernelVersion::parse("3.10").unwrap(),
            KernelVersion::new(3, 10, 0)
        );
        assert!(KernelVersion::parse("").is_err());
        assert!(KernelVersion::parse("6").is_err());
        assert!(KernelVersion::parse("x.1.2").is_err());
        assert!(KernelVersion::parse("99999999999.1.1").is_err());
    }

    #[test]
    fn code_matches_linux_version_code() {
        assert_eq!(KernelVersion::new(5, 10, 0).code(), 0x050a00);
        assert_eq!(KernelVersion::new(6, 1, 123).code(), 0x06017b);
        assert_eq!(KernelVersion::new(4, 9, 337).code(), 0x0409ff);
    }

    #[test]
    fn debian_and_ubuntu_give_the_upstream_patch_level() {
        let deb = "#1 SMP PREEMPT_DYNAMIC Debian 6.1.123-1 (2025-01-02)";
        assert_eq!(
            resolve("6.1.0-30-amd64", deb, None).unwrap(),
            KernelVersion::new(6, 1, 123)
        );
        assert_eq!(
            resolve(
                "5.10.0-32-amd64",
                "#1 SMP Debian 5.10.223-1 (2024-08-10)",
                None
            )
            .unwrap(),
            KernelVersion::new(5, 10, 223)
        );
        let ubuntu = "Ubuntu 5.4.0-104.118-generic 5.4.174\n";
        assert_eq!(
            resolve("5.4.0-104-generic", "#118-Ubuntu SMP", Some(ubuntu)).unwrap(),
            KernelVersion::new(5, 4, 174)
        );
        // A different major.minor (a backport package naming another tree) is ignored.
        assert_eq!(
            resolve("6.18.44-fc", "#1 SMP Debian 6.1.1-1", None).unwrap(),
            KernelVersion::new(6, 18, 44)
        );
        assert_eq!(
            resolve("6.18.44-fc-v669", "#1 SMP PREEMPT_DYNAMIC", None).unwrap(),
            KernelVersion::new(6, 18, 44)
        );
        assert_eq!(parse_debian_uname_version("#1 SMP Debian"), None);
    }

    proptest! {
        #[test]
        fn parse_reads_back_a_formatted_version(a in 0u32..100, b in 0u32..1000, c in 0u32..100000, tail in "[-+a-z0-9.]{0,12}") {
            let v = KernelVersion::new(a, b, c);
            let s = format!("{v}{}", if tail.starts_with(|ch: char| ch.is_ascii_digit() || ch == '.') { String::new() } else { tail });
            prop_assert_eq!(KernelVersion::parse(&s).unwrap(), v);
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,20}") {
            let _ = KernelVersion::parse(&s);
            let _ = parse_debian_uname_version(&s);
        }
    }
}
