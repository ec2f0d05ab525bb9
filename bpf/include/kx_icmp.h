/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * ICMP errors about translated flows, translated back (netfilter's RELATED + NAT, Cilium's
 * ICMP handling): a "fragmentation needed" or "unreachable" sent by a router or by the backend
 * quotes the packet as it left the node (client or node address -> backend). Unless the quote
 * is rewritten to what the client sent (client -> Service address), the client's stack finds no
 * socket for it, and path MTU discovery through a Service breaks (a black hole for large
 * packets). Handled: IPv4 ICMP destination unreachable (3) and time exceeded (11) whose outer
 * and quoted headers have no IP options (IHL 5, as the kernel builds them), and ICMPv6
 * destination unreachable (1), packet too big (2) and time exceeded (3) whose outer and quoted
 * headers have no extension headers; quoting TCP, UDP or SCTP (whose quoted 8 bytes hold no
 * checksum). Anything else ICMP passes untouched (neighbour discovery among it).
 */
#ifndef KX_ICMP_H
#define KX_ICMP_H

#include "kx_lb.h"
#include "kx_csum.h"

/* An ICMP error from its outer IPv4 header on: fixed offsets when both headers are 20 bytes. */
struct kx_icmp_err_pkt {
	struct iphdr ip;
	__u8 type;
	__u8 code;
	__u16 check;
	__u32 rest;
	struct iphdr in;   /* the quoted packet: as it left this node, translated */
	__be16 in_sport;
	__be16 in_dport;
	__u16 in_w2;       /* UDP: length; TCP: sequence number (high half) */
	__u16 in_w3;       /* UDP: checksum; TCP: sequence number (low half) */
};

/* Offset of the quoted TCP checksum from the outer IPv4 header (present when quoted). */
#define KX_ICMP_IN_TCP_CSUM_OFF (sizeof(struct iphdr) + 8 + sizeof(struct iphdr) + 16)

static __always_inline int kx_icmp_err_ok(const struct kx_icmp_err_pkt *e, __u32 ip_len)
{
	__u32 tot = bpf_ntohs(e->ip.tot_len);

	if (e->ip.version != 4 || e->ip.ihl != 5 || tot < sizeof(*e) || tot > ip_len)
		return 0;
	if (!kx_ipv4_csum_ok(&e->ip, sizeof(struct iphdr)) || (e->ip.frag_off & bpf_htons(IP_MF | IP_OFFSET)))
		return 0;
	if (e->type != KX_ICMP_DEST_UNREACH && e->type != KX_ICMP_TIME_EXCEEDED)
		return 0;
	if (e->in.version != 4 || e->in.ihl != 5 ||
	    (e->in.protocol != IPPROTO_TCP && e->in.protocol != IPPROTO_UDP && e->in.protocol != IPPROTO_SCTP))
		return 0;
	return kx_ipv4_csum_ok(&e->in, sizeof(struct iphdr));
}

/* The quoted packet's protocol, and the bytes the outer header says it covers. */
static __always_inline __u8 kx_icmp_quoted_proto(const struct kx_icmp_err_pkt *e)
{
	return e->in.protocol;
}

static __always_inline __u32 kx_icmp_len(const struct kx_icmp_err_pkt *e)
{
	return bpf_ntohs(e->ip.tot_len);
}

/* What an ICMP error about a translated flow must become. */
struct kx_icmp_nat {
	__be32 client;      /* the quoted source and, behind SNAT, the outer destination */
	__be16 client_port;
	__be32 svc;         /* the quoted destination, and the outer source if the backend sent it */
	__be16 svc_port;
};


/* Rewrites the headers; *l4csum is the quoted L4 checksum when it is in the packet (UDP's is
 * always, TCP's when quoted), updated too. Every changed 16-bit word inside the ICMP message
 * is also folded into the ICMP checksum, which covers the whole quote. */
static __always_inline void kx_icmp_rewrite(struct kx_icmp_err_pkt *e, const struct kx_icmp_nat *n, __u16 *l4csum)
{
	__be32 backend = e->in.daddr, in_saddr = e->in.saddr;
	__be16 in_sport = e->in_sport, in_dport = e->in_dport;
	__u16 ic = e->in.check, ic2, c = e->check;

	/* quoted IPv4 header */
	ic2 = kx_csum_update4(ic, in_saddr, n->client);
	ic2 = kx_csum_update4(ic2, backend, n->svc);
	e->in.saddr = n->client;
	e->in.daddr = n->svc;
	e->in.check = ic2;
	c = kx_csum_update4(c, in_saddr, n->client);
	c = kx_csum_update4(c, backend, n->svc);
	c = kx_csum_update2(c, ic, ic2);
	/* quoted ports, and the quoted L4 checksum (pseudo-header addresses and ports) */
	e->in_sport = n->client_port;
	e->in_dport = n->svc_port;
	c = kx_csum_update2(c, in_sport, n->client_port);
	c = kx_csum_update2(c, in_dport, n->svc_port);
	if (l4csum && (e->in.protocol == IPPROTO_TCP || *l4csum)) { /* UDP 0: no checksum */
		__u16 l = *l4csum, l2;

		l2 = kx_csum_update4(l, in_saddr, n->client);
		l2 = kx_csum_update4(l2, backend, n->svc);
		l2 = kx_csum_update2(l2, in_sport, n->client_port);
		l2 = kx_csum_update2(l2, in_dport, n->svc_port);
		if (e->in.protocol == IPPROTO_UDP && l2 == 0)
			l2 = 0xffff;
		c = kx_csum_update2(c, l, l2);
		*l4csum = l2;
	}
	e->check = c;
	/* outer header: to the client (behind SNAT the error came to the node), and from the
	 * Service address when the backend itself sent it */
	if (e->ip.saddr == backend) {
		e->ip.check = kx_csum_update4(e->ip.check, e->ip.saddr, n->svc);
		e->ip.saddr = n->svc;
	}
	if (e->ip.daddr != n->client) {
		e->ip.check = kx_csum_update4(e->ip.check, e->ip.daddr, n->client);
		e->ip.daddr = n->client;
	}
}



