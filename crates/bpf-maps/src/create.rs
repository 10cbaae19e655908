//! Creating maps from specs: goebpf's normalisation, pin paths under a pin root, the pin
//! policy, and the compatibility check before a pinned map is reused.
//!
//! Normalisation ([`normalize`], goebpf's `Create()` steps plus libbpf's perf array rule):
//!
//! - program arrays, perf event arrays, arrays and hashes of maps: value size 4 (an fd);
//! - arrays (array, per-CPU array, array of maps, program array, perf event array): key size 0
//!   becomes 4, a key wider than 4 bytes is [`MapError::InvalidSpec`];
//! - LPM tries: `BPF_F_NO_PREALLOC` (the kernel requires it);
//! - perf event arrays with `max_entries` 0: the number of possible CPUs;
//! - names: the kernel keeps 15 bytes (goebpf refused 16 or more: we cut) and only
//!   `[A-Za-z0-9_.]`, so other bytes become `_` in the kernel's copy; [`Map::name`] keeps the
//!   spec's full name.
//!
//! Pinning ([`pin_path`]): `LIBBPF_PIN_BY_NAME` pins at `<pin root>/<name>`; goebpf's
//! `persistent_path` is used as given, except that a path under `/sys/fs/bpf` is moved under the
//! pin root when the root is another directory (so tests and containers can load objects that
//! name `/sys/fs/bpf/...` into a private bpffs), and a relative path is taken under the root.
//!
//! [`Map::name`]: crate::Map::name

use std::borrow::Cow;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bpf_elf::{MapSpec, ObjectSpec, Pinning};
use bpf_sys::map::{MapCreateAttr, MapFd};
use bpf_sys::{uapi, MapType};

use crate::error::{FieldDiff, MapError, EINVAL};
use crate::map::{Map, MapInfo, SharedObject, Template};
use crate::KernelMap;

/// Where by-name pins go unless told otherwise.
pub const DEFAULT_PIN_ROOT: &str = "/sys/fs/bpf";

/// What to do when a map's pin path already holds an object.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum PinPolicy {
    /// Reuse the pinned map if it is compatible with the spec ([`MapError::Incompatible`]
    /// naming each field that differs otherwise); create and pin when there is no pin. goebpf's
    /// `persistent_path` behaviour, with the check goebpf lacked.
    #[default]
    Reuse,
    /// Create a new map and pin it in place of the old pin.
    Replace,
    /// Fail with [`MapError::PinExists`].
    Fail,
}

/// How [`KernelMap::create`] creates a map.
#[derive(Debug, Clone)]
pub struct CreateOptions<'a> {
    /// The directory of by-name pins, and the root `/sys/fs/bpf` persistent paths are moved
    /// under ([`DEFAULT_PIN_ROOT`] by default).
    pub pin_root: PathBuf,
    /// What to do with an existing pin.
    pub pin_policy: PinPolicy,
    /// For maps of maps: a map of the inner maps' shape. When `None` and the spec has an inner
    /// template, a temporary map is made from the template.
    pub inner_map: Option<BorrowedFd<'a>>,
    /// The object's BTF, for the spec's key and value type ids (the map is created without BTF
    /// if the kernel refuses it).
    pub btf: Option<BorrowedFd<'a>>,
    /// Do not freeze a spec with `freeze` set after writing its data: the caller freezes it
    /// later ([`KernelMap::freeze`]), e.g. after setting `.rodata` variables.
    pub defer_freeze: bool,
}

impl Default for CreateOptions<'_> {
    fn default() -> Self {
        CreateOptions {
            pin_root: PathBuf::from(DEFAULT_PIN_ROOT),
            pin_policy: PinPolicy::Reuse,
            inner_map: None,
            btf: None,
            defer_freeze: false,
        }
    }
}

impl CreateOptions<'_> {
    /// Options with this pin root.
    pub fn with_pin_root(pin_root: impl Into<PathBuf>) -> Self {
        CreateOptions {
            pin_root: pin_root.into(),
            ..Default::default()
        }
    }
}

fn is_array(t: MapType) -> bool {
    matches!(
        t,
        MapType::Array
            | MapType::PerCpuArray
            | MapType::ArrayOfMaps
            | MapType::ProgArray
            | MapType::PerfEventArray
    )
}

