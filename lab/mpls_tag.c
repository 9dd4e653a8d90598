// Lab helper (not part of the dataplane): carries two test paths across the shaper under MPLS, without
// the kernel's MPLS routing (absent here), as the shaper would see them between two label-switching
// routers. Attached in the lab's end namespaces:
//   mpls_push (tc egress): IPv4 from 10.97.0.0/16 -> Ethernet | label 16 | label 1001 (S) | IPv4
//                          IPv4 from 10.96.0.0/16 -> Ethernet | label 16 | label 1002 (S) | control
//                          word | Ethernet | IPv4   (an Ethernet pseudowire, as VPLS carries it)
//   mpls_pop  (XDP):       either frame -> Ethernet | IPv4 again (XDP, because tc cannot resize a
//                          frame the stack has already typed as MPLS)
// Label 16 has bit 8 of its little-endian word set: a parser that tests the bottom-of-stack bit with
// the wrong byte order stops at it. Senders need an MTU of 1492 (labels) or 1474 (labels, control word
// and inner Ethernet header) on the path, and only whole datagrams can be labelled (TCP's GSO segment
// trains are dropped: this kernel has no MPLS GSO).
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define NET_MASK 0xffff0000u
#define MPLS_NET 0x0a610000u /* 10.97.0.0/16: IPv4 under the labels */
#define VPLS_NET 0x0a600000u /* 10.96.0.0/16: Ethernet pseudowire */
#define ETH_P_MPLS 0x8847
#define TOP_LABEL 16
#define MPLS_LABEL 1001
#define VPLS_LABEL 1002
#define STACK_LEN 8
#define CW_LEN 4
#define VPLS_LEN (STACK_LEN + CW_LEN + ETH_HLEN)

SEC("tc")
int mpls_push(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	__be16 proto = bpf_htons(ETH_P_MPLS);
	struct {
		__be32 lse[2];
		__be32 cw;
		struct ethhdr inner;
	} __attribute__((packed)) hdr = {};
	__u32 net, len;

	/* Frames of other paths fall through to the next filter (the lab's VLAN tagger). */
	if ((void *)(ip + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
		return TC_ACT_UNSPEC;
	net = bpf_ntohl(ip->saddr) & NET_MASK;
	if (net != MPLS_NET && net != VPLS_NET)
		return TC_ACT_UNSPEC;
	/* A segment train (GSO) could not be cut up after this: this kernel has no MPLS GSO. */
	if (skb->gso_segs > 1)
		return TC_ACT_SHOT;
	hdr.lse[0] = bpf_htonl((TOP_LABEL << 12) | 64);
	if (net == MPLS_NET) {
		hdr.lse[1] = bpf_htonl((MPLS_LABEL << 12) | 0x100 | 64);
		len = STACK_LEN;
	} else {
		hdr.lse[1] = bpf_htonl((VPLS_LABEL << 12) | 0x100 | 64);
		/* control word all zero; the inner frame keeps the outer MAC addresses */
		__builtin_memcpy(hdr.inner.h_dest, eth->h_dest, ETH_ALEN);
		__builtin_memcpy(hdr.inner.h_source, eth->h_source, ETH_ALEN);
		hdr.inner.h_proto = bpf_htons(ETH_P_IP);
		len = VPLS_LEN;
	}
	if (bpf_skb_adjust_room(skb, len, BPF_ADJ_ROOM_MAC, 0))
		return TC_ACT_SHOT;
	if (bpf_skb_store_bytes(skb, 12, &proto, sizeof(proto), 0))
		return TC_ACT_SHOT;
	if (len == STACK_LEN ? bpf_skb_store_bytes(skb, ETH_HLEN, &hdr, STACK_LEN, 0)
			     : bpf_skb_store_bytes(skb, ETH_HLEN, &hdr, VPLS_LEN, 0))
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

	if ((void *)(lse + VPLS_LEN + 1) > end || eth->h_proto != bpf_htons(ETH_P_MPLS))
		return XDP_PASS;
	/* Only our own stacks: bottom-of-stack on the second entry. */
	if ((lse[2] & 1) || !(lse[6] & 1))
		return XDP_PASS;
	if ((lse[STACK_LEN] >> 4) == 0) {
		/* Pseudowire: the inner Ethernet frame after the control word becomes the frame. */
		if (bpf_xdp_adjust_head(ctx, ETH_HLEN + STACK_LEN + CW_LEN))
			return XDP_DROP;
		return XDP_PASS;
	}
	if ((lse[STACK_LEN] >> 4) != 4)
		return XDP_PASS;
	/* IPv4 under the labels: move the MAC addresses forward over the labels (the source first, it
	 * lands past the destination's old place), then drop the first 8 bytes. */
	moved = (void *)(lse + STACK_LEN - ETH_HLEN);
	__builtin_memmove(moved->h_source, eth->h_source, ETH_ALEN);
	__builtin_memmove(moved->h_dest, eth->h_dest, ETH_ALEN);
	moved->h_proto = bpf_htons(ETH_P_IP);
	if (bpf_xdp_adjust_head(ctx, STACK_LEN))
		return XDP_DROP;
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
