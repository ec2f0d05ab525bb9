// SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause)
/* Baseline programs: the cost floor for benchmarks and the fixtures of the libkx tests. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

struct kx_test_value {
	__u64 a;
	__u32 b;
	__u32 c;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct kx_test_value);
	__uint(max_entries, 1024);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} kx_test SEC(".maps");

SEC("xdp")
int kx_empty_xdp(struct xdp_md *ctx)
{
	return XDP_PASS;
}

SEC("tc")
int kx_empty_tc(struct __sk_buff *skb)
{
	return 0; /* TC_ACT_OK: a #define, so not in vmlinux.h */
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
