/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/* Packet parsing shared by XDP and tc: Ethernet -> IPv4 or IPv6 (with extension headers) ->
 * TCP/UDP/SCTP ports, with every length and the IPv4 header checksum validated before anything
 * is translated. */
#ifndef KX_PARSE_H
#define KX_PARSE_H

#include "kx_defs.h"
#include "kx_sctp.h"

struct kx_tuple {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
};

struct kx_pkt {
	struct kx_tuple t;
	__u32 l4_off;    /* from the start of the frame */
	__u32 l4_len;    /* the IP payload: L4 header and data */
	__u8 tcp_flags;  /* TCP: the flags byte (FIN 0x01, SYN 0x02, RST 0x04, ACK 0x10); UDP: 0 */
};

struct kx_tuple6 {
	struct in6_addr saddr;
	struct in6_addr daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
};

struct kx_pkt6 {
	struct kx_tuple6 t;
	__u32 l4_off;    /* from the start of the frame, after any extension headers */
	__u32 l4_len;    /* from the L4 header to the end of the IPv6 payload */
	__u8 tcp_flags;
};

enum kx_parse_result {
	KX_PARSE_OK = 0,
	KX_PARSE_NOT_OURS = 1,  /* not IPv4 TCP/UDP: not ours to look at */
	KX_PARSE_FRAGMENT = 2,  /* IPv4 fragment: valid, but only the first carries ports */
	KX_PARSE_MALFORMED = 3, /* IPv4 TCP/UDP with an inconsistent length or a bad header checksum */
	KX_PARSE_ICMP = 4,      /* ICMP / ICMPv6: maybe an error about a translated flow (kx_icmp.h) */
};

#define ETH_P_IPV6 0x86DD
#define KX_NEXTHDR_HOP      0
#define KX_NEXTHDR_ROUTING  43
#define KX_NEXTHDR_FRAGMENT 44
#define KX_NEXTHDR_ICMPV6   58
#define KX_NEXTHDR_DEST     60
/* IPv6 extension headers walked before the L4 header, and the most bytes they may take: a
 * packet with more passes untouched (counted untrackable). Linux's own stack and every
 * Kubernetes client send none on Service traffic; hop-by-hop (jumbo, router alert) and
 * destination options are what one meets. */
#define KX_IPV6_MAX_EXT     4
#define KX_IPV6_MAX_EXT_LEN 256

#define KX_TCP_FIN 0x01
#define KX_TCP_SYN 0x02
#define KX_TCP_RST 0x04
#define KX_TCP_ACK 0x10

/* The IPv4 header checksum: the one's-complement sum over the header is 0xffff when valid.
 * hlen is a compile-time constant at every call (see kx_parse), so every load is at a constant
 * offset that one bounds check covers. */
static __always_inline int kx_ipv4_csum_ok(const struct iphdr *iph, const __u32 hlen)
{
	const __u16 *w = (const void *)iph;
	__u32 sum = 0;

#pragma unroll
	for (__u32 i = 0; i < hlen / 2; i++)
		sum += w[i];
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return sum == 0xffff;
}

/* The L4 header at l4 (l4_len bytes of IP payload from it): ports and TCP flags, with the lengths
 * checked. Shared by both families; l4_off is set by the caller. */
static __always_inline int kx_parse_l4(void *l4, void *data_end, __u8 proto, __u32 l4_len, __be16 *sport,
				       __be16 *dport, __u8 *tcp_flags)
{
	if (proto == IPPROTO_TCP) {
		struct tcphdr *th = l4;
		__u32 doff;

		if (l4_len < sizeof(*th) || (void *)(th + 1) > data_end)
			return KX_PARSE_MALFORMED;
		doff = (__u32)th->doff * 4;
		if (doff < sizeof(*th) || doff > l4_len)
			return KX_PARSE_MALFORMED;
		*sport = th->source;
		*dport = th->dest;
		*tcp_flags = ((__u8 *)th)[13];
	} else if (proto == IPPROTO_SCTP) {
		__be16 *sh = l4; /* source port, destination port, tag, checksum */

		if (l4_len < KX_SCTP_MIN_LEN || (void *)sh + KX_SCTP_MIN_LEN > data_end)
			return KX_PARSE_MALFORMED;
		*sport = sh[0];
		*dport = sh[1];
	} else {
		struct udphdr *uh = l4;

		if (l4_len < sizeof(*uh) || (void *)(uh + 1) > data_end)
			return KX_PARSE_MALFORMED;
		if (bpf_ntohs(uh->len) != l4_len)
			return KX_PARSE_MALFORMED;
		*sport = uh->source;
		*dport = uh->dest;
	}
	return KX_PARSE_OK;
}