fn is_fd_value(t: MapType) -> bool {
    matches!(
        t,
        MapType::ArrayOfMaps | MapType::HashOfMaps | MapType::ProgArray | MapType::PerfEventArray
    )
}

/// goebpf's create-time normalisation (see the [module docs](self)), reading the possible CPUs
/// only for a perf event array without `max_entries`.
pub fn normalize(spec: &MapSpec) -> Result<MapSpec, MapError> {
    normalize_with(spec, possible_cpus_for(spec)?)
}

/// The possible CPUs, when normalising `spec` needs them (1 otherwise: nothing is read).
fn possible_cpus_for(spec: &MapSpec) -> Result<usize, MapError> {
    if spec.map_type == MapType::PerfEventArray && spec.max_entries == 0 {
        read_possible_cpus()
    } else {
        Ok(1)
    }
}

/// The possible CPUs, read for [`possible_cpus_for`]; out of line, as few maps need them.
#[cold]
#[inline(never)]
fn read_possible_cpus() -> Result<usize, MapError> {
    bpf_sys::cpu::num_possible_cpus().map_err(|e| MapError::Io {
        op: "read possible CPUs",
        path: bpf_sys::cpu::POSSIBLE_PATH.into(),
        source: io::Error::other(e),
    })
}

/// [`normalize`] with the number of possible CPUs given (pure).
pub fn normalize_with(spec: &MapSpec, possible_cpus: usize) -> Result<MapSpec, MapError> {
    let shape = Shape::normalized(spec, possible_cpus)?;
    let mut n = spec.clone();
    shape.apply(&mut n);
    Ok(n)
}

/// The fields of a spec that normalisation may change. Computed apart from the spec, so that
/// a spec normalisation leaves as it is need not be copied ([`KernelMap::create_in_object`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Shape {
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    flags: u32,
}

impl Shape {
    fn of(spec: &MapSpec) -> Shape {
        Shape {
            key_size: spec.key_size,
            value_size: spec.value_size,
            max_entries: spec.max_entries,
            flags: spec.flags,
        }
    }

    /// `spec`'s fields once normalised.
    fn normalized(spec: &MapSpec, possible_cpus: usize) -> Result<Shape, MapError> {
        let mut n = Shape::of(spec);
        let t = spec.map_type;
        if is_fd_value(t) {
            n.value_size = 4;
        }
        if is_array(t) {
            if n.key_size > 4 {
                return Err(array_key_error(spec));
            }
            if n.key_size == 0 {
                n.key_size = 4;
            }
        }
        if t == MapType::LpmTrie {
            n.flags |= uapi::BPF_F_NO_PREALLOC;
        }
        if t == MapType::PerfEventArray && n.max_entries == 0 {
            n.max_entries = possible_cpus as u32;
        }
        if spec.numa_node.is_some() {
            n.flags |= uapi::BPF_F_NUMA_NODE;
        }
        Ok(n)
    }

    fn apply(self, spec: &mut MapSpec) {
        spec.key_size = self.key_size;
        spec.value_size = self.value_size;
        spec.max_entries = self.max_entries;
        spec.flags = self.flags;
    }
}

/// The error of an array's key size that is not 4 bytes.
#[cold]
#[inline(never)]
fn array_key_error(spec: &MapSpec) -> MapError {
    MapError::InvalidSpec {
        map: spec.name.to_string(),
        reason: format!("key size {} of an array must be 4 bytes", spec.key_size),
    }
}

/// The kernel's copy of a map name: 15 bytes of `[A-Za-z0-9_.]`, other bytes as `_`.
pub fn kernel_name(name: &str) -> String {
    KernelName::new(name).as_str().to_owned()
}

/// The bytes of a name the kernel keeps (`BPF_OBJ_NAME_LEN` less the NUL).
const KERNEL_NAME_LEN: usize = 15;

/// Whether the kernel keeps a byte of a name as it is (`[A-Za-z0-9_.]`), by byte value.
const KEPT: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric() || c == b'_' || c == b'.';
        b += 1;
    }
    t
};

