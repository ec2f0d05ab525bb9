/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/* The XDP and tc handling of one address family (a template, see kx_addr.h): parse, then either
 * translate an ICMP error or decide (kx_lb_af.h) and rewrite, drop or reject with the family's
 * own functions. The two branches are separate BPF functions: the verifier's 512-byte stack
 * limit counts a call chain, and IPv6's conntrack temporaries and ICMPv6 copies together
 * exceed it; side by side each has the stack to itself. */

/* A translated packet: XDP_TX when --bpf-fib-forward is on and the FIB answers with a
 * neighbour on the interface it came in on (kx_fib.h), else the kernel's forwarding. */
static __always_inline int KX6(kx_xdp_forward)(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	kx_iphdr_t *ip = data + sizeof(struct ethhdr);
	struct bpf_fib_lookup fib = {};

	if (!kx_fib_on())
		return XDP_PASS;
	if ((void *)(ip + 1) > data_end || !KX6(kx_fib_params)(ip, ctx->ingress_ifindex, &fib) ||
	    bpf_fib_lookup(ctx, &fib, sizeof(fib), 0) != BPF_FIB_LKUP_RET_SUCCESS || fib.ifindex != ctx->ingress_ifindex) {
		kx_count(KX_STAT_FIB_KERNEL);
		return XDP_PASS;
	}
	__builtin_memcpy(eth->h_dest, fib.dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, fib.smac, ETH_ALEN);
	KX6(kx_xdp_fib_hop)(ip);
	kx_count(KX_STAT_FIB_FORWARDED);
	return XDP_TX;
}

/* The same in tc: bpf_redirect_neigh to the FIB's interface (it resolves the neighbour). */
static __always_inline int KX6(kx_tc_forward)(struct __sk_buff *skb)
{
	kx_iphdr_t ip;
	struct bpf_fib_lookup fib = {};
	long rc;

	if (!kx_fib_on())
		return TC_ACT_OK;
	if (bpf_skb_load_bytes(skb, sizeof(struct ethhdr), &ip, sizeof(ip)) ||
	    !KX6(kx_fib_params)(&ip, skb->ingress_ifindex, &fib)) {
		kx_count(KX_STAT_FIB_KERNEL);
		return TC_ACT_OK;
	}
	rc = bpf_fib_lookup(skb, &fib, sizeof(fib), 0);
	if ((rc != BPF_FIB_LKUP_RET_SUCCESS && rc != BPF_FIB_LKUP_RET_NO_NEIGH) || KX6(kx_tc_fib_hop)(skb, &ip)) {
		kx_count(KX_STAT_FIB_KERNEL);
		return TC_ACT_OK;
	}
	kx_count(KX_STAT_FIB_FORWARDED);
	return bpf_redirect_neigh(fib.ifindex, 0, 0, 0);
}

static __noinline int KX6(kx_xdp_service)(struct xdp_md *ctx, const struct KX6(kx_pkt) *p)
{
	struct KX6(kx_nat) nat;

	switch (KX6(kx_lb)(p, KX_SCOPE_EXT, &nat)) {
	case KX_V_NAT:
		return KX6(kx_xdp_apply)(ctx, p, &nat) ? XDP_DROP : KX6(kx_xdp_forward)(ctx);
	case KX_V_DROP:
		return XDP_DROP;
	case KX_V_REJECT:
		return KX6(kx_xdp_reject)(ctx, p);
	}
	return XDP_PASS;
}

static __noinline int KX6(kx_xdp_icmp_error)(struct xdp_md *ctx)
{
	if (KX6(kx_xdp_icmp)(ctx))
		kx_count(KX_STAT_ICMP_TRANSLATED);
	return XDP_PASS;
}

static __noinline int KX6(kx_xdp_lb)(struct xdp_md *ctx)
{
	struct KX6(kx_pkt) p = {};
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	int r = KX6(kx_parse)(data, data_end, data_end - data, &p);

	if (r == KX_PARSE_ICMP)
		return KX6(kx_xdp_icmp_error)(ctx);
	if (r != KX_PARSE_OK) {
		kx_count_parse(r);
		return XDP_PASS;
	}
	return KX6(kx_xdp_service)(ctx, &p);
}

static __noinline int KX6(kx_tc_service)(struct __sk_buff *skb, const struct KX6(kx_pkt) *p)
{
	struct KX6(kx_nat) nat;

	switch (KX6(kx_lb)(p, KX_SCOPE_INT, &nat)) {
	case KX_V_NAT:
		return KX6(kx_tc_apply)(skb, p, &nat) ? TC_ACT_SHOT : KX6(kx_tc_forward)(skb);
	case KX_V_DROP:
		return TC_ACT_SHOT;
	case KX_V_REJECT:
		return KX6(kx_tc_reject)(skb, p);
	}
	return TC_ACT_OK;
}

static __noinline int KX6(kx_tc_icmp_error)(struct __sk_buff *skb)
{
	if (KX6(kx_tc_icmp)(skb))
		kx_count(KX_STAT_ICMP_TRANSLATED);
	return TC_ACT_OK;
}

static __noinline int KX6(kx_tc_lb)(struct __sk_buff *skb)
{
	struct KX6(kx_pkt) p = {};
	int r = KX6(kx_parse)((void *)(long)skb->data, (void *)(long)skb->data_end, skb->len, &p);

	if (r == KX_PARSE_ICMP)
		return KX6(kx_tc_icmp_error)(skb);
	if (r != KX_PARSE_OK) {
		kx_count_parse(r);
		return TC_ACT_OK;
	}
	return KX6(kx_tc_service)(skb, &p);
}
