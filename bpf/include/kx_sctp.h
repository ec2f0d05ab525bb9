/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * SCTP's checksum is a CRC32c over the whole packet (no pseudo-header: addresses do not enter
 * it). Rewriting the ports changes 4 bytes at the start, and a CRC is linear: the new checksum
 * is the old one XOR the CRC register of (old ports XOR new ports) advanced over the bytes that
 * follow them as zeros. Advancing over n zero bytes is a product of the 2^k-byte matrices of
 * kx_crc32c_tables.h for the bits of n: at most 12 x 32 XORs, whatever the packet's size, and
 * the payload is never read.
 */
#ifndef KX_SCTP_H
#define KX_SCTP_H

#include "kx_crc32c_tables.h"

#define KX_SCTP_CSUM_OFF 8
#define KX_SCTP_MIN_LEN 16 /* common header + one chunk header */

/* The CRC register after 4 bytes (in memory order) from 0. */
static __always_inline __u32 kx_crc32c_raw4(__u32 bytes)
{
	__u32 reg = 0;

#pragma unroll
	for (int i = 0; i < 4; i++) {
		__u32 x = reg ^ (bytes >> (8 * i));

		/* Mask after the XOR: clang would mask both operands first, and 6.1's verifier
		 * cannot bound the XOR of two bounded values (an unbounded table index). */
		asm volatile("" : "+r"(x));
		reg = kx_crc32c_table[x & 0xff] ^ (reg >> 8);
	}
	return reg;
}

/* Branch-free, so the verifier walks one path through the 12 x 32 steps, not 2^n. */
static __always_inline __u32 kx_crc32c_zeros_apply(__u32 reg, __u32 nbytes)
{
	for (int k = 0; k < KX_CRC32C_ZERO_POWERS; k++) {
		__u32 r = 0, take = -((nbytes >> k) & 1);

		for (int i = 0; i < 32; i++)
			r ^= kx_crc32c_zeros[k][i] & -((reg >> i) & 1);
		reg = (r & take) | (reg & ~take);
	}
	return reg;
}

/* The SCTP checksum as stored (the CRC32c, little-endian) after the first 4 bytes of an
 * sctp_len-byte packet changed from old_ports to new_ports (both as loaded from memory). */
static __always_inline __u32 kx_sctp_csum_update(__u32 csum, __u32 old_ports, __u32 new_ports, __u32 sctp_len)
{
	if (old_ports == new_ports)
		return csum;
	return csum ^ kx_crc32c_zeros_apply(kx_crc32c_raw4(old_ports ^ new_ports), sctp_len - 4);
}

#endif
