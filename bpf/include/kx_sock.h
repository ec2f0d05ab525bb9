/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/* Socket-level load balancing (kx_sock_af.h) for IPv4 and IPv6, and what both share. */
#ifndef KX_SOCK_H
#define KX_SOCK_H

#include "kx_lb.h"

enum kx_sock_verdict {
	KX_SOCK_PASS = 0,        /* not a Service address of scope HOST: untouched */
	KX_SOCK_NAT = 1,         /* the address was rewritten to a backend's */
	KX_SOCK_REFUSED = 2,     /* no endpoint anywhere: kube-proxy's REJECT, ECONNREFUSED */
	KX_SOCK_UNREACHABLE = 3, /* no usable endpoint here: kube-proxy's DROP, failed at once */
};

#define KX_ECONNREFUSED 111
#define KX_EHOSTUNREACH 113

/* Only the node's own network namespace: a pod's sockets sit under the same cgroups but keep
 * the packet path (tc), which applies kube-proxy's masquerade rules to them. */
static __always_inline int kx_sock_host_ns(void *ctx)
{
	__u32 zero = 0;
	struct sock_config *c = bpf_map_lookup_elem(&kx_sock_config, &zero);

	return c && c->host_netns_cookie && bpf_get_netns_cookie(ctx) == c->host_netns_cookie;
}

/* A refused or unreachable Service fails the call with kube-proxy's errno instead of EPERM. */
static __always_inline int kx_sock_verdict(int v)
{
	if (v == KX_SOCK_REFUSED)
		bpf_set_retval(-KX_ECONNREFUSED);
	else if (v == KX_SOCK_UNREACHABLE)
		bpf_set_retval(-KX_EHOSTUNREACH);
	else
		return 1;
	return 0;
}

#define KX_FAMILY_V4
#include "kx_addr.h"
#include "kx_sock_af.h"
#undef KX_FAMILY_V4
#define KX_FAMILY_V6
#include "kx_addr.h"
#include "kx_sock_af.h"
#undef KX_FAMILY_V6

#endif
