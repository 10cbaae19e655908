//! Symbols of ELF executables and shared libraries, resolved to the file offsets uprobes need.
//!
//! A uprobe is placed at an offset in a file, not at an address: [`resolve`] finds a symbol in
//! the file's `.symtab` (then `.dynsym`, all a stripped library keeps) and turns its virtual
//! address into a file offset through the `PT_LOAD` program header that maps it
//! (`offset = vaddr - p_vaddr + p_offset`). [`find_library`] finds a shared library by name
//! (`libc.so.6`, `libc`, `c`) in `/etc/ld.so.cache`, then in the standard directories.

use std::io;
use std::path::{Path, PathBuf};

use object::{Object, ObjectSegment, ObjectSymbol, SymbolKind};

/// A symbol could not be resolved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SymbolError {
    /// The file could not be read.
    #[error("cannot read {path:?}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The file is not an ELF object this parser reads.
    #[error("{path:?} is not a readable elf file: {reason}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        reason: String,
    },
    /// Neither symbol table has a defined symbol of that name.
    #[error("no symbol {symbol:?} in {path:?}")]
    NotFound {
        /// The symbol.
        symbol: String,
        /// The file.
        path: PathBuf,
    },
    /// The symbol's address is in no loadable segment backed by the file.
    #[error("symbol {symbol:?} at {address:#x} is in no loadable segment of {path:?}")]
    NotMapped {
        /// The symbol.
        symbol: String,
        /// Its virtual address.
        address: u64,
        /// The file.
        path: PathBuf,
    },
    /// No shared library of that name in `/etc/ld.so.cache` or the standard directories.
    #[error("no shared library {name:?} in /etc/ld.so.cache or the standard library directories")]
    LibraryNotFound {
        /// The name asked for.
        name: String,
    },
}

/// A resolved symbol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedSymbol {
    /// The file it is in.
    pub path: PathBuf,
    /// The symbol's name as found.
    pub name: String,
    /// Its virtual address (`st_value`).
    pub address: u64,
    /// Its size (`st_size`; 0 when unknown).
    pub size: u64,
    /// Its offset in the file: what a uprobe needs.
    pub file_offset: u64,
}

/// A loadable segment: virtual address, size in the file, offset in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadSegment {
    /// `p_vaddr`.
    pub vaddr: u64,
    /// `p_filesz`.
    pub file_size: u64,
    /// `p_offset`.
    pub offset: u64,
}

/// The file offset of `address`, through the segment whose file-backed part holds it.
pub fn vaddr_to_offset(segments: &[LoadSegment], address: u64) -> Option<u64> {
    segments
        .iter()
        .find(|s| address >= s.vaddr && address - s.vaddr < s.file_size)
        .map(|s| address - s.vaddr + s.offset)
}

/// Whether a symbol table name matches: exactly, or before a version (`malloc@@GLIBC_2.2.5`).
fn name_matches(name: &str, wanted: &str) -> bool {
    name == wanted || name.split_once('@').is_some_and(|(base, _)| base == wanted)
}

/// Resolves `symbol` in the ELF file at `path` (an executable or a shared library).
pub fn resolve(path: impl AsRef<Path>, symbol: &str) -> Result<ResolvedSymbol, SymbolError> {
    let path = path.as_ref();
    let data = std::fs::read(path).map_err(|source| SymbolError::Read {
        path: path.to_owned(),
        source,
    })?;
    resolve_in(path, &data, symbol)
}