/// [`kernel_name`] without a copy: creating a map needs its kernel name only for the call, and
/// most names are kept as they are (their first 15 bytes).
enum KernelName<'a> {
    /// Every byte kept: the kernel's name is this prefix of the name.
    Prefix(&'a str),
    /// Some bytes replaced by `_`.
    Sanitized {
        bytes: [u8; KERNEL_NAME_LEN],
        len: usize,
    },
}

impl<'a> KernelName<'a> {
    fn new(name: &'a str) -> Self {
        let cut = &name.as_bytes()[..name.len().min(KERNEL_NAME_LEN)];
        // Every byte kept is ASCII, so the cut is on a character boundary.
        if let Some(prefix) = name.get(..cut.len()) {
            if cut.iter().all(|&b| KEPT[usize::from(b)]) {
                return KernelName::Prefix(prefix);
            }
        }
        let mut bytes = [0u8; KERNEL_NAME_LEN];
        for (out, &b) in bytes.iter_mut().zip(cut) {
            *out = if KEPT[usize::from(b)] { b } else { b'_' };
        }
        KernelName::Sanitized {
            bytes,
            len: cut.len(),
        }
    }

    fn as_str(&self) -> &str {
        match self {
            KernelName::Prefix(s) => s,
            // Every byte is ASCII: this cannot fail.
            KernelName::Sanitized { bytes, len } => {
                std::str::from_utf8(&bytes[..*len]).unwrap_or_default()
            }
        }
    }
}

/// Where `spec` is pinned under `pin_root` (see the [module docs](self)), `None` if unpinned.
pub fn pin_path(spec: &MapSpec, pin_root: &Path) -> Option<PathBuf> {
    match &spec.pinning {
        Pinning::None => None,
        Pinning::ByName => Some(pin_root.join(&spec.name)),
        Pinning::Path(p) => {
            let p = Path::new(p);
            let default = Path::new(DEFAULT_PIN_ROOT);
            if p.is_relative() {
                Some(pin_root.join(p))
            } else if pin_root != default {
                match p.strip_prefix(default) {
                    Ok(rest) => Some(pin_root.join(rest)),
                    Err(_) => Some(p.to_path_buf()),
                }
            } else {
                Some(p.to_path_buf())
            }
        }
    }
}

/// The fields in which a pinned map differs from a normalised spec (pure). Allows what the
/// kernel changes itself: `BPF_F_RDONLY_PROG` on device maps.
pub fn compatibility(spec: &MapSpec, pinned: &MapInfo) -> Vec<FieldDiff> {
    let mut diffs = Vec::new();
    let mut diff = |field: &'static str, s: String, p: String| {
        if s != p {
            diffs.push(FieldDiff {
                field,
                spec: s,
                pinned: p,
            });
        }
    };
    let pinned_type = pinned
        .map_type()
        .map(|t| t.kernel_name().to_string())
        .unwrap_or_else(|| pinned.type_raw.to_string());
    diff("map_type", spec.map_type.kernel_name().into(), pinned_type);
    diff(
        "key_size",
        spec.key_size.to_string(),
        pinned.key_size.to_string(),
    );
    diff(
        "value_size",
        spec.value_size.to_string(),
        pinned.value_size.to_string(),
    );
    diff(
        "max_entries",
        spec.max_entries.to_string(),
        pinned.max_entries.to_string(),
    );
    let mut flags = spec.flags;
    if matches!(spec.map_type, MapType::DevMap | MapType::DevMapHash) {
        flags |= pinned.flags & uapi::BPF_F_RDONLY_PROG;
    }
    diff(
        "flags",
        format!("{flags:#x}"),
        format!("{:#x}", pinned.flags),
    );
    diff(
        "map_extra",
        spec.map_extra.to_string(),
        pinned.map_extra.to_string(),
    );
    diffs
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> MapError + 'a {
    move |source| MapError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Checks that `path` would be on a bpffs (its nearest existing ancestor is one) and creates
/// the missing directories below it.
pub(crate) fn prepare_pin_dir(map: &str, path: &Path) -> Result<(), MapError> {
    let parent = path.parent().unwrap_or(Path::new("/"));
    let mut existing = parent;
    while !existing.exists() {
        existing = existing.parent().unwrap_or(Path::new("/"));
    }
    let on_bpffs = bpf_sys::fs::is_bpffs(existing)
        .map_err(|e| io_err("statfs", existing)(io::Error::other(e)))?;
    if !on_bpffs {
        return Err(MapError::NotBpffs {
            map: map.to_string(),
            path: path.to_path_buf(),
        });
    }
    std::fs::create_dir_all(parent).map_err(io_err("create directory", parent))
}

