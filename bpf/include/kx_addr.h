/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/* IPv6 address helpers, and the family macros that instantiate the family templates
 * (kx_service_af.h, kx_lb_af.h, kx_hooks_af.h) once per family: KX_FAMILY_V4 / KX_FAMILY_V6
 * select them, KX6(name) names a family's symbol (IPv4: name, IPv6: name##6), kx_addr_t and
 * kx_iphdr_t its address and IP header types. */
#ifndef KX_ADDR_H
#define KX_ADDR_H

static __always_inline int kx_in6_eq(const struct in6_addr *a, const struct in6_addr *b)
{
	const __u32 *x = a->in6_u.u6_addr32, *y = b->in6_u.u6_addr32;

	return x[0] == y[0] && x[1] == y[1] && x[2] == y[2] && x[3] == y[3];
}

static __always_inline int kx_in6_set(const struct in6_addr *a)
{
	const __u32 *x = a->in6_u.u6_addr32;

	return (x[0] | x[1] | x[2] | x[3]) != 0;
}

/* 32 bits of an IPv6 address for hashing (mirrored in src/dataplane/ebpf/prefilter.ts). */
static __always_inline __u32 kx_in6_fold(const struct in6_addr *a)
{
	const __u32 *x = a->in6_u.u6_addr32;

	return bpf_ntohl(x[0] ^ x[1] ^ x[2] ^ x[3]);
}

#endif

/* Outside the guard: included again to switch family. */
#undef KX6
#undef kx_addr_t
#undef KX_ADDR_EQ
#undef KX_ADDR_SET
#undef KX_ADDR_HASH
#undef KX_ADDR_BITS
#undef kx_iphdr_t
#if defined(KX_FAMILY_V6)
#define KX6(name) name##6
#define kx_addr_t struct in6_addr
#define KX_ADDR_EQ(a, b) kx_in6_eq(&(a), &(b))
#define KX_ADDR_SET(a) kx_in6_set(&(a))
#define KX_ADDR_HASH(a) kx_in6_fold(&(a))
#define KX_ADDR_BITS 128
#define kx_iphdr_t struct ipv6hdr
#elif defined(KX_FAMILY_V4)
#define KX6(name) name
#define kx_addr_t __be32
#define KX_ADDR_EQ(a, b) ((a) == (b))
#define KX_ADDR_SET(a) ((a) != 0)
#define KX_ADDR_HASH(a) bpf_ntohl(a)
#define KX_ADDR_BITS 32
#define kx_iphdr_t struct iphdr
#endif
