// SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause)
/*
 * kube-xdp dataplane: Service load balancing for IPv4 and IPv6 TCP, UDP and SCTP.
 *  - kx_xdp_ext: XDP on the node's external interfaces (NodePort, externalIPs, LoadBalancer
 *    IPs: the external scope) and reverse NAT of replies coming back from other nodes.
 *  - kx_tc_pod:  tc ingress on the pods' host-side veths (pod -> Service: the internal
 *    scope) and reverse NAT of replies leaving local backends.
 *  - kx_sock_*:  cgroup connect/sendmsg/recvmsg/getpeername hooks for the node's own sockets
 *    (host-network processes), which no packet hook sees: they get the backend's address at
 *    connect()/sendmsg() and see the Service address in recvmsg()/getpeername().
 * All share the decision (kx_service.h) and differ only in how they rewrite; each family runs
 * its instance of the same code (kx_hooks_af.h, kx_sock_af.h).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "kx_lb.h"
#include "kx_csum.h"
#include "kx_reject.h"
#include "kx_icmp.h"
#include "kx_fib.h"
#include "kx_sock.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define KX_TCP_CSUM_OFF 16
#define KX_UDP_CSUM_OFF 6
#define KX_L4_OFF_MAX_V4 0x7f  /* bounds for the verifier: 14 + 60 */
#define KX_L4_OFF_MAX_V6 0x1ff /* 14 + 40 + KX_IPV6_MAX_EXT_LEN */

/* XDP has no checksum helpers: rewrite in place and fix the checksums incrementally. This is
 * the L4 part of both families: the ports, and the L4 checksum given `diff`, the change of the
 * addresses its pseudo-header covers (SCTP's CRC32c has no pseudo-header: kx_sctp.h). */
static __always_inline int kx_xdp_l4(struct xdp_md *ctx, __u32 l4_off, __u8 proto, __u32 l4_len, __u32 diff,
				     __be16 sport, __be16 dport)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__be16 *ports = data + l4_off;
	__u16 *csum;
	__u32 *crc, old_ports;

	if ((void *)ports + sizeof(struct udphdr) > data_end)
		return -1;
	if (proto == IPPROTO_SCTP) {
		crc = (void *)ports + KX_SCTP_CSUM_OFF;
		if ((void *)(crc + 1) > data_end)
			return -1;
		old_ports = *(__u32 *)ports;
		ports[0] = sport;
		ports[1] = dport;
		*crc = kx_sctp_csum_update(*crc, old_ports, *(__u32 *)ports, l4_len);
		return 0;
	}
	csum = (void *)ports + (proto == IPPROTO_TCP ? KX_TCP_CSUM_OFF : KX_UDP_CSUM_OFF);
	if ((void *)(csum + 1) > data_end)
		return -1;
	diff = kx_csum_diff2(diff, ports[0], sport);
	diff = kx_csum_diff2(diff, ports[1], dport);
	ports[0] = sport;
	ports[1] = dport;
	/* A UDP checksum of 0 means "none" and must stay 0; a computed 0 is sent as 0xffff. */
	if (proto == IPPROTO_TCP)
		*csum = kx_csum_apply(*csum, diff);
	else if (*csum)
		*csum = kx_csum_apply(*csum, diff) ?: 0xffff;
	return 0;
}

static __always_inline int kx_xdp_apply(struct xdp_md *ctx, const struct kx_pkt *p, const struct kx_nat *nat)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct iphdr *iph = data + sizeof(struct ethhdr);
	__u32 diff = 0;

	if ((void *)(iph + 1) > data_end)
		return -1;
	if (nat->saddr != iph->saddr) {
		diff = kx_csum_diff4(diff, iph->saddr, nat->saddr);
		iph->saddr = nat->saddr;
	}
	if (nat->daddr != iph->daddr) {
		diff = kx_csum_diff4(diff, iph->daddr, nat->daddr);
		iph->daddr = nat->daddr;
	}
	iph->check = kx_csum_apply(iph->check, diff);
	return kx_xdp_l4(ctx, p->l4_off & KX_L4_OFF_MAX_V4, p->t.proto, p->l4_len, diff, nat->sport, nat->dport);
}

