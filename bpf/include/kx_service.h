/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/* The Service decision without a packet (kx_service_af.h), for IPv4 and IPv6. */
#ifndef KX_SERVICE_H
#define KX_SERVICE_H

#include "kx_map_defs.h"

static __always_inline int kx_bit(void *words, __u32 bit)
{
	__u32 w = bit >> 6;
	__u64 *v = bpf_map_lookup_elem(words, &w);

	return v && ((*v >> (bit & 63)) & 1);
}

#define KX_FAMILY_V4
#include "kx_addr.h"
#include "kx_service_af.h"
#undef KX_FAMILY_V4
#define KX_FAMILY_V6
#include "kx_addr.h"
#include "kx_service_af.h"
#undef KX_FAMILY_V6

#endif
