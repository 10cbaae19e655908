//! Map specifications, from the three places an object declares maps: the legacy `maps`
//! section, BTF-defined `.maps`, and global data sections (see `docs/elf.md`).

pub(crate) mod btf;
pub(crate) mod legacy;

use crate::name::Name;
use std::path::{Path, PathBuf};

use bpf_sys::MapType;

/// Where a map's pin lives.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Pinning {
    /// Not pinned.
    #[default]
    None,
    /// Pinned under the loader's pin directory by the map's name (`LIBBPF_PIN_BY_NAME`).
    #[doc(alias = "LIBBPF_PIN_BY_NAME")]
    ByName,
    /// Pinned at this path (goebpf's `persistent_path`).
    Path(String),
}

/// Where a map was declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MapOrigin {
    /// A record of a legacy `maps` section, of this many bytes (40 for goebpf's layout, 20 for
    /// the classic `struct bpf_map_def`).
    Legacy {
        /// The record size.
        record_size: usize,
    },
    /// A variable of the BTF `.maps` section.
    Btf,
    /// A global data section (`.data`, `.rodata`, `.bss`, `.data.*`, `.rodata.*`).
    Data,
    /// The template of an inner map, declared inside its outer map.
    Inner,
}

/// What an initial slot of a map holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlotValue {
    /// Another map of the object, by name (map-in-map).
    Map(Name),
    /// A program of the object, by name (program arrays).
    Program(Name),
}

/// One statically initialised slot (`.values = { [i] = &x }`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapSlot {
    /// The key (index).
    pub index: u32,
    /// What the slot holds.
    pub value: SlotValue,
}

/// A global variable of a data section (from BTF `DATASEC`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VariableSpec {
    /// Its C name.
    pub name: Name,
    /// Offset in the section's value.
    pub offset: u32,
    /// Size in bytes.
    pub size: u32,
    /// Its BTF type (the `VAR`'s target).
    pub type_id: u32,
    /// Whether it is `static` (BTF linkage 0) rather than global.
    pub is_static: bool,
}

/// A map as the object declares it: everything the loader needs to create it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapSpec {
    /// The name programs refer to it by: the C variable, or the section for data maps
    /// (`.rodata`). The kernel keeps at most 15 bytes of it.
    pub name: Name,
    /// The section it was declared in.
    pub section: Name,
    /// Where it was declared.
    pub origin: MapOrigin,
    /// The map type.
    pub map_type: MapType,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes.
    pub value_size: u32,
    /// Maximum number of entries (or the ring size for ring buffers).
    pub max_entries: u32,
    /// `map_flags` (`BPF_F_*`).
    pub flags: u32,
    /// NUMA node, if declared (the loader sets `BPF_F_NUMA_NODE`).
    pub numa_node: Option<u32>,
    /// `map_extra` (bloom filter hash count, arena address).
    pub map_extra: u64,
    /// Pinning.
    pub pinning: Pinning,
    /// For map-in-map types, the template of the inner maps.
    pub inner_map: Option<Box<MapSpec>>,
    /// Initial slots (program arrays and map-in-maps).
    pub values: Vec<MapSlot>,
    /// Initial contents of key 0 (global data sections; zeroes for `.bss`).
    pub data: Option<Vec<u8>>,
    /// Freeze the map after writing `data` (`.rodata`): programs may not write it, nor may
    /// user space after loading.
    pub freeze: bool,
    /// The variables laid out in `data`.
    pub variables: Vec<VariableSpec>,
    /// BTF type of the key, when known.
    pub btf_key_type_id: Option<u32>,
    /// BTF type of the value, when known (the `DATASEC` for data maps).
    pub btf_value_type_id: Option<u32>,
}

impl MapSpec {
    /// A map with the given shape and nothing else set.
    pub fn new(
        name: &str,
        map_type: MapType,
        key_size: u32,
        value_size: u32,
        max_entries: u32,
    ) -> Self {
        MapSpec {
            name: Name::from(name),
            section: Name::empty(),
            origin: MapOrigin::Btf,
            map_type,
            key_size,
            value_size,
            max_entries,
            flags: 0,
            numa_node: None,
            map_extra: 0,
            pinning: Pinning::None,
            inner_map: None,
            values: Vec::new(),
            data: None,
            freeze: false,
            variables: Vec::new(),
            btf_key_type_id: None,
            btf_value_type_id: None,
        }
    }

    /// The path the map is pinned at, given the loader's pin directory for by-name pinning
    /// (`/sys/fs/bpf` by default).
    pub fn pin_path(&self, pin_root: &Path) -> Option<PathBuf> {
        match &self.pinning {
            Pinning::None => None,
            Pinning::ByName => Some(pin_root.join(&self.name)),
            Pinning::Path(p) => Some(PathBuf::from(p)),
        }
    }

    /// Whether this is a map-in-map type.
    pub fn is_map_of_maps(&self) -> bool {
        matches!(self.map_type, MapType::ArrayOfMaps | MapType::HashOfMaps)
    }
}

pub(crate) fn map_type(name: &str, value: u32) -> crate::Result<MapType> {
    MapType::try_from(value).map_err(|value| unknown_map_type(name, value))
}

/// Out of line: keeps the error's construction off the parsing path.
#[cold]
#[inline(never)]
fn unknown_map_type(name: &str, value: u32) -> crate::ElfError {
    crate::ElfError::UnknownMapType {
        map: name.to_string(),
        value,
    }
}
