/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * Map layouts of kube-xdp: the one source of truth for keys and values.
 * Every struct here has exactly one TypeScript codec (src/dataplane/ebpf/codecs.ts);
 * test/unit/btf-layout.test.ts checks each codec against the BTF of the compiled object.
 * Addresses and ports are in network byte order, everything else in host order.
 */
#ifndef KX_MAPS_H
#define KX_MAPS_H

/* Frontend scope: the external view (XDP on node interfaces) and the internal view
 * (tc on pod veths) of one Service address can have different backend sets
 * (externalTrafficPolicy / internalTrafficPolicy: Local). */
#define KX_SCOPE_EXT 0
#define KX_SCOPE_INT 1
/* The node's own sockets (cgroup connect/sendmsg hooks, kx_sock_af.h): what kube-proxy does
 * for locally originated traffic, which no packet hook sees. */
#define KX_SCOPE_HOST 2

/* frontend_value.flags. Which packets are source-NATed to the node is kube-proxy's choice
 * (its KUBE-MARK-MASQ jumps), compiled per frontend by src/dataplane/ebpf/compile.ts; a pod that
 * reaches itself through a Service (hairpin) is always source-NATed. */
#define KX_FE_NODEPORT    0x0001 /* external address, externalTrafficPolicy Cluster: SNAT when the
				  * endpoint is on another node (or always, with KX_FE_MASQ_LOCAL) */
#define KX_FE_LOCAL_ONLY  0x0002 /* externalTrafficPolicy Local: no SNAT (overrides KX_FE_NODEPORT) */
#define KX_FE_AFFINITY    0x0004 /* sessionAffinity ClientIP: kx_affinity, affinity_timeout seconds */
#define KX_FE_REJECT      0x0008 /* with count 0: no endpoint anywhere, answer ICMP port
				  * unreachable (kube-proxy's REJECT); without it count 0 drops */
#define KX_FE_SRC_RANGES  0x0010 /* loadBalancerSourceRanges: only sources in kx_src_ranges */
#define KX_FE_MASQ_ALL    0x0020 /* ClusterIP under masqueradeAll: always SNAT */
#define KX_FE_MASQ_OFF_CLUSTER 0x0040 /* ClusterIP: SNAT sources outside kx_cluster_cidrs */
#define KX_FE_MASQ_LOCAL  0x0080 /* with KX_FE_NODEPORT: SNAT local endpoints too (kube-proxy's
				  * behaviour; off by default, the client address is kept) */

/* backend_value.flags */
#define KX_BE_LOCAL       0x01 /* the endpoint runs on this node */
#define KX_BE_TERMINATING 0x02 /* serving but terminating: kept for existing flows */

/* ct_value.dir */
#define KX_CT_FWD   0 /* keyed by client -> service frontend, as the client sent it */
#define KX_CT_REPLY 1 /* keyed by backend -> client (or -> SNAT address), as the backend sends it */

/* The prefilter that keeps packets which cannot belong to a Service flow off the conntrack
 * tables: a Bloom filter of frontend addresses (2^22 bits, two hashes of the address) and a
 * bitmap of backend ports. A forward packet of a tracked or new flow is addressed to a frontend
 * address; a reply comes from a backend port. Bits are only ever set, by the controller: for
 * every frontend address and backend port before it programs them, and at start for what
 * conntrack holds; so a flow on a removed frontend or endpoint still passes. Hashes mirrored in src/dataplane/ebpf/prefilter.ts. */
#define KX_VIP_BLOOM_WORDS 65536 /* u64 words: 2^22 bits (~0.2% false positives at 100,000 addresses) */
#define KX_VIP_HASH1 0x9E3779B1u
#define KX_VIP_HASH2 0x85EBCA6Bu
#define KX_PORT_WORDS 1024       /* u64 words: one bit per port */

/* Version of the pinned maps' meaning, kept in kx_layout: pins of an older version are converted
 * at load (src/dataplane/ebpf/pins.ts). 1: the direction was part of ct_key. 2: it is in
 * ct_value. */
#define KX_LAYOUT_VERSION 2

/* ct_value.flags: the same on both entries of a flow */
#define KX_CT_SNAT       0x0001 /* source-NATed: to the node, or to another port of the client (reply key taken) */
#define KX_CT_REPLIED    0x0002 /* a reply was seen: the flow lives in kx_ct, not kx_ct_new */
#define KX_CT_FIN_FWD    0x0004 /* TCP FIN seen from the client */
#define KX_CT_FIN_REPLY  0x0008 /* TCP FIN seen from the backend */
#define KX_CT_RST        0x0010 /* TCP RST seen */

