/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/* The load-balancing decision (kx_lb_af.h) for IPv4 and IPv6, and what both share. */
#ifndef KX_LB_H
#define KX_LB_H

#include "kx_service.h"
#include "kx_parse.h"

enum kx_verdict {
	KX_V_PASS = 0, /* not a Service packet: untouched */
	KX_V_NAT = 1,  /* rewrite as described by struct kx_nat */
	KX_V_DROP = 2, /* Service packet that cannot be delivered */
	KX_V_REJECT = 3, /* new flow to a Service without endpoints: answer ICMP port unreachable */
};

static __always_inline void kx_count(__u32 stat)
{
	__u64 *v = bpf_map_lookup_elem(&kx_stats, &stat);

	if (v)
		*v += 1;
}

static __always_inline __u64 kx_ct_lifetime_ns(__u8 proto, __u16 flags)
{
	__u64 s;

	if (proto == IPPROTO_SCTP)
		s = flags & KX_CT_REPLIED ? KX_CT_SCTP_S : KX_CT_UDP_S;
	else if (proto != IPPROTO_TCP)
		s = flags & KX_CT_REPLIED ? KX_CT_UDP_STREAM_S : KX_CT_UDP_S;
	else if (!(flags & KX_CT_REPLIED))
		s = KX_CT_TCP_SYN_S;
	else if ((flags & KX_CT_RST) || (flags & (KX_CT_FIN_FWD | KX_CT_FIN_REPLY)) == (KX_CT_FIN_FWD | KX_CT_FIN_REPLY))
		s = KX_CT_TCP_CLOSE_S;
	else if (flags & (KX_CT_FIN_FWD | KX_CT_FIN_REPLY))
		s = KX_CT_TCP_CLOSE_WAIT_S;
	else
		s = KX_CT_TCP_ESTABLISHED_S;
	return s * 1000000000ULL;
}

/* The flags a packet leaves on its flow: a reply marks it replied, TCP FIN/RST close it. */
static __always_inline __u16 kx_ct_next_flags(__u16 flags, __u8 proto, __u8 dir, __u8 tcp_flags)
{
	if (dir == KX_CT_REPLY)
		flags |= KX_CT_REPLIED;
	if (proto == IPPROTO_TCP) {
		if (tcp_flags & KX_TCP_RST)
			flags |= KX_CT_RST;
		if (tcp_flags & KX_TCP_FIN)
			flags |= dir == KX_CT_REPLY ? KX_CT_FIN_REPLY : KX_CT_FIN_FWD;
	}
	return flags;
}

#define KX_FAMILY_V4
#include "kx_addr.h"
#include "kx_lb_af.h"
#undef KX_FAMILY_V4
#define KX_FAMILY_V6
#include "kx_addr.h"
#include "kx_lb_af.h"
#undef KX_FAMILY_V6

#endif
