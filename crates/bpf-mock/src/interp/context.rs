//! Program contexts: `xdp_md` over a packet with headroom, `__sk_buff` over packet data,
//! `pt_regs`, and raw tracepoint bytes.

use bpf_elf::ProgramType;

use super::memory::{addr, CtxKind, Fault, Kind, Region, RunState, XdpPtrs, CTX, PACKET};
use super::{Input, InterpError};

/// Headroom in front of an XDP packet (`XDP_PACKET_HEADROOM`).
pub(crate) const XDP_HEADROOM: usize = 256;
/// `sizeof(struct xdp_frame)`: the bytes at the start of the headroom `bpf_xdp_adjust_head` and
/// `bpf_xdp_adjust_meta` may not take.
pub(crate) const XDP_FRAME_SIZE: usize = 40;
/// The XDP frame (a page), as `BPF_PROG_TEST_RUN` builds it.
pub(crate) const XDP_FRAME_SZ: usize = 4096;
/// `SKB_DATA_ALIGN(sizeof(struct skb_shared_info))`: the tail of the frame the packet may not
/// grow into.
pub(crate) const XDP_TAILROOM: usize = 320;
/// The largest XDP packet.
pub(crate) const XDP_MAX_PACKET: usize = XDP_FRAME_SZ - XDP_HEADROOM - XDP_TAILROOM;
/// `sizeof(struct __sk_buff)`.
pub(crate) const SKB_SIZE: usize = 192;

/// The `xdp_md` fields other than the packet pointers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XdpFields {
    /// `ingress_ifindex`.
    pub ingress_ifindex: u32,
    /// `rx_queue_index`.
    pub rx_queue_index: u32,
    /// `egress_ifindex` (devmap programs).
    pub egress_ifindex: u32,
}

impl Default for XdpFields {
    fn default() -> Self {
        XdpFields {
            ingress_ifindex: 1,
            rx_queue_index: 0,
            egress_ifindex: 0,
        }
    }
}

/// The `__sk_buff` fields a test may set; `len`, `data`, `data_end` and `data_meta` follow the
/// packet.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SkbFields {
    /// `pkt_type` (`PACKET_HOST` 0, ...).
    pub pkt_type: u32,
    /// `mark`.
    pub mark: u32,
    /// `queue_mapping`.
    pub queue_mapping: u32,
    /// `protocol`: the EtherType as stored in the packet (network order in a host integer).
    pub protocol: u32,
    /// `vlan_present`.
    pub vlan_present: u32,
    /// `vlan_tci`.
    pub vlan_tci: u32,
    /// `vlan_proto`.
    pub vlan_proto: u32,
    /// `priority`.
    pub priority: u32,
    /// `ingress_ifindex`.
    pub ingress_ifindex: u32,
    /// `ifindex`.
    pub ifindex: u32,
    /// `tc_index`.
    pub tc_index: u32,
    /// `cb[5]`.
    pub cb: [u32; 5],
    /// `hash`.
    pub hash: u32,
    /// `tc_classid`.
    pub tc_classid: u32,
    /// `napi_id`.
    pub napi_id: u32,
    /// `tstamp`.
    pub tstamp: u64,
    /// `wire_len` (0: the packet's length).
    pub wire_len: u32,
    /// `gso_segs`.
    pub gso_segs: u32,
    /// `gso_size`.
    pub gso_size: u32,
}

impl SkbFields {
    /// The fields `BPF_PROG_TEST_RUN` gives an skb built from `data` on the loopback device:
    /// `protocol` from the Ethernet header (TC programs, whose data starts there; for socket
    /// filters, whose data starts at the network header, `ETH_P_IP` or `ETH_P_IPV6` from the
    /// IP version), `ifindex` 1.
    pub fn for_packet(data: &[u8], program_type: ProgramType) -> Self {
        let protocol = match program_type {
            ProgramType::SchedCls | ProgramType::SchedAct => match data.get(12..14) {
                Some(t) => u16::from_ne_bytes([t[0], t[1]]) as u32,
                None => 0,
            },
            _ => match data.first().map(|b| b >> 4) {
                Some(4) => u16::from_ne_bytes([0x08, 0x00]) as u32,
                Some(6) => u16::from_ne_bytes([0x86, 0xdd]) as u32,
                _ => 0,
            },
        };
        SkbFields {
            protocol,
            ifindex: 1,
            ..SkbFields::default()
        }
    }

