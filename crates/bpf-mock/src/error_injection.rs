//! Error injection: make a map operation, a program load, an attach or a whole object load fail
//! on request (goebpf's `MockSystem.ErrorLoadElf`, generalised).
//!
//! A [`Faults`] list holds rules "operation `op` fails with `errno`, `times` times (or always)".
//! Every mock consults its list before doing the operation; the first matching rule answers.
//! The errors are the same typed errors the kernel objects give, with the errno asked for, so
//! code under test takes the same path as on a real failure.

use std::sync::Mutex;

use bpf_maps::MapError;

/// How often a rule fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Times {
    /// Every time, until the rules are cleared.
    Always,
    /// This many times, then the rule is dropped.
    Count(u32),
}

#[derive(Debug, Clone)]
struct Rule<Op> {
    op: Op,
    errno: i32,
    times: Times,
}

/// A list of injected failures for operations of type `Op` ([`MapOp`], [`ProgramOp`]).
#[derive(Debug)]
pub struct Faults<Op> {
    rules: Mutex<Vec<Rule<Op>>>,
}

impl<Op> Default for Faults<Op> {
    fn default() -> Self {
        Faults {
            rules: Mutex::new(Vec::new()),
        }
    }
}

/// Which operations a rule applies to.
pub trait FaultOp: Copy + PartialEq + std::fmt::Debug {
    /// Whether a rule for `self` applies to the operation `actual`.
    fn covers(self, actual: Self) -> bool;
}

impl<Op: FaultOp> Faults<Op> {
    /// Adds a rule: `op` fails with `errno`, `times` times.
    pub fn inject(&self, op: Op, errno: i32, times: Times) {
        if times == Times::Count(0) {
            return;
        }
        self.lock().push(Rule { op, errno, times });
    }

    /// Drops every rule.
    pub fn clear(&self) {
        self.lock().clear();
    }

    /// Whether no rule is left.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// The errno `op` must fail with now, if a rule says so (and uses up one of its times).
    pub fn take(&self, op: Op) -> Option<i32> {
        let mut rules = self.lock();
        let i = rules.iter().position(|r| r.op.covers(op))?;
        let errno = rules[i].errno;
        match &mut rules[i].times {
            Times::Always => {}
            Times::Count(n) if *n <= 1 => {
                rules.remove(i);
            }
            Times::Count(n) => *n -= 1,
        }
        Some(errno)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Rule<Op>>> {
        self.rules.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A map operation, for [`MockMap::fail`](crate::MockMap::fail).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MapOp {
    /// Any element operation.
    Any,
    /// `BPF_MAP_LOOKUP_ELEM` (and peek on queues and stacks).
    Lookup,
    /// `BPF_MAP_UPDATE_ELEM` (and push on queues and stacks).
    Update,
    /// `BPF_MAP_DELETE_ELEM`.
    Delete,
    /// `BPF_MAP_GET_NEXT_KEY`.
    NextKey,
    /// `BPF_MAP_LOOKUP_AND_DELETE_ELEM` (and pop on queues and stacks).
    LookupAndDelete,
}

impl MapOp {
    /// The operation's name as [`MapError::Op`] carries it.
    pub fn name(self) -> &'static str {
        match self {
            MapOp::Any => "bpf",
            MapOp::Lookup => "lookup",
            MapOp::Update => "update",
            MapOp::Delete => "delete",
            MapOp::NextKey => "next key",
            MapOp::LookupAndDelete => "lookup and delete",
        }
    }
}

impl FaultOp for MapOp {
    fn covers(self, actual: Self) -> bool {
        self == MapOp::Any || self == actual
    }
}

/// A program operation, for [`MockProgram::fail`](crate::MockProgram::fail).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProgramOp {
    /// Any of the operations below.
    Any,
    /// [`Program::load`](bpf_attach::Program::load).
    Load,
    /// [`Program::pin`](bpf_attach::Program::pin).
    Pin,
    /// [`Program::attach`](bpf_attach::Program::attach).
    Attach,
    /// [`MockLink::detach`](crate::MockLink::detach).
    Detach,
}

impl FaultOp for ProgramOp {
    fn covers(self, actual: Self) -> bool {
        self == ProgramOp::Any || self == actual
    }
}

/// The kernel-like error of map operation `op` on `map`, with `errno`.
pub(crate) fn map_error(op: MapOp, map: &str, errno: i32) -> MapError {
    MapError::from_errno(op.name(), map, errno)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counted_rules_wear_out_and_any_covers_every_op() {
        let f = Faults::default();
        f.inject(MapOp::Update, 1, Times::Count(2));
        f.inject(MapOp::Any, 7, Times::Always);
        assert_eq!(f.take(MapOp::Update), Some(1));
        assert_eq!(f.take(MapOp::Lookup), Some(7));
        assert_eq!(f.take(MapOp::Update), Some(1));
        assert_eq!(f.take(MapOp::Update), Some(7));
        f.clear();
        assert!(f.is_empty());
        assert_eq!(f.take(MapOp::Delete), None);
        f.inject(MapOp::Delete, 2, Times::Count(0));
        assert!(f.is_empty());
    }
}
