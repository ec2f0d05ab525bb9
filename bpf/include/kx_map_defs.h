/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/* The maps themselves. Pinned by name under the controller's pin root so that a restarted
 * controller, and bpftool, find them; BTF-typed so `bpftool map dump` prints field names. */
#ifndef KX_MAP_DEFS_H
#define KX_MAP_DEFS_H

#include "kx_maps.h"
#include "kx_stats.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct frontend_key);
	__type(value, struct frontend_value);
	__uint(max_entries, KX_MAX_FRONTENDS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} kx_frontends SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct slot_key);
	__type(value, struct slot_value);
	__uint(max_entries, KX_MAX_SLOTS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} kx_slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct backend_value);
	__uint(max_entries, KX_MAX_BACKENDS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} kx_backends SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct revnat_value);
	__uint(max_entries, KX_MAX_REVNAT);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} kx_revnat SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct ct_key);
	__type(value, struct ct_value);
	__uint(max_entries, KX_MAX_CT);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} kx_ct SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct ct_key);
	__type(value, struct ct_value);
	__uint(max_entries, KX_MAX_CT_NEW);
	/* A shared LRU: its free list is refilled 128 entries at a time (every 64 new flows when
	 * full, 25-40 us: the new-flow p99). Per-CPU lists (BPF_F_NO_COMMON_LRU) cut that tail to
	 * 5-7 us but split the capacity by CPU, and XDP on a single-queue NIC runs on one CPU:
	 * kept shared (README, Conntrack). */
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} kx_ct_new SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct src_range_key);
	__type(value, __u8);
	__uint(max_entries, KX_MAX_SRC_RANGES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} kx_src_ranges SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct cidr_key);
	__type(value, __u8);
	__uint(max_entries, KX_MAX_CLUSTER_CIDRS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} kx_cluster_cidrs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct affinity_key);
	__type(value, struct affinity_value);
	__uint(max_entries, KX_MAX_AFFINITY);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} kx_affinity SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct affinity_match_key);
	__type(value, __u8);
	__uint(max_entries, KX_MAX_AFFINITY_MATCH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} kx_affinity_match SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct config_value);
	__uint(max_entries, 1);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} kx_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, KX_VIP_BLOOM_WORDS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} kx_vip_bloom SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, KX_PORT_WORDS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} kx_port_bits SEC(".maps");

/* IPv6 twins of the address-keyed maps (kx_maps.h); capacities are the IPv4 ones'. */
#define KX_MAP6(kind, k, v, max, flags_) \
	struct { \
		__uint(type, kind); \
		__type(key, k); \
		__type(value, v); \
		__uint(max_entries, max); \
		__uint(map_flags, flags_); \
		__uint(pinning, LIBBPF_PIN_BY_NAME); \
	}
KX_MAP6(BPF_MAP_TYPE_HASH, struct frontend_key6, struct frontend_value, KX_MAX_FRONTENDS, BPF_F_NO_PREALLOC) kx_frontends6 SEC(".maps");
KX_MAP6(BPF_MAP_TYPE_HASH, __u32, struct backend_value6, KX_MAX_BACKENDS, BPF_F_NO_PREALLOC) kx_backends6 SEC(".maps");
KX_MAP6(BPF_MAP_TYPE_HASH, __u32, struct revnat_value6, KX_MAX_REVNAT, BPF_F_NO_PREALLOC) kx_revnat6 SEC(".maps");
KX_MAP6(BPF_MAP_TYPE_LRU_HASH, struct ct_key6, struct ct_value6, KX_MAX_CT, 0) kx_ct6 SEC(".maps");
KX_MAP6(BPF_MAP_TYPE_LRU_HASH, struct ct_key6, struct ct_value6, KX_MAX_CT_NEW, 0) kx_ct_new6 SEC(".maps");
KX_MAP6(BPF_MAP_TYPE_LPM_TRIE, struct src_range_key6, __u8, KX_MAX_SRC_RANGES, BPF_F_NO_PREALLOC) kx_src_ranges6 SEC(".maps");
KX_MAP6(BPF_MAP_TYPE_LPM_TRIE, struct cidr_key6, __u8, KX_MAX_CLUSTER_CIDRS, BPF_F_NO_PREALLOC) kx_cluster_cidrs6 SEC(".maps");
KX_MAP6(BPF_MAP_TYPE_LRU_HASH, struct affinity_key6, struct affinity_value, KX_MAX_AFFINITY, 0) kx_affinity6 SEC(".maps");
KX_MAP6(BPF_MAP_TYPE_ARRAY, __u32, struct config_value6, 1, 0) kx_config6 SEC(".maps");

/* Socket-level load balancing (kx_sock_af.h). */
KX_MAP6(BPF_MAP_TYPE_LRU_HASH, struct sock_revnat_key, struct revnat_value, KX_MAX_SOCK_REVNAT, 0) kx_sock_revnat SEC(".maps");
KX_MAP6(BPF_MAP_TYPE_LRU_HASH, struct sock_revnat_key6, struct revnat_value6, KX_MAX_SOCK_REVNAT, 0) kx_sock_revnat6 SEC(".maps");
KX_MAP6(BPF_MAP_TYPE_ARRAY, __u32, struct sock_config, 1, 0) kx_sock_config SEC(".maps");

/* KX_LAYOUT_VERSION of the pins, written by the controller once they are converted. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, 1);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} kx_layout SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, KX_STAT_MAX);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} kx_stats SEC(".maps");

#endif
