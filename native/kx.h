/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libkx: the thin C shim between kube-xdp's TypeScript control plane and libbpf.
 *
 * Rules (they make the FFI boundary predictable):
 *  1. Every function returns >= 0 on success or -errno. Nothing else signals failure.
 *  2. Nothing prints. libbpf's print callback keeps the WARN-level messages of the most recent
 *     kx_* call (cleared when each call starts, bounded); kx_last_error() returns them.
 *  3. Option structs are built here with LIBBPF_OPTS and every field named, so a libbpf
 *     upgrade that adds fields cannot change behaviour silently.
 *  4. libbpf version differences stay here (1.1 has no TCX API: raw bpf_link_create).
 *  5. Objects are integer handles (>= 0), not pointers, so they fit rule 1 and a stale or
 *     double close is -EBADF instead of a crash.
 *  6. Buffers are caller-owned; sizes are in bytes unless said otherwise. Strings are
 *     NUL-terminated; NULL is allowed only where documented.
 */
#ifndef KX_H
#define KX_H

#include <stdint.h>

/* kx_attach_xdp() modes. */
#define KX_XDP_NATIVE  1 /* XDP_FLAGS_DRV_MODE */
#define KX_XDP_GENERIC 2 /* XDP_FLAGS_SKB_MODE */

/* clsact fallback: the one filter kube-xdp owns per hook. */
#define KX_TC_HANDLE   0x6b78 /* "kx" */
#define KX_TC_PRIORITY 1

/* kx_map_info() output, 48 bytes, little-endian u32 fields in this order. value_stride is
 * the bytes one value occupies in user-space buffers: value_size, or for per-CPU maps
 * round_up(value_size, 8) * possible CPUs. */
struct kx_map_info {
	uint32_t type;
	uint32_t key_size;
	uint32_t value_size;
	uint32_t max_entries;
	uint32_t id;
	uint32_t map_flags;
	uint32_t value_stride;
	uint32_t pad;
	char name[16];
};

/* Copies the libbpf messages of the last call into buf (NUL-terminated); returns the length. */
int kx_last_error(char *buf, int len);

/* Opens and loads a BPF object. pin_root (mkdir -p'd; NULL = libbpf's /sys/fs/bpf) holds the
 * LIBBPF_PIN_BY_NAME maps: pinned there on first load, reused when a compatible pin exists.
 * max_entries (NULL = the object's) overrides map sizes before loading: "name=N,name=N"; a
 * name the object lacks or a malformed entry is -EINVAL. Returns a handle. */
int kx_obj_open_load(const char *path, const char *pin_root, const char *max_entries);
/* The layout of `struct name` in the object's BTF, as text into out (NUL-terminated):
 * "SIZE member:BITOFF:SIZE member:BITOFF:SIZE ..." (sizes in bytes). -ENOENT: no such struct. */
int kx_obj_btf_struct(int handle, const char *name, char *out, int out_len);
/* Opens a BPF object without loading it (nothing reaches the kernel): for reading its BTF. */
int kx_obj_open(const char *path);
int kx_obj_close(int handle);
int kx_obj_map_fd(int handle, const char *name);  /* fd owned by the object: do not close */
int kx_obj_prog_fd(int handle, const char *name); /* likewise */

int kx_obj_get(const char *path);        /* new fd of a pinned object: caller closes */
int kx_obj_pin(int fd, const char *path);
int kx_close(int fd);

int kx_map_info(int fd, struct kx_map_info *out);
/* Batches: keys/values are count entries back to back (key_size / value_stride each).
 * Return the number of elements processed (deleted, for delete); on error a prefix of the
 * batch may already be applied (the kernel stops at the first failing element). */
int kx_map_update_batch(int fd, const void *keys, const void *values, uint32_t count,
			uint64_t elem_flags);
int kx_map_delete_batch(int fd, const void *keys, uint32_t count); /* missing keys ignored */
/* Reads up to max entries; returns the count, or -ENOSPC if the map holds more than max. */
int kx_map_dump(int fd, void *keys_out, void *values_out, uint32_t max);
int kx_map_lookup(int fd, const void *key, void *value);
int kx_map_update(int fd, const void *key, const void *value, uint64_t flags);
int kx_map_delete(int fd, const void *key);

