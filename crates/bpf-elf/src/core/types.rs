//! Type compatibility as the kernel's CO-RE rules define it (libbpf `relo_core.c`): the loose
//! rules of `TYPE_EXISTS`/`TYPE_SIZE`/`TYPE_ID_TARGET` and field types, and the strict rules of
//! `TYPE_MATCHES`.

use crate::btf::{essential_name, Btf, BtfKind, BtfType, BtfTypeData};

/// How deep compatibility checks recurse before giving up (libbpf's limit).
pub(super) const MAX_LEVEL: u32 = 32;

/// A type after typedefs and modifiers: (id, type).
pub(super) fn resolve(btf: &Btf, id: u32) -> Option<(u32, &BtfType)> {
    let id = btf.skip_modifiers(id)?;
    Some((id, btf.type_by_id(id)?))
}

pub(super) fn is_composite(t: &BtfType) -> bool {
    matches!(t.kind, BtfKind::Struct | BtfKind::Union)
}

pub(super) fn is_any_enum(t: &BtfType) -> bool {
    matches!(t.kind, BtfKind::Enum | BtfKind::Enum64)
}

/// Same kind, with `ENUM` and `ENUM64` counted as one (`btf_kind_core_compat`).
pub(super) fn kinds_compat(a: &BtfType, b: &BtfType) -> bool {
    a.kind == b.kind || (is_any_enum(a) && is_any_enum(b))
}

fn int_offset(t: &BtfType) -> u32 {
    t.int_encoding().map(|e| e.1).unwrap_or(0)
}

fn int_signed(t: &BtfType) -> bool {
    t.int_encoding().is_some_and(|e| e.0 & 1 != 0)
}

/// Names match when both are anonymous, or their essential names are equal.
fn names_match(local: &str, targ: &str) -> bool {
    if targ.is_empty() {
        return local.is_empty();
    }
    essential_name(local) == essential_name(targ)
}

/// `bpf_core_fields_are_compat`: may a local field of type `l` be read from a target field of
/// type `t`?
pub(super) fn fields_compat(lb: &Btf, mut l: u32, tb: &Btf, mut t: u32) -> bool {
    for _ in 0..MAX_LEVEL {
        let (Some((_, lt)), Some((_, tt))) = (resolve(lb, l), resolve(tb, t)) else {
            return false;
        };
        if is_composite(lt) && is_composite(tt) {
            return true;
        }
        if !kinds_compat(lt, tt) {
            return false;
        }
        match lt.kind {
            BtfKind::Ptr | BtfKind::Float => return true,
            BtfKind::Fwd | BtfKind::Enum | BtfKind::Enum64 => {
                return lt.name.is_empty()
                    || tt.name.is_empty()
                    || essential_name(&lt.name) == essential_name(&tt.name)
            }
            BtfKind::Int => return int_offset(lt) == 0 && int_offset(tt) == 0,
            BtfKind::Array => match (&lt.data, &tt.data) {
                (BtfTypeData::Array { elem: le, .. }, BtfTypeData::Array { elem: te, .. }) => {
                    l = *le;
                    t = *te;
                }
                _ => return false,
            },
            _ => return false,
        }
    }
    false
}

/// `bpf_core_types_are_compat`: the loose rule of `TYPE_EXISTS`, `TYPE_SIZE` and
/// `TYPE_ID_TARGET`.
pub(super) fn types_compat(lb: &Btf, l: u32, tb: &Btf, t: u32, level: u32) -> bool {
    let (mut l, mut t) = (l, t);
    for _ in 0..MAX_LEVEL {
        let (Some((_, lt)), Some((_, tt))) = (resolve(lb, l), resolve(tb, t)) else {
            return false;
        };
        if !kinds_compat(lt, tt) {
            return false;
        }
        match lt.kind {
            BtfKind::Void
            | BtfKind::Struct
            | BtfKind::Union
            | BtfKind::Enum
            | BtfKind::Enum64
            | BtfKind::Fwd => return true,
            BtfKind::Int => return int_offset(lt) == 0 && int_offset(tt) == 0,
            BtfKind::Ptr => {
                l = lt.size_or_type;
                t = tt.size_or_type;
            }
            BtfKind::Array => match (&lt.data, &tt.data) {
                (BtfTypeData::Array { elem: le, .. }, BtfTypeData::Array { elem: te, .. }) => {
                    l = *le;
                    t = *te;
                }
                _ => return false,
            },
            BtfKind::FuncProto => {
                let (BtfTypeData::Params(lp), BtfTypeData::Params(tp)) = (&lt.data, &tt.data)
                else {
                    return false;
                };
                if lp.len() != tp.len() || level == 0 {
                    return false;
                }
                for (a, b) in lp.iter().zip(tp) {
                    if !types_compat(lb, a.type_id, tb, b.type_id, level - 1) {
                        return false;
                    }
                }
                l = lt.size_or_type;
                t = tt.size_or_type;
            }
            _ => return false,
        }
    }
    false
}