/// Resolves `symbol` in the ELF image `data` (read from `path`, which only names it in errors).
pub fn resolve_in(path: &Path, data: &[u8], symbol: &str) -> Result<ResolvedSymbol, SymbolError> {
    let file = object::File::parse(data).map_err(|e| SymbolError::Parse {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    let found = file
        .symbols()
        .chain(file.dynamic_symbols())
        .filter(|s| !s.is_undefined() && s.address() != 0)
        .filter(|s| {
            matches!(
                s.kind(),
                SymbolKind::Text | SymbolKind::Unknown | SymbolKind::Data
            )
        })
        .find(|s| s.name().is_ok_and(|n| name_matches(n, symbol)))
        .ok_or_else(|| SymbolError::NotFound {
            symbol: symbol.to_string(),
            path: path.to_owned(),
        })?;
    let address = found.address();
    let segments: Vec<LoadSegment> = file
        .segments()
        .filter_map(|s| {
            let (offset, file_size) = s.file_range();
            Some(LoadSegment {
                vaddr: s.address(),
                file_size,
                offset,
            })
            .filter(|s| s.file_size > 0)
        })
        .collect();
    let file_offset = if segments.is_empty() {
        // No program headers (a relocatable object): the address is the offset.
        address
    } else {
        vaddr_to_offset(&segments, address).ok_or_else(|| SymbolError::NotMapped {
            symbol: symbol.to_string(),
            address,
            path: path.to_owned(),
        })?
    };
    Ok(ResolvedSymbol {
        path: path.to_owned(),
        name: found.name().unwrap_or(symbol).to_string(),
        address,
        size: found.size(),
        file_offset,
    })
}

/// The standard library directories searched after `/etc/ld.so.cache`.
pub const LIBRARY_DIRS: &[&str] = &[
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib/aarch64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/lib64",
    "/usr/lib64",
    "/lib",
    "/usr/lib",
    "/usr/local/lib",
];

const CACHE_MAGIC: &[u8] = b"glibc-ld.so.cache1.1";
const OLD_MAGIC: &[u8] = b"ld.so-1.7.0";

/// The (library name, path) entries of an `/etc/ld.so.cache` image in glibc's format (the new
/// format alone, or after the old one as older glibc wrote it). Malformed input gives what could
/// be read, never a panic.
pub fn parse_ld_so_cache(data: &[u8]) -> Vec<(String, PathBuf)> {
    let u32_at = |off: usize| -> Option<u32> {
        data.get(off..off + 4)
            .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
    };
    let cstr_at = |off: usize| -> Option<&str> {
        let rest = data.get(off..)?;
        let end = rest.iter().position(|b| *b == 0)?;
        std::str::from_utf8(&rest[..end]).ok()
    };
    // The new format's header may follow the old one's entries (12 bytes each).
    let start = if data.starts_with(CACHE_MAGIC) {
        0
    } else if data.starts_with(OLD_MAGIC) {
        let Some(n) = u32_at(12) else {
            return Vec::new();
        };
        let after = 16 + n as usize * 12;
        let aligned = (after + 7) & !7;
        match data.get(aligned..) {
            Some(d) if d.starts_with(CACHE_MAGIC) => aligned,
            _ => match data.get(after..) {
                Some(d) if d.starts_with(CACHE_MAGIC) => after,
                _ => return Vec::new(),
            },
        }
    } else {
        return Vec::new();
    };
    // Header: magic+version (20), nlibs, len_strings, flags(1) + pad(3), extension offset,
    // 3 unused words = 48 bytes; then entries of 24 bytes: flags, key, value, osversion,
    // hwcap (u64). Key and value are offsets from the start of the new-format header (which
    // is the start of the file when it stands alone).
    let Some(nlibs) = u32_at(start + 20) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for i in 0..nlibs as usize {
        let e = start + 48 + i * 24;
        let (Some(key), Some(value)) = (u32_at(e + 4), u32_at(e + 8)) else {
            break;
        };
        if let (Some(k), Some(v)) = (
            cstr_at(start + key as usize),
            cstr_at(start + value as usize),
        ) {
            out.push((k.to_string(), PathBuf::from(v)));
        }
    }
    out
}

/// The candidate file names for a library `name`: itself, and for a short name (`c`, `libc`)
/// `libNAME.so`.
fn library_names(name: &str) -> Vec<String> {
    let base = name.strip_prefix("lib").unwrap_or(name);
    let mut names = vec![name.to_string()];
    if !name.contains(".so") {
        names.push(format!("lib{base}.so"));
    }
    names
}

/// Whether `file` (a file name in a cache or a directory) is the library `name`: the same name,
/// or `libNAME.so` followed by a version (`libc.so.6` for `c` or `libc`).
fn is_library(file: &str, name: &str) -> bool {
    library_names(name).iter().any(|n| {
        file == n
            || (!name.contains(".so")
                && file
                    .strip_prefix(n.as_str())
                    .is_some_and(|rest| rest.starts_with('.')))
    })
}

/// Finds the shared library `name` (`libc.so.6`, `libc`, `c`; a path is returned as it is):
/// in `/etc/ld.so.cache` first, then in [`LIBRARY_DIRS`].
pub fn find_library(name: &str) -> Result<PathBuf, SymbolError> {
    if name.contains('/') {
        return Ok(PathBuf::from(name));
    }
    if let Ok(cache) = std::fs::read("/etc/ld.so.cache") {
        if let Some((_, path)) = parse_ld_so_cache(&cache)
            .into_iter()
            .find(|(file, path)| is_library(file, name) && path.exists())
        {
            return Ok(path);
        }
    }
    for dir in LIBRARY_DIRS {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        let mut matches: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_str().is_some_and(|f| is_library(f, name)))
            .map(|e| e.path())
            .collect();
        matches.sort();
        if let Some(p) = matches.into_iter().next() {
            return Ok(p);
        }
    }
    Err(SymbolError::LibraryNotFound {
        name: name.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_come_from_the_segment_that_maps_the_address() {
        let segs = [
            LoadSegment {
                vaddr: 0,
                file_size: 0x1000,
                offset: 0,
            },
            LoadSegment {
                vaddr: 0x2000,
                file_size: 0x500,
                offset: 0x1000,
            },
        ];
        assert_eq!(vaddr_to_offset(&segs, 0x10), Some(0x10));
        assert_eq!(vaddr_to_offset(&segs, 0x2010), Some(0x1010));
        assert_eq!(vaddr_to_offset(&segs, 0x2500), None);
        assert_eq!(vaddr_to_offset(&segs, 0x1800), None);
    }

    #[test]
    fn versioned_names_match_their_base() {
        assert!(name_matches("malloc@@GLIBC_2.2.5", "malloc"));
        assert!(name_matches("malloc", "malloc"));
        assert!(!name_matches("malloc_usable", "malloc"));
    }

    #[test]
    fn library_names_accept_short_forms() {
        assert!(is_library("libc.so.6", "c"));
        assert!(is_library("libc.so.6", "libc"));
        assert!(is_library("libc.so.6", "libc.so.6"));
        assert!(!is_library("libcrypt.so.1", "c"));
        assert!(!is_library("libc.so.6", "libc.so"));
    }

    fn cache_image(entries: &[(&str, &str)]) -> Vec<u8> {
        let mut strings = Vec::new();
        let header = 48 + entries.len() * 24;
        let mut recs = Vec::new();
        for (k, v) in entries {
            let ko = header + strings.len();
            strings.extend_from_slice(k.as_bytes());
            strings.push(0);
            let vo = header + strings.len();
            strings.extend_from_slice(v.as_bytes());
            strings.push(0);
            recs.extend_from_slice(&0x303i32.to_ne_bytes());
            recs.extend_from_slice(&(ko as u32).to_ne_bytes());
            recs.extend_from_slice(&(vo as u32).to_ne_bytes());
            recs.extend_from_slice(&0u32.to_ne_bytes());
            recs.extend_from_slice(&0u64.to_ne_bytes());
        }
        let mut out = CACHE_MAGIC.to_vec();
        out.extend_from_slice(&(entries.len() as u32).to_ne_bytes());
        out.extend_from_slice(&(strings.len() as u32).to_ne_bytes());
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&[0; 16]);
        assert_eq!(out.len(), 48);
        out.extend(recs);
        out.extend(strings);
        out
    }

    #[test]
    fn ld_so_cache_entries_parse_and_garbage_is_harmless() {
        let img = cache_image(&[
            ("libc.so.6", "/lib/x86_64-linux-gnu/libc.so.6"),
            ("libm.so.6", "/lib/m"),
        ]);
        let e = parse_ld_so_cache(&img);
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].0, "libc.so.6");
        assert_eq!(e[0].1, Path::new("/lib/x86_64-linux-gnu/libc.so.6"));
        for cut in 0..img.len() {
            let _ = parse_ld_so_cache(&img[..cut]);
        }
        assert!(parse_ld_so_cache(b"not a cache").is_empty());
    }

    #[test]
    fn the_test_binary_resolves_its_own_function() {
        let exe = std::env::current_exe().unwrap();
        let r = resolve(&exe, "main").unwrap();
        assert!(r.file_offset > 0);
        assert!(r.address >= r.file_offset);
        let e = resolve(&exe, "no_such_symbol_anywhere").unwrap_err();
        assert!(matches!(e, SymbolError::NotFound { .. }), "{e}");
        assert!(matches!(
            resolve("/nonexistent/x", "f"),
            Err(SymbolError::Read { .. })
        ));
    }
}