/* Conntrack lifetimes since the last packet, in seconds. Established TCP and close-wait are
 * the values kube-proxy sets for netfilter (conntrack.tcpEstablishedTimeout 24h,
 * tcpCloseWaitTimeout 1h); the others are netfilter's UDP defaults and Cilium's SYN and close
 * timeouts. An expired entry counts as absent everywhere, so its SNAT port is free again. */
#define KX_CT_TCP_SYN_S         60
#define KX_CT_TCP_ESTABLISHED_S 86400
#define KX_CT_TCP_CLOSE_WAIT_S  3600  /* FIN from one side only: the other may still send */
#define KX_CT_TCP_CLOSE_S       10    /* RST, or FIN from both sides */
#define KX_CT_UDP_S             30    /* no reply yet */
#define KX_CT_UDP_STREAM_S      120   /* replied */
#define KX_CT_SCTP_S            210   /* replied: netfilter's established SCTP (heartbeats 30 s) */
/* An unreplied flow older than this gives its SNAT port up when no port is free. */
#define KX_CT_SNAT_RECLAIM_NS   3000000000ULL
/* The time of an entry is rewritten at most this often unless its state changes. */
#define KX_CT_REFRESH_NS        1000000000ULL

/* Defaults sized for 100,000 Services x 10 endpoints (1M backends); --bpf-map-sizes changes
 * them at load. Hash maps without preallocation cost memory per entry used, plus buckets. */
#define KX_MAX_FRONTENDS  524288
#define KX_MAX_SLOTS      2097152
#define KX_MAX_BACKENDS   1048576
#define KX_MAX_REVNAT     524288
#define KX_MAX_CT         524288 /* flows that have seen a reply (two entries each) */
#define KX_MAX_CT_NEW     131072 /* flows waiting for their first reply: a SYN flood churns
				  * this table only, never the established flows */
#define KX_MAX_SRC_RANGES 65536  /* loadBalancerSourceRanges CIDRs, over every frontend */
#define KX_MAX_CLUSTER_CIDRS 256
#define KX_MAX_AFFINITY   131072 /* (client, frontend) pairs under sessionAffinity ClientIP */
#define KX_MAX_SOCK_REVNAT 262144 /* (socket, backend) pairs the socket hooks translated */
#define KX_MAX_AFFINITY_MATCH KX_MAX_SLOTS /* (frontend, backend) pairs of frontends with affinity: at most one per slot */

/* SNAT source ports for NodePort -> remote backend and hairpin: 61000..65535, above Linux's
 * default ip_local_port_range (32768..60999), so a node socket never shares a 5-tuple with a
 * translated flow (the controller warns when the node's range reaches into it). Mirrored in
 * src/dataplane/ebpf/maps.ts. */
#define KX_SNAT_PORT_MIN  61000
#define KX_SNAT_PORT_SPAN 4536
#define KX_SNAT_PROBES    16

struct frontend_key {
	__be32 addr;
	__be16 port;
	__u8 proto;  /* IPPROTO_TCP / IPPROTO_UDP / IPPROTO_SCTP */
	__u8 scope;  /* KX_SCOPE_* */
};

struct frontend_value {
	__u32 svc_id;       /* key of this frontend's slots */
	__u16 count;        /* number of slots 0..count-1; 0 = no usable endpoint */
	__u16 flags;        /* KX_FE_* */
	__u32 affinity_timeout; /* seconds, 0 = none (reserved) */
	__u32 rev_nat_id;   /* reverse-NAT entry: the address the client must see */
};

struct slot_key {
	__u32 svc_id;
	__u32 slot;
};

struct slot_value {
	__u32 backend_id;
};

struct backend_value { /* key: __u32 backend id */
	__be32 addr;
	__be16 port;
	__u8 flags;  /* KX_BE_* */
	__u8 pad;
};

struct revnat_value { /* key: __u32 rev_nat_id */
	__be32 addr;
	__be16 port;
	__u16 pad;
};

/* A packet's own 5-tuple: one lookup per table finds its flow whichever way it travels (the
 * direction is in the value). A forward tuple never equals another flow's reply tuple: a
 * reply's destination port is the client's or a SNAT port (61000+, above every NodePort). */
struct ct_key {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 pad[3];
};

/* A flow has two entries, FWD and REPLY, in the same table: kx_ct_new until its first reply,
 * then kx_ct. Either entry holds what it takes to rebuild the other. */