/* IPv6 has no header checksum: only the L4 one sees the addresses. */
static __always_inline int kx_xdp_apply6(struct xdp_md *ctx, const struct kx_pkt6 *p, const struct kx_nat6 *nat)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ipv6hdr *ip6 = data + sizeof(struct ethhdr);
	__u32 diff = 0;

	if ((void *)(ip6 + 1) > data_end)
		return -1;
	if (!kx_in6_eq(&nat->saddr, &ip6->saddr)) {
		diff = kx_csum_diff16(diff, &ip6->saddr, &nat->saddr);
		ip6->saddr = nat->saddr;
	}
	if (!kx_in6_eq(&nat->daddr, &ip6->daddr)) {
		diff = kx_csum_diff16(diff, &ip6->daddr, &nat->daddr);
		ip6->daddr = nat->daddr;
	}
	return kx_xdp_l4(ctx, p->l4_off & KX_L4_OFF_MAX_V6, p->t.proto, p->l4_len, diff, nat->sport, nat->dport);
}

/* tc: the skb may carry a partial (offloaded) L4 checksum, which only the kernel's helpers
 * update correctly, so every rewrite goes through them. This is the L4 part of both families
 * (the addresses are the caller's). SCTP has no pseudo-header: ports touch its CRC32c only (an
 * offloaded one is computed afterwards over the rewritten packet, so updating it is harmless). */
static __always_inline int kx_tc_l4(struct __sk_buff *skb, __u32 l4_off, __u8 proto, __u32 l4_len,
				    __be16 sport, __be16 dport, __be16 nsport, __be16 ndport)
{
	__u32 csum_off = l4_off + (proto == IPPROTO_TCP ? KX_TCP_CSUM_OFF : KX_UDP_CSUM_OFF);
	__u64 l4f = proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;
	__be16 ports[2] = { nsport, ndport };
	__u32 crc;
	int err = 0;

	if (proto == IPPROTO_SCTP) {
		__be16 old[2] = { sport, dport };

		if (bpf_skb_load_bytes(skb, l4_off + KX_SCTP_CSUM_OFF, &crc, 4))
			return -1;
		crc = kx_sctp_csum_update(crc, *(__u32 *)old, *(__u32 *)ports, l4_len);
		err |= bpf_skb_store_bytes(skb, l4_off, ports, 4, 0);
		err |= bpf_skb_store_bytes(skb, l4_off + KX_SCTP_CSUM_OFF, &crc, 4, 0);
		return err ? -1 : 0;
	}
	if (nsport != sport) {
		err |= bpf_l4_csum_replace(skb, csum_off, sport, nsport, l4f | 2);
		err |= bpf_skb_store_bytes(skb, l4_off, &nsport, 2, 0);
	}
	if (ndport != dport) {
		err |= bpf_l4_csum_replace(skb, csum_off, dport, ndport, l4f | 2);
		err |= bpf_skb_store_bytes(skb, l4_off + 2, &ndport, 2, 0);
	}
	return err ? -1 : 0;
}

static __always_inline __u32 kx_tc_csum_off(const __u32 l4_off, __u8 proto)
{
	return l4_off + (proto == IPPROTO_TCP ? KX_TCP_CSUM_OFF : KX_UDP_CSUM_OFF);
}

