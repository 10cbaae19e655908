/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * pkt.h - the few packet headers the test and example programs parse.
 *
 * Our own minimal definitions instead of <linux/ip.h> and <linux/tcp.h>:
 * those choose their bit-field order from the *host's* <asm/byteorder.h>,
 * which is wrong for the big-endian (bpfeb) copies we also build. Here the
 * multi-bit fields are whole bytes, read with masks, and multi-byte fields
 * are network order (compare them with bpf_htons()/bpf_htonl()).
 */
#ifndef PKT_H
#define PKT_H

#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define PKT_ETH_P_IP 0x0800
#define PKT_IPPROTO_ICMP 1
#define PKT_IPPROTO_TCP 6
#define PKT_IPPROTO_UDP 17
#define PKT_TCP_FLAG_SYN 0x02
#define PKT_AF_INET 2

struct pkt_eth {
	__u8 dst[6];
	__u8 src[6];
	__be16 proto;
} __attribute__((packed));

struct pkt_ipv4 {
	__u8 version_ihl; /* version in the high nibble, header words in the low */
	__u8 tos;
	__be16 tot_len;
	__be16 id;
	__be16 frag_off;
	__u8 ttl;
	__u8 protocol;
	__sum16 check;
	__be32 saddr;
	__be32 daddr;
};

struct pkt_tcp {
	__be16 source;
	__be16 dest;
	__be32 seq;
	__be32 ack_seq;
	__u8 doff_res; /* data offset in the high nibble */
	__u8 flags;    /* FIN 0x01, SYN 0x02, RST 0x04, PSH 0x08, ACK 0x10 ... */
	__be16 window;
	__sum16 check;
	__be16 urg_ptr;
};

_Static_assert(sizeof(struct pkt_eth) == 14, "Ethernet header is 14 bytes");
_Static_assert(sizeof(struct pkt_ipv4) == 20, "IPv4 header is 20 bytes");
_Static_assert(sizeof(struct pkt_tcp) == 20, "TCP header is 20 bytes");

static __always_inline __u32 pkt_ipv4_hdr_len(const struct pkt_ipv4 *ip)
{
	return (ip->version_ihl & 0x0f) * 4;
}

static __always_inline __u32 pkt_ipv4_version(const struct pkt_ipv4 *ip)
{
	return ip->version_ihl >> 4;
}

#endif /* PKT_H */
