/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Flow telemetry for the XDP program: one LRU hash entry per normalised 5-tuple (customer side /
 * remote side / protocol) with bytes and packets per direction, TCP retransmits (payload segments
 * that end at or before the highest sequence already seen; keepalives and zero-window probes
 * excluded), FIN/RST end status and passive TCP RTT from timestamp echoes (pping style: the first
 * packet carrying a new TSval is remembered, the packet in the other direction whose TSecr equals
 * it closes the sample). RTT samples are written to the flow entry and, at most every rtt_gap
 * (default 100 ms) per flow and side, sent through a ring buffer; a record the full ring cannot
 * take is counted in dp_stats[LQOS_STAT_RING_DROP].
 *
 * A SYN (without ACK) whose ISN differs from the last SYN seen in that direction starts a new
 * connection on the tuple: the entry is reinitialised (a retransmitted SYN, same ISN, is not).
 *
 * The including file defines lqos_stat() (dp_stats per-CPU counter; lqos_kern.c includes this header
 * after it); it is declared here so the header reads on its own.
 *
 * Cost per packet: one flow_ctl array lookup (inlined), one hash lookup, two atomic adds and a few
 * stores; TCP adds a bounded option walk. Never changes the verdict.
 */
#ifndef LQOS_FLOWS_H
#define LQOS_FLOWS_H

#include <linux/in.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include "lqos_abi.h"
#include "lqos_parse.h"
#include "lqos_flow_table.h"

#ifndef IPPROTO_ICMPV6
#define IPPROTO_ICMPV6 58
#endif

/* dp_stats counter, defined by the includer (lqos_kern.c). */
static __always_inline void lqos_stat(__u32 which);

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, LQOS_FLOW_RINGBUF);
} flow_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct lqos_flow_ctl);
	__uint(max_entries, 1);
} flow_ctl SEC(".maps");

/* Wrap-aware "a is after b" for 32-bit sequence numbers and timestamps (RFC 7323). */
static __always_inline int lqos_after(__u32 a, __u32 b)
{
	return (__s32)(a - b) > 0;
}

/* Finds the TCP timestamp option. Returns 1 and fills tsval/tsecr (host order) when present. */
static __always_inline int lqos_tcp_ts(struct tcphdr *tcp, void *data_end, __u32 *tsval, __u32 *tsecr)
{
	__u8 *opt = (__u8 *)(tcp + 1);
	__u32 olen = tcp->doff * 4;
	__u32 off = 0;
	int i;

	if (olen <= sizeof(*tcp))
		return 0;
	olen -= sizeof(*tcp); /* <= 40 */

#pragma unroll
	for (i = 0; i < 8; i++) {
		__u8 *p;
		__u8 kind, len;

		off &= 0x3f;
		if (off >= olen)
			return 0;
		p = opt + off;
		if ((void *)(p + 1) > data_end)
			return 0;
		kind = p[0];
		if (kind == 0)
			return 0;
		if (kind == 1) {
			off += 1;
			continue;
		}
		if ((void *)(p + 2) > data_end)
			return 0;
		len = p[1];
		if (kind == 8 && len == 10) {
			__u32 v, e;

			if (off + 10 > olen || (void *)(p + 10) > data_end)
				return 0;
			__builtin_memcpy(&v, p + 2, 4);
			__builtin_memcpy(&e, p + 6, 4);
			*tsval = bpf_ntohl(v);
			*tsecr = bpf_ntohl(e);
			return 1;
		}
		if (len < 2)
			return 0;
		off += len;
	}
	return 0;
}

