/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/* Per-CPU packet counters, index = outcome. Names mirrored in src/dataplane/ebpf/stats.ts. */
#ifndef KX_STATS_H
#define KX_STATS_H

enum kx_stat {
	KX_STAT_NEW_FLOW = 0,    /* frontend hit, backend chosen, conntrack created */
	KX_STAT_ESTABLISHED = 1, /* forward packet of a tracked flow */
	KX_STAT_REPLY = 2,       /* reply translated back */
	KX_STAT_NO_BACKEND = 3,  /* frontend with no usable endpoint: dropped or rejected */
	KX_STAT_SNAT_EXHAUSTED = 4, /* no free SNAT port after KX_SNAT_PROBES tries: dropped */
	KX_STAT_UNTRACKABLE = 5, /* IPv4 TCP/UDP fragment: passed untouched */
	KX_STAT_MALFORMED = 6,   /* IPv4 TCP/UDP with bad lengths or header checksum: passed untouched */
	KX_STAT_CT_LOST = 7,     /* TCP packet other than a SYN that starts a flow: its conntrack
				  * entry expired or was evicted (or a stray packet) */
	KX_STAT_PROMOTED = 8,    /* flow moved from kx_ct_new to kx_ct at its first reply */
	KX_STAT_SNAT_RECLAIMED = 9, /* SNAT port taken over from a flow unreplied for > 3 s */
	KX_STAT_CT_EXPIRED = 10, /* expired conntrack entries deleted by kx_ct_gc */
	KX_STAT_REJECTED = 11,   /* new flow to a Service without endpoints: ICMP port unreachable sent */
	KX_STAT_DENIED = 12,     /* new flow from outside loadBalancerSourceRanges: dropped */
	KX_STAT_ICMP_TRANSLATED = 13, /* ICMP error about a translated flow, translated back */
	KX_STAT_FIB_FORWARDED = 14, /* translated packet forwarded by the program (--bpf-fib-forward) */
	KX_STAT_FIB_KERNEL = 15, /* translated packet left to the kernel: no complete FIB answer
				  * (no neighbour yet, TTL expiring, MTU, another interface in XDP) */
	KX_STAT_SOCK_TRANSLATED = 16, /* connect()/sendmsg() of a node socket to a Service address
				       * given a backend's (socket hooks) */
	KX_STAT_MAX = 17,
};

#endif
