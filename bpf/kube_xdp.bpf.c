// SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause)
/*
 * kube-xdp dataplane: Service load balancing for IPv4 TCP, UDP and SCTP.
 *  - kx_xdp_ext: XDP on the node's external interfaces (NodePort, externalIPs, LoadBalancer
 *    IPs: the external scope) and reverse NAT of replies coming back from other nodes.
 *  - kx_tc_pod:  tc ingress on the pods' host-side veths (pod -> Service: the internal
 *    scope) and reverse NAT of replies leaving local backends.
 * Both share the decision (kx_lb.h) and differ only in how they rewrite the packet.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "kx_lb.h"
#include "kx_csum.h"
#include "kx_reject.h"
#include "kx_icmp.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define KX_TCP_CSUM_OFF 16
#define KX_UDP_CSUM_OFF 6

/* XDP has no checksum helpers: rewrite in place and fix the checksums incrementally. */
static __always_inline int kx_xdp_apply(struct xdp_md *ctx, const struct kx_pkt *p,
					const struct kx_nat *nat)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct iphdr *iph = data + sizeof(struct ethhdr);
	__be16 *ports = data + (p->l4_off & 0x7f); /* bounded for the verifier: <= 14 + 60 */
	__u16 *csum = 0, c = 0;
	__u32 *crc = 0, old_ports;
	int has_csum = 0;

	if ((void *)(iph + 1) > data_end || (void *)ports + sizeof(struct udphdr) > data_end)
		return -1;
	if (p->t.proto == IPPROTO_SCTP) {
		/* no pseudo-header: only the ports enter its CRC32c (kx_sctp.h) */
		crc = (void *)ports + KX_SCTP_CSUM_OFF;
		if ((void *)(crc + 1) > data_end)
			return -1;
	} else {
		csum = (void *)ports + (p->t.proto == IPPROTO_TCP ? KX_TCP_CSUM_OFF : KX_UDP_CSUM_OFF);
		if ((void *)(csum + 1) > data_end)
			return -1;
		c = *csum;
		/* A UDP checksum of 0 means "none" and must stay 0. */
		has_csum = p->t.proto == IPPROTO_TCP || c != 0;
	}
	old_ports = *(__u32 *)ports;

	if (nat->saddr != iph->saddr) {
		iph->check = kx_csum_update4(iph->check, iph->saddr, nat->saddr);
		c = kx_csum_update4(c, iph->saddr, nat->saddr);
		iph->saddr = nat->saddr;
	}
	if (nat->daddr != iph->daddr) {
		iph->check = kx_csum_update4(iph->check, iph->daddr, nat->daddr);
		c = kx_csum_update4(c, iph->daddr, nat->daddr);
		iph->daddr = nat->daddr;
	}
	if (nat->sport != ports[0]) {
		c = kx_csum_update2(c, ports[0], nat->sport);
		ports[0] = nat->sport;
	}
	if (nat->dport != ports[1]) {
		c = kx_csum_update2(c, ports[1], nat->dport);
		ports[1] = nat->dport;
	}
	if (crc)
		*crc = kx_sctp_csum_update(*crc, old_ports, *(__u32 *)ports, p->l4_len);
	else if (has_csum)
		*csum = (p->t.proto == IPPROTO_UDP && c == 0) ? 0xffff : c;
	return 0;
}

/* tc: the skb may carry a partial (offloaded) L4 checksum, which only the kernel's helpers
 * update correctly, so every rewrite goes through them. SCTP has no pseudo-header: addresses
 * touch the IPv4 checksum only, ports the CRC32c (an offloaded one is computed afterwards over
 * the rewritten packet, so updating the field is harmless). */
