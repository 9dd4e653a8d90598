// Lab helper (not part of the dataplane): the "router/switch" of the on-a-stick lab, a port-based
// 802.1Q switch in tc eBPF (this kernel has neither bridge VLAN filtering nor the 8021q module).
// Three ports in the router namespace, created with fixed ifindexes by lab/testbed.ts:
//   PORT_INET  access port of VLAN INTERNET_VLAN (the Internet host)
//   PORT_CUST  access port of VLAN NETWORK_VLAN  (the customers)
//   PORT_TRUNK trunk to the shaper, both VLANs tagged
// Each VLAN has one access port and the trunk, so no MAC learning is needed. The two VLANs meet only
// through the shaper (VLAN swap + hairpin). A frame that already carries a tag on an access port
// (the lab's VLAN-tagged subscriber path) keeps it as the inner tag (802.1Q in 802.1Q).
#include <linux/pkt_cls.h>
#include "lab_vlan.h"

#define PORT_INET 11
#define PORT_CUST 12
#define PORT_TRUNK 13

static __always_inline int to_trunk(struct __sk_buff *skb, __u16 vlan)
{
	if (bpf_skb_vlan_push(skb, bpf_htons(ETH_P_8021Q), vlan))
		return TC_ACT_SHOT;
	return bpf_redirect(PORT_TRUNK, 0);
}

SEC("tc")
int sw_access_inet(struct __sk_buff *skb)
{
	return to_trunk(skb, INTERNET_VLAN);
}

SEC("tc")
int sw_access_cust(struct __sk_buff *skb)
{
	return to_trunk(skb, NETWORK_VLAN);
}

SEC("tc")
int sw_trunk(struct __sk_buff *skb)
{
	__u32 port;

	switch (outer_vlan(skb)) {
	case INTERNET_VLAN:
		port = PORT_INET;
		break;
	case NETWORK_VLAN:
		port = PORT_CUST;
		break;
	default:
		return TC_ACT_SHOT;
	}
	/* Pops the outer tag; an inner tag becomes the metadata tag and reaches the end host. */
	if (bpf_skb_vlan_pop(skb))
		return TC_ACT_SHOT;
	return bpf_redirect(port, 0);
}

char _license[] SEC("license") = "GPL";
