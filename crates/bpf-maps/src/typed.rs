//! What every typed view shares: the type and size checks made once, when the view is built.

use bpf_sys::MapType;

use crate::error::{MapError, Part};
use crate::Map;

/// Checks the map's type and, where given, its key and value sizes against a typed view.
pub(crate) fn check<M: Map + ?Sized>(
    map: &M,
    view: &'static str,
    types: &[MapType],
    key: Option<usize>,
    value: Option<usize>,
) -> Result<(), MapError> {
    if !types.contains(&map.map_type()) {
        return Err(MapError::Unsupported {
            op: view,
            map: map.name().to_string(),
            map_type: map.map_type(),
        });
    }
    if let Some(k) = key {
        if k != map.key_size() as usize {
            return Err(MapError::size(
                map.name(),
                Part::Key,
                k,
                map.key_size() as usize,
            ));
        }
    }
    if let Some(v) = value {
        if v != map.value_size() as usize {
            return Err(MapError::size(
                map.name(),
                Part::Value,
                v,
                map.value_size() as usize,
            ));
        }
    }
    Ok(())
}

/// `Ok(None)` for the kernel's `ENOENT`.
pub(crate) fn found<T>(r: Result<T, MapError>) -> Result<Option<T>, MapError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// `map()` and `into_inner()` for a typed view with a `map` field.
macro_rules! view_common {
    ($name:ident < M $(, $g:ident)* >) => {
        impl<M $(, $g)*> $name<M $(, $g)*> {
            /// The underlying map.
            pub fn map(&self) -> &M {
                &self.map
            }

            /// Gives the underlying map back.
            pub fn into_inner(self) -> M {
                self.map
            }
        }
    };
}
pub(crate) use view_common;
