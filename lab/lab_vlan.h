// Shared by the lab's on-a-stick helpers (vlan_switch.c, stick_hairpin.c), not part of the dataplane:
// the two VLANs the lab's router trunks to the shaper. lab/testbed.ts's STICK_VLANS must match.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define INTERNET_VLAN 2
#define NETWORK_VLAN 3

/* The frame's outer 802.1Q VLAN id, or 0 when it has none. On tc ingress the stack has already moved
 * the outer tag into skb metadata (skb_vlan_untag), so it is read from there. */
static __always_inline __u16 outer_vlan(const struct __sk_buff *skb)
{
	if (!skb->vlan_present || skb->vlan_proto != bpf_htons(ETH_P_8021Q))
		return 0;
	return skb->vlan_tci & 0x0fff;
}
