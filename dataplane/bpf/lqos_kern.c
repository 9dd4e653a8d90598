// SPDX-License-Identifier: GPL-2.0-only
/*
 * lqos-ts dataplane: one XDP program (ingress of each shaping interface) and one
 * tc classifier (clsact egress, direct-action) sharing pinned maps.
 *
 *  XDP  : find the customer address for the packet's direction, resolve its class
 *         (hot cache, then LPM), count the host, hand the class to tc through XDP
 *         metadata and move the frame to the CPU owning that class's HTB (cpumap).
 *  tc   : choose the class (metadata if present, otherwise its own lookup), then set
 *         skb->priority = class and skb->queue_mapping = major so that the mq child
 *         7fff:major and its HTB major: receive the packet. Never drops.
 *
 * The shaping itself is ordinary tc (mq -> HTB per TX queue) built by userspace.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include "lqos_abi.h"
#include "lqos_parse.h"

char LICENSE[] SEC("license") = "GPL";

/* ---------------------------------------------------------------- maps */

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct lqos_lpm_key);
	__type(value, struct lqos_class_info);
	__uint(max_entries, LQOS_MAX_MAPPINGS);
} ip_to_class SEC(".maps");

/* Positive entries only; per-CPU LRU lists so CPUs do not contend on one list lock. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(map_flags, BPF_F_NO_COMMON_LRU);
	__type(key, struct lqos_addr);
	__type(value, struct lqos_hot_entry);
	__uint(max_entries, LQOS_HOT_CACHE_SIZE);
} hot_cache SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, 1);
} mapping_epoch SEC(".maps");

/* One entry per mapping (its LPM key) that saw traffic; userspace deletes it with the mapping. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct lqos_lpm_key);
	__type(value, struct lqos_host_counter);
	__uint(max_entries, LQOS_MAX_HOSTS);
} host_counters SEC(".maps");

/* Sampled addresses without a mapping (bounded: LRU + per-CPU insert gate). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct lqos_addr);
	__type(value, struct lqos_unknown_ip);
	__uint(max_entries, LQOS_UNKNOWN_SAMPLES);
} unknown_ips SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct lqos_unknown_gate);
	__uint(max_entries, 1);
} unknown_gate SEC(".maps");

/* XDP bridge / stick: where the tc ingress program sends each interface's frames. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct lqos_redirect);
	__uint(max_entries, LQOS_MAX_REDIRECTS);
} redirect_if SEC(".maps");

/* Stick: (ifindex << 16) | vid -> the other side's vid (both directions). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, LQOS_MAX_REDIRECTS);
} vlan_swap SEC(".maps");

/* LQOS_ABI_VERSION of the pinned maps (written by the loader after load). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, 1);
} lqos_abi SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_CPUMAP);
	__type(key, __u32);
	__type(value, __u32);     /* queue size; the optional program fd is not used */
	__uint(max_entries, LQOS_MAX_CPUS);
} cpu_map SEC(".maps");

/* logical queue index (IpMapping.cpu) -> physical CPU (cpu_map slot) */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, LQOS_MAX_CPUS);
} cpus_available SEC(".maps");

/* physical CPU -> 1-based TX queue (= HTB major) for packets without a class (0 = leave alone) */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, LQOS_MAX_CPUS);
} txq_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct lqos_classify_ctl);
	__uint(max_entries, 1);
} classify_ctl SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct lqos_stats);
	__uint(max_entries, 1);
} dp_stats SEC(".maps");

/* Written by the loader between open and load (bpf_map__set_initial_value). */
struct lqos_cfg lqos_cfg SEC(".data.cfg") = { .mode = LQOS_MODE_OFF };

/* ------------------------------------------------------------- helpers */

enum { DIR_DOWNLOAD = 0, DIR_UPLOAD = 1, DIR_NONE = -1 };

static __always_inline void lqos_stat_add(__u32 which, __u64 n)
{
	__u32 zero = 0;
	struct lqos_stats *st = bpf_map_lookup_elem(&dp_stats, &zero);

	if (st && which < LQOS_STAT_MAX)
		st->counter[which] += n; /* per-CPU slot: no atomics needed */
}