/// Pins `fd` at `path` after [`prepare_pin_dir`].
pub(crate) fn pin_fd(map: &str, fd: BorrowedFd<'_>, path: &Path) -> Result<(), MapError> {
    prepare_pin_dir(map, path)?;
    bpf_sys::obj::pin(fd, path).map_err(|source| MapError::Pin {
        op: "pin",
        map: map.to_string(),
        path: path.to_path_buf(),
        source,
    })
}

impl KernelMap {
    /// Creates a map from its spec (`BPF_MAP_CREATE`), after [`normalize`]; with a pin, applies
    /// the policy ([`PinPolicy`]); writes the spec's initial data at key 0 and freezes it when
    /// the spec says so (unless [`CreateOptions::defer_freeze`]). A reused pinned map is
    /// neither written nor frozen. Initial slots naming other maps or programs
    /// ([`MapSpec::values`]) are the loader's to fill.
    ///
    /// Each map type needs its kernel: hash and array 3.19, program array 4.2, per-CPU 4.6,
    /// LRU 4.10, LPM trie 4.11, maps of maps 4.12, queue and stack 4.20, bloom filter 5.16; a
    /// type the kernel lacks is [`MapError::NotSupported`] (probed).
    ///
    /// ```no_run
    /// use bpf_maps::{CreateOptions, KernelMap, MapSpec, MapType, Pinning};
    ///
    /// let mut spec = MapSpec::new("routes", MapType::LpmTrie, 8, 4, 128);
    /// spec.pinning = Pinning::ByName;
    /// let map = KernelMap::create(&spec, &CreateOptions::with_pin_root("/sys/fs/bpf/myapp"))?;
    /// assert_eq!(map.pin_path().unwrap().to_str(), Some("/sys/fs/bpf/myapp/routes"));
    /// # Ok::<(), bpf_maps::MapError>(())
    /// ```
    pub fn create(spec: &MapSpec, opts: &CreateOptions<'_>) -> Result<KernelMap, MapError> {
        create_normalized(Template::Own(Box::new(normalize(spec)?)), opts)
    }

    /// Creates map `index` of `object` as [`KernelMap::create`] creates its spec, but shares
    /// the object rather than copying the spec when normalisation leaves it as it is (the
    /// loader's way: a loaded object's maps and programs all hold the one parsed object).
    /// [`KernelMap::template`] is the normalised spec either way.
    ///
    /// An index past the object's maps is [`MapError::InvalidSpec`].
    pub fn create_in_object(
        object: &Arc<ObjectSpec>,
        index: usize,
        opts: &CreateOptions<'_>,
    ) -> Result<KernelMap, MapError> {
        KernelMap::create_in_shared(object, index, opts)
    }

    /// [`KernelMap::create_in_object`] of the object `holder` holds: the map shares the holder
    /// (a loader's record of the object, say) rather than copying the spec.
    pub fn create_in_shared<O: SharedObject + 'static>(
        holder: &Arc<O>,
        index: usize,
        opts: &CreateOptions<'_>,
    ) -> Result<KernelMap, MapError> {
        let object = holder.object();
        let Some(spec) = object.maps.get(index) else {
            return Err(no_such_map(object.maps.len(), index));
        };
        let shape = Shape::normalized(spec, possible_cpus_for(spec)?)?;
        let template = if shape == Shape::of(spec) {
            Template::Object {
                object: Arc::clone(holder) as Arc<dyn SharedObject>,
                index,
            }
        } else {
            let mut own = Box::new(spec.clone());
            shape.apply(&mut own);
            Template::Own(own)
        };
        create_normalized(template, opts)
    }
}

/// The error of [`KernelMap::create_in_shared`] for an index past the object's maps.
#[cold]
#[inline(never)]
fn no_such_map(maps: usize, index: usize) -> MapError {
    MapError::InvalidSpec {
        map: String::new(),
        reason: format!("the object has {maps} maps, no map {index}"),
    }
}

