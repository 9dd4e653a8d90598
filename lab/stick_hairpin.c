// Lab helper (not part of the dataplane): the plain baseline of the on-a-stick lab for
// bench:dataplane. On tc ingress of the shaper's trunk, it does only what forwarding on a stick needs,
// with nothing of lqos-ts: swap the outer VLAN (INTERNET_VLAN <-> NETWORK_VLAN) and send the frame
// back out of the same port (hairpin). No XDP, no CPU redirect, no qdisc.
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define INTERNET_VLAN 2
#define NETWORK_VLAN 3

SEC("tc")
int stick_hairpin(struct __sk_buff *skb)
{
	__u16 to;

	/* The stack has already moved the outer tag into skb metadata (skb_vlan_untag). */
	if (!skb->vlan_present || skb->vlan_proto != bpf_htons(ETH_P_8021Q))
		return TC_ACT_OK;
	switch (skb->vlan_tci & 0x0fff) {
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
