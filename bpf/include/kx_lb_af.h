/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * The load-balancing decision for one address family (a template: kx_lb.h includes it once
 * per family, see kx_addr.h). It works on a copied tuple and returns what to rewrite; the
 * entry points apply it with the checksum method their hook and family allow.
 * Order: tracked flow (its reply, or its next forward packet) -> new flow.
 */

struct KX6(kx_nat) {
	kx_addr_t saddr;
	kx_addr_t daddr;
	__be16 sport;
	__be16 dport;
};

static __always_inline void KX6(kx_ct_key)(struct KX6(ct_key) *k, const kx_addr_t *saddr, const kx_addr_t *daddr,
					    __be16 sport, __be16 dport, __u8 proto)
{
	__builtin_memset(k, 0, sizeof(*k));
	k->saddr = *saddr;
	k->daddr = *daddr;
	k->sport = sport;
	k->dport = dport;
	k->proto = proto;
}

/* Ages are taken modulo 2^64, as signed: an entry stamped a day ago reads as a day old even on
 * a machine up for less than that (its stamp wrapped below 0, as the fixtures write it).
 * `now` was read before the entry was looked up: another CPU (the other direction of the flow)
 * may have refreshed it since, to a time just after `now`. Such an entry is live; a time more
 * than a second ahead is not one a packet wrote. */
static __always_inline int KX6(kx_ct_live)(const struct KX6(ct_value) *ct, __u8 proto, __u64 now)
{
	__s64 age = (__s64)(now - ct->last_seen_ns);

	if (age < 0) /* refreshed by another CPU after this one read the clock */
		return -age < (__s64)KX_CT_REFRESH_NS;
	return (__u64)age < kx_ct_lifetime_ns(proto, ct->flags);
}

/* The live entry for a key: the established table first, then the new-flow table. An expired
 * entry counts as absent (LRU eviction or an overwrite removes it later). */
static __always_inline struct KX6(ct_value) *KX6(kx_ct_find)(const struct KX6(ct_key) *k, __u64 now, int *in_new)
{
	struct KX6(ct_value) *ct = bpf_map_lookup_elem(&KX6(kx_ct), k);

	*in_new = 0;
	if (ct && KX6(kx_ct_live)(ct, k->proto, now))
		return ct;
	ct = bpf_map_lookup_elem(&KX6(kx_ct_new), k);
	*in_new = 1;
	if (ct && KX6(kx_ct_live)(ct, k->proto, now))
		return ct;
	return 0;
}

/* REPLY entry of a flow from its FWD entry. */
static __always_inline void KX6(kx_ct_reply_of)(const struct KX6(ct_key) *fk, const struct KX6(ct_value) *fv,
					   struct KX6(ct_key) *rk, struct KX6(ct_value) *rv)
{
	int snat = fv->flags & KX_CT_SNAT;

	KX6(kx_ct_key)(rk, &fv->backend_addr, snat ? &fv->nat_addr : &fk->saddr, fv->backend_port,
		  snat ? fv->nat_port : fk->sport, fk->proto);
	__builtin_memset(rv, 0, sizeof(*rv));
	rv->dir = KX_CT_REPLY;
	rv->backend_id = fv->backend_id;
	rv->rev_nat_id = fv->rev_nat_id;
	rv->flags = fv->flags;
	rv->last_seen_ns = fv->last_seen_ns;
	if (snat) {
		rv->nat_addr = fk->saddr;
		rv->nat_port = fk->sport;
	}
}

/* FWD entry of a flow from its REPLY entry and the frontend the client addressed. */
static __always_inline void KX6(kx_ct_fwd_of)(const struct KX6(ct_key) *rk, const struct KX6(ct_value) *rv,
					 const struct KX6(revnat_value) *rn, struct KX6(ct_key) *fk, struct KX6(ct_value) *fv)
{
	int snat = rv->flags & KX_CT_SNAT;

	KX6(kx_ct_key)(fk, snat ? &rv->nat_addr : &rk->daddr, &rn->addr, snat ? rv->nat_port : rk->dport,
		  rn->port, rk->proto);
	__builtin_memset(fv, 0, sizeof(*fv));
	fv->dir = KX_CT_FWD;
	fv->backend_id = rv->backend_id;
	fv->rev_nat_id = rv->rev_nat_id;
	fv->flags = rv->flags;
	fv->last_seen_ns = rv->last_seen_ns;
	fv->backend_addr = rk->saddr;
	fv->backend_port = rk->sport;
	if (snat) {
		fv->nat_addr = rk->daddr;
		fv->nat_port = rk->dport;
	}
}

