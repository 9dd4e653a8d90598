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
#include "lqos_flows.h"   /* flows, flow_events, flow_ctl + lqos_track_flow() */

char LICENSE[] SEC("license") = "GPL";

/* ---------------------------------------------------------------- maps */

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct lqos_lpm_key);
	__type(value, struct lqos_class_info);
	__uint(max_entries, LQOS_MAX_MAPPINGS);
} ip_to_class SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
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

struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__type(key, struct lqos_addr);
	__type(value, struct lqos_host_counter);
	__uint(max_entries, LQOS_MAX_HOSTS);
} host_counters SEC(".maps");

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

/* physical CPU -> 1-based TX queue for packets without a class (0 = leave alone) */
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

static __always_inline void lqos_stat(__u32 which)
{
	__u32 zero = 0;
	struct lqos_stats *st = bpf_map_lookup_elem(&dp_stats, &zero);

	if (st && which < LQOS_STAT_MAX)
		st->counter[which] += 1; /* per-CPU slot: no atomics needed */
}

static __always_inline int lqos_bypassed(void)
{
	__u32 zero = 0;
	struct lqos_classify_ctl *ctl = bpf_map_lookup_elem(&classify_ctl, &zero);

	/* Missing control entry cannot happen for an ARRAY; treat it as "classify". */
	return ctl && ctl->bypass;
}

/*
 * Resolve the class of one customer address. Reads the epoch before anything
 * else: userspace writes the LPM first and bumps the epoch afterwards, so an entry
 * tagged with the current epoch was always resolved against current LPM content.
 * Returns 1 and fills *out when a mapping exists.
 */
static __always_inline int lqos_resolve(struct lqos_addr *addr, struct lqos_class_info *out)
{
	__u32 zero = 0, epoch = 0;
	__u32 *ep = bpf_map_lookup_elem(&mapping_epoch, &zero);
	struct lqos_hot_entry *hot;
	struct lqos_class_info *found;
	struct lqos_lpm_key key;
	struct lqos_hot_entry fresh = {};

	if (ep)
		epoch = *ep;
	hot = bpf_map_lookup_elem(&hot_cache, addr);
	if (hot && hot->epoch == epoch) {
		if (!(hot->flags & LQOS_HOT_KNOWN))
			return 0;
		*out = hot->info;
		return 1;
	}

	key.prefixlen = 128;
	key.addr = *addr;
	found = bpf_map_lookup_elem(&ip_to_class, &key);
	fresh.epoch = epoch;
	if (found) {
		fresh.info = *found;
		fresh.flags = LQOS_HOT_KNOWN;
		*out = *found;
	}
	bpf_map_update_elem(&hot_cache, addr, &fresh, BPF_ANY);
	return found != 0;
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

static __always_inline void lqos_count(struct lqos_addr *addr, int dir, __u64 len, __u64 now,
				       struct lqos_class_info *info)
{
	struct lqos_host_counter *c = bpf_map_lookup_elem(&host_counters, addr);

	if (c) {
		if (dir == DIR_DOWNLOAD) {
			c->bytes[0] += len;
			c->packets[0] += 1;
		} else {
			c->bytes[1] += len;
			c->packets[1] += 1;
		}
		c->last_seen = now;
		c->tc_handle = info->tc_handle;
		c->circuit_hash = info->circuit_hash;
		c->device_hash = info->device_hash;
		return;
	}

	struct lqos_host_counter fresh = {};

	if (dir == DIR_DOWNLOAD) {
		fresh.bytes[0] = len;
		fresh.packets[0] = 1;
	} else {
		fresh.bytes[1] = len;
		fresh.packets[1] = 1;
	}
	fresh.last_seen = now;
	fresh.tc_handle = info->tc_handle;
	fresh.circuit_hash = info->circuit_hash;
	fresh.device_hash = info->device_hash;
	/* Another CPU may have inserted meanwhile; losing one packet's count is fine. */
	bpf_map_update_elem(&host_counters, addr, &fresh, BPF_NOEXIST);
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

/* ------------------------------------------------------------- XDP */

SEC("xdp")
int lqos_xdp(struct xdp_md *ctx)
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
	int dir;

	if (lqos_cfg.mode == LQOS_MODE_OFF || lqos_bypassed())
		return XDP_PASS;
	if (lqos_parse(data, data_end, 0, &pkt) != LQOS_PARSE_OK)
		return XDP_PASS;
	dir = lqos_ingress_dir(ctx->ingress_ifindex, pkt.outer_vlan);
	if (dir == DIR_NONE)
		return XDP_PASS;

	lqos_stat(LQOS_STAT_XDP_SEEN);
	cust = dir == DIR_DOWNLOAD ? &pkt.dst : &pkt.src;
	if (lqos_resolve(cust, &info))
		lqos_apply_offset(&info, dir);
	else
		__builtin_memset(&info, 0, sizeof(info));
	now = bpf_ktime_get_boot_ns();
	lqos_count(cust, dir, len, now, &info);
	lqos_track_flow(data, data_end, &pkt, dir, len, now, &info);

	if (info.tc_handle == 0) {
		/* unknown or unshaped: normal path, tc uses the default class */
		lqos_stat(LQOS_STAT_XDP_UNSHAPED);
		return XDP_PASS;
	}

	phys_cpu = bpf_map_lookup_elem(&cpus_available, &info.cpu);
	if (!phys_cpu) {
		lqos_stat(LQOS_STAT_XDP_UNSHAPED);
		return XDP_PASS;
	}

	/* Metadata is optional: without driver support tc simply does its own lookup. */
	if (bpf_xdp_adjust_meta(ctx, -(int)sizeof(struct lqos_meta)) == 0) {
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

/* ------------------------------------------------------------- tc egress */

static __always_inline void lqos_set_class(struct __sk_buff *skb, __u32 handle)
{
	skb->priority = handle;
	if (handle >> 16)
		skb->queue_mapping = handle >> 16;
}

SEC("tc")
int lqos_tc_egress(struct __sk_buff *skb)
{
	struct lqos_parsed pkt = {};
	struct lqos_class_info info = {};
	struct lqos_meta *meta;
	void *data, *data_end;
	__u32 cpu;
	__u32 *txq;
	__u16 hw_vlan = 0;
	int rc, dir;

	if (lqos_cfg.mode == LQOS_MODE_OFF || lqos_bypassed())
		return TC_ACT_OK;

	lqos_stat(LQOS_STAT_TC_SEEN);
	/* Unclassified traffic stays on the TX queue (and HTB) of the current CPU. */
	cpu = bpf_get_smp_processor_id();
	txq = bpf_map_lookup_elem(&txq_config, &cpu);
	if (txq && *txq)
		skb->queue_mapping = *txq;

	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	meta = (void *)(long)skb->data_meta;
	if ((void *)(meta + 1) <= data && meta->magic == LQOS_META_MAGIC && meta->tc_handle) {
		lqos_set_class(skb, meta->tc_handle);
		lqos_stat(LQOS_STAT_TC_META);
		return TC_ACT_OK;
	}

	if (skb->vlan_present)
		hw_vlan = skb->vlan_tci & 0x0fff;
	rc = lqos_parse(data, data_end, hw_vlan, &pkt);
	if (rc == LQOS_PARSE_SHORT) {
		/* Headers not in the linear area: pull them in and try once more. */
		if (bpf_skb_pull_data(skb, skb->len < 128 ? skb->len : 128))
			return TC_ACT_OK;
		data = (void *)(long)skb->data;
		data_end = (void *)(long)skb->data_end;
		rc = lqos_parse(data, data_end, hw_vlan, &pkt);
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