/// [`KernelMap::create`] of a normalised spec.
fn create_normalized(spec: Template, opts: &CreateOptions<'_>) -> Result<KernelMap, MapError> {
    // Most maps are not pinned: straight to the call.
    if matches!(spec.pinning, Pinning::None) {
        return create_unpinned(spec, opts);
    }
    let Some(path) = pin_path(&spec, &opts.pin_root) else {
        return create_unpinned(spec, opts);
    };
    let exists = path.symlink_metadata().is_ok();
    match (exists, opts.pin_policy) {
        (true, PinPolicy::Fail) => Err(MapError::PinExists {
            map: spec.name.to_string(),
            path,
        }),
        (true, PinPolicy::Reuse) => reuse(spec, path),
        (true, PinPolicy::Replace) => {
            prepare_pin_dir(&spec.name, &path)?;
            let mut map = create_unpinned(spec, opts)?;
            std::fs::remove_file(&path).map_err(io_err("unpin", &path))?;
            map.pin(&path)?;
            Ok(map)
        }
        (false, _) => {
            // Refuse a path off bpffs before creating anything.
            prepare_pin_dir(&spec.name, &path)?;
            let mut map = create_unpinned(spec, opts)?;
            map.pin(&path)?;
            Ok(map)
        }
    }
}

fn reuse(spec: Template, path: PathBuf) -> Result<KernelMap, MapError> {
    let fd = bpf_sys::obj::get(&path, 0).map_err(|source| MapError::Pin {
        op: "open pinned",
        map: spec.name.to_string(),
        path: path.clone(),
        source,
    })?;
    let (fd, raw) = MapFd::with_info(fd).map_err(|source| MapError::Pin {
        op: "open pinned",
        map: spec.name.to_string(),
        path: path.clone(),
        source,
    })?;
    let mut map = KernelMap::from_map_fd(fd, &raw, Some(path.clone()))?;
    let info = MapInfo::from_raw(&raw);
    let differences = compatibility(&spec, &info);
    if !differences.is_empty() {
        return Err(MapError::Incompatible {
            map: spec.name.to_string(),
            path,
            differences,
        });
    }
    map.template = spec;
    Ok(map)
}

fn create_unpinned(template: Template, opts: &CreateOptions<'_>) -> Result<KernelMap, MapError> {
    // Looked up once: a shared object's spec is behind its holder.
    let spec = template.get();
    // Only a map of maps needs an inner map: other maps skip that code altogether.
    let temp_inner = if spec.is_map_of_maps() {
        temporary_inner(spec, opts)?
    } else {
        None
    };
    let inner_fd = opts.inner_map.or(temp_inner.as_ref().map(|m| m.as_fd()));
    let has_data = spec.data.is_some();
    let name = KernelName::new(&spec.name);
    let mut attr = MapCreateAttr::new(
        spec.map_type,
        spec.key_size,
        spec.value_size,
        spec.max_entries,
    );
    attr.map_flags = spec.flags & !uapi::BPF_F_NUMA_NODE;
    attr.numa_node = spec.numa_node;
    attr.map_extra = spec.map_extra;
    attr.name = name.as_str();
    attr.inner_map_fd = inner_fd;
    if let (Some(btf), Some(k), Some(v)) = (opts.btf, spec.btf_key_type_id, spec.btf_value_type_id)
    {
        attr.btf_fd = Some(btf);
        attr.btf_key_type_id = k;
        attr.btf_value_type_id = v;
    }
    // The layout comes from the attribute; the id is read when asked for.
    let created = match MapFd::create(&attr) {
        Err(_) if attr.btf_fd.is_some() => {
            attr.btf_fd = None;
            attr.btf_key_type_id = 0;
            attr.btf_value_type_id = 0;
            MapFd::create(&attr)
        }
        other => other,
    };
    let fd = match created {
        Ok(fd) => fd,
        Err(source) => return Err(create_error(spec, source)),
    };
    drop(temp_inner);
    let map = KernelMap {
        fd,
        map_type: spec.map_type,
        id: std::sync::OnceLock::new(),
        pinned: None,
        template,
    };
    if has_data {
        init_data(&map, opts)?;
    }
    Ok(map)
}