struct ct_value {
	__u32 backend_id;  /* both: chosen backend */
	__u32 rev_nat_id;  /* both: the frontend the client addressed */
	__be32 nat_addr;   /* FWD+SNAT: node source address; REPLY+SNAT: original client address */
	__be16 nat_port;   /* likewise for the port */
	__u16 flags;       /* KX_CT_* */
	__be32 backend_addr; /* FWD: the chosen backend's address, kept for TCP after the */
	__be16 backend_port; /* backend entry is gone (as netfilter's conntrack keeps it) */
	__u8 dir;          /* KX_CT_FWD / KX_CT_REPLY: which of the flow's two entries this is */
	__u8 pad;
	__u64 last_seen_ns; /* bpf_ktime_get_ns() of the last packet, in steps of KX_CT_REFRESH_NS */
};

/* loadBalancerSourceRanges: an LPM trie over (frontend, source); prefixlen counts the 32 bits
 * of svc_id plus the CIDR's length. Value: 1. */
struct src_range_key {
	__u32 prefixlen;
	__u32 svc_id;  /* always matched whole (prefixlen >= 32), so host order is fine */
	__be32 addr;
};

/* kube-proxy's clusterCIDR (its LocalDetector): which sources are pods. Value: 1. */
struct cidr_key {
	__u32 prefixlen;
	__be32 addr;
};

/* sessionAffinity ClientIP: the backend a client was last sent to by one frontend. */
struct affinity_key {
	__be32 client;
	__u32 svc_id;
};

/* The backends of each frontend with affinity (value 1): an affinity entry is honoured only
 * while its backend is still one of the frontend's (ids are reused after a delete). */
struct affinity_match_key {
	__u32 svc_id;
	__u32 backend_id;
};

struct affinity_value {
	__u32 backend_id;
	__u32 pad;
	__u64 last_ns; /* bpf_ktime_get_ns() of the client's last new flow to this frontend */
};

/* config_value.flags */
#define KX_CFG_FIB_FORWARD 0x1 /* --bpf-fib-forward: translated packets are forwarded by the
				* programs (bpf_fib_lookup + XDP_TX / bpf_redirect_neigh) */

/* Node-wide settings, one entry at index 0, written by the controller. */
struct config_value {
	__be32 node_addr;  /* SNAT source for NodePort traffic to remote backends */
	__u32 flags;       /* KX_CFG_*, for both families */
};

/* Socket-level load balancing: the Service address a socket dialled, by the socket and the
 * backend it was given, for recvmsg() and getpeername() to answer with. Socket cookies are
 * never reused, so an entry of a closed socket is harmless until the LRU drops it. Value:
 * revnat_value. */
struct sock_revnat_key {
	__u64 cookie; /* bpf_get_socket_cookie() */
	__be32 addr;  /* the backend */
	__be16 port;
	__u16 pad;
};

/* Socket hook settings, one entry at index 0, written by the controller. */
struct sock_config {
	__u64 host_netns_cookie; /* the node's network namespace: only its sockets are translated
				  * (pods keep the packet path); 0 = socket hooks off */
};

/*
 * IPv6: the same maps beside the IPv4 ones, with 16-byte addresses (Cilium's lb4_/lb6_ split,
 * not Katran's unions): IPv4 keys stay 16 bytes where a union would make them 40, and the IPv4
 * pins of earlier releases stay valid as they are. What holds no address is shared by both
 * families: frontend_value, the slots, affinity_value, kx_affinity_match, the stats. Service,
 * backend and rev-NAT ids come from one id space each, so a slot's backend id is looked up in
 * the map of its frontend's family. The fields mean what they mean in the IPv4 structs above.
 */
struct frontend_key6 {
	struct in6_addr addr;
	__be16 port;
	__u8 proto;
	__u8 scope;
};

struct backend_value6 {
	struct in6_addr addr;
	__be16 port;
	__u8 flags;
	__u8 pad;
};

struct revnat_value6 {
	struct in6_addr addr;
	__be16 port;
	__u16 pad;
};

struct ct_key6 {
	struct in6_addr saddr;
	struct in6_addr daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 pad[3];
};

struct ct_value6 {
	__u32 backend_id;
	__u32 rev_nat_id;
	struct in6_addr nat_addr;
	__be16 nat_port;
	__u16 flags;
	struct in6_addr backend_addr;
	__be16 backend_port;
	__u8 dir;
	__u8 pad;
	__u64 last_seen_ns;
};

struct src_range_key6 {
	__u32 prefixlen; /* 32 (svc_id) + the CIDR's length */
	__u32 svc_id;
	struct in6_addr addr;
};

struct cidr_key6 {
	__u32 prefixlen;
	struct in6_addr addr;
};

struct affinity_key6 {
	struct in6_addr client;
	__u32 svc_id;
};

struct sock_revnat_key6 {
	__u64 cookie;
	struct in6_addr addr;
	__be16 port;
	__u8 pad[6];
};

struct config_value6 {
	struct in6_addr node_addr; /* SNAT source for IPv6 NodePort traffic to remote backends */
};

#endif
