// Lab helper (not part of the dataplane): tags traffic of the 10.98.0.0/16 test path with
// 802.1Q VLAN 100 on egress and strips the tag on ingress, so the shaper sees a VLAN-tagged
// path without the kernel's 8021q module. Attached with tc (clsact) in the lab's end namespaces.
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define VLAN_ID 100
#define NET_MASK 0xffff0000u
#define NET_ADDR 0x0a620000u /* 10.98.0.0/16 */

SEC("tc")
int vlan_push(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	__u32 addr;

	if ((void *)(eth + 1) > end)
		return TC_ACT_OK;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);
		if ((void *)(ip + 1) > end)
			return TC_ACT_OK;
		addr = ip->saddr;
	} else if (eth->h_proto == bpf_htons(ETH_P_ARP)) {
		/* ARP for IPv4 over Ethernet: sender protocol address at offset 14 of the ARP header. */
		__u8 *arp = (void *)(eth + 1);
		if ((void *)(arp + 18) > end)
			return TC_ACT_OK;
		addr = *(__u32 *)(arp + 14);
	} else {
		return TC_ACT_OK;
	}
	if ((bpf_ntohl(addr) & NET_MASK) == NET_ADDR)
		bpf_skb_vlan_push(skb, bpf_htons(ETH_P_8021Q), VLAN_ID);
	return TC_ACT_OK;
}

SEC("tc")
int vlan_pop(struct __sk_buff *skb)
{
	if (skb->vlan_present && skb->vlan_tci == VLAN_ID)
		bpf_skb_vlan_pop(skb);
	return TC_ACT_OK;
}

char _license[] SEC("license") = "GPL";
