// SPDX-License-Identifier: GPL-2.0
/*
 * Test tool, not part of the dataplane: takes a CPU away the way a busy hypervisor does. Attached to a
 * per-CPU cpu-clock perf event (test/support/cpuThief.ts), it runs in the timer interrupt with
 * interrupts off and spins for AWAY_NS, so nothing else runs on that CPU meanwhile: no task, no
 * softirq, no qdisc watchdog. bpf_loop bounds the spin (at most 2^23 steps) whatever the clock does.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#ifndef AWAY_NS
#error "build with -DAWAY_NS=<nanoseconds>"
#endif

struct spin { __u64 until; };

static long not_yet(__u64 index, void *ctx)
{
	struct spin *s = ctx;
	return bpf_ktime_get_ns() >= s->until ? 1 : 0;
}

SEC("perf_event")
int take_cpu(void *ctx)
{
	struct spin s = { .until = bpf_ktime_get_ns() + AWAY_NS };
	bpf_loop(1 << 23, not_yet, &s, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
