//! The kernel test harness: guards, strict mode, network namespaces, bpffs and tracefs mounts.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