/* Attach with replace semantics: a live link pinned at link_pin_path gets the new program
 * (bpf_link_update, no traffic gap); otherwise a link is created and pinned there. A pin of a
 * link whose interface is gone is replaced; a pin of a live link on another interface or
 * hook is -EEXIST. Return 0. */
int kx_attach_xdp(int prog_fd, int ifindex, int mode, const char *link_pin_path);
/* direction 0 = ingress, 1 = egress. use_tcx = 0: clsact qdisc (created if missing) plus
 * our filter (KX_TC_HANDLE/KX_TC_PRIORITY, replaced in place); link_pin_path unused (NULL). */
int kx_attach_tc(int prog_fd, int ifindex, int direction, int use_tcx, const char *link_pin_path);
/* Return 1 if something was detached, 0 if there was nothing to detach. Never removes a qdisc. */
int kx_detach_tc(int ifindex, int direction, int use_tcx, const char *link_pin_path);
int kx_detach_link(const char *link_pin_path);
/* A cgroup link (attach_type: BPF_CGROUP_INET4_CONNECT, …) of prog_fd on the cgroup v2
 * directory cgroup_path, pinned at link_pin_path, with the same replace semantics; a pin of
 * another cgroup or hook is detached and replaced. */
int kx_attach_cgroup(int prog_fd, const char *cgroup_path, int attach_type, const char *link_pin_path);
/* The cookie of the CURRENT network namespace (SO_NETNS_COOKIE). */
int kx_netns_cookie(uint64_t *out);

/* Feature probes for the startup report (src/kernel/probe.ts decides what they mean).
 * Each returns 0 (or 1 for helper/map: supported) when the kernel accepts, else -errno. */
/* Loads (and closes) a two-instruction program returning retval. */
int kx_probe_prog(int prog_type, int expected_attach_type, int retval);
/* Creates and at once destroys an unpinned link of a trivial program on `lo` of the CURRENT
 * network namespace (XDP: pass flags = XDP_FLAGS_SKB_MODE). */
int kx_probe_link(int prog_type, int expected_attach_type, int attach_type, uint32_t flags);
/* Creates a clsact qdisc on `lo` of the CURRENT network namespace with a trivial cls_bpf filter
 * (the kernel loads sch_ingress and cls_bpf on demand), then removes what it made. */
int kx_probe_clsact(void);
/* libbpf_probe_bpf_helper / libbpf_probe_bpf_map_type: 1 supported, 0 not, <0 error. */
int kx_probe_helper(int prog_type, int helper_id);
int kx_probe_map_type(int map_type);
/* BPF_PROG_TEST_RUN of a trivial XDP program (the conntrack GC runs through it). */
int kx_probe_test_run(void);

/* bpf_prog_test_run_opts for XDP and tc programs (data = a full Ethernet frame).
 * size_out is in: capacity of data_out, out: bytes written. repeat 0 means 1. */
int kx_prog_test_run(int prog_fd, const void *data_in, uint32_t size_in, void *data_out,
		     uint32_t *size_out, uint32_t repeat, uint32_t *retval, uint32_t *duration_ns);

/* Benchmarks: runs each of count frames (frame_size bytes each, back to back) once, so every
 * run sees its own input (a repeat would replay one buffer the program already rewrote).
 * Adds the kernel-measured durations to *total_ns; returns how many runs returned
 * expect_retval. One FFI call for many packets. */
int kx_prog_test_run_each(int prog_fd, const void *frames, uint32_t frame_size, uint32_t count,
			  uint32_t expect_retval, uint64_t *total_ns);

/* "ifindex name\n" lines for the current network namespace (if_nameindex(3)); returns the
 * length written, -ENOSPC if buf is too small. */
int kx_if_list(char *buf, int len);
int kx_if_index(const char *name);

#endif