static __always_inline void lqos_stat(__u32 which)
{
	lqos_stat_add(which, 1);
}

/* After the stats helpers: the flow code counts LQOS_STAT_RING_DROP. */
#include "lqos_flows.h"   /* flows, flow_events, flow_ctl + lqos_track_flow() */
#include "lqos_lazy.h"    /* lazy_ctl, lazy_pending, lazy_events + lqos_lazy_first_packet() */

static __always_inline int lqos_bypassed(void)
{
	__u32 zero = 0;
	struct lqos_classify_ctl *ctl = bpf_map_lookup_elem(&classify_ctl, &zero);

	/* Missing control entry cannot happen for an ARRAY; treat it as "classify". */
	return ctl && ctl->bypass;
}

static __always_inline __u32 lqos_epoch(void)
{
	__u32 zero = 0;
	__u32 *ep = bpf_map_lookup_elem(&mapping_epoch, &zero);

	return ep ? *(volatile __u32 *)ep : 0;
}

static __always_inline int lqos_addr_eq(const struct lqos_addr *a, const struct lqos_addr *b)
{
	const __u32 *x = (const __u32 *)a->bytes, *y = (const __u32 *)b->bytes;

	return ((x[0] ^ y[0]) | (x[1] ^ y[1]) | (x[2] ^ y[2]) | (x[3] ^ y[3])) == 0;
}

/*
 * Resolve the class of one customer address. Userspace writes the LPM first and bumps the epoch
 * afterwards. A hot entry counts only when, copied to the stack, it names this address (an LRU
 * element may be reused for another key while we read it) and carries the current epoch. A miss
 * reads the LPM and caches the result only when the epoch did not move across that read, so a
 * cached entry was always resolved against LPM content at least as new as its epoch. Addresses
 * without a mapping are never cached (a random-source flood cannot fill or churn the cache).
 * Returns 1 and fills *out when a mapping exists.
 */
static __always_inline int lqos_resolve(struct lqos_addr *addr, struct lqos_class_info *out)
{
	__u32 e1 = lqos_epoch(), e2;
	struct lqos_hot_entry *hot = bpf_map_lookup_elem(&hot_cache, addr);
	struct lqos_class_info *found;
	struct lqos_lpm_key key;

	if (hot) {
		struct lqos_hot_entry copy;

		__builtin_memcpy(&copy, hot, sizeof(copy));
		if (copy.epoch == e1 && lqos_addr_eq(&copy.addr, addr)) {
			*out = copy.info;
			return 1;
		}
	}

	key.prefixlen = 128;
	key.addr = *addr;
	found = bpf_map_lookup_elem(&ip_to_class, &key);
	if (!found)
		return 0;
	*out = *found;
	e2 = lqos_epoch();
	if (e1 == e2) {
		struct lqos_hot_entry fresh = {};

		fresh.addr = *addr;
		fresh.info = *out;
		fresh.epoch = e1;
		bpf_map_update_elem(&hot_cache, addr, &fresh, BPF_ANY);
	}
	return 1;
}

/* host_counters key of a mapped address: the matched prefix, host bits cleared. */
static __always_inline void lqos_prefix_key(struct lqos_lpm_key *k, const struct lqos_addr *addr,
					    __u32 prefixlen)
{
	__u32 w[4];
	int i;

	if (prefixlen > 128)
		prefixlen = 128;
	k->prefixlen = prefixlen;
	/* Copy first, then mask the stack copy word by word (constant offsets for the verifier). */
	__builtin_memcpy(w, addr->bytes, sizeof(w));
#pragma unroll
	for (i = 0; i < 4; i++) {
		__u32 lo = i * 32;

		if (prefixlen <= lo)
			w[i] = 0;
		else if (prefixlen < lo + 32)
			w[i] &= bpf_htonl(0xffffffffu << (32 - (prefixlen - lo)));
	}
	__builtin_memcpy(k->addr.bytes, w, sizeof(w));
}

static __always_inline void lqos_count(struct lqos_addr *addr, int dir, __u64 len, __u64 now,
				       struct lqos_class_info *info)
{
	struct lqos_lpm_key key;
	struct lqos_host_counter *c;