/* ICMPv6: the outer header, the ICMPv6 header and the quoted packet, at fixed offsets. */
struct kx_icmp_err_pkt6 {
	struct ipv6hdr ip;
	__u8 type;
	__u8 code;
	__u16 check;
	__u32 rest;        /* packet too big: the MTU */
	struct ipv6hdr in; /* the quoted packet: as it left this node, translated */
	__be16 in_sport;
	__be16 in_dport;
	__u16 in_w2;
	__u16 in_w3;
};

#define KX_ICMP_IN_TCP_CSUM_OFF6 (sizeof(struct ipv6hdr) + 8 + sizeof(struct ipv6hdr) + 16)

struct kx_icmp_nat6 {
	struct in6_addr client;
	struct in6_addr svc;
	__be16 client_port;
	__be16 svc_port;
};

static __always_inline int kx_icmp_err_ok6(const struct kx_icmp_err_pkt6 *e, __u32 ip_len)
{
	if (e->ip.version != 6 || e->ip.nexthdr != KX_NEXTHDR_ICMPV6 ||
	    sizeof(struct ipv6hdr) + bpf_ntohs(e->ip.payload_len) > ip_len ||
	    bpf_ntohs(e->ip.payload_len) < sizeof(*e) - sizeof(struct ipv6hdr))
		return 0;
	if (e->type != KX_ICMP6_DEST_UNREACH && e->type != KX_ICMP6_PKT_TOOBIG && e->type != KX_ICMP6_TIME_EXCEED)
		return 0;
	return e->in.version == 6 &&
	       (e->in.nexthdr == IPPROTO_TCP || e->in.nexthdr == IPPROTO_UDP || e->in.nexthdr == IPPROTO_SCTP);
}


static __always_inline __u8 kx_icmp_quoted_proto6(const struct kx_icmp_err_pkt6 *e)
{
	return e->in.nexthdr;
}

static __always_inline __u32 kx_icmp_len6(const struct kx_icmp_err_pkt6 *e)
{
	return sizeof(struct ipv6hdr) + bpf_ntohs(e->ip.payload_len);
}

/* As kx_icmp_rewrite, without IP header checksums; the ICMPv6 checksum also covers the outer
 * addresses (its pseudo-header). */
static __always_inline void kx_icmp_rewrite6(struct kx_icmp_err_pkt6 *e, const struct kx_icmp_nat6 *n, __u16 *l4csum)
{
	struct in6_addr backend = e->in.daddr;
	__u32 quote = 0, outer = 0;

	quote = kx_csum_diff16(quote, &e->in.saddr, &n->client);
	quote = kx_csum_diff16(quote, &e->in.daddr, &n->svc);
	quote = kx_csum_diff2(quote, e->in_sport, n->client_port);
	quote = kx_csum_diff2(quote, e->in_dport, n->svc_port);
	e->in.saddr = n->client;
	e->in.daddr = n->svc;
	e->in_sport = n->client_port;
	e->in_dport = n->svc_port;
	/* the quoted L4 checksum sees exactly the quote's changes (its pseudo-header and ports) */
	if (l4csum && (e->in.nexthdr == IPPROTO_TCP || *l4csum)) {
		__u16 l = *l4csum, l2 = kx_csum_apply(l, quote);

		if (e->in.nexthdr == IPPROTO_UDP && l2 == 0)
			l2 = 0xffff;
		quote = kx_csum_diff2(quote, l, l2);
		*l4csum = l2;
	}
	if (kx_in6_eq(&e->ip.saddr, &backend)) {
		outer = kx_csum_diff16(outer, &e->ip.saddr, &n->svc);
		e->ip.saddr = n->svc;
	}
	if (!kx_in6_eq(&e->ip.daddr, &n->client)) {
		outer = kx_csum_diff16(outer, &e->ip.daddr, &n->client);
		e->ip.daddr = n->client;
	}
	e->check = kx_csum_apply(e->check, kx_csum_add(quote, outer));
}



#define KX_FAMILY_V4
#include "kx_addr.h"
#include "kx_icmp_af.h"
#undef KX_FAMILY_V4
#define KX_FAMILY_V6
#include "kx_addr.h"
#include "kx_icmp_af.h"
#undef KX_FAMILY_V6

#endif
