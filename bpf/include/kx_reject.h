/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * kube-proxy's REJECT for a Service without endpoints: iptables' default reply,
 * ICMP destination unreachable / port unreachable (ICMPv6's for IPv6), for TCP as for UDP, so
 * that connect() fails at once with ECONNREFUSED instead of timing out. Built in place from the
 * offending packet (RFC 792 / RFC 4443: the message quotes its IP header, extension headers
 * included, and the first 8 bytes after it) and sent back where the packet came from; its
 * source is the Service address the client dialled.
 * No rate limit (the kernel's icmp_ratelimit does not apply to packets built here).
 */
#ifndef KX_REJECT_H
#define KX_REJECT_H

#include "kx_parse.h"
#include "kx_csum.h"

#define KX_ICMP_QUOTE_L4 8 /* bytes of the L4 header quoted */

/* What goes between the Ethernet header and the quoted datagram. */
struct kx_icmp_err {
	struct iphdr ip;
	__u8 type;
	__u8 code;
	__u16 check;
	__u32 unused;
};

/* l4 holds the first 8 bytes of the L4 header as stored. The quoted IPv4 header needs no
 * summing: its checksum is valid (the parser checked it), so it sums to 0xffff, the one's
 * complement zero. Sums are over 16-bit words as stored, which is byte-order neutral. */
static __always_inline void kx_icmp_unreach(struct kx_icmp_err *h, const struct kx_pkt *p, __u32 quote_len,
					    const __u16 *l4)
{
	const __u16 *w = (const void *)&h->ip;
	__u32 sum = 0;

	__builtin_memset(h, 0, sizeof(*h));
	h->ip.version = 4;
	h->ip.ihl = 5;
	h->ip.tos = 0xc0; /* internetwork control, as the kernel's own ICMP errors */
	h->ip.tot_len = bpf_htons(sizeof(*h) + quote_len);
	h->ip.ttl = 64;
	h->ip.protocol = IPPROTO_ICMP;
	h->ip.saddr = p->t.daddr;
	h->ip.daddr = p->t.saddr;
#pragma unroll
	for (int i = 0; i < 10; i++)
		sum += w[i];
	h->ip.check = (__u16)~kx_csum_fold(sum);
	h->type = KX_ICMP_DEST_UNREACH;
	h->code = KX_ICMP_PORT_UNREACH;
	sum = ((__u16 *)&h->type)[0] + l4[0] + l4[1] + l4[2] + l4[3];
	h->check = (__u16)~kx_csum_fold(sum);
}

/* The answer's frame, in place, for both families. XDP: the frame trimmed to Ethernet + the
 * `keep` bytes to quote, its head grown by `push` bytes of new headers (written by the caller),
 * the Ethernet addresses swapped to send it back where it came from. */
static __always_inline int kx_xdp_answer_frame(struct xdp_md *ctx, __u32 keep, __u32 push, __be16 proto)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data, old;
	int trim;

	if ((void *)(eth + 1) > data_end)
		return -1;
	__builtin_memcpy(&old, eth, sizeof(old));
	trim = (int)(sizeof(struct ethhdr) + keep) - (int)(data_end - data);
	if (trim < 0 && bpf_xdp_adjust_tail(ctx, trim))
		return -1;
	if (bpf_xdp_adjust_head(ctx, -(int)push))
		return -1;
	eth = (void *)(long)ctx->data;
	if ((void *)(eth + 1) > (void *)(long)ctx->data_end)
		return -1;
	__builtin_memcpy(eth->h_dest, old.h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, old.h_dest, ETH_ALEN);
	eth->h_proto = proto;
	return 0;
}

/* tc: the same through the skb helpers (the answer leaves by bpf_redirect to the same device). */
static __always_inline int kx_tc_answer_frame(struct __sk_buff *skb, __u32 keep, __u32 push, __be16 proto)
{
	struct ethhdr old, eth;

	if (bpf_skb_load_bytes(skb, 0, &old, sizeof(old)) ||
	    bpf_skb_change_tail(skb, sizeof(struct ethhdr) + keep, 0) ||
	    bpf_skb_change_head(skb, push, 0))
		return -1;
	__builtin_memcpy(eth.h_dest, old.h_source, ETH_ALEN);
	__builtin_memcpy(eth.h_source, old.h_dest, ETH_ALEN);
	eth.h_proto = proto;
	return bpf_skb_store_bytes(skb, 0, &eth, sizeof(eth), 0) ? -1 : 0;
}

/* XDP: the ICMP header built over the frame of the offending packet, sent back out. */
static __always_inline int kx_xdp_reject(struct xdp_md *ctx, const struct kx_pkt *p)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 l4_off = p->l4_off & 0x7f; /* bounded for the verifier: <= 14 + 60 */
	__u32 quote_len = l4_off - sizeof(struct ethhdr) + KX_ICMP_QUOTE_L4;
	struct kx_icmp_err *h;
	__u16 l4[4];

	if (data + l4_off + sizeof(l4) > data_end)
		return XDP_DROP;
	__builtin_memcpy(l4, data + l4_off, sizeof(l4));
	if (kx_xdp_answer_frame(ctx, quote_len, sizeof(*h), bpf_htons(ETH_P_IP)))
		return XDP_DROP;
	h = (void *)(long)ctx->data + sizeof(struct ethhdr);
	if ((void *)(h + 1) > (void *)(long)ctx->data_end)
		return XDP_DROP;
	kx_icmp_unreach(h, p, quote_len, l4);
	return XDP_TX;
}