/* Refreshes both entries of a flow in `map` (the hit one in place, its twin looked up, or
 * rewritten from *tv when it was evicted), at most once per KX_CT_REFRESH_NS unless the state
 * changed. *tv is the caller's scratch copy of the twin (rewritten here). */
static __always_inline void KX6(kx_ct_refresh)(void *map, struct KX6(ct_value) *hit, const struct KX6(ct_key) *tk,
					  struct KX6(ct_value) *tv, __u16 flags, __u64 now)
{
	struct KX6(ct_value) *twin;

	if (flags == hit->flags && now - hit->last_seen_ns < KX_CT_REFRESH_NS)
		return;
	hit->flags = flags;
	hit->last_seen_ns = now;
	twin = bpf_map_lookup_elem(map, tk);
	if (twin) {
		twin->flags = flags;
		twin->last_seen_ns = now;
	} else {
		tv->flags = flags;
		tv->last_seen_ns = now;
		bpf_map_update_elem(map, tk, tv, BPF_ANY);
	}
}

/* A reply of a tracked flow gets the frontend back as its source (and the original client
 * as its destination when the flow was source-NATed). Its first reply moves the flow from
 * kx_ct_new to kx_ct. fk/fv: the caller's scratch for the flow's FWD entry. */
static __always_inline int KX6(kx_reverse)(const struct KX6(kx_pkt) *p, const struct KX6(ct_key) *k, struct KX6(ct_value) *ct,
				      int in_new, __u64 now, struct KX6(kx_nat) *nat,
				      struct KX6(ct_key) *fk, struct KX6(ct_value) *fv)
{
	const struct KX6(kx_tuple) *t = &p->t;
	struct KX6(revnat_value) *rn;
	__u16 flags;

	rn = bpf_map_lookup_elem(&KX6(kx_revnat), &ct->rev_nat_id);
	if (!rn)
		return 0; /* frontend gone: nothing to translate back to */
	nat->saddr = rn->addr;
	nat->sport = rn->port;
	if (ct->flags & KX_CT_SNAT) {
		nat->daddr = ct->nat_addr;
		nat->dport = ct->nat_port;
	} else {
		nat->daddr = t->daddr;
		nat->dport = t->dport;
	}
	flags = kx_ct_next_flags(ct->flags, t->proto, KX_CT_REPLY, p->tcp_flags);
	KX6(kx_ct_fwd_of)(k, ct, rn, fk, fv);
	if (in_new) {
		ct->flags = fv->flags = flags;
		ct->last_seen_ns = fv->last_seen_ns = now;
		bpf_map_update_elem(&KX6(kx_ct), fk, fv, BPF_ANY);
		bpf_map_update_elem(&KX6(kx_ct), k, ct, BPF_ANY);
		bpf_map_delete_elem(&KX6(kx_ct_new), fk);
		bpf_map_delete_elem(&KX6(kx_ct_new), k);
		kx_count(KX_STAT_PROMOTED);
	} else {
		KX6(kx_ct_refresh)(&KX6(kx_ct), ct, fk, fv, flags, now);
	}
	return 1;
}

/* Picks a source port for a NATed flow (to the node, or the client's own address when its
 * port's reply key is taken) whose reply key is free (no live entry in either
 * table). The probe sequence is derived from the flow, so a retransmitted first packet probes
 * the same ports. When every probed port is live, a port held by a flow that has waited more
 * than KX_CT_SNAT_RECLAIM_NS for its first reply is taken over (netfilter's early drop of
 * unreplied entries): a SYN flood cannot hold the SNAT ports of a NodePort for the whole
 * SYN timeout. */
