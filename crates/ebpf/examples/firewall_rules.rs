//! The rule manager of `xdp_basic_firewall`, written against the `Map` trait so that the same
//! code drives the kernel's maps and, in its tests, `bpf-mock`'s.
//!
//! The object has two maps: `blacklist`, an LPM trie of IPv4 CIDRs whose value is the rule's
//! index (< 16), and `matches`, a per-CPU array of drop counters indexed by rule. The manager
//! adds a CIDR under the lowest free index (resetting its counter), removes it, lists the rules
//! and reads the counters summed over every CPU.
//!
//! Run (root): `cargo run -p ebpf --example firewall_rules -- 10.0.0.0/8 192.168.1.0/24`
//! (loads `target/bpf/xdp_basic_firewall.o`, fills the rules, prints them; attaching is the
//! `xdp_basic_firewall` example's job). Its tests run under plain `cargo test`, no root
//! (`test = true` in `crates/ebpf/Cargo.toml`).

use std::net::Ipv4Addr;

use ebpf::maps::{errno, Cidr, Map, MapError, MapExt};

/// At most this many rules (the `MAX_RULES` of the C program).
pub const MAX_RULES: u32 = 16;

/// What can go wrong managing rules.
#[derive(Debug)]
pub enum RuleError {
    /// The CIDR is not IPv4 or does not parse.
    BadCidr(String),
    /// Every rule index is taken.
    Full,
    /// The CIDR has no rule.
    NoSuchRule(String),
    /// A map operation failed.
    Map(MapError),
}

impl std::fmt::Display for RuleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RuleError::BadCidr(c) => write!(f, "not an IPv4 CIDR: {c}"),
            RuleError::Full => write!(f, "all {MAX_RULES} rules are in use"),
            RuleError::NoSuchRule(c) => write!(f, "no rule for {c}"),
            RuleError::Map(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for RuleError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RuleError::Map(e) => Some(e),
            _ => None,
        }
    }
}

impl From<MapError> for RuleError {
    fn from(e: MapError) -> Self {
        RuleError::Map(e)
    }
}

/// The firewall's rules, over any two maps of the object's shape.
#[derive(Debug)]
pub struct Rules<'a> {
    blacklist: &'a dyn Map,
    matches: &'a dyn Map,
}

fn cidr(s: &str) -> Result<Cidr, RuleError> {
    let c = ebpf::maps::lpm_key(s).map_err(|_| RuleError::BadCidr(s.to_string()))?;
    if c.addr().is_ipv4() {
        Ok(c)
    } else {
        Err(RuleError::BadCidr(s.to_string()))
    }
}

impl<'a> Rules<'a> {
    /// The manager of the object's `blacklist` and `matches` maps.
    pub fn new(blacklist: &'a dyn Map, matches: &'a dyn Map) -> Self {
        Rules { blacklist, matches }
    }

    /// From a loaded object (kernel or mock).
    pub fn from_system(system: &'a dyn ebpf::attach::System) -> Option<Self> {
        Some(Rules::new(system.map("blacklist")?, system.map("matches")?))
    }

    /// Every rule: its CIDR and index.
    pub fn list(&self) -> Result<Vec<(String, u32)>, RuleError> {
        let mut out = Vec::new();
        for key in self.blacklist.keys() {
            let key = key?;
            let index = self.blacklist.lookup_u64(&key)? as u32;
            let prefix = u32::from_ne_bytes([key[0], key[1], key[2], key[3]]);
            let addr = Ipv4Addr::new(key[4], key[5], key[6], key[7]);
            out.push((format!("{addr}/{prefix}"), index));
        }
        out.sort_by_key(|r| r.1);
        Ok(out)
    }

    /// Blocks `cidr` (`10.0.0.0/8`) under the lowest free rule index, with its counter at 0;
    /// a CIDR already blocked keeps its index.
    pub fn add(&self, cidr_text: &str) -> Result<u32, RuleError> {
        let key = cidr(cidr_text)?;
        if self.is_exact(&key)? {
            // The stored prefix is the longest match of its own key.
            return Ok(self.blacklist.lookup_u64(&key)? as u32);
        }
        let used: Vec<u32> = self.list()?.into_iter().map(|(_, i)| i).collect();
        let index = (0..MAX_RULES)
            .find(|i| !used.contains(i))
            .ok_or(RuleError::Full)?;
        self.matches.upsert(&index, &0u64)?;
        match self.blacklist.insert(&key, &index) {
            Ok(()) => Ok(index),
            Err(e) if e.errno() == Some(errno::ENOSPC) || e.errno() == Some(errno::E2BIG) => {
                Err(RuleError::Full)
            }
            Err(e) => Err(e.into()),
        }
    }

    fn is_exact(&self, key: &Cidr) -> Result<bool, RuleError> {
        let want = self.blacklist.key_bytes(key)?;
        Ok(self.blacklist.keys().any(|k| k.is_ok_and(|k| k == want)))
    }

