// Lab helper (not part of the dataplane): carries the 10.97.0.0/16 test path in MPLS, two labels
// deep, without the kernel's MPLS routing (absent here), so the shaper sees IP inside an MPLS label
// stack as it would between two label-switching routers. Attached in the lab's end namespaces:
//   mpls_push (tc egress):  IPv4 from 10.97.0.0/16 -> Ethernet | label 16 | label 1001 (bottom) | IPv4
//   mpls_pop  (XDP):        that frame -> Ethernet | IPv4 again (XDP, because tc cannot resize a
//                           frame the stack has already typed as MPLS)
// Label 16 has bit 8 of its little-endian word set: a parser that tests the bottom-of-stack bit with
// the wrong byte order stops at it. Senders need an MTU of 1492 on the path (8 bytes of labels), and
// only whole datagrams can be labelled (TCP's GSO segment trains are dropped: no MPLS GSO here).
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define NET_MASK 0xffff0000u
#define NET_ADDR 0x0a610000u /* 10.97.0.0/16 */
#define ETH_P_MPLS 0x8847
#define TOP_LABEL 16
#define BOTTOM_LABEL 1001
#define STACK_LEN 8

SEC("tc")
int mpls_push(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	__be32 stack[2] = {
		bpf_htonl((TOP_LABEL << 12) | 64),
		bpf_htonl((BOTTOM_LABEL << 12) | 0x100 | 64),
	};
	__be16 proto = bpf_htons(ETH_P_MPLS);

	/* Frames of other paths fall through to the next filter (the lab's VLAN tagger). */
	if ((void *)(ip + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
		return TC_ACT_UNSPEC;
	if ((bpf_ntohl(ip->saddr) & NET_MASK) != NET_ADDR)
		return TC_ACT_UNSPEC;
	/* A segment train (GSO) could not be cut up after this: this kernel has no MPLS GSO. */
	if (skb->gso_segs > 1)
		return TC_ACT_SHOT;
	if (bpf_skb_adjust_room(skb, STACK_LEN, BPF_ADJ_ROOM_MAC, 0))
		return TC_ACT_SHOT;
	if (bpf_skb_store_bytes(skb, 12, &proto, sizeof(proto), 0) ||
	    bpf_skb_store_bytes(skb, ETH_HLEN, stack, sizeof(stack), 0))
		return TC_ACT_SHOT;
	return TC_ACT_OK;
}

SEC("xdp")
int mpls_pop(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	__u8 *lse = (void *)(eth + 1);
	struct ethhdr *moved;

	if ((void *)(lse + STACK_LEN + 1) > end || eth->h_proto != bpf_htons(ETH_P_MPLS))
		return XDP_PASS;
	/* Only our own stack: bottom-of-stack on the second entry, IPv4 after it. */
	if ((lse[2] & 1) || !(lse[6] & 1) || (lse[STACK_LEN] >> 4) != 4)
		return XDP_PASS;
	/* Move the MAC addresses forward over the labels, then drop the first 8 bytes. */
	moved = (void *)(lse + STACK_LEN - ETH_HLEN);
	__builtin_memmove(moved->h_source, eth->h_source, ETH_ALEN);
	__builtin_memmove(moved->h_dest, eth->h_dest, ETH_ALEN);
	moved->h_proto = bpf_htons(ETH_P_IP);
	if (bpf_xdp_adjust_head(ctx, STACK_LEN))
		return XDP_DROP;
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