static __always_inline void lqos_flow_rtt(struct lqos_flow_key *key, struct lqos_flow *f, int side,
					  __u64 rtt_ns, __u64 now, __u64 gap_ns)
{
	__u32 us = rtt_ns / 1000;

	if (us == 0)
		us = 1;
	f->rtt_us[side & 1] = us;
	if (now - f->last_event_ns[side & 1] < gap_ns)
		return;
	f->last_event_ns[side & 1] = now;

	struct lqos_flow_event *e = bpf_ringbuf_reserve(&flow_events, sizeof(*e), 0);

	if (!e) {
		/* Ring full (userspace not draining fast enough): the sample is lost, count it. */
		lqos_stat(LQOS_STAT_RING_DROP);
		return;
	}
	e->key = *key;
	e->time_ns = now;
	e->circuit_hash = f->circuit_hash;
	e->rtt_us = us;
	e->tc_handle = f->tc_handle;
	e->kind = LQOS_FLOW_EVENT_RTT;
	e->side = side;
	__builtin_memset(e->pad, 0, sizeof(e->pad));
	/* No wakeup: userspace polls (ring_buffer__consume on a timer). */
	bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
}

/*
 * A SYN without ACK in direction d. The same ISN as the last SYN in that direction is a
 * retransmitted SYN: nothing changes. Any other ISN (or no SYN seen yet) opens a new connection on
 * this tuple, possibly while the old entry is still open: counters, sequence, timestamp and
 * pending RTT state and the end status start over, so the new ISN and TSvals are not compared
 * with the old connection's (false retransmits, RTT never sampled).
 */
static __always_inline void lqos_flow_syn(struct lqos_flow *f, int d, __u32 seq, __u64 now)
{
	__u8 synflag = d ? LQOS_FLOWF_SYN_UP : LQOS_FLOWF_SYN_DOWN;

	if ((f->flags & synflag) && f->syn_seq[d & 1] == seq)
		return;
	if (f->packets[0] || f->packets[1] || f->flags) {
		struct lqos_flow fresh = {};

		fresh.start_ns = now;
		fresh.last_seen_ns = now;
		fresh.tc_handle = f->tc_handle;
		fresh.circuit_hash = f->circuit_hash;
		*f = fresh;
	}
	f->syn_seq[d & 1] = seq;
	f->flags |= synflag;
}

/*
 * Retransmit accounting of a payload segment [seq, seq + payload) in direction d. A segment that
 * ends at or before next_seq (wrap-aware) carries nothing new: a retransmission (or a duplicate).
 * Keepalives and zero-window probes (0-1 byte at next_seq - 1) are not counted and never move
 * next_seq. Only a later end advances next_seq.
 */
static __always_inline void lqos_flow_seq(struct lqos_flow *f, int d, __u32 seq, __u32 payload)
{
	__u8 seqflag = d ? LQOS_FLOWF_SEQ_UP : LQOS_FLOWF_SEQ_DOWN;
	__u32 end = seq + payload;
	__u32 next = f->next_seq[d & 1];

	if (!(f->flags & seqflag)) {
		f->next_seq[d & 1] = end;
		f->flags |= seqflag;
		return;
	}
	if (lqos_after(end, next)) {
		f->next_seq[d & 1] = end;
		return;
	}
	if (payload <= 1 && seq == next - 1)
		return; /* keepalive / zero-window probe */
	f->retrans[d & 1] += 1;
}

/*
 * dir: 0 = download (remote -> customer), 1 = upload. len: frame bytes. info: class already
 * resolved for this packet (stick offset applied).
 */