/* Everything after the Ethernet header, for one header length (a constant: see kx_parse).
 * Fragments are never translated: only the first carries ports, and translating it alone
 * would split one datagram across two destinations. They pass untouched.
 * The L4 header is bounded by the IP total length, never by the end of the frame: bytes after
 * the datagram are Ethernet padding, not header. The L4 checksum is not verified: an
 * incremental update keeps a bad checksum bad, so the receiver still discards the packet.
 * pkt_len is the whole frame's length, which in tc exceeds data_end - data when the payload
 * sits in page fragments (TCP data does): data_end only bounds the headers we read. */
static __always_inline int kx_parse_ipv4(struct iphdr *iph, void *data_end, __u32 pkt_len, const __u32 hlen,
					 struct kx_pkt *p)
{
	__u32 tot_len = bpf_ntohs(iph->tot_len), l4_len;
	int r;

	if ((void *)iph + hlen > data_end)
		return KX_PARSE_MALFORMED;
	if (tot_len < hlen || sizeof(struct ethhdr) + tot_len > pkt_len)
		return KX_PARSE_MALFORMED;
	if (!kx_ipv4_csum_ok(iph, hlen))
		return KX_PARSE_MALFORMED;
	if (iph->frag_off & bpf_htons(IP_MF | IP_OFFSET))
		return KX_PARSE_FRAGMENT;

	l4_len = tot_len - hlen;
	p->l4_off = sizeof(struct ethhdr) + hlen;
	p->l4_len = l4_len;
	r = kx_parse_l4((void *)iph + hlen, data_end, iph->protocol, l4_len, &p->t.sport, &p->t.dport, &p->tcp_flags);
	if (r != KX_PARSE_OK)
		return r;
	p->t.saddr = iph->saddr;
	p->t.daddr = iph->daddr;
	p->t.proto = iph->protocol;
	return KX_PARSE_OK;
}

/* One copy of kx_parse_ipv4 per IPv4 header length (IHL 5..15): every offset in each is a
 * constant. A variable header length (iph + ihl * 4) needs the verifier to track its bounds
 * through the checksum and the L4 offsets, and verifiers differ there: Debian's 6.1 turned
 * iph + hlen into a scalar after dead-path bounds, 6.12 hit a register-invariant check. */
static __always_inline int kx_parse(void *data, void *data_end, __u32 pkt_len, struct kx_pkt *p)
{
	struct ethhdr *eth = data;
	struct iphdr *iph;

	if ((void *)(eth + 1) > data_end)
		return KX_PARSE_NOT_OURS;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return KX_PARSE_NOT_OURS;
	iph = (void *)(eth + 1);
	if ((void *)(iph + 1) > data_end)
		return KX_PARSE_MALFORMED;
	if (iph->protocol == IPPROTO_ICMP)
		return KX_PARSE_ICMP;
	if (iph->protocol != IPPROTO_TCP && iph->protocol != IPPROTO_UDP && iph->protocol != IPPROTO_SCTP)
		return KX_PARSE_NOT_OURS;
	if (iph->version != 4)
		return KX_PARSE_MALFORMED;
	switch (iph->ihl) {
	case 5: return kx_parse_ipv4(iph, data_end, pkt_len, 20, p);
	case 6: return kx_parse_ipv4(iph, data_end, pkt_len, 24, p);
	case 7: return kx_parse_ipv4(iph, data_end, pkt_len, 28, p);
	case 8: return kx_parse_ipv4(iph, data_end, pkt_len, 32, p);
	case 9: return kx_parse_ipv4(iph, data_end, pkt_len, 36, p);
	case 10: return kx_parse_ipv4(iph, data_end, pkt_len, 40, p);
	case 11: return kx_parse_ipv4(iph, data_end, pkt_len, 44, p);
	case 12: return kx_parse_ipv4(iph, data_end, pkt_len, 48, p);
	case 13: return kx_parse_ipv4(iph, data_end, pkt_len, 52, p);
	case 14: return kx_parse_ipv4(iph, data_end, pkt_len, 56, p);
	case 15: return kx_parse_ipv4(iph, data_end, pkt_len, 60, p);
	default: return KX_PARSE_MALFORMED; /* IHL < 5 */
	}
}

