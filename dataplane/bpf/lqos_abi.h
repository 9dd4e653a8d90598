/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * lqos-ts dataplane ABI: every structure shared between the eBPF programs and the
 * TypeScript control plane (dataplane/abi.ts mirrors these layouts byte for byte).
 * All multi-byte integers are host-endian (little-endian on x86-64) unless stated;
 * addresses are 16 bytes in network byte order (see LQOS_ADDR below).
 * Keep dataplane/README.md in sync when anything here changes.
 */
#ifndef LQOS_ABI_H
#define LQOS_ABI_H

#include <linux/types.h>

/*
 * ABI version: bumped whenever a pinned map's layout or meaning changes (even when sizes stay the
 * same). Stored in the pinned `lqos_abi` array; a loader finding another version recreates every
 * pinned map, and map users (maps.ts) refuse to touch maps of another version.
 */
#define LQOS_ABI_VERSION 2

/* Capacities (max_entries). */
#define LQOS_MAX_MAPPINGS   524288 /* ip_to_class LPM entries (NO_PREALLOC: unused capacity costs nothing) */
#define LQOS_HOT_CACHE_SIZE 524288 /* hot_cache LRU entries (BPF_F_NO_COMMON_LRU: split over the CPUs) */
#define LQOS_MAX_HOSTS      524288 /* host_counters entries: one per mapping that saw traffic (NO_PREALLOC) */
#define LQOS_UNKNOWN_SAMPLES 4096  /* unknown_ips LRU: sampled addresses without a mapping */
#define LQOS_UNKNOWN_INSERT_GAP_NS 10000000ull /* at most one new unknown_ips entry per 10 ms (~100/s, whole box) */
#define LQOS_MAX_CPUS       1024   /* cpu_map / cpus_available / txq_config slots */
#define LQOS_MAX_LAZY       524288 /* lazy_pending entries: circuits waiting for their first packet (NO_PREALLOC) */
#define LQOS_LAZY_RINGBUF   (1 << 16) /* lazy_events ring buffer bytes (16 per event: 4096 between two reads) */
#define LQOS_CPUMAP_QSIZE   2048

/* XDP -> tc metadata marker ("LQOS" read as a little-endian u32 is 0x534f514c). */
#define LQOS_META_MAGIC 0x4c514f53u

/*
 * Address encoding (LQOS_ADDR): IPv6 = the 16 address bytes as on the wire.
 * IPv4 = standard IPv4-mapped IPv6 (RFC 4291 2.5.5.2): 10 zero bytes, 0xff 0xff,
 * then the 4 IPv4 octets. An IPv4 /n prefix is stored with prefixlen n + 96.
 */
struct lqos_addr {
	__u8 bytes[16];
};

/* ip_to_class key (LPM trie): 20 bytes. */
struct lqos_lpm_key {
	__u32 prefixlen;          /* 0..128, host-endian */
	struct lqos_addr addr;    /* host bits beyond prefixlen are zero (userspace masks) */
};

/*
 * ip_to_class value: 32 bytes. tc_handle 0 = a counted but unshaped mapping (observe mode):
 * the address is counted and tracked, its packets take the normal path.
 */
struct lqos_class_info {
	__u32 cpu;                /* logical queue index, 0-based (= HTB major - 1, download side) */
	__u32 tc_handle;          /* (major << 16) | minor of the download class; 0 = unshaped */
	__u64 circuit_hash;
	__u64 device_hash;
	__u32 prefixlen;          /* prefixlen of this entry's own LPM key (userspace writes it): the
	                           * host_counters key is the matched prefix, not the address */
	__u32 reserved;           /* 0 */
};

/*
 * hot_cache value: 56 bytes. Positive entries only (addresses without a mapping are never cached).
 * The key is repeated in the value: an LRU element reused for another address while it was read
 * is detected by comparing `addr` with the looked-up address after the copy. Entries whose epoch
 * differs from mapping_epoch[0] are misses.
 */