static __always_inline int KX6(kx_snat_port)(const struct KX6(kx_tuple) *t, const kx_addr_t *snat_addr,
					const struct KX6(backend_value) *be, __u64 now, __be16 *port)
{
	struct KX6(ct_key) k;
	struct KX6(ct_value) *ct;
	__u32 h = (KX_ADDR_HASH(t->saddr) ^ (t->sport << 16) ^ t->dport) * 2654435761u;
	__u16 reclaim = 0;
	int in_new;

	for (int i = 0; i < KX_SNAT_PROBES; i++) {
		__u16 p = KX_SNAT_PORT_MIN + (h + i * 7919u) % KX_SNAT_PORT_SPAN;

		KX6(kx_ct_key)(&k, &be->addr, snat_addr, be->port, bpf_htons(p), t->proto);
		ct = KX6(kx_ct_find)(&k, now, &in_new);
		if (!ct) {
			*port = bpf_htons(p);
			return 1;
		}
		if (!reclaim && in_new && (__s64)(now - ct->last_seen_ns) > (__s64)KX_CT_SNAT_RECLAIM_NS)
			reclaim = p;
	}
	if (!reclaim)
		return 0;
	kx_count(KX_STAT_SNAT_RECLAIMED);
	*port = bpf_htons(reclaim);
	return 1;
}

/* Whether the reply key a new flow would have without source NAT (backend -> client) is
 * already another live flow's: the same client port through another frontend to the same
 * backend (a port reused within the close timeout, or one socket sending to two Services).
 * Replies would then be translated to the other flow's frontend; netfilter gives the new
 * flow another source port instead (a unique tuple), and so does the caller. */
static __always_inline int KX6(kx_reply_taken)(const struct KX6(kx_tuple) *t, const struct KX6(backend_value) *be,
					      __u64 now, struct KX6(ct_key) *scratch)
{
	int in_new;

	KX6(kx_ct_key)(scratch, &be->addr, &t->saddr, be->port, t->sport, t->proto);
	return KX6(kx_ct_find)(scratch, now, &in_new) != 0;
}

/* An established flow keeps its backend. When the backend entry is gone (endpoint removed, or
 * terminating and out of the slots), TCP (and SCTP) stays on the address the flow chose, as
 * netfilter's conntrack keeps it under kube-proxy; UDP is re-balanced, as kube-proxy deletes
 * the UDP conntrack entries of an endpoint that changed. rk/rv: the caller's scratch for the
 * flow's REPLY entry. */
static __always_inline int KX6(kx_established)(const struct KX6(kx_pkt) *p, const struct KX6(ct_key) *k, struct KX6(ct_value) *ct,
					  int in_new, __u64 now, struct KX6(kx_nat) *nat,
					  struct KX6(ct_key) *rk, struct KX6(ct_value) *rv)
{
	const struct KX6(kx_tuple) *t = &p->t;
	struct KX6(backend_value) *be;

	KX6(kx_ct_reply_of)(k, ct, rk, rv);
	/* A SYN on a closed flow opens a new connection on the same tuple (a client reusing its
	 * port within the close timeout): its entries go, so it is balanced and tracked afresh. */
	if (t->proto == IPPROTO_TCP && (p->tcp_flags & (KX_TCP_SYN | KX_TCP_ACK)) == KX_TCP_SYN &&
	    (ct->flags & (KX_CT_RST | KX_CT_FIN_FWD | KX_CT_FIN_REPLY))) {
		if (in_new) {
			bpf_map_delete_elem(&KX6(kx_ct_new), rk);
			bpf_map_delete_elem(&KX6(kx_ct_new), k);
		} else {
			bpf_map_delete_elem(&KX6(kx_ct), rk);
			bpf_map_delete_elem(&KX6(kx_ct), k);
		}
		return 0;
	}
	be = bpf_map_lookup_elem(&KX6(kx_backends), &ct->backend_id);
	if (t->proto == IPPROTO_UDP &&
	    !(be && KX_ADDR_EQ(be->addr, ct->backend_addr) && be->port == ct->backend_port))
		return 0;
	nat->daddr = ct->backend_addr;
	nat->dport = ct->backend_port;
	if (ct->flags & KX_CT_SNAT) {
		nat->saddr = ct->nat_addr;
		nat->sport = ct->nat_port;
	} else {
		nat->saddr = t->saddr;
		nat->sport = t->sport;
	}
	if (in_new)
		KX6(kx_ct_refresh)(&KX6(kx_ct_new), ct, rk, rv, kx_ct_next_flags(ct->flags, t->proto, KX_CT_FWD, p->tcp_flags), now);
	else
		KX6(kx_ct_refresh)(&KX6(kx_ct), ct, rk, rv, kx_ct_next_flags(ct->flags, t->proto, KX_CT_FWD, p->tcp_flags), now);
	return 1;
}

