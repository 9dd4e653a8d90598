// SPDX-License-Identifier: GPL-2.0-only
/*
 * lqos-ts flow table reader: a BPF_PROG_TYPE_SYSCALL program that lqosd runs (BPF_PROG_TEST_RUN)
 * once per flow poll. It walks the pinned `flows` LRU hash in the kernel (bpf_for_each_map_elem)
 * and copies every entry into two memory-mapped arrays, keys and rows (struct lqos_flow_row: the
 * fields userspace reads) at the same index, which lqosd reads in place (dataplane/flowScan.ts). Kept in its own object: a kernel without syscall
 * programs or for_each (< 5.14) still loads lqos_kern.o, and lqosd falls back to the batch lookup.
 *
 * Why: the batch lookup (BPF_MAP_LOOKUP_BATCH) takes each bucket's lock, copies the entries to a
 * kernel buffer and then to the caller; at 100k flows that was 28-34 ms of system time per poll on
 * the development VM. The walk below is about half of that, with no copy to user memory.
 *
 * The arrays are written only while the program runs, so lqosd reads them after the syscall
 * returns without tearing; an entry may be copied while the XDP program updates it (as the batch
 * lookup may), which the tracker tolerates (counters only grow).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "lqos_abi.h"
/* `flows`, the pinned map of lqos_kern.o: lqosd reuses its fd before loading. */
#include "lqos_flow_table.h"

char LICENSE[] SEC("license") = "GPL";

/* Output, mapped into lqosd; max_entries set to the flows map's at load. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct lqos_flow_key);
	__uint(max_entries, LQOS_MAX_FLOWS);
} flow_scan_keys SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct lqos_flow_row);
	__uint(max_entries, LQOS_MAX_FLOWS);
} flow_scan_rows SEC(".maps");

/* The run's context (BPF_PROG_TEST_RUN ctx_in): room in the output arrays. */
struct lqos_flow_scan_args {
	__u32 capacity;
	__u32 pad;
};

struct scan_state {
	__u32 n;
	__u32 capacity;
};

static long copy_flow(void *map, struct lqos_flow_key *key, struct lqos_flow *value, struct scan_state *st)
{
	__u32 i = st->n;
	struct lqos_flow_key *k;
	struct lqos_flow_row *r;

	if (i >= st->capacity)
		return 1; /* full: stop (the flows map never holds more than the arrays) */
	k = bpf_map_lookup_elem(&flow_scan_keys, &i);
	r = bpf_map_lookup_elem(&flow_scan_rows, &i);
	if (!k || !r)
		return 1;
	__builtin_memcpy(k, key, sizeof(*k));
	/* start_ns .. next_seq are the first 64 bytes of both layouts */
	__builtin_memcpy(r, value, 64);
	r->rtt_us[0] = value->rtt_us[0];
	r->rtt_us[1] = value->rtt_us[1];
	r->tc_handle = value->tc_handle;
	r->end_status = value->end_status;
	r->flags = value->flags;
	r->tos = value->tos;
	r->pad = 0;
	r->circuit_hash = value->circuit_hash;
	r->syn_seq[0] = value->syn_seq[0];
	r->syn_seq[1] = value->syn_seq[1];
	st->n = i + 1;
	return 0;
}

/* Returns the number of entries copied (indexes 0 .. n-1 of both arrays). */
SEC("syscall")
int lqos_flow_scan(struct lqos_flow_scan_args *args)
{
	struct scan_state st = { .n = 0, .capacity = args->capacity };

	bpf_for_each_map_elem(&flows, copy_flow, &st, 0);
	return st.n;
}
