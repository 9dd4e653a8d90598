/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Header walker shared by the XDP and tc programs. Works on a [data, data_end)
 * window so both contexts can use it; only reads, never writes the packet.
 */
#ifndef LQOS_PARSE_H
#define LQOS_PARSE_H

#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_endian.h>
#include "lqos_abi.h"

#ifndef ETH_P_8021AD
#define ETH_P_8021AD 0x88A8
#endif
#ifndef ETH_P_PPP_SES
#define ETH_P_PPP_SES 0x8864
#endif
#ifndef ETH_P_MPLS_UC
#define ETH_P_MPLS_UC 0x8847
#endif
#ifndef ETH_P_MPLS_MC
#define ETH_P_MPLS_MC 0x8848
#endif
/* Labels walked before giving up (LSP + VPN label + entropy label pair + a little margin). */
#define LQOS_MAX_MPLS_LABELS 6
/* Ethernet's minimum frame without FCS, plus one VLAN tag's worth of slack (lqos_fills_frame). */
#define LQOS_MIN_FRAME 64
#define LQOS_PPP_IPV4 0x0021
#define LQOS_PPP_IPV6 0x0057
#define LQOS_MAX_VLAN_TAGS 3
#define LQOS_IPPROTO_ICMPV6 58
/* ICMPv6 router solicitation .. redirect (133..137): neighbour discovery, never shaped. */
#define LQOS_ICMP6_ND_FIRST 133
#define LQOS_ICMP6_ND_LAST 137

enum lqos_parse_rc {
	LQOS_PARSE_OK = 0,
	LQOS_PARSE_NOT_IP = 1,    /* ARP, STP, LLDP, unknown encapsulation: leave alone */
	LQOS_PARSE_SHORT = 2,     /* ran past data_end (tc: pull and retry) */
};

struct lqos_parsed {
	struct lqos_addr src;
	struct lqos_addr dst;
	__u16 outer_vlan;         /* 12-bit VLAN id of the outermost tag, 0 = untagged */
	__u16 l3_proto;           /* ETH_P_IP or ETH_P_IPV6 */
	__u16 l4_off;             /* offset of the L4 header from data (0 = none: non-first fragment) */
	__u16 l4_len;             /* IP payload length (L4 header + data) per the IP header */
	__u8 l4_proto;            /* IPv4 protocol / IPv6 next header (extension headers not walked) */
	__u8 tos;                 /* IPv4 TOS / IPv6 traffic class */
	__u8 icmp6_type;          /* ICMPv6 type when l4_proto is ICMPv6 (no extension headers), else 0 */
	__u8 hop_limit;           /* IPv6 hop limit (ND is only valid with 255: never forwarded by a router) */
	__u16 ethertype;          /* EtherType after the VLAN tags (< 0x0600: an 802.3 length, i.e. LLC) */
};

struct lqos_vlan_hdr {
	__be16 tci;
	__be16 proto;
};

struct lqos_pppoe_hdr {
	__u8 ver_type;
	__u8 code;
	__be16 session;
	__be16 length;
	__be16 ppp_proto;
};

static __always_inline void lqos_addr_from_v4(struct lqos_addr *a, __be32 v4)
{
	__u32 *w = (__u32 *)a->bytes;

	w[0] = 0;
	w[1] = 0;
	w[2] = bpf_htonl(0x0000ffff);
	w[3] = v4;
}

/*
 * Steps *cur over up to LQOS_MAX_VLAN_TAGS 802.1Q/802.1ad tags; *proto is the EtherType in front of
 * them on entry and after them on return. *first_vid (when not NULL and still 0) gets the first tag's
 * id. Returns the number of tags stepped over, or -1 when the frame ends inside one.
 */
static __always_inline int lqos_skip_vlans(void **cur, void *data_end, __u16 *proto, __u16 *first_vid)
{
	int i, tags = 0;

#pragma unroll
	for (i = 0; i < LQOS_MAX_VLAN_TAGS; i++) {
		if (*proto != ETH_P_8021Q && *proto != ETH_P_8021AD)
			break;
		struct lqos_vlan_hdr *vh = *cur;

		if ((void *)(vh + 1) > data_end)
			return -1;
		if (first_vid && *first_vid == 0)
			*first_vid = bpf_ntohs(vh->tci) & 0x0fff;
		*proto = bpf_ntohs(vh->proto);
		*cur = vh + 1;
		tags++;
	}
	return tags;
}

