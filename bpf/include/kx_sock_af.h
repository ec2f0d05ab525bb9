/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * Socket-level load balancing for one address family (a template: kx_sock.h includes it once
 * per family, see kx_addr.h). A connect() or sendmsg() of a node socket to a Service address
 * gets a backend's address before any packet exists, from the packet hooks' own decision
 * (kx_service_af.h) on the frontends of scope KX_SCOPE_HOST; recvmsg() and getpeername() answer
 * with the Service address the socket dialled. No conntrack: the socket is the flow.
 */

/* The backend for a connect()/sendmsg() to addr:port, written over them (KX_SOCK_NAT). */
static __always_inline int KX6(kx_sock_xlate)(__u64 cookie, kx_addr_t *addr, __be16 *port, __u8 proto)
{
	struct frontend_value *fe = KX6(kx_frontend)(addr, *port, proto, KX_SCOPE_HOST);
	struct KX6(config_value) *cfg;
	struct KX6(backend_value) *be;
	struct KX6(sock_revnat_key) rk;
	struct KX6(revnat_value) rv, *old;
	kx_addr_t client;
	__u32 zero = 0, backend_id;

	if (!fe)
		return KX_SOCK_PASS;
	if (fe->count == 0) {
		kx_count(KX_STAT_NO_BACKEND);
		if (!(fe->flags & KX_FE_REJECT))
			return KX_SOCK_UNREACHABLE;
		kx_count(KX_STAT_REJECTED);
		return KX_SOCK_REFUSED;
	}
	/* Session affinity by client address, as kube-proxy sees node traffic: the node's. */
	cfg = bpf_map_lookup_elem(&KX6(kx_config), &zero);
	__builtin_memset(&client, 0, sizeof(client));
	if (cfg)
		client = cfg->node_addr;
	be = KX6(kx_select_backend)(fe, &client, bpf_ktime_get_ns(), &backend_id);
	if (!be) {
		kx_count(KX_STAT_NO_BACKEND);
		return KX_SOCK_UNREACHABLE;
	}
	__builtin_memset(&rk, 0, sizeof(rk));
	__builtin_memset(&rv, 0, sizeof(rv));
	rk.cookie = cookie;
	rk.addr = be->addr;
	rk.port = be->port;
	rv.addr = *addr;
	rv.port = *port;
	/* An unconnected UDP socket sends many datagrams: write only what changed. */
	old = bpf_map_lookup_elem(&KX6(kx_sock_revnat), &rk);
	if (!old || !KX_ADDR_EQ(old->addr, rv.addr) || old->port != rv.port)
		bpf_map_update_elem(&KX6(kx_sock_revnat), &rk, &rv, BPF_ANY);
	*addr = be->addr;
	*port = be->port;
	kx_count(KX_STAT_SOCK_TRANSLATED);
	return KX_SOCK_NAT;
}

/* The Service address behind a peer the socket was given; 0 when it was not translated. */
static __always_inline int KX6(kx_sock_rev)(__u64 cookie, kx_addr_t *addr, __be16 *port)
{
	struct KX6(sock_revnat_key) rk;
	struct KX6(revnat_value) *rv;

	__builtin_memset(&rk, 0, sizeof(rk));
	rk.cookie = cookie;
	rk.addr = *addr;
	rk.port = *port;
	rv = bpf_map_lookup_elem(&KX6(kx_sock_revnat), &rk);
	if (!rv)
		return 0;
	*addr = rv->addr;
	*port = rv->port;
	return 1;
}
