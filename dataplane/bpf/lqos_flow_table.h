/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The flow table: one LRU hash entry per normalised 5-tuple (struct lqos_flow_key → struct
 * lqos_flow, bpf/lqos_abi.h). Written by the XDP program (lqos_flows.h), pinned as `flows`, and read
 * by the flow table reader (lqos_flow_scan.c), which lqosd loads with the pinned map's fd.
 */
#ifndef LQOS_FLOW_TABLE_H
#define LQOS_FLOW_TABLE_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "lqos_abi.h"

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct lqos_flow_key);
	__type(value, struct lqos_flow);
	__uint(max_entries, LQOS_MAX_FLOWS);
} flows SEC(".maps");

#endif
