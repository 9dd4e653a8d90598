/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Lazy queues (lib/shaping/lazyQueues.ts, dataplane/lazySignals.ts): the first packet of a circuit
 * whose class (or leaf) lqosd has not built yet is reported at once through a ring buffer, so lqosd
 * builds it within tens of milliseconds instead of at its next 1 s telemetry tick.
 *
 *  lazy_ctl[0]        non-zero while lqosd has circuits waiting (0: one inlined array read per packet)
 *  lazy_pending       circuit_hash -> 0 waiting, 1 reported (lqosd deletes the entry once it built
 *                     the circuit and writes 0 again when it removes it after its idle time)
 *  lazy_events        the circuit_hash of each 0 -> 1 change (8 bytes; a race between CPUs may
 *                     report a circuit twice, which lqosd ignores)
 */
#ifndef LQOS_LAZY_H
#define LQOS_LAZY_H

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, 1);
} lazy_ctl SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u64);
	__type(value, __u32);
	__uint(max_entries, LQOS_MAX_LAZY);
} lazy_pending SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, LQOS_LAZY_RINGBUF);
} lazy_events SEC(".maps");

/* A packet of a mapped circuit: report it if lqosd is waiting for its first packet. */
static __always_inline void lqos_lazy_first_packet(const struct lqos_class_info *info)
{
	__u32 zero = 0;
	__u32 *armed = bpf_map_lookup_elem(&lazy_ctl, &zero);
	__u32 *state;
	__u64 hash;

	if (!armed || !*armed)
		return;
	hash = info->circuit_hash;
	state = bpf_map_lookup_elem(&lazy_pending, &hash);
	if (!state || *state)
		return;
	*state = 1;
	/* No wakeup: lqosd reads the ring on a short timer, not by epoll. */
	bpf_ringbuf_output(&lazy_events, &hash, sizeof(hash), BPF_RB_NO_WAKEUP);
}

#endif