/// `bpf_core_types_match`: the strict rule of `TYPE_MATCHES` (`bpf_core_type_matches`).
pub(super) fn types_match(
    lb: &Btf,
    l: u32,
    tb: &Btf,
    t: u32,
    behind_ptr: bool,
    level: u32,
) -> bool {
    let (mut l, mut t, mut behind_ptr) = (l, t, behind_ptr);
    for _ in 0..MAX_LEVEL {
        let (Some((_, lt)), Some((_, tt))) = (resolve(lb, l), resolve(tb, t)) else {
            return false;
        };
        if !names_match(&lt.name, &tt.name) {
            return false;
        }
        match lt.kind {
            BtfKind::Void => return tt.kind == BtfKind::Void,
            BtfKind::Fwd => {
                let lf = lt.kind_flag;
                return if behind_ptr {
                    if tt.kind == BtfKind::Fwd {
                        lf == tt.kind_flag
                    } else {
                        (tt.kind == BtfKind::Struct && !lf) || (tt.kind == BtfKind::Union && lf)
                    }
                } else {
                    tt.kind == BtfKind::Fwd && lf == tt.kind_flag
                };
            }
            BtfKind::Enum | BtfKind::Enum64 => {
                if !is_any_enum(tt) || lt.size_or_type != tt.size_or_type {
                    return false;
                }
                let (BtfTypeData::Enum(lv), BtfTypeData::Enum(tv)) = (&lt.data, &tt.data) else {
                    return false;
                };
                return lv
                    .iter()
                    .all(|(ln, _)| tv.iter().any(|(tn, _)| names_match(ln, tn)));
            }
            BtfKind::Struct | BtfKind::Union => {
                if behind_ptr {
                    if lt.kind == tt.kind {
                        return true;
                    }
                    return tt.kind == BtfKind::Fwd && (lt.kind == BtfKind::Union) == tt.kind_flag;
                }
                if lt.kind != tt.kind || level == 0 {
                    return false;
                }
                let (BtfTypeData::Members(lm), BtfTypeData::Members(tm)) = (&lt.data, &tt.data)
                else {
                    return false;
                };
                if lm.len() > tm.len() {
                    return false;
                }
                return lm.iter().all(|a| {
                    tm.iter().any(|b| {
                        names_match(&a.name, &b.name)
                            && types_match(lb, a.type_id, tb, b.type_id, behind_ptr, level - 1)
                    })
                });
            }
            BtfKind::Int => {
                return tt.kind == BtfKind::Int
                    && lt.size_or_type == tt.size_or_type
                    && int_signed(lt) == int_signed(tt)
            }
            BtfKind::Float => {
                return tt.kind == BtfKind::Float && lt.size_or_type == tt.size_or_type
            }
            BtfKind::Ptr => {
                if tt.kind != BtfKind::Ptr {
                    return false;
                }
                behind_ptr = true;
                l = lt.size_or_type;
                t = tt.size_or_type;
            }
            BtfKind::Array => match (&lt.data, &tt.data) {
                (
                    BtfTypeData::Array {
                        elem: le,
                        nelems: ln,
                        ..
                    },
                    BtfTypeData::Array {
                        elem: te,
                        nelems: tn,
                        ..
                    },
                ) if ln == tn => {
                    l = *le;
                    t = *te;
                }
                _ => return false,
            },
            BtfKind::FuncProto => {
                let (BtfTypeData::Params(lp), BtfTypeData::Params(tp)) = (&lt.data, &tt.data)
                else {
                    return false;
                };
                if tt.kind != BtfKind::FuncProto || lp.len() != tp.len() || level == 0 {
                    return false;
                }
                for (a, b) in lp.iter().zip(tp) {
                    if !types_match(lb, a.type_id, tb, b.type_id, behind_ptr, level - 1) {
                        return false;
                    }
                }
                l = lt.size_or_type;
                t = tt.size_or_type;
            }
            _ => return false,
        }
    }
    false
}