static __always_inline int kx_tc_apply(struct __sk_buff *skb, const struct kx_pkt *p, const struct kx_nat *nat)
{
	const __u32 ip_off = sizeof(struct ethhdr);
	int sctp = p->t.proto == IPPROTO_SCTP;
	__u32 csum_off = kx_tc_csum_off(p->l4_off, p->t.proto);
	__u64 l4f = (p->t.proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0) | BPF_F_PSEUDO_HDR | 4;
	int err = 0;

	if (nat->saddr != p->t.saddr) {
		if (!sctp)
			err |= bpf_l4_csum_replace(skb, csum_off, p->t.saddr, nat->saddr, l4f);
		err |= bpf_l3_csum_replace(skb, ip_off + offsetof(struct iphdr, check), p->t.saddr, nat->saddr, 4);
		err |= bpf_skb_store_bytes(skb, ip_off + offsetof(struct iphdr, saddr), &nat->saddr, 4, 0);
	}
	if (nat->daddr != p->t.daddr) {
		if (!sctp)
			err |= bpf_l4_csum_replace(skb, csum_off, p->t.daddr, nat->daddr, l4f);
		err |= bpf_l3_csum_replace(skb, ip_off + offsetof(struct iphdr, check), p->t.daddr, nat->daddr, 4);
		err |= bpf_skb_store_bytes(skb, ip_off + offsetof(struct iphdr, daddr), &nat->daddr, 4, 0);
	}
	if (err)
		return -1;
	return kx_tc_l4(skb, p->l4_off, p->t.proto, p->l4_len, p->t.sport, p->t.dport, nat->sport, nat->dport);
}

/* IPv6: an address is 16 bytes, more than bpf_l4_csum_replace takes at once: its difference
 * goes in as a precomputed sum (the helper's size 0). */
static __always_inline int kx_tc_apply6(struct __sk_buff *skb, const struct kx_pkt6 *p, const struct kx_nat6 *nat)
{
	const __u32 ip_off = sizeof(struct ethhdr);
	int sctp = p->t.proto == IPPROTO_SCTP;
	__u32 csum_off = kx_tc_csum_off(p->l4_off, p->t.proto);
	__u64 l4f = (p->t.proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0) | BPF_F_PSEUDO_HDR;
	int err = 0;
	__s64 diff;

	if (!kx_in6_eq(&nat->saddr, &p->t.saddr)) {
		diff = bpf_csum_diff((__be32 *)&p->t.saddr, 16, (__be32 *)&nat->saddr, 16, 0);
		if (!sctp)
			err |= bpf_l4_csum_replace(skb, csum_off, 0, diff, l4f);
		err |= bpf_skb_store_bytes(skb, ip_off + offsetof(struct ipv6hdr, saddr), &nat->saddr, 16, 0);
	}
	if (!kx_in6_eq(&nat->daddr, &p->t.daddr)) {
		diff = bpf_csum_diff((__be32 *)&p->t.daddr, 16, (__be32 *)&nat->daddr, 16, 0);
		if (!sctp)
			err |= bpf_l4_csum_replace(skb, csum_off, 0, diff, l4f);
		err |= bpf_skb_store_bytes(skb, ip_off + offsetof(struct ipv6hdr, daddr), &nat->daddr, 16, 0);
	}
	if (err)
		return -1;
	return kx_tc_l4(skb, p->l4_off, p->t.proto, p->l4_len, p->t.sport, p->t.dport, nat->sport, nat->dport);
}

static __always_inline void kx_count_parse(int r)
{
	if (r == KX_PARSE_FRAGMENT)
		kx_count(KX_STAT_UNTRACKABLE);
	else if (r == KX_PARSE_MALFORMED)
		kx_count(KX_STAT_MALFORMED);
}

#define KX_FAMILY_V4
#include "kx_addr.h"
#include "kx_hooks_af.h"
#undef KX_FAMILY_V4
#define KX_FAMILY_V6
#include "kx_addr.h"
#include "kx_hooks_af.h"
#undef KX_FAMILY_V6

SEC("xdp")
int kx_xdp_ext(struct xdp_md *ctx)
{
	struct ethhdr *eth = (void *)(long)ctx->data;

	if ((void *)(eth + 1) > (void *)(long)ctx->data_end)
		return XDP_PASS;
	if (eth->h_proto == bpf_htons(ETH_P_IPV6))
		return kx_xdp_lb6(ctx);
	return kx_xdp_lb(ctx);
}