struct lqos_hot_entry {
	struct lqos_addr addr;       /*  0 copy of the key */
	struct lqos_class_info info; /* 16 */
	__u32 epoch;                 /* 48 */
	__u32 reserved;              /* 52 */
};

/*
 * host_counters: key = the matched mapping (struct lqos_lpm_key: its prefixlen and the address
 * masked to it), so a /24 or an IPv6 /56 is one entry however many addresses it holds.
 * Value: 64 bytes, shared by all CPUs (atomic adds; not per CPU). Index 0 = download, 1 = upload.
 */
struct lqos_host_counter {
	__u64 bytes[2];
	__u64 packets[2];
	__u64 last_seen;          /* bpf_ktime_get_boot_ns() of the last packet */
	__u32 tc_handle;          /* class used for the last packet (incl. stick offset), 0 = unshaped */
	__u32 reserved;
	__u64 circuit_hash;
	__u64 device_hash;
};

/*
 * unknown_ips value: 48 bytes. A small sampled table of addresses with no mapping (for the UI's
 * "unknown IPs"): an address already present is counted (atomic adds); a new one is inserted at
 * most once per LQOS_UNKNOWN_INSERT_GAP_NS for the whole box, so a scan or a random-source flood cannot
 * turn into per-packet inserts. All unmapped traffic is also counted in dp_stats (aggregate).
 */
struct lqos_unknown_ip {
	__u64 bytes[2];
	__u64 packets[2];
	__u64 first_seen;
	__u64 last_seen;
};

/* unknown_gate value (one shared slot, key 0): when unknown_ips last got a new address (racy by design:
 * CPUs racing past the gate together add a few entries at most). */
struct lqos_unknown_gate {
	__u64 last_insert_ns;
};

/* classify_ctl value: 4 bytes (key 0 only). */
struct lqos_classify_ctl {
	__u32 bypass;             /* non-zero: XDP passes everything, tc leaves packets untouched */
};

/* dp_stats value (per CPU, key 0): 128 bytes of u64 event counters, index = enum below. */
enum lqos_stat {
	LQOS_STAT_XDP_SEEN = 0,      /* IP packets inspected by XDP in a known direction */
	LQOS_STAT_XDP_REDIRECT = 1,  /* shaped packets sent to their CPU through the cpumap */
	LQOS_STAT_XDP_UNSHAPED = 2,  /* no mapping (or tc_handle 0): passed on the RSS CPU */
	LQOS_STAT_TC_SEEN = 3,       /* packets seen by the egress classifier (not bypassed) */
	LQOS_STAT_TC_META = 4,       /* classified from XDP metadata */
	LQOS_STAT_TC_LOOKUP = 5,     /* classified by the classifier's own lookup */
	LQOS_STAT_TC_UNCLASSIFIED = 6, /* left in the queue's default class */
	LQOS_STAT_META_FAIL = 7,     /* XDP passed no metadata (driver or kernel without support) */
	LQOS_STAT_UNMAPPED_BYTES_DOWN = 8,  /* traffic toward addresses without a mapping (L2 bytes) */
	LQOS_STAT_UNMAPPED_BYTES_UP = 9,    /* traffic from addresses without a mapping */
	LQOS_STAT_UNMAPPED_PKTS_DOWN = 10,
	LQOS_STAT_UNMAPPED_PKTS_UP = 11,
	LQOS_STAT_RING_DROP = 12,    /* flow_events records lost: ring buffer full */
	LQOS_STAT_CTRL_DIRECT = 13,  /* control frames (non-IP, ICMPv6 ND/RA) sent past HTB unshaped */
	LQOS_STAT_META_REJECT = 14,  /* tc found metadata it did not trust (bad class) and looked up itself */
	LQOS_STAT_UNKNOWN_SAMPLED = 15, /* addresses inserted into unknown_ips */
	LQOS_STAT_MAX = 16,
};
struct lqos_stats {
	__u64 counter[LQOS_STAT_MAX];
};