/// The inner map of a map of maps when the caller gave none: a temporary one made from its
/// template. Out of line: most maps hold no maps.
#[inline(never)]
fn temporary_inner(
    spec: &MapSpec,
    opts: &CreateOptions<'_>,
) -> Result<Option<KernelMap>, MapError> {
    if opts.inner_map.is_some() {
        return Ok(None);
    }
    let Some(inner) = &spec.inner_map else {
        return Err(MapError::InvalidSpec {
            map: spec.name.to_string(),
            reason: "a map of maps needs an inner map or template".into(),
        });
    };
    // Normalising makes the one copy the temporary map keeps.
    let mut inner = normalize(inner)?;
    inner.pinning = Pinning::None;
    inner.data = None;
    inner.freeze = false;
    let opts = CreateOptions::default();
    create_unpinned(Template::Own(Box::new(inner)), &opts).map(Some)
}

/// Writes a new map's initial data (global data sections), and freezes it unless deferred.
/// Out of line: most maps start empty.
#[inline(never)]
fn init_data(map: &KernelMap, opts: &CreateOptions<'_>) -> Result<(), MapError> {
    if let Some(data) = &map.template.data {
        write_initial_data(map, data)?;
        if map.template.freeze && !opts.defer_freeze {
            map.freeze()?;
        }
    }
    Ok(())
}

/// Why `BPF_MAP_CREATE` failed: a map type the kernel does not have, or the call's error.
#[cold]
#[inline(never)]
fn create_error(spec: &MapSpec, source: bpf_sys::SysError) -> MapError {
    if let bpf_sys::probe::Probe::Unsupported(ns) = bpf_sys::probe::map_type(spec.map_type) {
        if source.errno() == Some(EINVAL) || source.errno() == Some(crate::error::EPERM) {
            return MapError::NotSupported {
                map: spec.name.to_string(),
                source: ns,
            };
        }
    }
    MapError::Create {
        map: spec.name.to_string(),
        source,
    }
}