    fn to_bytes(&self, len: usize) -> Vec<u8> {
        let mut b = vec![0u8; SKB_SIZE];
        let mut put = |off: usize, v: u32| b[off..off + 4].copy_from_slice(&v.to_le_bytes());
        put(0, len as u32);
        put(4, self.pkt_type);
        put(8, self.mark);
        put(12, self.queue_mapping);
        put(16, self.protocol);
        put(20, self.vlan_present);
        put(24, self.vlan_tci);
        put(28, self.vlan_proto);
        put(32, self.priority);
        put(36, self.ingress_ifindex);
        put(40, self.ifindex);
        put(44, self.tc_index);
        for (i, c) in self.cb.iter().enumerate() {
            put(48 + 4 * i, *c);
        }
        put(68, self.hash);
        put(72, self.tc_classid);
        put(84, self.napi_id);
        put(
            160,
            if self.wire_len == 0 {
                len as u32
            } else {
                self.wire_len
            },
        );
        put(164, self.gso_segs);
        put(176, self.gso_size);
        b[152..160].copy_from_slice(&self.tstamp.to_le_bytes());
        b
    }
}

/// x86-64 `struct pt_regs`, as kprobes see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[allow(missing_docs)]
pub struct PtRegs {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub bp: u64,
    pub bx: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub ax: u64,
    pub cx: u64,
    pub dx: u64,
    pub si: u64,
    pub di: u64,
    pub orig_ax: u64,
    pub ip: u64,
    pub cs: u64,
    pub flags: u64,
    pub sp: u64,
    pub ss: u64,
}

impl PtRegs {
    /// The 168 bytes of the struct.
    pub fn to_bytes(&self) -> Vec<u8> {
        [
            self.r15,
            self.r14,
            self.r13,
            self.r12,
            self.bp,
            self.bx,
            self.r11,
            self.r10,
            self.r9,
            self.r8,
            self.ax,
            self.cx,
            self.dx,
            self.si,
            self.di,
            self.orig_ax,
            self.ip,
            self.cs,
            self.flags,
            self.sp,
            self.ss,
        ]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect()
    }
}

/// Fills the context and packet regions for `input`.
pub(crate) fn setup(st: &mut RunState, input: Input<'_>) -> Result<(), InterpError> {
    let (ctx, packet) = st.regions.split_at_mut(PACKET);
    let ctx = &mut ctx[CTX];
    let packet = &mut packet[0];
    packet.kind = Kind::Plain;
    packet.dirty = false;
    ctx.dirty = false;
    match input {
        Input::Xdp(data, fields) => {
            if data.len() > XDP_MAX_PACKET {
                return Err(InterpError::PacketTooLarge {
                    got: data.len(),
                    max: XDP_MAX_PACKET,
                });
            }
            // Zero what the last run may have written, then copy the packet in.
            if packet.data.len() != XDP_FRAME_SZ {
                packet.data.clear();
                packet.data.resize(XDP_FRAME_SZ, 0);
            } else {
                let (lo, hi) = st.touched;
                packet.data[lo.min(XDP_FRAME_SZ)..hi.min(XDP_FRAME_SZ)].fill(0);
            }
            packet.data[XDP_HEADROOM..XDP_HEADROOM + data.len()].copy_from_slice(data);
            st.touched = (XDP_HEADROOM, XDP_HEADROOM + data.len());
            packet.writable = true;
            st.xdp = XdpPtrs {
                meta: XDP_HEADROOM,
                data: XDP_HEADROOM,
                end: XDP_HEADROOM + data.len(),
                hard_end: XDP_FRAME_SZ - XDP_TAILROOM,
            };
            packet.lo = st.xdp.meta;
            packet.hi = st.xdp.end;
            ctx.data.clear();
            for v in [
                0,
                0,
                0,
                fields.ingress_ifindex,
                fields.rx_queue_index,
                fields.egress_ifindex,
            ] {
                ctx.data.extend_from_slice(&v.to_le_bytes());
            }
            ctx.kind = Kind::Ctx;
            ctx.writable = false;
            st.ctx = CtxKind::Xdp;
        }
        Input::Skb(data, fields) => {
            st.touched = (0, 0);
            packet.data.clear();
            packet.data.extend_from_slice(data);
            packet.lo = 0;
            packet.hi = data.len();
            packet.writable = true;
            ctx.data = fields.to_bytes(data.len());
            ctx.kind = Kind::Ctx;
            ctx.writable = true;
            st.ctx = CtxKind::Skb;
        }
        Input::Kprobe(regs) => {
            plain_ctx(ctx, packet, regs.to_bytes());
            st.ctx = CtxKind::Raw;
        }
        Input::Raw(bytes) => {
            plain_ctx(ctx, packet, bytes.to_vec());
            st.ctx = CtxKind::Raw;
        }
    }
    ctx.lo = 0;
    ctx.hi = ctx.data.len();
    Ok(())
}