/* XDP metadata placed right before the packet (bpf_xdp_adjust_meta): 8 bytes. */
struct lqos_meta {
	__u32 magic;              /* LQOS_META_MAGIC */
	__u32 tc_handle;          /* final class (stick offset already applied) */
};

/*
 * Forwarding by lqos-ts itself (XDP bridge and on-a-stick; a Linux bridge forwards on its own).
 * redirect_if: u32 ifindex -> lqos_redirect (8 bytes), read by the tc ingress program.
 * vlan_swap (stick only): u32 key (ifindex << 16) | vid -> u32 vid to write in its place; holds both
 * directions (internet_vlan -> isp_vlan and isp_vlan -> internet_vlan).
 */
#define LQOS_MAX_REDIRECTS 64
struct lqos_redirect {
	__u32 redirect_to;        /* ifindex whose egress (classifier + mq/HTB) receives the frame */
	__u32 scan_vlans;         /* non-zero (stick): only frames tagged with a vlan_swap VLAN are hairpinned */
};

/* Modes of struct lqos_cfg. */
#define LQOS_MODE_OFF    0    /* programs pass everything untouched */
#define LQOS_MODE_BRIDGE 1    /* two interfaces: direction from the ifindex */
#define LQOS_MODE_STICK  2    /* one interface: direction from the outer VLAN id */

/* lqos_cfg.flags */
#define LQOS_CFG_STICK_TC_SWAP 1u /* stick: tc ingress swaps the VLAN, not XDP (generic XDP: the tag
                                   * may be out of the frame, in the skb, where XDP cannot see it) */

/* Program configuration, global variable `lqos_cfg` in section .data.cfg: 32 bytes. */
struct lqos_cfg {
	__u32 mode;
	__u32 internet_ifindex;   /* Internet-facing interface (egress = upload) */
	__u32 isp_ifindex;        /* customer-facing interface (egress = download); = internet on a stick */
	__u32 stick_offset;       /* added to the major (and cpu) of upload classes */
	__u32 internet_vlan;      /* stick: VLAN id (12 bits) of the Internet side */
	__u32 isp_vlan;           /* stick: VLAN id (12 bits) of the customer side */
	__u32 max_major;          /* highest HTB major in use (queues + stick offset); tc distrusts
	                           * metadata naming a class outside 1..max_major (0 = no check) */
	__u32 flags;              /* LQOS_CFG_* */
};

/* ------------------------------------------------------------------ flow telemetry */

#define LQOS_MAX_FLOWS        131072        /* flows LRU_HASH entries (least recently used evicted when full) */
#define LQOS_FLOW_RINGBUF     (1 << 20)     /* flow_events ring buffer bytes */
#define LQOS_RTT_EVENT_GAP_NS 100000000ull  /* default: <= 10 RTT events/s per flow and side */
#define LQOS_RTT_PENDING_NS   2000000000ull /* a TSval not echoed within 2 s is given up */

/*
 * flows key: 40 bytes, normalised so both directions of a connection share one entry.
 * local = customer-side address (destination of download packets, source of upload packets).
 * Ports in host order; ICMP/ICMPv6 use ports 0 (one flow per address pair).
 */
struct lqos_flow_key {
	struct lqos_addr local;
	struct lqos_addr remote;
	__u16 local_port;
	__u16 remote_port;
	__u8 proto;               /* IPPROTO_TCP / UDP / ICMP / ICMPV6 */
	__u8 pad[3];
};

/* end_status values */
#define LQOS_FLOW_OPEN 0
#define LQOS_FLOW_FIN  1
#define LQOS_FLOW_RST  2

/* flow flags */
#define LQOS_FLOWF_SEQ_DOWN 1u    /* next_seq[0] valid */
#define LQOS_FLOWF_SEQ_UP   2u    /* next_seq[1] valid */
#define LQOS_FLOWF_SYN_DOWN 4u    /* syn_seq[0] valid (a SYN was seen toward the customer) */
#define LQOS_FLOWF_SYN_UP   8u    /* syn_seq[1] valid */

