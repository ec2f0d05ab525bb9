/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * The Service decision without a packet, for one address family (a template: kx_service.h
 * includes it once per family, see kx_addr.h): frontend lookup, source ranges, backend
 * selection (with session affinity) and the masquerade choice. The packet hooks (kx_lb_af.h)
 * call these; socket-level hooks can call them on a connect() address the same way.
 */

/* Could this packet belong to a Service flow (see the prefilter in kx_maps.h)? */
static __always_inline int KX6(kx_maybe_service)(const kx_addr_t *daddr, __be16 sport)
{
	__u32 a = KX_ADDR_HASH(*daddr);

	if (kx_bit(&kx_vip_bloom, (a * KX_VIP_HASH1) >> 10) && kx_bit(&kx_vip_bloom, (a * KX_VIP_HASH2) >> 10))
		return 1;
	return kx_bit(&kx_port_bits, bpf_ntohs(sport));
}

static __always_inline struct frontend_value *KX6(kx_frontend)(const kx_addr_t *addr, __be16 port, __u8 proto, __u8 scope)
{
	struct KX6(frontend_key) k = { .addr = *addr, .port = port, .proto = proto, .scope = scope };

	return bpf_map_lookup_elem(&KX6(kx_frontends), &k);
}

/* loadBalancerSourceRanges: may `client` open a flow to this frontend? */
static __always_inline int KX6(kx_source_allowed)(const struct frontend_value *fe, const kx_addr_t *client)
{
	struct KX6(src_range_key) k = { .prefixlen = 32 + KX_ADDR_BITS, .svc_id = fe->svc_id, .addr = *client };

	if (!(fe->flags & KX_FE_SRC_RANGES))
		return 1;
	return bpf_map_lookup_elem(&KX6(kx_src_ranges), &k) != 0;
}

/* Is `addr` a pod of the cluster (kube-proxy's LocalDetector by clusterCIDR)? */
static __always_inline int KX6(kx_in_cluster)(const kx_addr_t *addr)
{
	struct KX6(cidr_key) k = { .prefixlen = KX_ADDR_BITS, .addr = *addr };

	return bpf_map_lookup_elem(&KX6(kx_cluster_cidrs), &k) != 0;
}

static __always_inline struct KX6(backend_value) *KX6(kx_slot_backend)(const struct frontend_value *fe, __u32 slot,
									 __u32 *backend_id)
{
	struct slot_key sk = { .svc_id = fe->svc_id, .slot = slot };
	struct slot_value *sv = bpf_map_lookup_elem(&kx_slots, &sk);

	if (!sv)
		return 0;
	*backend_id = sv->backend_id;
	return bpf_map_lookup_elem(&KX6(kx_backends), &sv->backend_id);
}

/* A backend for a new flow: under sessionAffinity ClientIP the client's previous one while it
 * is within the timeout and still a backend (kube-proxy's `recent` match: the timer restarts
 * with every new connection), else a random slot. fe->count must be > 0. Established flows
 * never look here: they keep the backend conntrack holds. */
static __always_inline struct KX6(backend_value) *KX6(kx_affinity_backend)(const struct frontend_value *fe,
									     const struct affinity_value *prev, __u64 now,
									     __u32 *backend_id)
{
	struct affinity_match_key mk = { .svc_id = fe->svc_id, .backend_id = prev->backend_id };
	struct KX6(backend_value) *be;

	if (now - prev->last_ns >= (__u64)fe->affinity_timeout * 1000000000ULL || !bpf_map_lookup_elem(&kx_affinity_match, &mk))
		return 0;
	be = bpf_map_lookup_elem(&KX6(kx_backends), &prev->backend_id);
	if (be)
		*backend_id = prev->backend_id;
	return be;
}

static __always_inline struct KX6(backend_value) *KX6(kx_select_backend)(const struct frontend_value *fe,
									   const kx_addr_t *client, __u64 now,
									   __u32 *backend_id)
{
	struct KX6(affinity_key) ak = { .client = *client, .svc_id = fe->svc_id };
	struct affinity_value av = {}, *prev;
	struct KX6(backend_value) *be;

	if (!(fe->flags & KX_FE_AFFINITY))
		return KX6(kx_slot_backend)(fe, bpf_get_prandom_u32() % fe->count, backend_id);
	prev = bpf_map_lookup_elem(&KX6(kx_affinity), &ak);
	be = prev ? KX6(kx_affinity_backend)(fe, prev, now, backend_id) : 0;
	if (be) {
		prev->last_ns = now;
		return be;
	}
	be = KX6(kx_slot_backend)(fe, bpf_get_prandom_u32() % fe->count, backend_id);
	if (!be)
		return 0;
	av.backend_id = *backend_id;
	av.last_ns = now;
	/* The client's first flows can arrive on several CPUs at once: the first choice stored
	 * wins, the others follow it. */
	if (bpf_map_update_elem(&KX6(kx_affinity), &ak, &av, prev ? BPF_ANY : BPF_NOEXIST) == 0)
		return be;
	prev = bpf_map_lookup_elem(&KX6(kx_affinity), &ak);
	if (prev) {
		struct KX6(backend_value) *won = KX6(kx_affinity_backend)(fe, prev, now, backend_id);

		if (won)
			return won;
	}
	*backend_id = av.backend_id;
	return be;
}

/* Source NAT to the node, where kube-proxy jumps to KUBE-MARK-MASQ: a pod reaching itself
 * (hairpin), ClusterIPs under masqueradeAll or from outside the cluster CIDRs, external
 * addresses with externalTrafficPolicy Cluster (for local endpoints only when asked: kube-xdp
 * keeps the client address there by default). */
static __always_inline int KX6(kx_masquerade)(const struct frontend_value *fe, const struct KX6(backend_value) *be,
					      const kx_addr_t *client)
{
	__u16 f = fe->flags;

	if (KX_ADDR_EQ(*client, be->addr) || (f & KX_FE_MASQ_ALL))
		return 1;
	if ((f & KX_FE_NODEPORT) && !(f & KX_FE_LOCAL_ONLY) && (!(be->flags & KX_BE_LOCAL) || (f & KX_FE_MASQ_LOCAL)))
		return 1;
	return (f & KX_FE_MASQ_OFF_CLUSTER) && !KX6(kx_in_cluster)(client);
}

/* The node address a masqueraded flow leaves with: the configured one, else the address the
 * client dialled (a NodePort on another node address). */
static __always_inline void KX6(kx_snat_addr)(const kx_addr_t *dialled, kx_addr_t *out)
{
	__u32 zero = 0;
	struct KX6(config_value) *cfg = bpf_map_lookup_elem(&KX6(kx_config), &zero);

	*out = cfg && KX_ADDR_SET(cfg->node_addr) ? cfg->node_addr : *dialled;
}