/*
 * MPLS: step over the label stack to the entry whose bottom-of-stack bit is set (bit 0 of its third
 * byte, read byte-wise so the host's endianness cannot pick the wrong bit), then decide by the
 * payload's first nibble: 4 / 6 = IPv4 / IPv6 right under the labels; a first 16 bits of zero = the
 * control word of an Ethernet pseudowire (RFC 4385 / 4448: nibble 0, reserved bits 0), after which a
 * whole Ethernet frame follows (VPLS), whose own VLAN tags are stepped over; anything else is not IP.
 * A pseudowire without a control word starts with a destination MAC: most are rejected here, and
 * whatever is then read as IP must still fill its frame exactly (lqos_fills_frame), which the bytes of
 * a frame misread this way match by a 16-bit coincidence at most. *pad_limit (in: for IP right under
 * the labels, the largest frame Ethernet padding can explain; out: for an inner frame, the same counted
 * from its own Ethernet header). On return *cur is the payload and *proto its EtherType.
 */
static __always_inline int lqos_skip_mpls(void *data, void **cur, void *data_end, __u16 *proto, __u32 *pad_limit)
{
	__u8 *lse = *cur;
	int i, bottom = 0, tags;

#pragma unroll
	for (i = 0; i < LQOS_MAX_MPLS_LABELS; i++) {
		if ((void *)(lse + 4) > data_end)
			return LQOS_PARSE_SHORT;
		bottom = lse[2] & 1;
		lse += 4;
		if (bottom)
			break;
	}
	if (!bottom)
		return LQOS_PARSE_NOT_IP; /* a deeper stack than we walk */
	if ((void *)(lse + 2) > data_end)
		return LQOS_PARSE_SHORT;
	if ((lse[0] >> 4) == 4 || (lse[0] >> 4) == 6) {
		*proto = (lse[0] >> 4) == 4 ? ETH_P_IP : ETH_P_IPV6;
		*cur = lse;
		return LQOS_PARSE_OK;
	}
	if (lse[0] == 0 && lse[1] == 0) {
		struct ethhdr *inner = (void *)(lse + 4);

		if ((void *)(inner + 1) > data_end)
			return LQOS_PARSE_SHORT;
		*proto = bpf_ntohs(inner->h_proto);
		*cur = inner + 1;
		tags = lqos_skip_vlans(cur, data_end, proto, 0);
		if (tags < 0)
			return LQOS_PARSE_SHORT;
		*pad_limit = (__u32)((void *)inner - data) + LQOS_MIN_FRAME + 4 * tags;
		return LQOS_PARSE_OK;
	}
	return LQOS_PARSE_NOT_IP;
}

/*
 * IP under MPLS labels must fill its frame: where its IP length says it ends is where the frame
 * ends, or earlier only in a frame Ethernet padding explains (60 bytes plus 4 per VLAN tag, plus 4
 * for a tag pushed or popped after the padding: pad_limit).
 */
static __always_inline int lqos_fills_frame(__u32 ends_at, __u32 frame_len, __u32 pad_limit)
{
	return ends_at == frame_len || (frame_len <= pad_limit && ends_at < frame_len);
}

/*
 * hw_vlan: VLAN id the stack already removed from the frame (tc: skb->vlan_tci),
 * 0 if none. It is the outermost tag when present. frame_len: the whole frame's length from `data`
 * (XDP: data_end - data; tc: skb->len), which may run past data_end (tc: a paged skb).
 */
static __always_inline int lqos_parse(void *data, void *data_end, __u16 hw_vlan, __u32 frame_len,
				      struct lqos_parsed *p)
{
	struct ethhdr *eth = data;
	void *cur;
	__u16 proto, vid;
	__u32 pad_limit = 0;
	int rc, tags, under_mpls = 0;

	vid = hw_vlan & 0x0fff;
	if ((void *)(eth + 1) > data_end) {
		p->outer_vlan = vid;
		return LQOS_PARSE_SHORT;
	}
	proto = bpf_ntohs(eth->h_proto);
	cur = eth + 1;
	tags = lqos_skip_vlans(&cur, data_end, &proto, &vid);
	p->outer_vlan = vid;
	if (tags < 0)
		return LQOS_PARSE_SHORT;
	p->ethertype = proto;

	/* MPLS after any VLAN tags; its payload may be IP, or an Ethernet frame that carries PPPoE or IP. */
	if (proto == ETH_P_MPLS_UC || proto == ETH_P_MPLS_MC) {
		pad_limit = LQOS_MIN_FRAME + 4 * tags;
		rc = lqos_skip_mpls(data, &cur, data_end, &proto, &pad_limit);
		if (rc != LQOS_PARSE_OK)
			return rc;
		under_mpls = 1;
	}