/* tc (a pod's veth, ingress): the same frame, sent back out of the veth to the pod. */
static __always_inline int kx_tc_reject(struct __sk_buff *skb, const struct kx_pkt *p)
{
	__u32 l4_off = p->l4_off & 0x7f;
	__u32 quote_len = l4_off - sizeof(struct ethhdr) + KX_ICMP_QUOTE_L4;
	struct kx_icmp_err h;
	__u16 l4[4];

	if (bpf_skb_load_bytes(skb, l4_off, l4, sizeof(l4)) ||
	    kx_tc_answer_frame(skb, quote_len, sizeof(h), bpf_htons(ETH_P_IP)))
		return TC_ACT_SHOT;
	kx_icmp_unreach(&h, p, quote_len, l4);
	if (bpf_skb_store_bytes(skb, sizeof(struct ethhdr), &h, sizeof(h), 0))
		return TC_ACT_SHOT;
	return bpf_redirect(skb->ifindex, 0);
}

/* IPv6: no header checksum, but ICMPv6's covers a pseudo-header and the whole quote. */
struct kx_icmp6_err {
	struct ipv6hdr ip;
	__u8 type;
	__u8 code;
	__u16 check;
	__u32 unused;
};

#define KX_QUOTE6_MAX (40 + KX_IPV6_MAX_EXT_LEN + KX_ICMP_QUOTE_L4)

/* Sum of the quote's 32-bit words (its length is a multiple of 8: 40, extension headers of
 * 8-byte units, 8), read at constant offsets so every read is bounds-checked on its own. */
static __always_inline __u32 kx_quote6_sum(void *quote, void *data_end, __u32 len)
{
	__u32 sum = 0;

#pragma unroll
	for (int i = 0; i < KX_QUOTE6_MAX / 8; i++) {
		__u32 *w = quote + i * 8;

		if (i * 8 >= len || (void *)(w + 2) > data_end)
			break;
		sum = kx_csum_add(kx_csum_add(sum, w[0]), w[1]);
	}
	return sum;
}

static __always_inline void kx_icmp6_unreach(struct kx_icmp6_err *h, const struct kx_pkt6 *p, __u32 quote_len,
					     __u32 quote_sum)
{
	__u32 sum = quote_sum, len = sizeof(h->type) + sizeof(h->code) + sizeof(h->check) + sizeof(h->unused) + quote_len;

	__builtin_memset(h, 0, sizeof(*h));
	h->ip.version = 6;
	h->ip.payload_len = bpf_htons(len);
	h->ip.nexthdr = KX_NEXTHDR_ICMPV6;
	h->ip.hop_limit = 64;
	h->ip.saddr = p->t.daddr;
	h->ip.daddr = p->t.saddr;
	h->type = KX_ICMP6_DEST_UNREACH;
	h->code = KX_ICMP6_PORT_UNREACH;
#pragma unroll
	for (int i = 0; i < 4; i++) {
		sum = kx_csum_add(sum, h->ip.saddr.in6_u.u6_addr32[i]);
		sum = kx_csum_add(sum, h->ip.daddr.in6_u.u6_addr32[i]);
	}
	sum = kx_csum_add(sum, bpf_htonl(len));
	sum = kx_csum_add(sum, bpf_htonl(KX_NEXTHDR_ICMPV6));
	sum = kx_csum_add(sum, ((__u16 *)&h->type)[0]);
	h->check = (__u16)~kx_csum_fold(sum);
}

static __always_inline int kx_xdp_reject6(struct xdp_md *ctx, const struct kx_pkt6 *p)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 quote_len = (p->l4_off & 0x1ff) - sizeof(struct ethhdr) + KX_ICMP_QUOTE_L4;
	struct kx_icmp6_err *h;
	__u32 quote_sum;

	if (quote_len > KX_QUOTE6_MAX)
		return XDP_DROP;
	quote_sum = kx_quote6_sum(data + sizeof(struct ethhdr), data_end, quote_len);
	if (kx_xdp_answer_frame(ctx, quote_len, sizeof(*h), bpf_htons(ETH_P_IPV6)))
		return XDP_DROP;
	h = (void *)(long)ctx->data + sizeof(struct ethhdr);
	if ((void *)(h + 1) > (void *)(long)ctx->data_end)
		return XDP_DROP;
	kx_icmp6_unreach(h, p, quote_len, quote_sum);
	return XDP_TX;
}

static __always_inline int kx_tc_reject6(struct __sk_buff *skb, const struct kx_pkt6 *p)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	__u32 quote_len = (p->l4_off & 0x1ff) - sizeof(struct ethhdr) + KX_ICMP_QUOTE_L4;
	struct kx_icmp6_err h;
	__u32 quote_sum;

	if (quote_len > KX_QUOTE6_MAX)
		return TC_ACT_SHOT;
	quote_sum = kx_quote6_sum(data + sizeof(struct ethhdr), data_end, quote_len);
	if (kx_tc_answer_frame(skb, quote_len, sizeof(h), bpf_htons(ETH_P_IPV6)))
		return TC_ACT_SHOT;
	kx_icmp6_unreach(&h, p, quote_len, quote_sum);
	if (bpf_skb_store_bytes(skb, sizeof(struct ethhdr), &h, sizeof(h), 0))
		return TC_ACT_SHOT;
	return bpf_redirect(skb->ifindex, 0);
}

#endif