static __always_inline int KX6(kx_lb)(const struct KX6(kx_pkt) *p, __u8 scope, struct KX6(kx_nat) *nat)
{
	const struct KX6(kx_tuple) *t = &p->t;
	struct frontend_value *fe;
	struct KX6(backend_value) *be;
	/* k: the packet's own tuple; tk/tv: the flow's other entry (each branch builds it: kept in
	 * one place, as IPv6's entries would otherwise not fit the verifier's 512-byte stack). */
	struct KX6(ct_key) k, tk;
	struct KX6(ct_value) *ct, fwd = {}, tv;
	kx_addr_t snat_addr;
	__be16 snat_port = 0;
	__u32 backend_id = 0;
	__u64 now = bpf_ktime_get_ns();
	int in_new, nat_source = 0;

	__builtin_memset(&snat_addr, 0, sizeof(snat_addr));
	if (!KX6(kx_maybe_service)(&t->daddr, t->sport))
		return KX_V_PASS;
	/* One lookup per table: the packet's tuple is either a flow's forward or its reply key. */
	KX6(kx_ct_key)(&k, &t->saddr, &t->daddr, t->sport, t->dport, t->proto);
	ct = KX6(kx_ct_find)(&k, now, &in_new);
	if (ct && ct->dir == KX_CT_REPLY) {
		if (KX6(kx_reverse)(p, &k, ct, in_new, now, nat, &tk, &tv)) {
			kx_count(KX_STAT_REPLY);
			return KX_V_NAT;
		}
		return KX_V_PASS;
	}
	if (ct && KX6(kx_established)(p, &k, ct, in_new, now, nat, &tk, &tv)) {
		kx_count(KX_STAT_ESTABLISHED);
		return KX_V_NAT;
	}

	fe = KX6(kx_frontend)(&t->daddr, t->dport, t->proto, scope);
	if (!fe)
		return KX_V_PASS;
	if (!KX6(kx_source_allowed)(fe, &t->saddr)) {
		kx_count(KX_STAT_DENIED);
		return KX_V_DROP;
	}
	if (fe->count == 0) {
		kx_count(KX_STAT_NO_BACKEND);
		if (!(fe->flags & KX_FE_REJECT))
			return KX_V_DROP;
		kx_count(KX_STAT_REJECTED);
		return KX_V_REJECT;
	}
	be = KX6(kx_select_backend)(fe, &t->saddr, now, &backend_id);
	if (!be) {
		kx_count(KX_STAT_NO_BACKEND);
		return KX_V_DROP;
	}

	if (KX6(kx_masquerade)(fe, be, &t->saddr)) {
		KX6(kx_snat_addr)(&t->daddr, &snat_addr);
		nat_source = 1;
	} else if (KX6(kx_reply_taken)(t, be, now, &tk)) {
		snat_addr = t->saddr;
		nat_source = 1;
	}
	if (nat_source && !KX6(kx_snat_port)(t, &snat_addr, be, now, &snat_port)) {
		kx_count(KX_STAT_SNAT_EXHAUSTED);
		return KX_V_DROP;
	}

	/* A TCP flow should start with a SYN: anything else means its entries were lost. */
	if (t->proto == IPPROTO_TCP && (p->tcp_flags & (KX_TCP_SYN | KX_TCP_ACK)) != KX_TCP_SYN)
		kx_count(KX_STAT_CT_LOST);

	fwd.dir = KX_CT_FWD;
	fwd.backend_id = backend_id;
	fwd.rev_nat_id = fe->rev_nat_id;
	fwd.backend_addr = be->addr;
	fwd.backend_port = be->port;
	fwd.last_seen_ns = now;
	if (snat_port) {
		fwd.flags = KX_CT_SNAT;
		fwd.nat_addr = snat_addr;
		fwd.nat_port = snat_port;
	}
	fwd.flags = kx_ct_next_flags(fwd.flags, t->proto, KX_CT_FWD, p->tcp_flags);
	KX6(kx_ct_reply_of)(&k, &fwd, &tk, &tv);
	/* New flows wait in kx_ct_new for their first reply: a flood of them cannot evict the
	 * established flows of kx_ct. */
	bpf_map_update_elem(&KX6(kx_ct_new), &k, &fwd, BPF_ANY);
	bpf_map_update_elem(&KX6(kx_ct_new), &tk, &tv, BPF_ANY);

	nat->daddr = be->addr;
	nat->dport = be->port;
	nat->saddr = snat_port ? snat_addr : t->saddr;
	nat->sport = snat_port ? snat_port : t->sport;
	kx_count(KX_STAT_NEW_FLOW);
	return KX_V_NAT;
}

