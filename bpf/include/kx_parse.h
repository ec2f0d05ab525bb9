/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/* Packet parsing shared by XDP and tc: Ethernet -> IPv4 -> TCP/UDP ports, with every length
 * and the IPv4 header checksum validated before anything is translated. */
#ifndef KX_PARSE_H
#define KX_PARSE_H

#include "kx_defs.h"

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
	__u8 tcp_flags;  /* TCP: the flags byte (FIN 0x01, SYN 0x02, RST 0x04, ACK 0x10); UDP: 0 */
};

enum kx_parse_result {
	KX_PARSE_OK = 0,
	KX_PARSE_NOT_OURS = 1,  /* not IPv4 TCP/UDP: not ours to look at */
	KX_PARSE_FRAGMENT = 2,  /* IPv4 fragment: valid, but only the first carries ports */
	KX_PARSE_MALFORMED = 3, /* IPv4 TCP/UDP with an inconsistent length or a bad header checksum */
};

#define KX_TCP_FIN 0x01
#define KX_TCP_SYN 0x02
#define KX_TCP_RST 0x04
#define KX_TCP_ACK 0x10

/* The IPv4 header checksum: the one's-complement sum over the header is 0xffff when valid.
 * Unrolled, each word at a constant offset from iph; whether a word lies inside the header is
 * computed without a branch on hlen. Branching on hlen (a test per word) splits its range into
 * constants and lets older verifiers (6.1) derive contradictory bounds on dead paths, after
 * which they turn iph + hlen into a scalar and reject the program. */
static __always_inline int kx_ipv4_csum_ok(const struct iphdr *iph, void *data_end, __u32 hlen)
{
	__u32 sum = 0, missing = 0;

#pragma unroll
	for (int i = 0; i < 30; i++) {
		const __u16 *w = (const void *)iph + i * 2;
		__u32 inside = ((__u32)(i * 2) - hlen) >> 31; /* 1 while i * 2 < hlen (hlen <= 60) */

		if ((void *)(w + 1) <= data_end)
			sum += *w & -inside;
		else
			missing |= inside;
	}
	if (missing)
		return 0;
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return sum == 0xffff;
}

/* Fragments are never translated: only the first carries ports, and translating it alone
 * would split one datagram across two destinations. They pass untouched.
 * The L4 header is bounded by the IP total length, never by the end of the frame: bytes after
 * the datagram are Ethernet padding, not header. The L4 checksum is not verified: an
 * incremental update keeps a bad checksum bad, so the receiver still discards the packet.
 * pkt_len is the whole frame's length, which in tc exceeds data_end - data when the payload
 * sits in page fragments (TCP data does): data_end only bounds the headers we read. */
static __always_inline int kx_parse(void *data, void *data_end, __u32 pkt_len, struct kx_pkt *p)
{
	struct ethhdr *eth = data;
	struct iphdr *iph;
	__u32 hlen, tot_len, l4_len;

	if ((void *)(eth + 1) > data_end)
		return KX_PARSE_NOT_OURS;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return KX_PARSE_NOT_OURS;
	iph = (void *)(eth + 1);
	if ((void *)(iph + 1) > data_end)
		return KX_PARSE_MALFORMED;
	if (iph->protocol != IPPROTO_TCP && iph->protocol != IPPROTO_UDP)
		return KX_PARSE_NOT_OURS;
	if (iph->version != 4 || iph->ihl < 5)
		return KX_PARSE_MALFORMED;
	hlen = (__u32)iph->ihl * 4;
	tot_len = bpf_ntohs(iph->tot_len);
	if (tot_len < hlen || sizeof(*eth) + tot_len > pkt_len)
		return KX_PARSE_MALFORMED;
	if (!kx_ipv4_csum_ok(iph, data_end, hlen))
		return KX_PARSE_MALFORMED;
	if (iph->frag_off & bpf_htons(IP_MF | IP_OFFSET))
		return KX_PARSE_FRAGMENT;

	l4_len = tot_len - hlen;
	p->l4_off = sizeof(*eth) + hlen;
	if (iph->protocol == IPPROTO_TCP) {
		struct tcphdr *th = (void *)iph + hlen;
		__u32 doff;

		if (l4_len < sizeof(*th) || (void *)(th + 1) > data_end)
			return KX_PARSE_MALFORMED;
		doff = (__u32)th->doff * 4;
		if (doff < sizeof(*th) || doff > l4_len)
			return KX_PARSE_MALFORMED;
		p->t.sport = th->source;
		p->t.dport = th->dest;
		p->tcp_flags = ((__u8 *)th)[13];
	} else {
		struct udphdr *uh = (void *)iph + hlen;

		if (l4_len < sizeof(*uh) || (void *)(uh + 1) > data_end)
			return KX_PARSE_MALFORMED;
		if (bpf_ntohs(uh->len) != l4_len)
			return KX_PARSE_MALFORMED;
		p->t.sport = uh->source;
		p->t.dport = uh->dest;
	}
	p->t.saddr = iph->saddr;
	p->t.daddr = iph->daddr;
	p->t.proto = iph->protocol;
	return KX_PARSE_OK;
}

#endif
