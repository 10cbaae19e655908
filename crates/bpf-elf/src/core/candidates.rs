//! Candidate target types: same kind (`ENUM` and `ENUM64` alike), same name up to a
//! `___flavor` suffix on either side.

use super::fields::{self, Spec};
use super::types::{kinds_compat, types_compat, types_match, MAX_LEVEL};
use super::{Ctx, Kind};
use crate::btf::{essential_name, Btf};

/// The target types a local type may relocate to, in id order.
pub(super) fn find<'t>(
    local: &Btf,
    local_id: u32,
    target: &'t Btf,
) -> impl Iterator<Item = u32> + 't {
    let lt = local.type_by_id(local_id).cloned();
    let name = lt
        .as_ref()
        .map(|t| essential_name(&t.name).to_string())
        .unwrap_or_default();
    let ids: &'t [u32] = if name.is_empty() {
        &[]
    } else {
        target.ids_by_essential_name(&name)
    };
    ids.iter()
        .copied()
        .filter(move |&id| match (lt.as_ref(), target.type_by_id(id)) {
            (Some(l), Some(t)) => kinds_compat(l, t),
            _ => false,
        })
}

/// `bpf_core_spec_match`: the target spec of candidate `cand`, or `None` if it does not match.
pub(super) fn match_spec(ctx: &Ctx<'_>, local: &Spec, cand: u32, kind: Kind) -> Option<Spec> {
    if kind.is_type_based() {
        let ok = if kind == Kind::TypeMatches {
            types_match(
                ctx.local,
                local.root_type_id,
                ctx.target,
                cand,
                false,
                MAX_LEVEL,
            )
        } else {
            types_compat(ctx.local, local.root_type_id, ctx.target, cand, MAX_LEVEL)
        };
        return ok.then(|| Spec {
            root_type_id: cand,
            accessors: Vec::new(),
            raw: Vec::new(),
            bit_offset: 0,
        });
    }
    fields::match_target(local, ctx.local, ctx.target, cand, kind)
}
