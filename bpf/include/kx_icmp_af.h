/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * An ICMP error about a translated flow, for one address family (a template: kx_icmp.h
 * includes it once per family, see kx_addr.h): find the flow, then rewrite in place (XDP) or
 * through a copy (tc) with the family's kx_icmp_rewrite.
 */

/* The flow the quote belongs to is the REPLY entry of its reversed tuple. */
static __always_inline int KX6(kx_icmp_lookup)(const struct KX6(kx_icmp_err_pkt) *e, __u64 now, struct KX6(kx_icmp_nat) *n)
{
	struct KX6(ct_key) k;
	struct KX6(ct_value) *ct;
	struct KX6(revnat_value) *rn;
	int in_new;

	KX6(kx_ct_key)(&k, &e->in.daddr, &e->in.saddr, e->in_dport, e->in_sport, KX6(kx_icmp_quoted_proto)(e));
	ct = KX6(kx_ct_find)(&k, now, &in_new);
	if (!ct || ct->dir != KX_CT_REPLY)
		return 0;
	rn = bpf_map_lookup_elem(&KX6(kx_revnat), &ct->rev_nat_id);
	if (!rn)
		return 0;
	n->svc = rn->addr;
	n->svc_port = rn->port;
	n->client = ct->flags & KX_CT_SNAT ? ct->nat_addr : e->in.saddr;
	n->client_port = ct->flags & KX_CT_SNAT ? ct->nat_port : e->in_sport;
	return 1;
}

/* XDP: in place. Returns 1 when the packet was an ICMP error about a tracked flow. */
static __always_inline int KX6(kx_xdp_icmp)(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct KX6(kx_icmp_err_pkt) *e = data + sizeof(struct ethhdr);
	struct KX6(kx_icmp_nat) n;
	__u16 *tcsum = 0;
	__u8 proto;

	if ((void *)(e + 1) > data_end || !KX6(kx_icmp_err_ok)(e, data_end - (void *)e))
		return 0;
	if (!KX6(kx_icmp_lookup)(e, bpf_ktime_get_ns(), &n))
		return 0;
	proto = KX6(kx_icmp_quoted_proto)(e);
	if (proto == IPPROTO_TCP) {
		tcsum = (void *)e + KX6(KX_ICMP_IN_TCP_CSUM_OFF);
		if ((void *)(tcsum + 1) > data_end || KX6(kx_icmp_len)(e) < KX6(KX_ICMP_IN_TCP_CSUM_OFF) + 2)
			tcsum = 0;
	}
	KX6(kx_icmp_rewrite)(e, &n, proto == IPPROTO_UDP ? &e->in_w3 : tcsum);
	return 1;
}

/* tc: through a copy, stored back with the skb's checksum state kept right. */
static __always_inline int KX6(kx_tc_icmp)(struct __sk_buff *skb)
{
	struct KX6(kx_icmp_err_pkt) e;
	struct KX6(kx_icmp_nat) n;
	const __u32 off = sizeof(struct ethhdr);
	__u16 tcsum = 0;
	int has_tcsum = 0;
	__u8 proto;

	if (bpf_skb_load_bytes(skb, off, &e, sizeof(e)) || !KX6(kx_icmp_err_ok)(&e, skb->len - off))
		return 0;
	if (!KX6(kx_icmp_lookup)(&e, bpf_ktime_get_ns(), &n))
		return 0;
	proto = KX6(kx_icmp_quoted_proto)(&e);
	if (proto == IPPROTO_TCP && KX6(kx_icmp_len)(&e) >= KX6(KX_ICMP_IN_TCP_CSUM_OFF) + 2 &&
	    !bpf_skb_load_bytes(skb, off + KX6(KX_ICMP_IN_TCP_CSUM_OFF), &tcsum, 2))
		has_tcsum = 1;
	KX6(kx_icmp_rewrite)(&e, &n, proto == IPPROTO_UDP ? &e.in_w3 : has_tcsum ? &tcsum : 0);
	if (bpf_skb_store_bytes(skb, off, &e, sizeof(e), BPF_F_RECOMPUTE_CSUM))
		return 0;
	if (has_tcsum)
		bpf_skb_store_bytes(skb, off + KX6(KX_ICMP_IN_TCP_CSUM_OFF), &tcsum, 2, BPF_F_RECOMPUTE_CSUM);
	return 1;
}