fn write_initial_data(map: &KernelMap, data: &[u8]) -> Result<(), MapError> {
    let len = map.value_len();
    if data.len() > len {
        return Err(MapError::InvalidSpec {
            map: map.template.name.to_string(),
            reason: format!("initial data is {} bytes, the value {len}", data.len()),
        });
    }
    // The data is the value when it fills it (a section's data does); shorter data is padded.
    let value = if data.len() == len {
        Cow::Borrowed(data)
    } else {
        let mut v = vec![0u8; len];
        v[..data.len()].copy_from_slice(data);
        Cow::Owned(v)
    };
    let key = vec![0u8; map.key_size() as usize];
    map.update_elem(&key, &value, crate::map::ANY)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(t: MapType, k: u32, v: u32) -> MapSpec {
        MapSpec::new("m", t, k, v, 10)
    }

    #[test]
    fn goebpf_normalisation() {
        let n = normalize_with(&spec(MapType::ProgArray, 0, 0), 4).unwrap();
        assert_eq!((n.key_size, n.value_size), (4, 4));
        let n = normalize_with(&spec(MapType::HashOfMaps, 8, 0), 4).unwrap();
        assert_eq!((n.key_size, n.value_size), (8, 4));
        let n = normalize_with(&spec(MapType::Array, 2, 8), 4).unwrap();
        assert_eq!((n.key_size, n.value_size), (2, 8));
        let e = normalize_with(&spec(MapType::PerCpuArray, 8, 8), 4).unwrap_err();
        assert!(e.to_string().contains("key size 8"), "{e}");
        let n = normalize_with(&spec(MapType::LpmTrie, 8, 8), 4).unwrap();
        assert_eq!(n.flags, uapi::BPF_F_NO_PREALLOC);
        let mut p = spec(MapType::PerfEventArray, 0, 0);
        p.max_entries = 0;
        assert_eq!(normalize_with(&p, 6).unwrap().max_entries, 6);
        let mut numa = spec(MapType::Hash, 4, 4);
        numa.numa_node = Some(0);
        assert_eq!(
            normalize_with(&numa, 1).unwrap().flags,
            uapi::BPF_F_NUMA_NODE
        );
    }

    #[test]
    fn a_spec_is_kept_as_it_is_exactly_when_normalising_changes_nothing() {
        let mut specs = vec![
            spec(MapType::Hash, 4, 8),
            spec(MapType::Array, 4, 8),
            spec(MapType::Array, 0, 8),
            spec(MapType::ProgArray, 4, 4),
            spec(MapType::ProgArray, 4, 0),
            spec(MapType::LpmTrie, 8, 8),
            spec(MapType::PerfEventArray, 4, 4),
        ];
        let mut lpm = spec(MapType::LpmTrie, 8, 8);
        lpm.flags = uapi::BPF_F_NO_PREALLOC;
        specs.push(lpm);
        let mut perf = spec(MapType::PerfEventArray, 4, 4);
        perf.max_entries = 0;
        specs.push(perf);
        let mut kept = 0;
        for s in &specs {
            let n = normalize_with(s, 4).unwrap();
            let unchanged = Shape::normalized(s, 4).unwrap() == Shape::of(s);
            assert_eq!(unchanged, n == *s, "{s:?}");
            kept += usize::from(unchanged);
            // A normalised spec is kept.
            assert_eq!(Shape::normalized(&n, 4).unwrap(), Shape::of(&n));
        }
        assert_eq!(kept, 5);
    }

    #[test]
    fn kernel_names_are_cut_and_sanitised() {
        assert_eq!(kernel_name("a_very_long_map_name"), "a_very_long_map");
        assert_eq!(kernel_name("match_maps_tx.inner"), "match_maps_tx.i");
        assert_eq!(kernel_name("my-map"), "my_map");
        assert_eq!(kernel_name("m\u{e4}p"), "m__p");
        assert_eq!(kernel_name("nul\0x"), "nul_x");
        // A cut inside a multi-byte character: each byte kept is `_`.
        assert_eq!(kernel_name("aaaaaaaaaaaaaa\u{e4}"), "aaaaaaaaaaaaaa_");
        assert_eq!(kernel_name(""), "");
    }

    #[test]
    fn pin_paths_live_under_the_root() {
        let root = Path::new("/tmp/fs");
        let mut s = spec(MapType::Hash, 4, 4);
        assert_eq!(pin_path(&s, root), None);
        s.pinning = Pinning::ByName;
        assert_eq!(pin_path(&s, root).unwrap(), Path::new("/tmp/fs/m"));
        s.pinning = Pinning::Path("/sys/fs/bpf/txcnt".into());
        assert_eq!(pin_path(&s, root).unwrap(), Path::new("/tmp/fs/txcnt"));
        assert_eq!(
            pin_path(&s, Path::new(DEFAULT_PIN_ROOT)).unwrap(),
            Path::new("/sys/fs/bpf/txcnt")
        );
        s.pinning = Pinning::Path("/elsewhere/x".into());
        assert_eq!(pin_path(&s, root).unwrap(), Path::new("/elsewhere/x"));
        s.pinning = Pinning::Path("sub/x".into());
        assert_eq!(pin_path(&s, root).unwrap(), Path::new("/tmp/fs/sub/x"));
    }

    fn info(t: MapType, k: u32, v: u32, max: u32, flags: u32) -> MapInfo {
        let mut raw: uapi::bpf_map_info = bpf_sys::obj::zeroed_info();
        raw.type_ = t.as_u32();
        raw.key_size = k;
        raw.value_size = v;
        raw.max_entries = max;
        raw.map_flags = flags;
        MapInfo::from_raw(&raw)
    }

    #[test]
    fn compatibility_names_each_differing_field() {
        let s = normalize_with(&spec(MapType::LpmTrie, 8, 4), 1).unwrap();
        assert!(compatibility(&s, &info(MapType::LpmTrie, 8, 4, 10, 1)).is_empty());
        let d = compatibility(&s, &info(MapType::Hash, 8, 8, 20, 0));
        let fields: Vec<_> = d.iter().map(|d| d.field).collect();
        assert_eq!(fields, ["map_type", "value_size", "max_entries", "flags"]);
        assert_eq!(d[0].spec, "lpm_trie");
        assert_eq!(d[0].pinned, "hash");
        let dev = spec(MapType::DevMap, 4, 4);
        let ro = uapi::BPF_F_RDONLY_PROG;
        assert!(compatibility(&dev, &info(MapType::DevMap, 4, 4, 10, ro)).is_empty());
    }
}