	lqos_prefix_key(&key, addr, info->prefixlen);
	c = bpf_map_lookup_elem(&host_counters, &key);
	if (!c) {
		struct lqos_host_counter fresh = {};

		/* Insert empty, then add like everybody else: a racing insert from another CPU
		 * makes ours fail with EEXIST and both packets land in the same entry. */
		bpf_map_update_elem(&host_counters, &key, &fresh, BPF_NOEXIST);
		c = bpf_map_lookup_elem(&host_counters, &key);
		if (!c)
			return; /* map full */
	}
	if (dir == DIR_DOWNLOAD) {
		__sync_fetch_and_add(&c->bytes[0], len);
		__sync_fetch_and_add(&c->packets[0], 1);
	} else {
		__sync_fetch_and_add(&c->bytes[1], len);
		__sync_fetch_and_add(&c->packets[1], 1);
	}
	c->last_seen = now;
	c->tc_handle = info->tc_handle;
	c->circuit_hash = info->circuit_hash;
	c->device_hash = info->device_hash;
}

/* Traffic of an address without a mapping: aggregate stats + a rate-limited sample table. */
static __always_inline void lqos_count_unknown(struct lqos_addr *addr, int dir, __u64 len, __u64 now)
{
	struct lqos_unknown_ip *u;
	struct lqos_unknown_gate *gate;
	__u32 zero = 0;

	if (dir == DIR_DOWNLOAD) {
		lqos_stat_add(LQOS_STAT_UNMAPPED_BYTES_DOWN, len);
		lqos_stat(LQOS_STAT_UNMAPPED_PKTS_DOWN);
	} else {
		lqos_stat_add(LQOS_STAT_UNMAPPED_BYTES_UP, len);
		lqos_stat(LQOS_STAT_UNMAPPED_PKTS_UP);
	}

	u = bpf_map_lookup_elem(&unknown_ips, addr);
	if (u) {
		if (dir == DIR_DOWNLOAD) {
			__sync_fetch_and_add(&u->bytes[0], len);
			__sync_fetch_and_add(&u->packets[0], 1);
		} else {
			__sync_fetch_and_add(&u->bytes[1], len);
			__sync_fetch_and_add(&u->packets[1], 1);
		}
		u->last_seen = now;
		return;
	}

	gate = bpf_map_lookup_elem(&unknown_gate, &zero);
	if (!gate || now - gate->last_insert_ns < LQOS_UNKNOWN_INSERT_GAP_NS)
		return;
	gate->last_insert_ns = now;

	struct lqos_unknown_ip fresh = {};

	if (dir == DIR_DOWNLOAD) {
		fresh.bytes[0] = len;
		fresh.packets[0] = 1;
	} else {
		fresh.bytes[1] = len;
		fresh.packets[1] = 1;
	}
	fresh.first_seen = now;
	fresh.last_seen = now;
	if (bpf_map_update_elem(&unknown_ips, addr, &fresh, BPF_NOEXIST) == 0)
		lqos_stat(LQOS_STAT_UNKNOWN_SAMPLED);
}

/* Final class for a direction: upload classes live stick_offset majors higher. */
static __always_inline void lqos_apply_offset(struct lqos_class_info *info, int dir)
{
	__u32 off = lqos_cfg.stick_offset;

	if (dir == DIR_UPLOAD && off && info->tc_handle) {
		info->tc_handle += off << 16;
		info->cpu += off;
	}
}

/* Direction of a frame arriving on `ifindex` (XDP: where it came from). */
static __always_inline int lqos_ingress_dir(__u32 ifindex, __u16 vlan)
{
	if (lqos_cfg.mode == LQOS_MODE_BRIDGE) {
		if (ifindex == lqos_cfg.internet_ifindex)
			return DIR_DOWNLOAD;
		if (ifindex == lqos_cfg.isp_ifindex)
			return DIR_UPLOAD;
		return DIR_NONE;
	}
	if (lqos_cfg.mode == LQOS_MODE_STICK && ifindex == lqos_cfg.isp_ifindex) {
		if (vlan && vlan == lqos_cfg.internet_vlan)
			return DIR_DOWNLOAD;
		if (vlan && vlan == lqos_cfg.isp_vlan)
			return DIR_UPLOAD;
	}
	return DIR_NONE;
}