/* IPv6: the fixed header, then up to KX_IPV6_MAX_EXT hop-by-hop, routing and destination
 * options headers, then TCP/UDP/SCTP. The payload length bounds everything, as IPv4's total
 * length does; a jumbogram (payload length 0) is not ours. A fragment header means a fragment
 * (an atomic one included): passed untouched, as IPv4 fragments are.
 * RFC 8200 section 4.1: a Hop-by-Hop Options header may only come immediately after the IPv6
 * header, so an extension header whose next header is hop-by-hop makes the packet malformed
 * (the kernel answers it with a parameter problem and drops it). RFC 8200 section 4.4: with
 * Segments Left != 0 a routing header names further destinations, the IPv6 destination is
 * not the final one (nor the one the L4 pseudo-header checksum covers): not a packet to a
 * Service, passed untouched and counted untrackable (KX_PARSE_FRAGMENT). */
static __always_inline int kx_parse6(void *data, void *data_end, __u32 pkt_len, struct kx_pkt6 *p)
{
	struct ethhdr *eth = data;
	struct ipv6hdr *ip6 = (void *)(eth + 1);
	__u32 off = sizeof(*eth) + sizeof(*ip6), end;
	__u8 nh;

	if ((void *)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IPV6))
		return KX_PARSE_NOT_OURS;
	if ((void *)(ip6 + 1) > data_end || ip6->version != 6)
		return KX_PARSE_MALFORMED;
	end = off + bpf_ntohs(ip6->payload_len);
	if (end == off)
		return KX_PARSE_NOT_OURS;
	if (end > pkt_len)
		return KX_PARSE_MALFORMED;
	nh = ip6->nexthdr;
#pragma unroll
	for (int i = 0; i < KX_IPV6_MAX_EXT; i++) {
		__u8 *ext = data + off;

		if (nh != KX_NEXTHDR_HOP && nh != KX_NEXTHDR_ROUTING && nh != KX_NEXTHDR_DEST)
			break;
		if (off + 8 > end || (void *)(ext + 4) > data_end)
			return KX_PARSE_MALFORMED;
		if (nh == KX_NEXTHDR_ROUTING && ext[3] != 0)
			return KX_PARSE_FRAGMENT; /* untrackable: segments left, not the final destination */
		nh = ext[0];
		if (nh == KX_NEXTHDR_HOP)
			return KX_PARSE_MALFORMED; /* hop-by-hop not right after the IPv6 header */
		off += ((__u32)ext[1] + 1) * 8;
		if (off > sizeof(*eth) + sizeof(*ip6) + KX_IPV6_MAX_EXT_LEN)
			return KX_PARSE_FRAGMENT; /* untrackable: more options than we walk */
	}
	if (nh == KX_NEXTHDR_ICMPV6)
		return KX_PARSE_ICMP;
	if (nh == KX_NEXTHDR_FRAGMENT || nh == KX_NEXTHDR_HOP || nh == KX_NEXTHDR_ROUTING || nh == KX_NEXTHDR_DEST)
		return KX_PARSE_FRAGMENT;
	if (nh != IPPROTO_TCP && nh != IPPROTO_UDP && nh != IPPROTO_SCTP)
		return KX_PARSE_NOT_OURS;
	if (off > end)
		return KX_PARSE_MALFORMED;
	p->l4_off = off;
	p->l4_len = end - off;
	p->t.proto = nh;
	__builtin_memcpy(&p->t.saddr, &ip6->saddr, sizeof(p->t.saddr));
	__builtin_memcpy(&p->t.daddr, &ip6->daddr, sizeof(p->t.daddr));
	return kx_parse_l4(data + off, data_end, nh, end - off, &p->t.sport, &p->t.dport, &p->tcp_flags);
}

#endif
