/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * The load-balancing decision, shared by the XDP and tc entry points. It works on a copied
 * tuple and returns what to rewrite; the entry points apply it with the checksum method
 * their hook allows. Order: reply of a tracked flow -> established flow -> new flow.
 */
#ifndef KX_LB_H
#define KX_LB_H

#include "kx_map_defs.h"
#include "kx_parse.h"

enum kx_verdict {
	KX_V_PASS = 0, /* not a Service packet: untouched */
	KX_V_NAT = 1,  /* rewrite as described by struct kx_nat */
	KX_V_DROP = 2, /* Service packet that cannot be delivered */
};

struct kx_nat {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
};

static __always_inline void kx_count(__u32 stat)
{
	__u64 *v = bpf_map_lookup_elem(&kx_stats, &stat);

	if (v)
		*v += 1;
}

static __always_inline void kx_ct_key(struct ct_key *k, __be32 saddr, __be32 daddr,
				      __be16 sport, __be16 dport, __u8 proto, __u8 dir)
{
	k->saddr = saddr;
	k->daddr = daddr;
	k->sport = sport;
	k->dport = dport;
	k->proto = proto;
	k->dir = dir;
	k->pad = 0;
}

/* A reply of a tracked flow gets the frontend back as its source (and the original client
 * as its destination when the flow was source-NATed). */
static __always_inline int kx_reverse(const struct kx_tuple *t, struct kx_nat *nat)
{
	struct ct_key k;
	struct ct_value *ct;
	struct revnat_value *rn;

	kx_ct_key(&k, t->saddr, t->daddr, t->sport, t->dport, t->proto, KX_CT_REPLY);
	ct = bpf_map_lookup_elem(&kx_ct, &k);
	if (!ct)
		return 0;
	rn = bpf_map_lookup_elem(&kx_revnat, &ct->rev_nat_id);
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
	return 1;
}

/* Picks a source port for a NATed flow whose reply key is still free. The probe sequence
 * is derived from the flow, so a retransmitted first packet probes the same ports. */
static __always_inline int kx_snat_port(const struct kx_tuple *t, __be32 snat_addr,
					const struct backend_value *be, __be16 *port)
{
	struct ct_key k;
	__u32 h = (t->saddr ^ (t->sport << 16) ^ t->dport) * 2654435761u;

	for (int i = 0; i < KX_SNAT_PROBES; i++) {
		__u16 p = KX_SNAT_PORT_MIN + (h + i * 7919u) % KX_SNAT_PORT_SPAN;

		kx_ct_key(&k, be->addr, snat_addr, be->port, bpf_htons(p), t->proto, KX_CT_REPLY);
		if (!bpf_map_lookup_elem(&kx_ct, &k)) {
			*port = bpf_htons(p);
			return 1;
		}
	}
	return 0;
}

static __always_inline int kx_pick_backend(const struct frontend_value *fe, __u32 *backend_id,
					   struct backend_value **be)
{
	struct slot_key sk = { .svc_id = fe->svc_id, .slot = bpf_get_prandom_u32() % fe->count };
	struct slot_value *sv = bpf_map_lookup_elem(&kx_slots, &sk);

	if (!sv)
		return 0;
	*be = bpf_map_lookup_elem(&kx_backends, &sv->backend_id);
	if (!*be)
		return 0;
	*backend_id = sv->backend_id;
	return 1;
}

static __always_inline int kx_lb(const struct kx_tuple *t, __u8 scope, struct kx_nat *nat)
{
	struct frontend_key fk = { .addr = t->daddr, .port = t->dport, .proto = t->proto, .scope = scope };
	struct frontend_value *fe;
	struct backend_value *be = 0;
	struct ct_key k;
	struct ct_value *ct, fwd = {}, rev = {};
	__be32 snat_addr = 0;
	__be16 snat_port = 0;
	__u32 zero = 0, backend_id = 0;

	if (kx_reverse(t, nat)) {
		kx_count(KX_STAT_REPLY);
		return KX_V_NAT;
	}

	/* An established flow keeps its backend as long as that backend exists. */
	kx_ct_key(&k, t->saddr, t->daddr, t->sport, t->dport, t->proto, KX_CT_FWD);
	ct = bpf_map_lookup_elem(&kx_ct, &k);
	if (ct) {
		be = bpf_map_lookup_elem(&kx_backends, &ct->backend_id);
		if (be) {
			nat->daddr = be->addr;
			nat->dport = be->port;
			if (ct->flags & KX_CT_SNAT) {
				nat->saddr = ct->nat_addr;
				nat->sport = ct->nat_port;
			} else {
				nat->saddr = t->saddr;
				nat->sport = t->sport;
			}
			kx_count(KX_STAT_ESTABLISHED);
			return KX_V_NAT;
		}
	}

	fe = bpf_map_lookup_elem(&kx_frontends, &fk);
	if (!fe)
		return KX_V_PASS;
	if (fe->count == 0 || !kx_pick_backend(fe, &backend_id, &be)) {
		kx_count(KX_STAT_NO_BACKEND);
		return KX_V_DROP;
	}

	/* Source NAT to the node: NodePort-style traffic leaving for another node must come back
	 * through this one (unless the policy is Local), and a pod that reaches itself through a
	 * Service (hairpin) must not see its own address as the peer. */
	if ((scope == KX_SCOPE_EXT && (fe->flags & KX_FE_NODEPORT) &&
	     !(fe->flags & KX_FE_LOCAL_ONLY) && !(be->flags & KX_BE_LOCAL)) ||
	    t->saddr == be->addr) {
		struct config_value *cfg = bpf_map_lookup_elem(&kx_config, &zero);

		snat_addr = cfg && cfg->node_addr ? cfg->node_addr : t->daddr;
		if (!kx_snat_port(t, snat_addr, be, &snat_port)) {
			kx_count(KX_STAT_SNAT_EXHAUSTED);
			return KX_V_DROP;
		}
	}

	fwd.backend_id = backend_id;
	fwd.rev_nat_id = fe->rev_nat_id;
	fwd.last_seen_ns = bpf_ktime_get_ns();
	rev.rev_nat_id = fe->rev_nat_id;
	rev.last_seen_ns = fwd.last_seen_ns;
	if (snat_port) {
		fwd.flags = rev.flags = KX_CT_SNAT;
		fwd.nat_addr = snat_addr;
		fwd.nat_port = snat_port;
		rev.nat_addr = t->saddr;
		rev.nat_port = t->sport;
	}
	bpf_map_update_elem(&kx_ct, &k, &fwd, BPF_ANY);
	kx_ct_key(&k, be->addr, snat_port ? snat_addr : t->saddr, be->port,
		  snat_port ? snat_port : t->sport, t->proto, KX_CT_REPLY);
	bpf_map_update_elem(&kx_ct, &k, &rev, BPF_ANY);

	nat->daddr = be->addr;
	nat->dport = be->port;
	nat->saddr = snat_port ? snat_addr : t->saddr;
	nat->sport = snat_port ? snat_port : t->sport;
	kx_count(KX_STAT_NEW_FLOW);
	return KX_V_NAT;
}

#endif