/* Direction of a packet leaving on `ifindex` (tc egress: where it goes). */
static __always_inline int lqos_egress_dir(__u32 ifindex, __u16 vlan)
{
	if (lqos_cfg.mode == LQOS_MODE_BRIDGE) {
		if (ifindex == lqos_cfg.isp_ifindex)
			return DIR_DOWNLOAD;
		if (ifindex == lqos_cfg.internet_ifindex)
			return DIR_UPLOAD;
		return DIR_NONE;
	}
	if (lqos_cfg.mode == LQOS_MODE_STICK && ifindex == lqos_cfg.isp_ifindex) {
		if (vlan && vlan == lqos_cfg.isp_vlan)
			return DIR_DOWNLOAD;
		if (vlan && vlan == lqos_cfg.internet_vlan)
			return DIR_UPLOAD;
	}
	return DIR_NONE;
}

/*
 * Stick: rewrite the VLAN id of the outer tag (kept inline: rxvlan offload is off) to the other side's
 * VLAN (vlan_swap), keeping PCP/DEI; with LQOS_CFG_STICK_TC_SWAP only read it (tc ingress swaps).
 * Returns the VLAN id the frame arrived with (0 = untagged or not visible to XDP), which decides the
 * direction whether or not it was swapped.
 */
static __always_inline __u16 lqos_stick_swap(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct lqos_vlan_hdr *vh = (void *)(eth + 1);
	__u32 key, *to;
	__u16 tci;

	if ((void *)(vh + 1) > data_end)
		return 0;
	if (eth->h_proto != bpf_htons(ETH_P_8021Q) && eth->h_proto != bpf_htons(ETH_P_8021AD))
		return 0;
	tci = bpf_ntohs(vh->tci);
	key = (ctx->ingress_ifindex << 16) | (tci & 0x0fff);
	to = bpf_map_lookup_elem(&vlan_swap, &key);
	if (to && !(lqos_cfg.flags & LQOS_CFG_STICK_TC_SWAP))
		vh->tci = bpf_htons((tci & 0xf000) | (*to & 0x0fff));
	return tci & 0x0fff;
}

/* ------------------------------------------------------------- XDP */

/*
 * The XDP program's body, built twice: `with_meta` is a constant, so the variant without it has no
 * bpf_xdp_adjust_meta call at all. Some kernels refuse that helper to XDP programs outright (the
 * verifier's "program of this type cannot use helper"); the loader then loads lqos_xdp_nometa, and
 * lqos_tc_egress looks each redirected frame up itself, as it does for a driver without metadata.
 */
