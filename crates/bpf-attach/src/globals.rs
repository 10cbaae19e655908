//! Global variables: the variables of `.data`, `.rodata`, `.bss` and their `.data.*`-style
//! variants, found by name through the object's BTF `DATASEC`s.
//!
//! Three moments, three ways:
//!
//! - on the spec, before anything is created ([`set_spec_global`], [`spec_global`]): the
//!   initial bytes the data map is created with;
//! - on a [`KernelSystem`](crate::KernelSystem) before its first program is loaded
//!   ([`KernelSystem::set_global`](crate::KernelSystem::set_global)): `.rodata` is created
//!   unfrozen and frozen when the first program of the object loads, so the verifier sees the
//!   values as constants;
//! - after load, on the data maps the programs use: `.data` and `.bss` may be read and written
//!   ([`KernelSystem::global`](crate::KernelSystem::global)), `.rodata` only read.
//!
//! A name is the C variable's (`loop_rounds`), or `SECTION/NAME` (`.data.counters/counter_a`)
//! when `static` variables of several sections share it.

use bpf_elf::{MapOrigin, MapSpec, ObjectSpec, VariableSpec};

use crate::error::GlobalError;

/// A global variable of an object: where it lives and how large it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalVariable {
    /// The C name.
    pub name: String,
    /// The data section (and map) it lives in.
    pub section: String,
    /// Its offset in the section.
    pub offset: u32,
    /// Its size in bytes.
    pub size: u32,
    /// Whether it is `static` in C.
    pub is_static: bool,
    /// Whether programs may not write it (`.rodata`).
    pub read_only: bool,
}

/// Every global variable of the object's data sections.
pub fn spec_globals(spec: &ObjectSpec) -> Vec<GlobalVariable> {
    data_maps(&spec.maps)
        .flat_map(|m| {
            m.variables.iter().map(move |v| GlobalVariable {
                name: v.name.to_string(),
                section: m.name.to_string(),
                offset: v.offset,
                size: v.size,
                is_static: v.is_static,
                read_only: m.freeze,
            })
        })
        .collect()
}

fn data_maps<'a>(maps: &'a [MapSpec]) -> impl Iterator<Item = &'a MapSpec> + 'a {
    maps.iter().filter(|m| m.origin == MapOrigin::Data)
}

/// Finds `name` (`NAME` or `SECTION/NAME`): the index of its map in `maps` and the variable.
pub(crate) fn find<'a>(
    maps: &'a [MapSpec],
    name: &str,
) -> Result<(usize, &'a VariableSpec), GlobalError> {
    let (section, var) = match name.rsplit_once('/') {
        Some((s, v)) if s.starts_with('.') => (Some(s), v),
        _ => (None, name),
    };
    let hits: Vec<(usize, &VariableSpec)> = maps
        .iter()
        .enumerate()
        .filter(|(_, m)| m.origin == MapOrigin::Data && section.is_none_or(|s| m.name == s))
        .flat_map(|(i, m)| {
            m.variables
                .iter()
                .filter(|v| v.name == var)
                .map(move |v| (i, v))
        })
        .collect();
    match hits.as_slice() {
        [] => Err(GlobalError::NotFound {
            name: name.to_string(),
        }),
        [one] => Ok(*one),
        more => Err(GlobalError::Ambiguous {
            name: name.to_string(),
            sections: more
                .iter()
                .map(|(i, _)| maps[*i].name.to_string())
                .collect(),
        }),
    }
}

/// The byte range of `var` in a value of `len` bytes.
pub(crate) fn range(
    map: &MapSpec,
    var: &VariableSpec,
    len: usize,
) -> Result<std::ops::Range<usize>, GlobalError> {
    let start = var.offset as usize;
    let end = start + var.size as usize;
    if end > len {
        return Err(GlobalError::OutOfBounds {
            name: var.name.to_string(),
            section: map.name.to_string(),
        });
    }
    Ok(start..end)
}

/// The initial bytes of a global variable in the spec.
pub fn spec_global<'a>(spec: &'a ObjectSpec, name: &str) -> Result<&'a [u8], GlobalError> {
    let (i, var) = find(&spec.maps, name)?;
    let map = &spec.maps[i];
    let data = map.data.as_deref().unwrap_or_default();
    let r = range(map, var, data.len())?;
    Ok(&data[r])
}

/// Sets the initial bytes of a global variable in the spec, `.rodata` included: the value the
/// data map is created with.
pub fn set_spec_global(spec: &mut ObjectSpec, name: &str, value: &[u8]) -> Result<(), GlobalError> {
    let (i, var) = find(&spec.maps, name)?;
    let var = var.clone();
    let map = &mut spec.maps[i];
    if value.len() != var.size as usize {
        return Err(GlobalError::Size {
            name: var.name.to_string(),
            got: value.len(),
            expected: var.size as usize,
        });
    }
    let len = map.data.as_ref().map_or(0, Vec::len);
    let r = range(map, &var, len)?;
    if let Some(data) = map.data.as_mut() {
        data[r].copy_from_slice(value);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bpf_elf::MapType;

    fn data_map(name: &str, vars: &[(&str, u32, u32)], size: usize) -> MapSpec {
        let mut m = MapSpec::new(name, MapType::Array, 4, size as u32, 1);
        m.origin = MapOrigin::Data;
        m.data = Some((0..size as u8).collect());
        m.freeze = name.starts_with(".rodata");
        m.variables = vars
            .iter()
            .map(|&(n, offset, size)| VariableSpec {
                name: n.into(),
                offset,
                size,
                type_id: 1,
                is_static: false,
            })
            .collect();
        m
    }

    fn maps() -> Vec<MapSpec> {
        vec![
            MapSpec::new("counts", MapType::Hash, 4, 4, 1),
            data_map(".data", &[("a", 0, 4), ("dup", 4, 4)], 8),
            data_map(".rodata", &[("rounds", 0, 4), ("bad", 6, 4)], 8),
            data_map(".data.x", &[("dup", 0, 2)], 2),
        ]
    }

    #[test]
    fn variables_are_found_by_name_or_section_and_name() {
        let m = maps();
        assert_eq!(find(&m, "a").unwrap().0, 1);
        assert_eq!(find(&m, "rounds").unwrap().0, 2);
        assert!(matches!(
            find(&m, "dup"),
            Err(GlobalError::Ambiguous { sections, .. }) if sections == [".data", ".data.x"]
        ));
        assert_eq!(find(&m, ".data.x/dup").unwrap().0, 3);
        assert!(matches!(
            find(&m, "nope"),
            Err(GlobalError::NotFound { .. })
        ));
        assert!(matches!(
            find(&m, ".data/rounds"),
            Err(GlobalError::NotFound { .. })
        ));
    }

    #[test]
    fn ranges_are_checked_against_the_data() {
        let m = maps();
        let (i, v) = find(&m, "bad").unwrap();
        assert!(matches!(
            range(&m[i], v, 8),
            Err(GlobalError::OutOfBounds { .. })
        ));
        let (i, v) = find(&m, "rounds").unwrap();
        assert_eq!(range(&m[i], v, 8).unwrap(), 0..4);
    }
}