/*
 * flows value: 144 bytes. Index [0] = download (remote -> customer), [1] = upload.
 * RTT sides: [0] = customer side (TSval sent toward the customer, echoed by it; includes the
 * shaper queue), [1] = Internet side (TSval sent by the customer, echoed by the remote end).
 */
struct lqos_flow {
	__u64 start_ns;           /*   0 bpf_ktime_get_boot_ns of the first packet */
	__u64 last_seen_ns;       /*   8 */
	__u64 bytes[2];           /*  16 L2 frame bytes, as host_counters */
	__u64 packets[2];         /*  32 */
	__u32 retrans[2];         /*  48 TCP payload segments that end at or before next_seq (not
	                           *     keepalives/zero-window probes: 0-1 byte at next_seq - 1) */
	__u32 next_seq[2];        /*  56 highest seq + payload length seen per direction */
	__u32 tsval[2];           /*  64 newest TSval seen per direction */
	__u32 pend_tsval[2];      /*  72 TSval waiting for its echo, per direction it was sent in */
	__u64 pend_ns[2];         /*  80 when that TSval was first seen (0 = slot free) */
	__u64 last_event_ns[2];   /*  96 last RTT ring buffer event per side */
	__u32 rtt_us[2];          /* 112 latest RTT sample per side (0 = none yet) */
	__u32 tc_handle;          /* 120 class of the last packet (incl. stick offset), 0 = unshaped */
	__u8 end_status;          /* 124 LQOS_FLOW_OPEN / FIN / RST (sticky until a new SYN) */
	__u8 flags;               /* 125 LQOS_FLOWF_* */
	__u8 tos;                 /* 126 IPv4 TOS / IPv6 traffic class of the last packet */
	__u8 pad;                 /* 127 */
	__u64 circuit_hash;       /* 128 */
	__u32 syn_seq[2];         /* 136 ISN of the last SYN per direction: a SYN with another ISN on
	                           *     an existing entry is a new connection and resets the entry */
};

/*
 * A flow as the flow table reader (lqos_flow_scan.c) hands it to lqosd: the fields of struct
 * lqos_flow that userspace reads, without the RTT matching state (tsval, pend_*, last_event_ns).
 * 96 bytes; lib/flows reads every table row in this layout (flowAbi.ts compactFlowValues converts
 * batch-lookup values into it).
 */
struct lqos_flow_row {
	__u64 start_ns;           /*  0 */
	__u64 last_seen_ns;       /*  8 */
	__u64 bytes[2];           /* 16 */
	__u64 packets[2];         /* 32 */
	__u32 retrans[2];         /* 48 */
	__u32 next_seq[2];        /* 56 */
	__u32 rtt_us[2];          /* 64 */
	__u32 tc_handle;          /* 72 */
	__u8 end_status;          /* 76 */
	__u8 flags;               /* 77 */
	__u8 tos;                 /* 78 */
	__u8 pad;                 /* 79 */
	__u64 circuit_hash;       /* 80 */
	__u32 syn_seq[2];         /* 88 */
};

/* flow_events ring buffer record: 72 bytes. */
#define LQOS_FLOW_EVENT_RTT 1
struct lqos_flow_event {
	struct lqos_flow_key key; /*  0 */
	__u64 time_ns;            /* 40 bpf_ktime_get_boot_ns */
	__u64 circuit_hash;       /* 48 */
	__u32 rtt_us;             /* 56 */
	__u32 tc_handle;          /* 60 */
	__u8 kind;                /* 64 LQOS_FLOW_EVENT_RTT */
	__u8 side;                /* 65 0 = customer side, 1 = Internet side */
	__u8 pad[6];              /* 66 */
};

/* flow_ctl value (key 0): 8 bytes. All zero = defaults (tracking on). */
struct lqos_flow_ctl {
	__u32 disabled;           /* non-zero: no flow tracking at all */
	__u32 rtt_gap_ms;         /* minimum gap between RTT events per flow and side; 0 = 100 ms */
};

#endif