static __always_inline int lqos_xdp_run(struct xdp_md *ctx, const int with_meta)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct lqos_parsed pkt = {};
	struct lqos_class_info info = {};
	struct lqos_addr *cust;
	struct lqos_meta *meta;
	__u32 *phys_cpu;
	__u64 len = data_end - data;
	__u64 now;
	__u16 arrived_vlan = 0;
	int dir;

	if (lqos_cfg.mode == LQOS_MODE_OFF)
		return XDP_PASS;
	/* On a stick every frame of the two VLANs changes sides, classified or not (bypass included):
	 * the tc ingress program then sends it back out of the same NIC. */
	if (lqos_cfg.mode == LQOS_MODE_STICK)
		arrived_vlan = lqos_stick_swap(ctx);
	if (lqos_bypassed())
		return XDP_PASS;
	/* A multi-buffer frame's length here is its first buffer's: IP right under MPLS labels then fails
	 * lqos_parse's length check and is left to the tc classifier, which sees the whole skb. */
	if (lqos_parse(data, data_end, 0, (__u32)len, &pkt) != LQOS_PARSE_OK)
		return XDP_PASS;
	if (lqos_cfg.mode == LQOS_MODE_STICK)
		pkt.outer_vlan = arrived_vlan; /* direction from the VLAN it arrived on */
	/* Neighbour discovery / router advertisements: never classified or moved to another CPU. */
	if (lqos_is_ctrl_icmp6(&pkt))
		return XDP_PASS;
	dir = lqos_ingress_dir(ctx->ingress_ifindex, pkt.outer_vlan);
	if (dir == DIR_NONE)
		return XDP_PASS;

	lqos_stat(LQOS_STAT_XDP_SEEN);
	/* A multi-buffer frame (jumbo MTU, frags-aware program) shows only its first buffer here: count
	 * the length its IP header gives instead (helper-free, so older kernels load the same program). */
	if (pkt.l4_off && (__u64)pkt.l4_off + pkt.l4_len > len)
		len = (__u64)pkt.l4_off + pkt.l4_len;
	cust = dir == DIR_DOWNLOAD ? &pkt.dst : &pkt.src;
	now = bpf_ktime_get_boot_ns();
	if (!lqos_resolve(cust, &info)) {
		/* No mapping: aggregate counters only; no per-address state beyond the sample table. */
		lqos_count_unknown(cust, dir, len, now);
		lqos_stat(LQOS_STAT_XDP_UNSHAPED);
		return XDP_PASS;
	}
	lqos_apply_offset(&info, dir);
	lqos_count(cust, dir, len, now, &info);
	lqos_track_flow(data, data_end, &pkt, dir, len, now, &info);
	lqos_lazy_first_packet(&info);

	if (info.tc_handle == 0) {
		/* observe-mode mapping: counted and tracked, normal path */
		lqos_stat(LQOS_STAT_XDP_UNSHAPED);
		return XDP_PASS;
	}

	phys_cpu = bpf_map_lookup_elem(&cpus_available, &info.cpu);
	if (!phys_cpu) {
		lqos_stat(LQOS_STAT_XDP_UNSHAPED);
		return XDP_PASS;
	}

	/* Metadata is optional: without driver (or kernel) support tc simply does its own lookup. */
	if (with_meta && bpf_xdp_adjust_meta(ctx, -(int)sizeof(struct lqos_meta)) == 0) {
		data = (void *)(long)ctx->data;
		meta = (void *)(long)ctx->data_meta;
		if ((void *)(meta + 1) > data)
			return XDP_PASS;
		meta->magic = LQOS_META_MAGIC;
		meta->tc_handle = info.tc_handle;
	} else {
		lqos_stat(LQOS_STAT_META_FAIL);
	}
	lqos_stat(LQOS_STAT_XDP_REDIRECT);
	/* An empty cpumap slot falls back to XDP_PASS (low bits of flags). */
	return bpf_redirect_map(&cpu_map, *phys_cpu, XDP_PASS);
}

SEC("xdp")
int lqos_xdp(struct xdp_md *ctx)
{
	return lqos_xdp_run(ctx, 1);
}

/* Loaded instead of lqos_xdp when the kernel refuses bpf_xdp_adjust_meta (15 characters: a program name's limit). */
SEC("xdp")
int lqos_xdp_nometa(struct xdp_md *ctx)
{
	return lqos_xdp_run(ctx, 0);
}

/* ------------------------------------------------------------- tc egress */

static __always_inline void lqos_set_class(struct __sk_buff *skb, __u32 handle)
{
	skb->priority = handle;
	if (handle >> 16)
		skb->queue_mapping = handle >> 16;
}

/* A class named by metadata is trusted only inside the HTB majors in use (1..max_major). */
static __always_inline int lqos_meta_class_ok(__u32 handle)
{
	__u32 major = handle >> 16;

	if (major == 0)
		return 0;
	return lqos_cfg.max_major == 0 || major <= lqos_cfg.max_major;
}

