/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/* Constants the programs need that vmlinux.h (types only) does not carry. */
#ifndef KX_DEFS_H
#define KX_DEFS_H

#define ETH_P_IP    0x0800
#define IP_MF       0x2000
#define IP_OFFSET   0x1FFF
#define TC_ACT_OK   0
#define TC_ACT_SHOT 2
#define TC_ACT_REDIRECT 7
#define ETH_ALEN    6
#define KX_ICMP_DEST_UNREACH  3
#define KX_ICMP_PORT_UNREACH  3 /* code */
#define KX_ICMP_TIME_EXCEEDED 11

/* Largest header prefix the programs read: Ethernet + IPv4 with options + TCP base header, and
 * Ethernet + IPv6 + the extension headers walked (KX_IPV6_MAX_EXT_LEN) + TCP base header. */
#define KX_MAX_HDR (14 + 60 + 20)
#define KX_MAX_HDR6 (14 + 40 + 256 + 20)
#define KX_ICMP6_DEST_UNREACH 1
#define KX_ICMP6_PORT_UNREACH 4 /* code */
#define KX_ICMP6_PKT_TOOBIG   2
#define KX_ICMP6_TIME_EXCEED  3

#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif

#endif
