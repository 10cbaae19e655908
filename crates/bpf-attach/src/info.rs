//! What the kernel says about loaded programs and maps (`BPF_OBJ_GET_INFO_BY_FD`), and the walk
//! over every loaded one (`BPF_{PROG,MAP}_GET_NEXT_ID`, which goebpf never used).

use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;
use std::time::SystemTime;

use bpf_sys::bpf::c_name;
use bpf_sys::obj::{self, ObjKind};
use bpf_sys::{MapType, ProgramType};

use crate::error::errno::ENOENT;
use crate::error::ProgramError;

/// A loaded program, as the kernel describes it (goebpf's `ProgramInfo`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramInfo {
    /// The name the program was loaded with (at most 15 bytes).
    pub name: String,
    /// The tag: a hash of the instructions, as bpftool prints it ([`ProgramInfo::tag_hex`]).
    pub tag: [u8; 8],
    /// The program type, when this library knows it.
    pub program_type: Option<ProgramType>,
    /// The program type's number.
    pub program_type_raw: u32,
    /// The kernel's id.
    pub id: u32,
    /// Bytes of JIT-compiled code (0 without the JIT).
    pub jited_size: u32,
    /// Bytes of the instructions after the verifier's rewrites.
    pub xlated_size: u32,
    /// When it was loaded (nanosecond resolution; goebpf's was one second).
    pub load_time: SystemTime,
    /// The uid of the loading process.
    pub created_by_uid: u32,
    /// The maps it uses, by id.
    pub map_ids: Vec<u32>,
    /// The BTF object it was loaded with (0: none).
    pub btf_id: u32,
    /// Instructions the verifier processed (Linux 5.16; 0 before).
    pub verified_insns: u32,
}

impl ProgramInfo {
    /// The info of the program behind `fd`.
    #[doc(alias = "GetProgramInfoByFd")]
    #[doc(alias = "BPF_OBJ_GET_INFO_BY_FD")]
    pub fn from_fd(fd: BorrowedFd<'_>) -> Result<Self, ProgramError> {
        let err = |source| ProgramError::Info {
            what: "a program".into(),
            source,
        };
        let (info, _) = obj::prog_info_with_map_ids(fd, &mut []).map_err(err)?;
        let mut map_ids = vec![0u32; info.nr_map_ids as usize];
        if !map_ids.is_empty() {
            let (_, n) = obj::prog_info_with_map_ids(fd, &mut map_ids).map_err(err)?;
            map_ids.truncate(n);
        }
        Ok(ProgramInfo {
            name: c_name(&info.name),
            tag: info.tag,
            program_type: ProgramType::try_from(info.type_).ok(),
            program_type_raw: info.type_,
            id: info.id,
            jited_size: info.jited_prog_len,
            xlated_size: info.xlated_prog_len,
            load_time: bpf_sys::time::boot_ktime_to_system_time(info.load_time),
            created_by_uid: info.created_by_uid,
            map_ids,
            btf_id: info.btf_id,
            verified_insns: info.verified_insns,
        })
    }

    /// The info of the loaded program with this id.
    #[doc(alias = "GetProgramInfoById")]
    pub fn from_id(id: u32) -> Result<Self, ProgramError> {
        let fd = obj::prog_fd_by_id(id).map_err(|source| ProgramError::Open {
            what: format!("with id {id}"),
            source,
        })?;
        ProgramInfo::from_fd(fd.as_fd())
    }

    /// The info of the program pinned at `path`.
    #[doc(alias = "GetProgramInfoByPath")]
    pub fn from_path(path: impl AsRef<Path>) -> Result<Self, ProgramError> {
        let path = path.as_ref();
        let fd = obj::get(path, 0).map_err(|source| ProgramError::Open {
            what: format!("at {}", path.display()),
            source,
        })?;
        ProgramInfo::from_fd(fd.as_fd())
    }

    /// The tag as 16 hex digits, as bpftool prints it.
    pub fn tag_hex(&self) -> String {
        self.tag.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The maps the program uses, each described by the kernel (a map freed meanwhile is left
    /// out). goebpf keyed them by name, so maps of the same name collapsed; here they are a list.
    pub fn maps(&self) -> Result<Vec<MapSummary>, ProgramError> {
        let mut out = Vec::with_capacity(self.map_ids.len());
        for &id in &self.map_ids {
            match MapSummary::from_id(id) {
                Ok(m) => out.push(m),
                Err(e) if e.errno() == Some(ENOENT) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }
}

/// A loaded map, as the kernel describes it (for enumeration; open it through `bpf-maps` to
/// use it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapSummary {
    /// The kernel's id.
    pub id: u32,
    /// The name it was created with (at most 15 bytes).
    pub name: String,
    /// The map type, when this library knows it.
    pub map_type: Option<MapType>,
    /// The map type's number.
    pub map_type_raw: u32,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes.
    pub value_size: u32,
    /// Capacity.
    pub max_entries: u32,
    /// `BPF_F_*` flags.
    pub flags: u32,
}

impl MapSummary {
    /// The description of the map behind `fd`.
    pub fn from_fd(fd: BorrowedFd<'_>) -> Result<Self, ProgramError> {
        let info = obj::map_info(fd).map_err(|source| ProgramError::Info {
            what: "a map".into(),
            source,
        })?;
        Ok(MapSummary {
            id: info.id,
            name: c_name(&info.name),
            map_type: MapType::try_from(info.type_).ok(),
            map_type_raw: info.type_,
            key_size: info.key_size,
            value_size: info.value_size,
            max_entries: info.max_entries,
            flags: info.map_flags,
        })
    }

    /// The description of the map with this id.
    pub fn from_id(id: u32) -> Result<Self, ProgramError> {
        let fd = obj::map_fd_by_id(id, 0).map_err(|source| ProgramError::Open {
            what: format!("map with id {id}"),
            source,
        })?;
        MapSummary::from_fd(fd.as_fd())
    }
}

/// Every loaded program, in id order. A program freed during the walk is skipped.
#[doc(alias = "BPF_PROG_GET_NEXT_ID")]
pub fn loaded_programs() -> impl Iterator<Item = Result<ProgramInfo, ProgramError>> {
    walk(ObjKind::Prog, "programs", ProgramInfo::from_id)
}

/// Every loaded map, in id order. A map freed during the walk is skipped.
#[doc(alias = "BPF_MAP_GET_NEXT_ID")]
pub fn loaded_maps() -> impl Iterator<Item = Result<MapSummary, ProgramError>> {
    walk(ObjKind::Map, "maps", MapSummary::from_id)
}

/// The ids of every loaded program.
pub fn program_ids() -> impl Iterator<Item = Result<u32, ProgramError>> {
    obj::ids(ObjKind::Prog).map(|r| {
        r.map_err(|source| ProgramError::Enumerate {
            what: "programs",
            source,
        })
    })
}

/// The ids of every loaded map.
pub fn map_ids() -> impl Iterator<Item = Result<u32, ProgramError>> {
    obj::ids(ObjKind::Map).map(|r| {
        r.map_err(|source| ProgramError::Enumerate {
            what: "maps",
            source,
        })
    })
}

fn walk<T>(
    kind: ObjKind,
    what: &'static str,
    open: fn(u32) -> Result<T, ProgramError>,
) -> impl Iterator<Item = Result<T, ProgramError>> {
    obj::ids(kind).filter_map(move |id| match id {
        Err(source) => Some(Err(ProgramError::Enumerate { what, source })),
        Ok(id) => match open(id) {
            Err(e) if e.errno() == Some(ENOENT) => None,
            other => Some(other),
        },
    })
}
