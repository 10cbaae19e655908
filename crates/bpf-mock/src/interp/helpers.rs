//! Helper functions: maps, time, random numbers, task, output, packets, tail calls, loops.

use bpf_maps::{MapError, MapType};

use super::exec::Machine;
use super::memory::{
    addr, func_index, map_index, CtxKind, Kind, Region, CTX, FIRST_GLOBAL, MAP_BASE, PACKET,
};
use super::names::HELPER_NAMES;
use super::{
    InterpError, PerfRecord, ProgramId, Redirect, RingbufRecord, MAP_FD_BASE, MAX_CALL_FRAMES,
    MAX_TAIL_CALLS, XDP_REDIRECT,
};

const EINVAL: i64 = 22;
const EFAULT: i64 = 14;
const E2BIG: i64 = 7;
const BPF_F_CURRENT_CPU: u64 = 0xffff_ffff;
const TC_ACT_REDIRECT: u64 = 7;

fn neg(errno: i64) -> u64 {
    (-errno) as u64
}

fn errno_of(e: &MapError) -> i64 {
    e.errno().map(i64::from).unwrap_or(EINVAL)
}

impl Machine<'_, '_> {
    fn helper_error(
        &self,
        prog: usize,
        insn: usize,
        id: i32,
        reason: impl Into<String>,
    ) -> InterpError {
        InterpError::Helper {
            program: self.progs[prog].name.clone(),
            insn,
            helper: helper_name(id),
            reason: reason.into(),
        }
    }

    fn map_arg(
        &self,
        prog: usize,
        insn: usize,
        id: i32,
        handle: u64,
    ) -> Result<usize, InterpError> {
        map_index(handle)
            .filter(|&m| m < self.maps.len())
            .ok_or_else(|| {
                self.helper_error(prog, insn, id, format!("argument {handle:#x} is not a map"))
            })
    }

    pub(crate) fn read(
        &self,
        prog: usize,
        insn: usize,
        a: u64,
        len: usize,
    ) -> Result<Vec<u8>, InterpError> {
        self.st
            .read_bytes(a, len)
            .map(<[u8]>::to_vec)
            .map_err(|f| self.fault(prog, insn, f))
    }

    pub(crate) fn write(
        &mut self,
        prog: usize,
        insn: usize,
        a: u64,
        bytes: &[u8],
    ) -> Result<(), InterpError> {
        self.st
            .write_bytes(a, bytes)
            .map_err(|f| self.fault(prog, insn, f))
    }

