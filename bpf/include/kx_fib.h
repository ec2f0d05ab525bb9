/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * Opt-in forwarding of translated packets by the programs themselves (--bpf-fib-forward,
 * Cilium's bpf_fib_lookup + redirect): the packet skips the host's routing input, so a
 * translated packet carrying the node's own address as source (SNAT toward a remote backend,
 * the reverse NAT of a NodePort reply) is no martian, and it skips netfilter too — which is why
 * it is off by default: a CNI that enforces NetworkPolicy in the FORWARD chain would be bypassed.
 *  - XDP: a complete FIB answer out of the interface the packet came in on (a remote backend,
 *    a reply to an outside client) -> MACs from the answer, TTL / hop limit decremented, XDP_TX.
 *    Any other answer (no neighbour entry yet, another interface — XDP can only redirect into
 *    devices that take XDP frames —, MTU exceeded, TTL expiring) -> the kernel path, as without
 *    the option.
 *  - tc: a successful or neighbour-less FIB answer -> bpf_redirect_neigh to its interface (the
 *    kernel resolves the neighbour); MTU or TTL -> the kernel path.
 */
#ifndef KX_FIB_H
#define KX_FIB_H

#include "kx_service.h"
#include "kx_csum.h"

#define KX_AF_INET  2
#define KX_AF_INET6 10

static __always_inline int kx_fib_on(void)
{
	__u32 zero = 0;
	struct config_value *cfg = bpf_map_lookup_elem(&kx_config, &zero);

	return cfg && (cfg->flags & KX_CFG_FIB_FORWARD);
}

/* The FIB question for a translated packet's IP header; 0 when the kernel must forward it
 * (TTL / hop limit expiring: only the kernel sends the time exceeded). */
static __always_inline int kx_fib_params(const struct iphdr *iph, __u32 ifindex, struct bpf_fib_lookup *fib)
{
	if (iph->ttl <= 1)
		return 0;
	fib->family = KX_AF_INET;
	fib->tos = iph->tos;
	fib->l4_protocol = iph->protocol;
	fib->tot_len = bpf_ntohs(iph->tot_len);
	fib->ipv4_src = iph->saddr;
	fib->ipv4_dst = iph->daddr;
	fib->ifindex = ifindex;
	return 1;
}

static __always_inline int kx_fib_params6(const struct ipv6hdr *ip6, __u32 ifindex, struct bpf_fib_lookup *fib)
{
	if (ip6->hop_limit <= 1)
		return 0;
	fib->family = KX_AF_INET6;
	fib->l4_protocol = ip6->nexthdr;
	fib->tot_len = sizeof(*ip6) + bpf_ntohs(ip6->payload_len);
	__builtin_memcpy(fib->ipv6_src, &ip6->saddr, 16);
	__builtin_memcpy(fib->ipv6_dst, &ip6->daddr, 16);
	fib->ifindex = ifindex;
	return 1;
}

/* The hop a forwarding router takes: TTL (and the header checksum: TTL and protocol share a
 * 16-bit word) or hop limit decremented. XDP in place; tc through the helpers. */
static __always_inline void kx_xdp_fib_hop(struct iphdr *iph)
{
	iph->check = kx_csum_update2(iph->check, bpf_htons((__u16)iph->ttl << 8), bpf_htons((__u16)(iph->ttl - 1) << 8));
	iph->ttl--;
}

static __always_inline void kx_xdp_fib_hop6(struct ipv6hdr *ip6)
{
	ip6->hop_limit--;
}

static __always_inline int kx_tc_fib_hop(struct __sk_buff *skb, const struct iphdr *iph)
{
	const __u32 off = sizeof(struct ethhdr);
	__u8 ttl = iph->ttl - 1;

	return bpf_l3_csum_replace(skb, off + offsetof(struct iphdr, check), bpf_htons((__u16)iph->ttl << 8),
				   bpf_htons((__u16)ttl << 8), 2) ||
	       bpf_skb_store_bytes(skb, off + offsetof(struct iphdr, ttl), &ttl, 1, 0);
}

static __always_inline int kx_tc_fib_hop6(struct __sk_buff *skb, const struct ipv6hdr *ip6)
{
	__u8 hl = ip6->hop_limit - 1;

	return bpf_skb_store_bytes(skb, sizeof(struct ethhdr) + offsetof(struct ipv6hdr, hop_limit), &hl, 1, 0);
}

#endif
