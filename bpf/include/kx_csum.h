/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/* Incremental Internet checksum update (RFC 1624, eqn. 3: HC' = ~(~HC + ~m + m')) for XDP,
 * where the skb checksum helpers do not exist. Works on the field as stored: the one's
 * complement sum does not depend on byte order. */
#ifndef KX_CSUM_H
#define KX_CSUM_H

static __always_inline __u32 kx_csum_add(__u32 sum, __u32 v)
{
	sum += v;
	return sum + (sum < v);
}

static __always_inline __u16 kx_csum_fold(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)sum;
}

static __always_inline __u16 kx_csum_update4(__u16 check, __u32 from, __u32 to)
{
	__u32 s = (__u16)~check;

	s = kx_csum_add(s, ~from);
	s = kx_csum_add(s, to);
	return ~kx_csum_fold(s);
}

/* The change from `from` to `to` added to a running difference (32-bit words as stored), and a
 * difference applied to a checksum: several fields change with one fold. */
static __always_inline __u32 kx_csum_diff4(__u32 diff, __u32 from, __u32 to)
{
	return kx_csum_add(kx_csum_add(diff, ~from), to);
}

static __always_inline __u32 kx_csum_diff2(__u32 diff, __u16 from, __u16 to)
{
	return kx_csum_add(kx_csum_add(diff, (__u16)~from), to);
}

static __always_inline __u32 kx_csum_diff16(__u32 diff, const struct in6_addr *from, const struct in6_addr *to)
{
#pragma unroll
	for (int i = 0; i < 4; i++)
		diff = kx_csum_diff4(diff, from->in6_u.u6_addr32[i], to->in6_u.u6_addr32[i]);
	return diff;
}

static __always_inline __u16 kx_csum_apply(__u16 check, __u32 diff)
{
	return ~kx_csum_fold(kx_csum_add((__u16)~check, diff));
}

static __always_inline __u16 kx_csum_update2(__u16 check, __u16 from, __u16 to)
{
	__u32 s = (__u16)~check;

	s = kx_csum_add(s, (__u16)~from);
	s = kx_csum_add(s, to);
	return ~kx_csum_fold(s);
}

#endif