SEC("tc")
int kx_tc_pod(struct __sk_buff *skb)
{
	__u32 max = skb->protocol == bpf_htons(ETH_P_IPV6) ? KX_MAX_HDR6 : KX_MAX_HDR;

	/* Headers may sit outside the linear area; pull at most what the parsers read. */
	if ((void *)(long)skb->data + max > (void *)(long)skb->data_end)
		bpf_skb_pull_data(skb, skb->len < max ? skb->len : max);
	/* Keep clang from reusing ctx+offset pointers across the call: the verifier only
	 * accepts ctx fields loaded at a fixed offset from the unmodified ctx pointer. */
	asm volatile("" : "+r"(skb));
	if (skb->protocol == bpf_htons(ETH_P_IPV6))
		return kx_tc_lb6(skb);
	return kx_tc_lb(skb);
}

/* Socket hooks (kx_sock.h). ctx->user_port holds the port in network order. The reverse hooks
 * need no namespace check: only translated sockets have entries. */
static __always_inline int kx_sock4_fwd(struct bpf_sock_addr *ctx)
{
	__be32 addr = ctx->user_ip4;
	__be16 port = (__be16)ctx->user_port;
	int v;

	if (!kx_sock_host_ns(ctx))
		return 1;
	v = kx_sock_xlate(bpf_get_socket_cookie(ctx), &addr, &port, ctx->protocol);
	if (v == KX_SOCK_NAT) {
		ctx->user_ip4 = addr;
		ctx->user_port = port;
	}
	return kx_sock_verdict(v);
}

static __always_inline void kx_sock4_rev(struct bpf_sock_addr *ctx)
{
	__be32 addr = ctx->user_ip4;
	__be16 port = (__be16)ctx->user_port;

	if (kx_sock_rev(bpf_get_socket_cookie(ctx), &addr, &port)) {
		ctx->user_ip4 = addr;
		ctx->user_port = port;
	}
}

/* The context's IPv6 address is read and written a 32-bit word at a time, as the verifier wants. */
static __always_inline void kx_sock6_get(struct bpf_sock_addr *ctx, struct in6_addr *a)
{
	a->in6_u.u6_addr32[0] = ctx->user_ip6[0];
	a->in6_u.u6_addr32[1] = ctx->user_ip6[1];
	a->in6_u.u6_addr32[2] = ctx->user_ip6[2];
	a->in6_u.u6_addr32[3] = ctx->user_ip6[3];
}

static __always_inline void kx_sock6_set(struct bpf_sock_addr *ctx, const struct in6_addr *a, __be16 port)
{
	ctx->user_ip6[0] = a->in6_u.u6_addr32[0];
	ctx->user_ip6[1] = a->in6_u.u6_addr32[1];
	ctx->user_ip6[2] = a->in6_u.u6_addr32[2];
	ctx->user_ip6[3] = a->in6_u.u6_addr32[3];
	ctx->user_port = port;
}

/* A dual-stack IPv6 socket dials an IPv4 Service as ::ffff:a.b.c.d: the IPv4 decision serves it. */
static __always_inline __be32 *kx_v4_mapped(struct in6_addr *a)
{
	__u32 *w = a->in6_u.u6_addr32;

	return w[0] == 0 && w[1] == 0 && w[2] == bpf_htonl(0xffff) ? &w[3] : 0;
}

static __always_inline int kx_sock6_fwd(struct bpf_sock_addr *ctx)
{
	struct in6_addr addr;
	__be16 port = (__be16)ctx->user_port;
	__be32 *v4;
	__u64 cookie;
	int v;

	if (!kx_sock_host_ns(ctx))
		return 1;
	kx_sock6_get(ctx, &addr);
	cookie = bpf_get_socket_cookie(ctx);
	v4 = kx_v4_mapped(&addr);
	v = v4 ? kx_sock_xlate(cookie, v4, &port, ctx->protocol) : kx_sock_xlate6(cookie, &addr, &port, ctx->protocol);
	if (v == KX_SOCK_NAT)
		kx_sock6_set(ctx, &addr, port);
	return kx_sock_verdict(v);
}