    /// The current CPU's slot of a per-CPU value.
    pub(crate) fn slot<'v>(
        &self,
        map: usize,
        value: &'v [u8],
        prog: usize,
    ) -> Result<&'v [u8], InterpError> {
        let b = &self.maps[map];
        let stride = b.value_size.div_ceil(8) * 8;
        let start = self.env.cpu as usize * stride;
        value
            .get(start..start + b.value_size)
            .ok_or_else(|| InterpError::Helper {
                program: self.progs[prog].name.clone(),
                insn: 0,
                helper: "map_lookup_elem",
                reason: format!(
                    "cpu {} has no slot in per-cpu map {} ({} slots)",
                    self.env.cpu,
                    b.name,
                    value.len() / stride.max(1)
                ),
            })
    }

    /// Writes a value region back into its map (if it was written).
    fn write_back(&mut self, prog: usize, region: usize) -> Result<(), InterpError> {
        let r = &self.st.regions[region];
        let Kind::Value { map } = r.kind else {
            return Ok(());
        };
        if !r.dirty {
            return Ok(());
        }
        let b = &self.maps[map];
        let map_err = |source| InterpError::Map {
            program: self.progs[prog].name.clone(),
            map: b.name.clone(),
            operation: "writing a value back",
            source: Box::new(source),
        };
        let result = if b.per_cpu {
            let mut whole = vec![0u8; b.value_len];
            match b.map.lookup_elem(&r.key, &mut whole, 0) {
                Ok(()) => {}
                Err(e) if e.is_not_found() => return Ok(()),
                Err(e) => return Err(map_err(e)),
            }
            let stride = b.value_size.div_ceil(8) * 8;
            let start = self.env.cpu as usize * stride;
            if let Some(s) = whole.get_mut(start..start + b.value_size) {
                s.copy_from_slice(&r.data[..b.value_size]);
            }
            b.map.update_elem(&r.key, &whole, bpf_maps::EXIST)
        } else {
            b.map.update_elem(&r.key, &r.data, bpf_maps::EXIST)
        };
        match result {
            Ok(()) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(map_err(e)),
        }
        self.st.regions[region].dirty = false;
        Ok(())
    }

    /// Writes back every written value region of `map` (`None`: of every map).
    fn flush(&mut self, prog: usize, map: Option<usize>) -> Result<(), InterpError> {
        for id in FIRST_GLOBAL..self.st.regions.len() {
            if let Kind::Value { map: m } = self.st.regions[id].kind {
                if map.is_none_or(|want| want == m) {
                    self.write_back(prog, id)?;
                }
            }
        }
        Ok(())
    }

    pub(crate) fn flush_all(&mut self, prog: usize) -> Result<(), InterpError> {
        self.flush(prog, None)
    }

    /// The value region of `key` in `map`, refreshed from the map; `None` if the key is missing.
    fn value_region(
        &mut self,
        prog: usize,
        map: usize,
        key: &[u8],
    ) -> Result<Option<usize>, InterpError> {
        let b = &self.maps[map];
        let mut whole = std::mem::take(&mut self.st.scratch);
        whole.clear();
        whole.resize(b.value_len, 0);
        let found = match b.map.lookup_elem(key, &mut whole, 0) {
            Ok(()) => true,
            Err(e) if e.is_not_found() => false,
            Err(e) if e.errno() == Some(22) && b.map.map_type() == MapType::Array => false,
            Err(source) => {
                return Err(InterpError::Map {
                    program: self.progs[prog].name.clone(),
                    map: b.name.clone(),
                    operation: "lookup",
                    source: Box::new(source),
                })
            }
        };
        let result = if found {
            self.fill_value_region(prog, map, key, &whole).map(Some)
        } else {
            Ok(None)
        };
        self.st.scratch = whole;
        result
    }

    fn fill_value_region(
        &mut self,
        prog: usize,
        map: usize,
        key: &[u8],
        whole: &[u8],
    ) -> Result<usize, InterpError> {
        let value = if self.maps[map].per_cpu {
            self.slot(map, whole, prog)?
        } else {
            whole
        };
        let existing = (FIRST_GLOBAL..self.st.regions.len()).find(|&id| {
            let r = &self.st.regions[id];
            r.kind == Kind::Value { map } && r.key == key
        });
        Ok(match existing {
            Some(id) => {
                let r = &mut self.st.regions[id];
                r.data.copy_from_slice(value);
                r.dirty = false;
                id
            }
            None => {
                let mut region = Region::new(value.to_vec(), Kind::Value { map }, true);
                region.key = key.to_vec();
                self.st.push(region)
            }
        })
    }

    fn map_lookup(
        &mut self,
        prog: usize,
        insn: usize,
        map: usize,
        key_ptr: u64,
    ) -> Result<u64, InterpError> {
        let b = &self.maps[map];
        let mut key = std::mem::take(&mut self.st.key_scratch);
        key.clear();
        match self.st.read_bytes(key_ptr, b.key_size) {
            Ok(k) => key.extend_from_slice(k),
            Err(f) => return Err(self.fault(prog, insn, f)),
        }
        let found = self
            .flush(prog, Some(map))
            .and_then(|()| self.value_region(prog, map, &key));
        self.st.key_scratch = key;
        let Some(region) = found? else {
            return Ok(0);
        };
        let b = &self.maps[map];
        if matches!(b.map.map_type(), MapType::ArrayOfMaps | MapType::HashOfMaps) {
            let data = &self.st.regions[region].data;
            let fd = u32::from_le_bytes([data[0], data[1], data[2], data[3]]);
            let inner = fd
                .checked_sub(MAP_FD_BASE)
                .map(|i| i as usize)
                .filter(|&i| i < self.maps.len())
                .or_else(|| self.map_ids.iter().find(|(n, _)| *n == fd).map(|(_, i)| *i))
                .ok_or_else(|| {
                    self.helper_error(prog, insn, 1, format!(
                        "map {} holds {fd}, which is not a map the interpreter knows (Vm::add_map, Vm::set_map_id)",
                        b.name
                    ))
                })?;
            return Ok(MAP_BASE | inner as u64);
        }
        Ok(addr(region, 0))
    }

    fn refresh(&mut self, prog: usize, map: usize, key: &[u8]) -> Result<(), InterpError> {
        let cached = (FIRST_GLOBAL..self.st.regions.len()).any(|id| {
            let r = &self.st.regions[id];
            r.kind == Kind::Value { map } && r.key == key
        });
        if cached {
            self.value_region(prog, map, key)?;
        }
        Ok(())
    }

    fn map_update(
        &mut self,
        prog: usize,
        insn: usize,
        map: usize,
        args: [u64; 5],
    ) -> Result<u64, InterpError> {
        let b = &self.maps[map];
        let key = self.read(prog, insn, args[1], b.key_size)?;
        let value = self.read(prog, insn, args[2], b.value_size)?;
        self.flush(prog, Some(map))?;
        let b = &self.maps[map];
        let result = if b.per_cpu {
            let mut whole = vec![0u8; b.value_len];
            let _ = b.map.lookup_elem(&key, &mut whole, 0);
            let stride = b.value_size.div_ceil(8) * 8;
            let start = self.env.cpu as usize * stride;
            match whole.get_mut(start..start + b.value_size) {
                Some(s) => s.copy_from_slice(&value),
                None => {
                    return Err(self.helper_error(
                        prog,
                        insn,
                        2,
                        format!("cpu {} has no slot", self.env.cpu),
                    ))
                }
            }
            b.map.update_elem(&key, &whole, args[3])
        } else {
            b.map.update_elem(&key, &value, args[3])
        };
        let ret = match result {
            Ok(()) => 0,
            Err(e) => neg(errno_of(&e)),
        };
        self.refresh(prog, map, &key)?;
        Ok(ret)
    }

    /// Runs a helper; returns `r0`.
    pub(crate) fn helper(
        &mut self,
        prog: usize,
        insn: usize,
        id: i32,
        a: [u64; 5],
    ) -> Result<u64, InterpError> {
        Ok(match id {
            1 => {
                let m = self.map_arg(prog, insn, id, a[0])?;
                self.map_lookup(prog, insn, m, a[1])?
            }
            2 => {
                let m = self.map_arg(prog, insn, id, a[0])?;
                self.map_update(prog, insn, m, a)?
            }
            3 => {
                let m = self.map_arg(prog, insn, id, a[0])?;
                let key = self.read(prog, insn, a[1], self.maps[m].key_size)?;
                self.flush(prog, Some(m))?;
                match self.maps[m].map.delete_elem(&key) {
                    Ok(()) => 0,
                    Err(e) => neg(errno_of(&e)),
                }
            }
            5 => self.clock(false),
            125 => self.clock(true),
            6 => {
                let len = (a[1] as usize).min(1024);
                let fmt = self.read(prog, insn, a[0], len)?;
                let line = super::printk::format(self.st, &fmt, &[a[2], a[3], a[4]]);
                self.trace_line(line)
            }
            177 => {
                let len = (a[1] as usize).min(1024);
                let fmt = self.read(prog, insn, a[0], len)?;
                let n = (a[3] as usize / 8).min(12);
                let raw = if n == 0 {
                    Vec::new()
                } else {
                    self.read(prog, insn, a[2], n * 8)?
                };
                let args: Vec<u64> = raw.chunks(8).map(super::memory::read_le).collect();
                let line = super::printk::format(self.st, &fmt, &args);
                self.trace_line(line)
            }
            7 => {
                // splitmix64
                self.env.prandom_state = self.env.prandom_state.wrapping_add(0x9e37_79b9_7f4a_7c15);
                let mut z = self.env.prandom_state;
                z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                (z ^ (z >> 31)) as u32 as u64
            }
            8 => self.env.cpu as u64,
            14 => ((self.env.tgid as u64) << 32) | self.env.pid as u64,
            15 => ((self.env.gid as u64) << 32) | self.env.uid as u64,
            16 => {
                let size = a[1] as usize;
                let mut buf = vec![0u8; size];
                let comm = self.env.comm.as_bytes();
                let n = comm.len().min(15).min(size.saturating_sub(1));
                buf[..n].copy_from_slice(&comm[..n]);
                self.write(prog, insn, a[0], &buf)?;
                0
            }
            9 => self.skb_store_bytes(prog, insn, a)?,
            26 => self.skb_load_bytes(prog, insn, a)?,
            10 | 11 => self.csum_replace(prog, insn, id, a)?,
            28 => {
                let from = if a[1] == 0 {
                    Vec::new()
                } else {
                    self.read(prog, insn, a[0], a[1] as usize)?
                };
                let to = if a[3] == 0 {
                    Vec::new()
                } else {
                    self.read(prog, insn, a[2], a[3] as usize)?
                };
                if a[1] % 4 != 0 || a[3] % 4 != 0 {
                    neg(EINVAL)
                } else {
                    super::packet::csum_diff(&from, &to, a[4] as u32) as u64
                }
            }
            23 => {
                self.st.redirects.push(Redirect::Ifindex {
                    ifindex: a[0] as u32,
                    flags: a[1],
                });
                self.redirect_verdict()
            }
            51 => {
                let m = self.map_arg(prog, insn, id, a[0])?;
                let b = &self.maps[m];
                let key = (a[1] as u32).to_le_bytes();
                let mut value = vec![0u8; b.value_len];
                match b.map.lookup_elem(&key[..b.key_size.min(4)], &mut value, 0) {
                    Ok(()) => {
                        self.st.redirects.push(Redirect::Map {
                            map: b.name.clone(),
                            key: a[1] as u32,
                            flags: a[2],
                        });
                        self.redirect_verdict()
                    }
                    Err(_) => a[2] & 3,
                }
            }
            44 => self.xdp_adjust_head(a[1] as i32 as i64),
            54 => self.xdp_adjust_meta(a[1] as i32 as i64),
            65 => self.xdp_adjust_tail(a[1] as i32 as i64),
            25 => self.perf_output(prog, insn, a)?,
            130 => {
                let m = self.map_arg(prog, insn, id, a[0])?;
                let data = self.read(prog, insn, a[1], a[2] as usize)?;
                self.st.ringbuf.push(RingbufRecord {
                    map: self.maps[m].name.clone(),
                    data,
                });
                0
            }
            131 => {
                let m = self.map_arg(prog, insn, id, a[0])?;
                let size = a[1] as usize;
                if size > self.maps[m].map.max_entries() as usize {
                    return Ok(0);
                }
                addr(
                    self.st
                        .push(Region::new(vec![0u8; size], Kind::Ringbuf { map: m }, true)),
                    0,
                )
            }
            132 | 133 => {
                let region = ((a[0] >> 32) as usize).wrapping_sub(1);
                let ok = (a[0] as u32 == 0)
                    && matches!(
                        self.st.regions.get(region).map(|r| r.kind),
                        Some(Kind::Ringbuf { .. })
                    );
                if !ok {
                    return Err(self.helper_error(
                        prog,
                        insn,
                        id,
                        format!("{:#x} is not a reserved ring buffer record", a[0]),
                    ));
                }
                let r = &mut self.st.regions[region];
                let Kind::Ringbuf { map } = r.kind else {
                    return Ok(0);
                };
                r.kind = Kind::Dead;
                r.hi = 0;
                let data = std::mem::take(&mut r.data);
                if id == 132 {
                    self.st.ringbuf.push(RingbufRecord {
                        map: self.maps[map].name.clone(),
                        data,
                    });
                }
                0
            }
            87 => {
                let m = self.map_arg(prog, insn, id, a[0])?;
                let value = self.read(prog, insn, a[1], self.maps[m].value_size)?;
                match self.maps[m].map.push_elem(&value, a[2]) {
                    Ok(()) => 0,
                    Err(e) => neg(errno_of(&e)),
                }
            }
            88 | 89 => {
                let m = self.map_arg(prog, insn, id, a[0])?;
                let mut value = vec![0u8; self.maps[m].value_size];
                let r = if id == 88 {
                    self.maps[m].map.pop_elem(&mut value)
                } else {
                    self.maps[m].map.peek_elem(&mut value)
                };
                match r {
                    Ok(()) => {
                        self.write(prog, insn, a[1], &value)?;
                        0
                    }
                    Err(e) => neg(errno_of(&e)),
                }
            }
            181 => self.bpf_loop(prog, insn, a)?,
            164 => self.for_each(prog, insn, a)?,
            _ => {
                return Err(InterpError::UnknownHelper {
                    program: self.progs[prog].name.clone(),
                    insn,
                    id: id as u32,
                    name: helper_name(id),
                })
            }
        })
    }

    fn clock(&mut self, boot: bool) -> u64 {
        let v = if boot {
            self.env.boot_ns
        } else {
            self.env.ktime_ns
        };
        self.env.ktime_ns = self.env.ktime_ns.wrapping_add(self.env.clock_step_ns);
        self.env.boot_ns = self.env.boot_ns.wrapping_add(self.env.clock_step_ns);
        v
    }

    fn trace_line(&mut self, line: Vec<u8>) -> u64 {
        let n = line.len() as u64;
        self.st
            .trace
            .push(String::from_utf8_lossy(&line).into_owned());
        n
    }

    fn redirect_verdict(&self) -> u64 {
        match self.st.ctx {
            CtxKind::Xdp => XDP_REDIRECT as u64,
            _ => TC_ACT_REDIRECT,
        }
    }

    /// `bpf_tail_call`: the program to continue in, or `None` (the call falls through).
    pub(crate) fn tail_call(
        &mut self,
        prog: usize,
        insn: usize,
        map: u64,
        index: u64,
    ) -> Result<Option<usize>, InterpError> {
        let m = self.map_arg(prog, insn, 12, map)?;
        let b = &self.maps[m];
        if b.map.map_type() != MapType::ProgArray {
            return Err(self.helper_error(
                prog,
                insn,
                12,
                format!("map {} is not a program array", b.name),
            ));
        }
        let index = index as u32;
        if index >= b.map.max_entries() || self.st.tail_calls >= MAX_TAIL_CALLS {
            return Ok(None);
        }
        let mut value = vec![0u8; b.value_len.max(4)];
        if b.map
            .lookup_elem(&index.to_le_bytes(), &mut value[..b.value_len], 0)
            .is_err()
        {
            return Ok(None);
        }
        let fd = u32::from_le_bytes([value[0], value[1], value[2], value[3]]);
        let Some(next) = ProgramId::from_fd(fd)
            .map(|p| p.0 as usize)
            .filter(|&p| p < self.progs.len())
            .or_else(|| {
                self.prog_ids
                    .iter()
                    .find(|(n, _)| *n == fd)
                    .map(|(_, i)| *i)
            })
        else {
            return Err(self.helper_error(prog, insn, 12, format!(
                "program array {} slot {index} holds {fd}, which is not a program of this interpreter (ProgramId::fd, Vm::set_program_id)",
                b.name
            )));
        };
        self.st.tail_calls += 1;
        Ok(Some(next))
    }

    fn bpf_loop(&mut self, prog: usize, insn: usize, a: [u64; 5]) -> Result<u64, InterpError> {
        let Some(target) = func_index(a[1]) else {
            return Err(self.helper_error(
                prog,
                insn,
                181,
                "the callback is not a function pointer",
            ));
        };
        if a[3] != 0 {
            return Ok(neg(EINVAL));
        }
        if a[0] > 1 << 23 {
            return Ok(neg(E2BIG));
        }
        for i in 0..a[0] {
            if self.callback(prog, insn, target, [i, a[2], 0, 0, 0])? != 0 {
                return Ok(i + 1);
            }
        }
        Ok(a[0])
    }

    fn callback(
        &mut self,
        prog: usize,
        insn: usize,
        target: usize,
        args: [u64; 5],
    ) -> Result<u64, InterpError> {
        if self.st.depth + 1 >= MAX_CALL_FRAMES {
            return Err(InterpError::CallDepth {
                program: self.progs[prog].name.clone(),
                insn,
            });
        }
        self.st.depth += 1;
        let r = self.exec(prog, target, args);
        self.st.depth -= 1;
        self.restore_stack_top();
        r
    }

    fn for_each(&mut self, prog: usize, insn: usize, a: [u64; 5]) -> Result<u64, InterpError> {
        let m = self.map_arg(prog, insn, 164, a[0])?;
        let Some(target) = func_index(a[1]) else {
            return Err(self.helper_error(
                prog,
                insn,
                164,
                "the callback is not a function pointer",
            ));
        };
        if a[3] != 0 {
            return Ok(neg(EINVAL));
        }
        self.flush(prog, Some(m))?;
        let b = &self.maps[m];
        let mut keys = Vec::new();
        let mut next = vec![0u8; b.key_size];
        let mut cur: Option<Vec<u8>> = None;
        while b
            .map
            .get_next_key(cur.as_deref(), &mut next)
            .unwrap_or(false)
        {
            keys.push(next.clone());
            cur = Some(next.clone());
            if keys.len() > b.map.max_entries() as usize {
                break;
            }
        }
        let mut n = 0;
        for key in keys {
            let Some(value) = self.value_region(prog, m, &key)? else {
                continue;
            };
            let key_region = self.st.push(Region::new(key, Kind::Plain, false));
            n += 1;
            let stop = self.callback(
                prog,
                insn,
                target,
                [
                    MAP_BASE | m as u64,
                    addr(key_region, 0),
                    addr(value, 0),
                    a[2],
                    0,
                ],
            )?;
            self.write_back(prog, value)?;
            if stop != 0 {
                break;
            }
        }
        Ok(n)
    }

    fn perf_output(&mut self, prog: usize, insn: usize, a: [u64; 5]) -> Result<u64, InterpError> {
        let m = self.map_arg(prog, insn, 25, a[1])?;
        let mut data = self.read(prog, insn, a[3], a[4] as usize)?;
        let index = a[2] & 0xffff_ffff;
        let cpu = if index == BPF_F_CURRENT_CPU {
            self.env.cpu as u64
        } else {
            index
        };
        if cpu >= self.maps[m].map.max_entries() as u64 && self.maps[m].map.max_entries() != 0 {
            return Ok(neg(E2BIG));
        }
        let ctx_len = ((a[2] >> 32) & 0xf_ffff) as usize;
        if ctx_len > 0 {
            if a[0] != addr(CTX, 0) || self.st.ctx == CtxKind::Raw {
                return Ok(neg(EINVAL));
            }
            let (start, end) = super::context::packet_bounds(self.st);
            if ctx_len > end - start {
                return Ok(neg(EFAULT));
            }
            data.extend_from_slice(&self.st.regions[PACKET].data[start..start + ctx_len]);
        }
        self.st.perf.push(PerfRecord {
            map: self.maps[m].name.clone(),
            cpu: cpu as u32,
            data,
        });
        Ok(0)
    }
}

/// The kernel's name of helper `id`.
pub(crate) fn helper_name(id: i32) -> &'static str {
    usize::try_from(id)
        .ok()
        .and_then(|i| HELPER_NAMES.get(i).copied())
        .unwrap_or("unknown")
}