SEC("tc")
int lqos_tc_egress(struct __sk_buff *skb)
{
	struct lqos_parsed pkt = {};
	struct lqos_class_info info = {};
	struct lqos_meta *meta;
	void *data, *data_end;
	__u32 cpu, txq = 0, handle;
	__u32 *txqp;
	__u16 hw_vlan = 0;
	int rc, dir;

	if (lqos_cfg.mode == LQOS_MODE_OFF || lqos_bypassed())
		return TC_ACT_OK;

	lqos_stat(LQOS_STAT_TC_SEEN);
	/* Unclassified traffic stays on the TX queue (and HTB) of the current CPU. */
	cpu = bpf_get_smp_processor_id();
	txqp = bpf_map_lookup_elem(&txq_config, &cpu);
	if (txqp)
		txq = *txqp;
	if (txq)
		skb->queue_mapping = txq;

	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	meta = (void *)(long)skb->data_meta;
	if ((void *)(meta + 1) <= data && meta->magic == LQOS_META_MAGIC) {
		handle = meta->tc_handle;
		if (lqos_meta_class_ok(handle)) {
			lqos_set_class(skb, handle);
			lqos_stat(LQOS_STAT_TC_META);
			return TC_ACT_OK;
		}
		lqos_stat(LQOS_STAT_META_REJECT);
	}

	if (skb->vlan_present)
		hw_vlan = skb->vlan_tci & 0x0fff;
	rc = lqos_parse(data, data_end, hw_vlan, skb->len, &pkt);
	if (rc == LQOS_PARSE_SHORT) {
		/* Headers not in the linear area: pull them in and try once more. */
		if (bpf_skb_pull_data(skb, skb->len < 160 ? skb->len : 160))
			return TC_ACT_OK;
		data = (void *)(long)skb->data;
		data_end = (void *)(long)skb->data_end;
		rc = lqos_parse(data, data_end, hw_vlan, skb->len, &pkt);
	}
	if ((rc == LQOS_PARSE_NOT_IP && lqos_is_ctrl_l2(&pkt)) || (rc == LQOS_PARSE_OK && lqos_is_ctrl_icmp6(&pkt))) {
		/* ARP, STP, LACP, LLDP, ND/RA: HTB hands a packet whose priority equals its own handle
		 * (major:0) to its direct queue, past every class and rate limit. */
		if (txq) {
			skb->priority = txq << 16;
			lqos_stat(LQOS_STAT_CTRL_DIRECT);
			return TC_ACT_OK;
		}
		goto unclassified;
	}
	if (rc != LQOS_PARSE_OK)
		goto unclassified;

	dir = lqos_egress_dir(skb->ifindex, pkt.outer_vlan);
	if (dir == DIR_NONE)
		goto unclassified;
	if (!lqos_resolve(dir == DIR_DOWNLOAD ? &pkt.dst : &pkt.src, &info))
		goto unclassified;
	lqos_apply_offset(&info, dir);
	if (!info.tc_handle)
		goto unclassified;
	lqos_set_class(skb, info.tc_handle);
	lqos_stat(LQOS_STAT_TC_LOOKUP);
	return TC_ACT_OK;

unclassified:
	lqos_stat(LQOS_STAT_TC_UNCLASSIFIED);
	return TC_ACT_OK;
}

/* ------------------------------------------------------------- tc ingress (forwarding) */

/*
 * Attached only for the XDP bridge and on a stick. Sends each frame to the egress of the interface
 * redirect_if names (the other NIC; on a stick the same one), where lqos_tc_egress and the mq/HTB
 * tree shape it. Runs after XDP (and after the cpumap for redirected frames). On a stick only frames
 * of the two swapped VLANs are hairpinned; untagged frames and other VLANs go to the local stack
 * (management, and no forwarding loop for STP). Never subject to the classifier bypass: forwarding
 * must not stop when classification is switched off.
 */
SEC("tc")
int lqos_tc_ingress(struct __sk_buff *skb)
{
	__u32 ifindex = skb->ifindex;
	struct lqos_redirect *r = bpf_map_lookup_elem(&redirect_if, &ifindex);

	if (!r)
		return TC_ACT_UNSPEC;
	if (r->scan_vlans) {
		__u32 key, *to;
		__u16 tci;

		if (!skb->vlan_present)
			return TC_ACT_UNSPEC;
		tci = skb->vlan_tci;
		key = (ifindex << 16) | (tci & 0x0fff);
		to = bpf_map_lookup_elem(&vlan_swap, &key);
		if (!to)
			return TC_ACT_UNSPEC;
		if (lqos_cfg.flags & LQOS_CFG_STICK_TC_SWAP) {
			/* Generic XDP left the tag alone: swap it here (by now the stack holds the outer tag
			 * in the skb, not in the frame), keeping PCP/DEI. */
			__be16 proto = skb->vlan_proto;

			if (bpf_skb_vlan_pop(skb) || bpf_skb_vlan_push(skb, proto, (tci & 0xf000) | (*to & 0x0fff)))
				return TC_ACT_SHOT;
		}
	}
	return bpf_redirect(r->redirect_to, 0);
}