static __always_inline void kx_sock6_rev(struct bpf_sock_addr *ctx)
{
	struct in6_addr addr;
	__be16 port = (__be16)ctx->user_port;
	__u64 cookie = bpf_get_socket_cookie(ctx);
	__be32 *v4;

	kx_sock6_get(ctx, &addr);
	v4 = kx_v4_mapped(&addr);
	if (v4 ? kx_sock_rev(cookie, v4, &port) : kx_sock_rev6(cookie, &addr, &port))
		kx_sock6_set(ctx, &addr, port);
}

SEC("cgroup/connect4")
int kx_sock_connect4(struct bpf_sock_addr *ctx)
{
	return kx_sock4_fwd(ctx);
}

SEC("cgroup/sendmsg4")
int kx_sock_sendmsg4(struct bpf_sock_addr *ctx)
{
	return kx_sock4_fwd(ctx);
}

SEC("cgroup/recvmsg4")
int kx_sock_recvmsg4(struct bpf_sock_addr *ctx)
{
	kx_sock4_rev(ctx);
	return 1;
}

SEC("cgroup/getpeername4")
int kx_sock_getpeername4(struct bpf_sock_addr *ctx)
{
	kx_sock4_rev(ctx);
	return 1;
}

SEC("cgroup/connect6")
int kx_sock_connect6(struct bpf_sock_addr *ctx)
{
	return kx_sock6_fwd(ctx);
}

SEC("cgroup/sendmsg6")
int kx_sock_sendmsg6(struct bpf_sock_addr *ctx)
{
	return kx_sock6_fwd(ctx);
}

SEC("cgroup/recvmsg6")
int kx_sock_recvmsg6(struct bpf_sock_addr *ctx)
{
	kx_sock6_rev(ctx);
	return 1;
}

SEC("cgroup/getpeername6")
int kx_sock_getpeername6(struct bpf_sock_addr *ctx)
{
	kx_sock6_rev(ctx);
	return 1;
}

struct kx_gc_ctx {
	__u64 now;
	__u64 deleted;
};

static long kx_ct_gc_one(struct bpf_map *map, struct ct_key *k, struct ct_value *v, struct kx_gc_ctx *c)
{
	if (!kx_ct_live(v, k->proto, c->now) && bpf_map_delete_elem(map, k) == 0)
		c->deleted++;
	return 0;
}

static long kx_ct_gc_one6(struct bpf_map *map, struct ct_key6 *k, struct ct_value6 *v, struct kx_gc_ctx *c)
{
	if (!kx_ct_live6(v, k->proto, c->now) && bpf_map_delete_elem(map, k) == 0)
		c->deleted++;
	return 0;
}

/* Conntrack garbage collection, run by the controller through BPF_PROG_TEST_RUN (never
 * attached): deletes expired entries of both tables, with the lifetimes the packet path uses.
 * Without it, expired entries would fill the LRU tables until they evict live but idle flows. */
SEC("xdp")
int kx_ct_gc(struct xdp_md *ctx)
{
	struct kx_gc_ctx c = { .now = bpf_ktime_get_ns() };
	__u32 stat = KX_STAT_CT_EXPIRED;
	__u64 *v;

	bpf_for_each_map_elem(&kx_ct, kx_ct_gc_one, &c, 0);
	bpf_for_each_map_elem(&kx_ct_new, kx_ct_gc_one, &c, 0);
	bpf_for_each_map_elem(&kx_ct6, kx_ct_gc_one6, &c, 0);
	bpf_for_each_map_elem(&kx_ct_new6, kx_ct_gc_one6, &c, 0);
	v = bpf_map_lookup_elem(&kx_stats, &stat);
	if (v)
		*v += c.deleted;
	return XDP_PASS;
}
