/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/* Packet parsing shared by XDP and tc: Ethernet -> IPv4 -> TCP/UDP ports. */
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
	__u32 l4_off;   /* from the start of the frame */
};

enum kx_parse_result {
	KX_PARSE_OK = 0,
	KX_PARSE_NOT_OURS = 1,  /* not IPv4 TCP/UDP: not ours to look at */
	KX_PARSE_BAD = 2,       /* IPv4 we cannot translate safely: fragment, truncated, bad header */
};

/* Fragments are never translated: only the first carries ports, and translating it alone
 * would split one datagram across two destinations. They pass untouched.
 * pkt_len is the whole frame's length, which in tc exceeds data_end - data when the payload
 * sits in page fragments (TCP data does): data_end only bounds the headers we read. */
static __always_inline int kx_parse(void *data, void *data_end, __u32 pkt_len, struct kx_pkt *p)
{
	struct ethhdr *eth = data;
	struct iphdr *iph;
	__u32 hlen;
	__be16 *ports;

	if ((void *)(eth + 1) > data_end)
		return KX_PARSE_NOT_OURS;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return KX_PARSE_NOT_OURS;
	iph = (void *)(eth + 1);
	if ((void *)(iph + 1) > data_end)
		return KX_PARSE_BAD;
	if (iph->protocol != IPPROTO_TCP && iph->protocol != IPPROTO_UDP)
		return KX_PARSE_NOT_OURS;
	if (iph->version != 4 || iph->ihl < 5)
		return KX_PARSE_BAD;
	hlen = (__u32)iph->ihl * 4;
	if (bpf_ntohs(iph->tot_len) < hlen || sizeof(*eth) + bpf_ntohs(iph->tot_len) > pkt_len)
		return KX_PARSE_BAD;
	if (iph->frag_off & bpf_htons(IP_MF | IP_OFFSET))
		return KX_PARSE_BAD;

	p->l4_off = sizeof(*eth) + hlen;
	ports = (void *)iph + hlen;
	/* TCP needs its checksum field (offset 16), UDP its 8-byte header. */
	if (iph->protocol == IPPROTO_TCP) {
		if ((void *)ports + sizeof(struct tcphdr) > data_end)
			return KX_PARSE_BAD;
	} else if ((void *)ports + sizeof(struct udphdr) > data_end) {
		return KX_PARSE_BAD;
	}
	p->t.saddr = iph->saddr;
	p->t.daddr = iph->daddr;
	p->t.sport = ports[0];
	p->t.dport = ports[1];
	p->t.proto = iph->protocol;
	return KX_PARSE_OK;
}

#endif