    /// Unblocks `cidr`.
    pub fn remove(&self, cidr_text: &str) -> Result<(), RuleError> {
        match self.blacklist.delete(&cidr(cidr_text)?) {
            Err(e) if e.is_not_found() => Err(RuleError::NoSuchRule(cidr_text.to_string())),
            r => Ok(r?),
        }
    }

    /// The rule that drops packets from `addr`, as the XDP program decides it.
    pub fn rule_for(&self, addr: Ipv4Addr) -> Result<Option<u32>, RuleError> {
        let host = Cidr::new(addr.into(), 32).map_err(|_| RuleError::BadCidr(addr.to_string()))?;
        match self.blacklist.lookup_u64(&host) {
            Ok(i) => Ok(Some(i as u32)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Packets dropped by rule `index`, summed over every CPU.
    pub fn drops(&self, index: u32) -> Result<u64, RuleError> {
        Ok(self.matches.lookup_u64(&index)?)
    }
}

#[allow(dead_code)]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let object = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../target/bpf/xdp_basic_firewall.o"
    );
    let system = ebpf::attach::KernelSystem::load_elf(object)?;
    let rules = Rules::from_system(&system).ok_or("the object lacks blacklist or matches")?;
    for arg in std::env::args().skip(1) {
        let index = rules.add(&arg)?;
        println!("{arg}: rule {index}");
    }
    for (cidr, index) in rules.list()? {
        println!(
            "rule {index}: drop {cidr} ({} dropped)",
            rules.drops(index)?
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ebpf::attach::System;
    use ebpf::maps::{MapSpec, MapType};
    use ebpf::mock::{errno, MapOp, MockSystem};

    /// The object's maps as `bpf-progs/README.md` lists them.
    fn system() -> MockSystem {
        let mut blacklist = MapSpec::new("blacklist", MapType::LpmTrie, 8, 4, MAX_RULES);
        blacklist.flags = 1;
        MockSystem::builder()
            .cpus(2)
            .map(MapSpec::new(
                "matches",
                MapType::PerCpuArray,
                4,
                8,
                MAX_RULES,
            ))
            .map(blacklist)
            .build()
            .expect("valid specs")
    }

    #[test]
    fn rules_take_the_lowest_free_index_and_match_longest_prefix() {
        let sys = system();
        let rules = Rules::from_system(&sys).unwrap();
        assert_eq!(rules.add("10.0.0.0/8").unwrap(), 0);
        assert_eq!(rules.add("10.1.0.0/16").unwrap(), 1);
        assert_eq!(
            rules.add("10.1.0.0/16").unwrap(),
            1,
            "adding twice keeps the index"
        );
        assert_eq!(rules.rule_for(Ipv4Addr::new(10, 1, 2, 3)).unwrap(), Some(1));
        assert_eq!(rules.rule_for(Ipv4Addr::new(10, 2, 2, 3)).unwrap(), Some(0));
        assert_eq!(rules.rule_for(Ipv4Addr::new(192, 168, 0, 1)).unwrap(), None);
        rules.remove("10.0.0.0/8").unwrap();
        assert!(matches!(
            rules.remove("10.0.0.0/8"),
            Err(RuleError::NoSuchRule(_))
        ));
        assert_eq!(rules.add("172.16.0.0/12").unwrap(), 0, "index 0 was freed");
        assert_eq!(
            rules.list().unwrap(),
            [
                ("172.16.0.0/12".to_string(), 0),
                ("10.1.0.0/16".to_string(), 1)
            ]
        );
        assert!(matches!(rules.add("fe80::/10"), Err(RuleError::BadCidr(_))));
    }

    #[test]
    fn drops_are_summed_over_cpus_and_reset_on_add() {
        let sys = system();
        let rules = Rules::from_system(&sys).unwrap();
        let index = rules.add("10.0.0.0/8").unwrap();
        // What the XDP program does on two CPUs: one 8-byte slot per CPU.
        let matches = sys.map("matches").unwrap();
        let mut per_cpu = vec![0u8; matches.value_len()];
        per_cpu[..8].copy_from_slice(&3u64.to_ne_bytes());
        per_cpu[8..].copy_from_slice(&4u64.to_ne_bytes());
        matches
            .update_elem(&index.to_ne_bytes(), &per_cpu, 0)
            .unwrap();
        assert_eq!(rules.drops(index).unwrap(), 7);
        rules.remove("10.0.0.0/8").unwrap();
        assert_eq!(rules.add("10.0.0.0/8").unwrap(), index);
        assert_eq!(rules.drops(index).unwrap(), 0);
    }

    #[test]
    fn a_full_table_and_map_failures_are_reported() {
        let sys = system();
        let rules = Rules::from_system(&sys).unwrap();
        for i in 0..MAX_RULES {
            rules.add(&format!("10.{i}.0.0/16")).unwrap();
        }
        assert!(matches!(rules.add("11.0.0.0/8"), Err(RuleError::Full)));
        sys.mock_map("blacklist")
            .unwrap()
            .fail(MapOp::NextKey, errno::EPERM);
        match rules.list() {
            Err(RuleError::Map(e)) => assert_eq!(e.errno(), Some(errno::EPERM)),
            other => panic!("{other:?}"),
        }
    }
}
