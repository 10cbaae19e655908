//! Global variables: a data section (`.data`, `.bss`, `.rodata`, `.data.*`) is a one-element
//! array whose value holds the section's variables at the offsets BTF gives.
//!
//! Before the map exists, [`set_variable`] writes a variable into the spec's initial data.
//! Once it exists, [`DataMap`] reads and writes variables in the kernel (a whole-value
//! read-modify-write: not atomic against programs writing other variables of the same section
//! meanwhile). A frozen `.rodata` refuses writes from user space (`EPERM`).

use bpf_elf::{MapSpec, VariableSpec};
use bytemuck::Pod;

use crate::error::{MapError, Part};
use crate::typed::check;
use crate::{KernelMap, Map, MapType, ANY};

fn find<'a>(map: &str, vars: &'a [VariableSpec], name: &str) -> Result<&'a VariableSpec, MapError> {
    vars.iter()
        .find(|v| v.name == name)
        .ok_or_else(|| MapError::NoVariable {
            map: map.to_string(),
            name: name.to_string(),
        })
}

fn check_len(map: &str, var: &VariableSpec, got: usize) -> Result<(), MapError> {
    if got != var.size as usize {
        return Err(MapError::size(map, Part::Value, got, var.size as usize));
    }
    Ok(())
}

/// Sets the initial value of the variable `name` in a data map's spec (before the map is
/// created). `value` must be exactly the variable's size.
pub fn set_variable(spec: &mut MapSpec, name: &str, value: &[u8]) -> Result<(), MapError> {
    let var = find(&spec.name, &spec.variables, name)?.clone();
    check_len(&spec.name, &var, value.len())?;
    let size = spec.value_size as usize;
    let data = spec.data.get_or_insert_with(|| vec![0; size]);
    let end = var.offset as usize + value.len();
    if data.len() < end {
        data.resize(end, 0);
    }
    data[var.offset as usize..end].copy_from_slice(value);
    Ok(())
}

/// A global data section in the kernel, with its variables.
///
/// ```no_run
/// use bpf_maps::{DataMap, KernelMap};
///
/// # fn bss() -> KernelMap { unimplemented!() }
/// let bss = bss(); // the loader's `.bss` map
/// let globals = DataMap::from_map(&bss)?;
/// let counter: u64 = globals.get_as("bss_counter")?;
/// globals.set_as("bss_counter", &(counter + 1))?;
/// # Ok::<(), bpf_maps::MapError>(())
/// ```
#[derive(Debug)]
pub struct DataMap<M> {
    map: M,
    variables: Vec<VariableSpec>,
}

impl<'a> DataMap<&'a KernelMap> {
    /// The data map `map`, with the variables of the spec it was created from.
    pub fn from_map(map: &'a KernelMap) -> Result<Self, MapError> {
        let vars = map.template().variables.clone();
        DataMap::new(map, vars)
    }
}

impl<M: Map> DataMap<M> {
    /// A view of `map` (a one-element array) with these variables.
    pub fn new(map: M, variables: Vec<VariableSpec>) -> Result<Self, MapError> {
        check(&map, "DataMap", &[MapType::Array], Some(4), None)?;
        Ok(DataMap { map, variables })
    }

    /// The underlying map.
    pub fn map(&self) -> &M {
        &self.map
    }

    /// The variables.
    pub fn variables(&self) -> &[VariableSpec] {
        &self.variables
    }

    /// The whole section.
    pub fn read(&self) -> Result<Vec<u8>, MapError> {
        let mut v = vec![0u8; self.map.value_len()];
        self.map.lookup_elem(&[0; 4], &mut v, 0)?;
        Ok(v)
    }

    /// The bytes of the variable `name`.
    pub fn get(&self, name: &str) -> Result<Vec<u8>, MapError> {
        let var = find(self.map.name(), &self.variables, name)?;
        let all = self.read()?;
        let (start, end) = (var.offset as usize, (var.offset + var.size) as usize);
        Ok(all.get(start..end).unwrap_or_default().to_vec())
    }

    /// The variable `name` as a `T` of its exact size.
    pub fn get_as<T: Pod>(&self, name: &str) -> Result<T, MapError> {
        let var = find(self.map.name(), &self.variables, name)?;
        check_len(self.map.name(), var, size_of::<T>())?;
        Ok(bytemuck::pod_read_unaligned(&self.get(name)?))
    }

    /// Writes the variable `name` (exactly its size).
    pub fn set(&self, name: &str, value: &[u8]) -> Result<(), MapError> {
        let var = find(self.map.name(), &self.variables, name)?;
        check_len(self.map.name(), var, value.len())?;
        let mut all = self.read()?;
        let start = var.offset as usize;
        all[start..start + value.len()].copy_from_slice(value);
        self.map.update_elem(&[0; 4], &all, ANY)
    }

    /// Writes the variable `name` from a `T` of its exact size.
    pub fn set_as<T: Pod>(&self, name: &str, value: &T) -> Result<(), MapError> {
        self.set(name, bytemuck::bytes_of(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_variable_writes_the_initial_data() {
        let mut spec = MapSpec::new(".data", MapType::Array, 4, 12, 1);
        spec.variables.push(VariableSpec {
            name: "x".into(),
            offset: 4,
            size: 4,
            type_id: 0,
            is_static: false,
        });
        set_variable(&mut spec, "x", &7u32.to_ne_bytes()).unwrap();
        assert_eq!(spec.data.as_deref().unwrap()[4..8], 7u32.to_ne_bytes());
        assert!(matches!(
            set_variable(&mut spec, "x", &[1, 2]),
            Err(MapError::Size {
                got: 2,
                expected: 4,
                ..
            })
        ));
        assert!(matches!(
            set_variable(&mut spec, "y", &[]),
            Err(MapError::NoVariable { .. })
        ));
    }
}