static __always_inline void lqos_track_flow(void *data, void *data_end, struct lqos_parsed *pkt,
					    int dir, __u64 len, __u64 now, struct lqos_class_info *info)
{
	__u32 zero = 0;
	struct lqos_flow_ctl *ctl = bpf_map_lookup_elem(&flow_ctl, &zero);
	struct lqos_flow_key key = {};
	struct lqos_flow *f;
	struct tcphdr *tcp = 0;
	__u64 gap_ns = LQOS_RTT_EVENT_GAP_NS;
	__u16 sport = 0, dport = 0;
	__u32 l4off = pkt->l4_off;
	int d = dir & 1;

	if (ctl) {
		if (ctl->disabled)
			return;
		if (ctl->rtt_gap_ms)
			gap_ns = (__u64)ctl->rtt_gap_ms * 1000000ull;
	}

	switch (pkt->l4_proto) {
	case IPPROTO_TCP: {
		if (!l4off || l4off > 255)
			return;
		tcp = data + (l4off & 0xff);
		if ((void *)(tcp + 1) > data_end)
			return;
		sport = bpf_ntohs(tcp->source);
		dport = bpf_ntohs(tcp->dest);
		break;
	}
	case IPPROTO_UDP: {
		struct udphdr *udp;

		if (!l4off || l4off > 255)
			return;
		udp = data + (l4off & 0xff);
		if ((void *)(udp + 1) > data_end)
			return;
		sport = bpf_ntohs(udp->source);
		dport = bpf_ntohs(udp->dest);
		break;
	}
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		break;
	default:
		return;
	}

	key.proto = pkt->l4_proto;
	if (d == 0) {
		key.local = pkt->dst;
		key.remote = pkt->src;
		key.local_port = dport;
		key.remote_port = sport;
	} else {
		key.local = pkt->src;
		key.remote = pkt->dst;
		key.local_port = sport;
		key.remote_port = dport;
	}

	f = bpf_map_lookup_elem(&flows, &key);
	if (!f) {
		struct lqos_flow fresh = {};

		fresh.start_ns = now;
		fresh.last_seen_ns = now;
		/* Another CPU may have created it meanwhile: then use theirs. */
		bpf_map_update_elem(&flows, &key, &fresh, BPF_NOEXIST);
		f = bpf_map_lookup_elem(&flows, &key);
		if (!f)
			return;
	}
	if (tcp && tcp->syn && !tcp->ack)
		lqos_flow_syn(f, d, bpf_ntohl(tcp->seq), now);

	__sync_fetch_and_add(&f->bytes[d], len);
	__sync_fetch_and_add(&f->packets[d], 1);
	f->last_seen_ns = now;
	f->tos = pkt->tos;
	if (f->tc_handle != info->tc_handle)
		f->tc_handle = info->tc_handle;
	if (f->circuit_hash != info->circuit_hash)
		f->circuit_hash = info->circuit_hash;

	if (!tcp)
		return;

	/* ---- TCP: end status, retransmits, RTT */
	if (tcp->rst)
		f->end_status = LQOS_FLOW_RST;
	else if (tcp->fin && f->end_status == LQOS_FLOW_OPEN)
		f->end_status = LQOS_FLOW_FIN;

	__u32 hl = tcp->doff * 4;
	__u32 payload = pkt->l4_len > hl ? pkt->l4_len - hl : 0;
	__u32 seq = bpf_ntohl(tcp->seq);

	if (payload)
		lqos_flow_seq(f, d, seq, payload);

	__u32 tsval = 0, tsecr = 0;

	if (!lqos_tcp_ts(tcp, data_end, &tsval, &tsecr))
		return;

	/* Sender side: remember the first packet carrying a new TSval (data or SYN only: pure
	 * ACKs are echoed only when the other side next sends, which would inflate the sample). */
	if ((payload || tcp->syn) && (f->tsval[d] == 0 || lqos_after(tsval, f->tsval[d]))) {
		f->tsval[d] = tsval;
		if (f->pend_ns[d] == 0 || now - f->pend_ns[d] > LQOS_RTT_PENDING_NS) {
			f->pend_tsval[d] = tsval;
			f->pend_ns[d] = now;
		}
	}

	/* Echo side: this packet's TSecr answers a TSval sent in the other direction. A TSval sent
	 * toward the customer (d = 0) is echoed by the customer: customer-side RTT (side 0). */
	int o = d ^ 1;
	__u64 sent = f->pend_ns[o];

	if (tcp->ack && sent) {
		if (tsecr == f->pend_tsval[o]) {
			f->pend_ns[o] = 0;
			if (now > sent)
				lqos_flow_rtt(&key, f, o, now - sent, now, gap_ns);
		} else if (lqos_after(tsecr, f->pend_tsval[o])) {
			/* Its echo was missed: a later match would overstate the RTT. */
			f->pend_ns[o] = 0;
		}
	}
}

#endif