static __always_inline int kx_tc_apply(struct __sk_buff *skb, const struct kx_pkt *p,
				       const struct kx_nat *nat)
{
	const __u32 ip_off = sizeof(struct ethhdr);
	int sctp = p->t.proto == IPPROTO_SCTP;
	__u32 csum_off = p->l4_off + (p->t.proto == IPPROTO_TCP ? KX_TCP_CSUM_OFF : KX_UDP_CSUM_OFF);
	__u64 l4f = p->t.proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;
	__be16 ports[2] = { nat->sport, nat->dport };
	__u32 crc;
	int err = 0;

	if (nat->saddr != p->t.saddr) {
		if (!sctp)
			err |= bpf_l4_csum_replace(skb, csum_off, p->t.saddr, nat->saddr, l4f | BPF_F_PSEUDO_HDR | 4);
		err |= bpf_l3_csum_replace(skb, ip_off + offsetof(struct iphdr, check), p->t.saddr, nat->saddr, 4);
		err |= bpf_skb_store_bytes(skb, ip_off + offsetof(struct iphdr, saddr), &nat->saddr, 4, 0);
	}
	if (nat->daddr != p->t.daddr) {
		if (!sctp)
			err |= bpf_l4_csum_replace(skb, csum_off, p->t.daddr, nat->daddr, l4f | BPF_F_PSEUDO_HDR | 4);
		err |= bpf_l3_csum_replace(skb, ip_off + offsetof(struct iphdr, check), p->t.daddr, nat->daddr, 4);
		err |= bpf_skb_store_bytes(skb, ip_off + offsetof(struct iphdr, daddr), &nat->daddr, 4, 0);
	}
	if (sctp) {
		__be16 old[2] = { p->t.sport, p->t.dport };

		if (bpf_skb_load_bytes(skb, p->l4_off + KX_SCTP_CSUM_OFF, &crc, 4))
			return -1;
		crc = kx_sctp_csum_update(crc, *(__u32 *)old, *(__u32 *)ports, p->l4_len);
		err |= bpf_skb_store_bytes(skb, p->l4_off, ports, 4, 0);
		err |= bpf_skb_store_bytes(skb, p->l4_off + KX_SCTP_CSUM_OFF, &crc, 4, 0);
		return err ? -1 : 0;
	}
	if (nat->sport != p->t.sport) {
		err |= bpf_l4_csum_replace(skb, csum_off, p->t.sport, nat->sport, l4f | 2);
		err |= bpf_skb_store_bytes(skb, p->l4_off, &nat->sport, 2, 0);
	}
	if (nat->dport != p->t.dport) {
		err |= bpf_l4_csum_replace(skb, csum_off, p->t.dport, nat->dport, l4f | 2);
		err |= bpf_skb_store_bytes(skb, p->l4_off + 2, &nat->dport, 2, 0);
	}
	return err ? -1 : 0;
}

static __always_inline void kx_count_parse(int r)
{
	if (r == KX_PARSE_FRAGMENT)
		kx_count(KX_STAT_UNTRACKABLE);
	else if (r == KX_PARSE_MALFORMED)
		kx_count(KX_STAT_MALFORMED);
}

SEC("xdp")
int kx_xdp_ext(struct xdp_md *ctx)
{
	struct kx_pkt p = {};
	struct kx_nat nat;
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	int r = kx_parse(data, data_end, data_end - data, &p);

	if (r == KX_PARSE_ICMP) {
		if (kx_xdp_icmp(ctx))
			kx_count(KX_STAT_ICMP_TRANSLATED);
		return XDP_PASS;
	}
	if (r != KX_PARSE_OK) {
		kx_count_parse(r);
		return XDP_PASS;
	}
	switch (kx_lb(&p, KX_SCOPE_EXT, &nat)) {
	case KX_V_NAT:
		return kx_xdp_apply(ctx, &p, &nat) ? XDP_DROP : XDP_PASS;
	case KX_V_DROP:
		return XDP_DROP;
	case KX_V_REJECT:
		return kx_xdp_reject(ctx, &p);
	}
	return XDP_PASS;
}

SEC("tc")
int kx_tc_pod(struct __sk_buff *skb)
{
	struct kx_pkt p = {};
	struct kx_nat nat;
	int r;

	/* Headers may sit outside the linear area; pull at most what the parser reads. */
	if ((void *)(long)skb->data + KX_MAX_HDR > (void *)(long)skb->data_end)
		bpf_skb_pull_data(skb, skb->len < KX_MAX_HDR ? skb->len : KX_MAX_HDR);
	/* Keep clang from reusing ctx+offset pointers across the call: the verifier only
	 * accepts ctx fields loaded at a fixed offset from the unmodified ctx pointer. */
	asm volatile("" : "+r"(skb));
	r = kx_parse((void *)(long)skb->data, (void *)(long)skb->data_end, skb->len, &p);
	if (r == KX_PARSE_ICMP) {
		if (kx_tc_icmp(skb))
			kx_count(KX_STAT_ICMP_TRANSLATED);
		return TC_ACT_OK;
	}
	if (r != KX_PARSE_OK) {
		kx_count_parse(r);
		return TC_ACT_OK;
	}
	switch (kx_lb(&p, KX_SCOPE_INT, &nat)) {
	case KX_V_NAT:
		return kx_tc_apply(skb, &p, &nat) ? TC_ACT_SHOT : TC_ACT_OK;
	case KX_V_DROP:
		return TC_ACT_SHOT;
	case KX_V_REJECT:
		return kx_tc_reject(skb, &p);
	}
	return TC_ACT_OK;
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
	v = bpf_map_lookup_elem(&kx_stats, &stat);
	if (v)
		*v += c.deleted;
	return XDP_PASS;
}
