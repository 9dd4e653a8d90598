// Lab helper (not part of the dataplane): the plain baseline of the on-a-stick lab for
// bench:dataplane. On tc ingress of the shaper's trunk, it does only what forwarding on a stick needs,
// with nothing of lqos-ts: swap the outer VLAN (INTERNET_VLAN <-> NETWORK_VLAN) and send the frame
// back out of the same port (hairpin). No XDP, no CPU redirect, no qdisc.
#include <linux/pkt_cls.h>
#include "lab_vlan.h"

SEC("tc")
int stick_hairpin(struct __sk_buff *skb)
{
	__u16 to;

	switch (outer_vlan(skb)) {
	case INTERNET_VLAN:
		to = NETWORK_VLAN;
		break;
	case NETWORK_VLAN:
		to = INTERNET_VLAN;
		break;
	default:
		return TC_ACT_OK;
	}
	if (bpf_skb_vlan_pop(skb) || bpf_skb_vlan_push(skb, bpf_htons(ETH_P_8021Q), to))
		return TC_ACT_SHOT;
	return bpf_redirect(skb->ifindex, 0);
}

char _license[] SEC("license") = "GPL";