fn plain_ctx(ctx: &mut Region, packet: &mut Region, bytes: Vec<u8>) {
    packet.data.clear();
    ctx.data = bytes;
    ctx.kind = Kind::Plain;
    ctx.writable = false;
    packet.data.clear();
    packet.lo = 0;
    packet.hi = 0;
    packet.writable = false;
}

/// The bytes `skb->data` to `data_end`, or the XDP packet from `data` to `data_end`.
pub(crate) fn packet_bounds(st: &RunState) -> (usize, usize) {
    match st.ctx {
        CtxKind::Xdp => (st.xdp.data, st.xdp.end),
        _ => (st.regions[PACKET].lo, st.regions[PACKET].hi),
    }
}

/// A load from the context at byte `off`.
pub(crate) fn load(st: &RunState, a: u64, size: usize) -> Result<u64, Fault> {
    let off = a as u32 as usize;
    let bad = |reason: &str| Fault {
        addr: a,
        size,
        write: false,
        reason: reason.to_string(),
    };
    match st.ctx {
        CtxKind::Raw => st.load(a, size),
        CtxKind::Xdp => {
            if off % 4 != 0 || size != 4 || off >= 24 {
                return Err(bad("xdp_md is read as aligned 4-byte fields"));
            }
            Ok(match off {
                0 => addr(PACKET, st.xdp.data),
                4 => addr(PACKET, st.xdp.end),
                8 => addr(PACKET, st.xdp.meta),
                _ => {
                    let d = &st.regions[CTX].data;
                    u32::from_le_bytes([d[off], d[off + 1], d[off + 2], d[off + 3]]) as u64
                }
            })
        }
        CtxKind::Skb => {
            let p = &st.regions[PACKET];
            match (off, size) {
                (0, 4) => Ok((p.hi - p.lo) as u64),
                (76, 4) => Ok(addr(PACKET, p.lo)),
                (80, 4) => Ok(addr(PACKET, p.hi)),
                (140, 4) => Ok(addr(PACKET, p.lo)),
                (144 | 168, 8) => Ok(0),
                (76..=83 | 140..=143, _) => Err(bad("packet pointers are read as 4-byte fields")),
                _ if off + size <= SKB_SIZE && off % size == 0 => Ok(super::memory::read_le(
                    &st.regions[CTX].data[off..off + size],
                )),
                _ => Err(bad("not a field of __sk_buff")),
            }
        }
    }
}

/// A store to the context: only the `__sk_buff` fields the verifier lets programs write.
pub(crate) fn store(st: &mut RunState, a: u64, size: usize, value: u64) -> Result<(), Fault> {
    let off = a as u32 as usize;
    let writable = st.ctx == CtxKind::Skb
        && match (off, size) {
            (8 | 12 | 32 | 44 | 72, 4) => true,
            (48..=67, _) => off + size <= 68 && off % size == 0,
            (152, 8) => true,
            _ => false,
        };
    if !writable {
        return Err(Fault {
            addr: a,
            size,
            write: true,
            reason: "the context field is read-only".to_string(),
        });
    }
    let r = &mut st.regions[CTX];
    r.dirty = true;
    r.data[off..off + size].copy_from_slice(&value.to_le_bytes()[..size]);
    Ok(())
}