	if (proto == ETH_P_PPP_SES) {
		struct lqos_pppoe_hdr *ph = cur;

		if ((void *)(ph + 1) > data_end)
			return LQOS_PARSE_SHORT;
		if (ph->ppp_proto == bpf_htons(LQOS_PPP_IPV4))
			proto = ETH_P_IP;
		else if (ph->ppp_proto == bpf_htons(LQOS_PPP_IPV6))
			proto = ETH_P_IPV6;
		else
			return LQOS_PARSE_NOT_IP;
		cur = ph + 1;
	}

	if (proto == ETH_P_IP) {
		struct iphdr *ip4 = cur;

		if ((void *)(ip4 + 1) > data_end)
			return LQOS_PARSE_SHORT;
		if (ip4->version != 4)
			return LQOS_PARSE_NOT_IP;
		if (under_mpls && (ip4->ihl < 5 ||
				   !lqos_fills_frame((__u32)((void *)ip4 - data) + bpf_ntohs(ip4->tot_len), frame_len, pad_limit)))
			return LQOS_PARSE_NOT_IP;
		lqos_addr_from_v4(&p->src, ip4->saddr);
		lqos_addr_from_v4(&p->dst, ip4->daddr);
		p->l3_proto = ETH_P_IP;
		p->l4_proto = ip4->protocol;
		p->tos = ip4->tos;
		/* L4 location for flow tracking; not dereferenced here (callers check bounds). */
		if (ip4->ihl >= 5 && !(ip4->frag_off & bpf_htons(0x1fff))) {
			__u16 hl = ip4->ihl * 4;
			__u16 tot = bpf_ntohs(ip4->tot_len);

			p->l4_off = (__u16)((void *)ip4 - data) + hl;
			p->l4_len = tot > hl ? tot - hl : 0;
		}
		return LQOS_PARSE_OK;
	}
	if (proto == ETH_P_IPV6) {
		struct ipv6hdr *ip6 = cur;

		if ((void *)(ip6 + 1) > data_end)
			return LQOS_PARSE_SHORT;
		if (ip6->version != 6)
			return LQOS_PARSE_NOT_IP;
		if (under_mpls &&
		    !lqos_fills_frame((__u32)((void *)(ip6 + 1) - data) + bpf_ntohs(ip6->payload_len), frame_len, pad_limit))
			return LQOS_PARSE_NOT_IP;
		__builtin_memcpy(p->src.bytes, &ip6->saddr, 16);
		__builtin_memcpy(p->dst.bytes, &ip6->daddr, 16);
		p->l3_proto = ETH_P_IPV6;
		p->l4_proto = ip6->nexthdr;
		p->tos = (ip6->priority << 4) | (ip6->flow_lbl[0] >> 4);
		p->l4_off = (__u16)((void *)(ip6 + 1) - data);
		p->l4_len = bpf_ntohs(ip6->payload_len);
		p->hop_limit = ip6->hop_limit;
		if (ip6->nexthdr == LQOS_IPPROTO_ICMPV6) {
			__u8 *type = (__u8 *)(ip6 + 1);

			if ((void *)(type + 1) > data_end)
				return LQOS_PARSE_SHORT;
			p->icmp6_type = *type;
		}
		return LQOS_PARSE_OK;
	}
	return LQOS_PARSE_NOT_IP;
}

/*
 * ICMPv6 neighbour discovery / router advertisement (control traffic, never shaped). Only a valid ND
 * message qualifies: hop limit 255 (RFC 4861: it never crossed a router, so no Internet host can use
 * it to skip the shaper), the size of a real ND message, and not under MPLS labels (ND is link-local:
 * one carried by labels or in a pseudowire is a customer's traffic like any other).
 */
#define LQOS_ND_MAX_LEN 1280
static __always_inline int lqos_is_ctrl_icmp6(const struct lqos_parsed *p)
{
	return p->l3_proto == ETH_P_IPV6 && p->l4_proto == LQOS_IPPROTO_ICMPV6 &&
	       p->ethertype != ETH_P_MPLS_UC && p->ethertype != ETH_P_MPLS_MC &&
	       p->icmp6_type >= LQOS_ICMP6_ND_FIRST && p->icmp6_type <= LQOS_ICMP6_ND_LAST &&
	       p->hop_limit == 255 && p->l4_len <= LQOS_ND_MAX_LEN;
}

/*
 * Link-layer control frames that keep the network working: ARP, slow protocols (LACP/marker), LLDP
 * and 802.3 LLC frames (STP). Any other non-IP frame (MPLS without IP inside, unknown EtherTypes, deeper tag stacks)
 * is not control: it stays in the queue's default class, which has a rate.
 */
static __always_inline int lqos_is_ctrl_l2(const struct lqos_parsed *p)
{
	return p->ethertype == 0x0806 || p->ethertype == 0x8809 || p->ethertype == 0x88cc || p->ethertype < 0x0600;
}

#endif
