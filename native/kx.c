// SPDX-License-Identifier: Apache-2.0
/* libkx: see kx.h for the rules every function here follows. */
#define _GNU_SOURCE /* vasprintf */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <net/if.h>
#include <linux/if_link.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <bpf/btf.h>
#include <stdint.h>

#include "kx.h"

/* Newer than the libbpf 1.1 / linux 6.1 uapi headers. */
#define KX_BPF_TCX_INGRESS 46
#define KX_BPF_TCX_EGRESS 47
#define KX_BPF_LINK_TYPE_TCX 11
#define KX_ENOTSUPP 524 /* kernel-internal "no batch op for this map type" */

/* ---- libbpf messages: the tail of the WARN output of the current call ---- */

#define KX_MSG_CAP 32768
static char msg_buf[KX_MSG_CAP];
static size_t msg_len;

static int kx_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char *s = NULL;
	int n;

	if (level != LIBBPF_WARN)
		return 0;
	n = vasprintf(&s, fmt, ap);
	if (n <= 0)
		return 0;
	if ((size_t)n >= KX_MSG_CAP) { /* keep the tail: verifier logs end with the reason */
		memcpy(msg_buf, s + n - (KX_MSG_CAP - 1), KX_MSG_CAP - 1);
		msg_len = KX_MSG_CAP - 1;
	} else {
		if (msg_len + n >= KX_MSG_CAP) {
			size_t drop = msg_len + n - (KX_MSG_CAP - 1);
			memmove(msg_buf, msg_buf + drop, msg_len - drop);
			msg_len -= drop;
		}
		memcpy(msg_buf + msg_len, s, n);
		msg_len += n;
	}
	msg_buf[msg_len] = '\0';
	free(s);
	return 0;
}

__attribute__((constructor)) static void kx_init(void)
{
	libbpf_set_print(kx_print);
}

#define BEGIN() (msg_len = 0, msg_buf[0] = '\0')

int kx_last_error(char *buf, int len)
{
	int n = (int)msg_len;

	if (!buf || len <= 0)
		return -EINVAL;
	if (n > len - 1)
		n = len - 1;
	memcpy(buf, msg_buf, n);
	buf[n] = '\0';
	return n;
}

/* ---- helpers ---- */

static int mkdir_p(const char *path)
{
	char tmp[4096];
	size_t n = strlen(path);

	if (n == 0 || n >= sizeof(tmp))
		return -ENAMETOOLONG;
	memcpy(tmp, path, n + 1);
	for (char *p = tmp + 1; ; p++) {
		if (*p == '/' || *p == '\0') {
			char c = *p;
			*p = '\0';
			if (mkdir(tmp, 0700) && errno != EEXIST)
				return -errno;
			*p = c;
			if (c == '\0')
				return 0;
		}
	}
}

static int mkdir_parent(const char *path)
{
	char tmp[4096];
	char *slash;

	if (strlen(path) >= sizeof(tmp))
		return -ENAMETOOLONG;
	strcpy(tmp, path);
	slash = strrchr(tmp, '/');
	if (!slash || slash == tmp)
		return 0;
	*slash = '\0';
	return mkdir_p(tmp);
}

static bool unsupported(int err)
{
	return err == -KX_ENOTSUPP || err == -EOPNOTSUPP || err == -EINVAL;
}

static int map_sizes(int fd, __u32 *key_size, __u32 *stride)
{
	struct kx_map_info mi;
	int err = kx_map_info(fd, &mi);

	if (err)
		return err;
	*key_size = mi.key_size;
	*stride = mi.value_stride;
	return 0;
}

/* ---- objects ---- */

#define KX_MAX_OBJS 256
static struct bpf_object *objs[KX_MAX_OBJS];

static struct bpf_object *obj_of(int h)
{
	return (h >= 0 && h < KX_MAX_OBJS) ? objs[h] : NULL;
}

/* The lowest unused object handle, or -EMFILE. */
static int free_handle(void)
{
	int h;

	for (h = 0; h < KX_MAX_OBJS && objs[h]; h++)
		;
	return h == KX_MAX_OBJS ? -EMFILE : h;
}

/* "name=N,name=N" -> bpf_map__set_max_entries on each; the object is open, not loaded. */
static int set_max_entries(struct bpf_object *obj, const char *spec)
{
	char buf[1024], *save = NULL, *item;

	if (strlen(spec) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, spec);
	for (item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(item, '='), *end;
		unsigned long n;
		struct bpf_map *map;

		if (!eq)
			return -EINVAL;
		*eq = '\0';
		errno = 0;
		n = strtoul(eq + 1, &end, 10);
		if (errno || *end || n == 0 || n > UINT32_MAX)
			return -EINVAL;
		map = bpf_object__find_map_by_name(obj, item);
		if (!map)
			return -EINVAL;
		if (bpf_map__set_max_entries(map, (uint32_t)n))
			return -EINVAL;
	}
	return 0;
}

int kx_obj_open_load(const char *path, const char *pin_root, const char *max_entries)
{
	struct bpf_object *obj;
	int h, err;

	BEGIN();
	if (!path)
		return -EINVAL;
	if ((h = free_handle()) < 0)
		return h;
	if (pin_root && (err = mkdir_p(pin_root)))
		return err;
	LIBBPF_OPTS(bpf_object_open_opts, opts,
		.object_name = NULL,
		.relaxed_maps = false,
		.pin_root_path = pin_root,
		.kconfig = NULL,
		.btf_custom_path = NULL,
		.kernel_log_buf = NULL,
		.kernel_log_size = 0,
		.kernel_log_level = 0,
	);
	obj = bpf_object__open_file(path, &opts);
	if (!obj)
		return -errno;
	if (max_entries && (err = set_max_entries(obj, max_entries))) {
		bpf_object__close(obj);
		return err;
	}
	err = bpf_object__load(obj);
	if (err) {
		bpf_object__close(obj);
		return err;
	}
	objs[h] = obj;
	return h;
}

int kx_obj_open(const char *path)
{
	struct bpf_object *obj;
	int h;

	BEGIN();
	if (!path)
		return -EINVAL;
	if ((h = free_handle()) < 0)
		return h;
	obj = bpf_object__open_file(path, NULL);
	if (!obj)
		return -errno;
	objs[h] = obj;
	return h;
}

int kx_obj_btf_struct(int handle, const char *name, char *out, int out_len)
{
	struct bpf_object *obj = obj_of(handle);
	const struct btf_member *m;
	const struct btf_type *t;
	struct btf *btf;
	int id, n, used;

	BEGIN();
	if (!obj)
		return -EBADF;
	if (!name || !out || out_len < 1)
		return -EINVAL;
	btf = bpf_object__btf(obj);
	if (!btf)
		return -ENOENT;
	id = btf__find_by_name_kind(btf, name, BTF_KIND_STRUCT);
	if (id < 0)
		return -ENOENT;
	t = btf__type_by_id(btf, id);
	used = snprintf(out, out_len, "%u", t->size);
	m = btf_members(t);
	for (n = 0; n < btf_vlen(t) && used < out_len; n++, m++) {
		int size = btf__resolve_size(btf, m->type);

		used += snprintf(out + used, out_len - used, " %s:%u:%d", btf__name_by_offset(btf, m->name_off),
				 btf_member_bit_offset(t, n), size);
	}
	return used < out_len ? used : -ENOSPC;
}

int kx_obj_close(int handle)
{
	struct bpf_object *obj = obj_of(handle);

	BEGIN();
	if (!obj)
		return -EBADF;
	bpf_object__close(obj);
	objs[handle] = NULL;
	return 0;
}

int kx_obj_map_fd(int handle, const char *name)
{
	struct bpf_object *obj = obj_of(handle);
	struct bpf_map *map;

	BEGIN();
	if (!obj)
		return -EBADF;
	map = bpf_object__find_map_by_name(obj, name);
	return map ? bpf_map__fd(map) : -ENOENT;
}

int kx_obj_prog_fd(int handle, const char *name)
{
	struct bpf_object *obj = obj_of(handle);
	struct bpf_program *prog;

	BEGIN();
	if (!obj)
		return -EBADF;
	prog = bpf_object__find_program_by_name(obj, name);
	return prog ? bpf_program__fd(prog) : -ENOENT;
}

int kx_obj_get(const char *path)
{
	BEGIN();
	return bpf_obj_get(path);
}

int kx_obj_pin(int fd, const char *path)
{
	int err;

	BEGIN();
	if ((err = mkdir_parent(path)))
		return err;
	return bpf_obj_pin(fd, path);
}

int kx_close(int fd)
{
	BEGIN();
	return close(fd) ? -errno : 0;
}

/* ---- maps ---- */

int kx_map_info(int fd, struct kx_map_info *out)
{
	struct bpf_map_info info;
	__u32 len = sizeof(info);
	int err;

	BEGIN();
	memset(&info, 0, sizeof(info));
	err = bpf_obj_get_info_by_fd(fd, &info, &len);
	if (err)
		return err;
	memset(out, 0, sizeof(*out));
	out->type = info.type;
	out->key_size = info.key_size;
	out->value_size = info.value_size;
	out->max_entries = info.max_entries;
	out->id = info.id;
	out->map_flags = info.map_flags;
	out->value_stride = info.value_size;
	switch (info.type) {
	case BPF_MAP_TYPE_PERCPU_HASH:
	case BPF_MAP_TYPE_PERCPU_ARRAY:
	case BPF_MAP_TYPE_LRU_PERCPU_HASH:
	case BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE: {
		int cpus = libbpf_num_possible_cpus();
		if (cpus < 0)
			return cpus;
		out->value_stride = ((info.value_size + 7) & ~7u) * cpus;
		break;
	}
	default:
		break;
	}
	memcpy(out->name, info.name, sizeof(out->name));
	out->name[sizeof(out->name) - 1] = '\0';
	return 0;
}

int kx_map_update_batch(int fd, const void *keys, const void *values, uint32_t count,
			uint64_t elem_flags)
{
	__u32 n = count, ks, vs;
	int err;

	BEGIN();
	if (count == 0)
		return 0;
	LIBBPF_OPTS(bpf_map_batch_opts, opts, .elem_flags = elem_flags, .flags = 0);
	err = bpf_map_update_batch(fd, keys, values, &n, &opts);
	if (!err)
		return (int)n;
	if (n != 0 || !unsupported(err) || map_sizes(fd, &ks, &vs))
		return err;
	for (n = 0; n < count; n++) { /* map type without batch ops */
		err = bpf_map_update_elem(fd, (const char *)keys + (size_t)n * ks,
					  (const char *)values + (size_t)n * vs, elem_flags);
		if (err)
			return err;
	}
	return (int)count;
}

int kx_map_delete_batch(int fd, const void *keys, uint32_t count)
{
	__u32 done = 0, deleted = 0, ks = 0, vs;
	int err;

	BEGIN();
	LIBBPF_OPTS(bpf_map_batch_opts, opts, .elem_flags = 0, .flags = 0);
	while (done < count) {
		__u32 n = count - done;

		if (!ks && (err = map_sizes(fd, &ks, &vs)))
			return err;
		err = bpf_map_delete_batch(fd, (const char *)keys + (size_t)done * ks, &n, &opts);
		done += n;
		deleted += n;
		if (!err)
			break;
		if (err == -ENOENT) { /* keys[done] is missing: skip it, resume the batch */
			done++;
			continue;
		}
		if (n != 0 || !unsupported(err))
			return err;
		for (; done < count; done++) { /* map type without batch ops */
			err = bpf_map_delete_elem(fd, (const char *)keys + (size_t)done * ks);
			if (err && err != -ENOENT)
				return err;
			deleted += !err;
		}
	}
	return (int)deleted;
}

/* get_next_key + lookup: for map types or kernels without lookup_batch. */
static int dump_slow(int fd, char *keys, char *values, __u32 max, __u32 ks, __u32 vs)
{
	char *next = malloc(ks ? ks : 1);
	const void *prev = NULL;
	__u32 got = 0;
	int err;

	if (!next)
		return -ENOMEM;
	for (;;) {
		err = bpf_map_get_next_key(fd, prev, next);
		if (err == -ENOENT) {
			err = (int)got;
			break;
		}
		if (err)
			break;
		if (got == max) {
			err = -ENOSPC;
			break;
		}
		memcpy(keys + (size_t)got * ks, next, ks);
		err = bpf_map_lookup_elem(fd, next, values + (size_t)got * vs);
		if (err == -ENOENT) /* deleted meanwhile */
			continue;
		if (err)
			break;
		prev = keys + (size_t)got * ks;
		got++;
	}
	free(next);
	return err;
}

int kx_map_dump(int fd, void *keys_out, void *values_out, uint32_t max)
{
	char *keys = keys_out, *values = values_out;
	__u32 ks, vs, tok, got = 0;
	char *in_tok = NULL, *out_tok = NULL, *scratch = NULL;
	void *in = NULL;
	int err;

	BEGIN();
	if ((err = map_sizes(fd, &ks, &vs)))
		return err;
	/* The batch token is a u32 bucket for hash maps, a key for the generic walk. */
	tok = ks > 8 ? ks : 8;
	in_tok = calloc(1, tok);
	out_tok = calloc(1, tok);
	scratch = malloc((size_t)ks + vs);
	if (!in_tok || !out_tok || !scratch) {
		err = -ENOMEM;
		goto out;
	}
	LIBBPF_OPTS(bpf_map_batch_opts, opts, .elem_flags = 0, .flags = 0);
	for (;;) {
		__u32 n = max - got;
		bool probe = n == 0; /* buffer full: one more element would mean "too many" */

		if (probe)
			n = 1;
		err = bpf_map_lookup_batch(fd, in, out_tok,
					   probe ? scratch : keys + (size_t)got * ks,
					   probe ? scratch + ks : values + (size_t)got * vs, &n, &opts);
		if (err && err != -ENOENT) {
			if (got == 0 && !in && unsupported(err))
				err = dump_slow(fd, keys, values, max, ks, vs);
			else if (probe && err == -ENOSPC)
				err = -ENOSPC;
			goto out;
		}
		if (probe) {
			err = n ? -ENOSPC : (int)got;
			goto out;
		}
		got += n;
		if (err == -ENOENT) {
			err = (int)got;
			goto out;
		}
		memcpy(in_tok, out_tok, tok);
		in = in_tok;
	}
out:
	free(in_tok);
	free(out_tok);
	free(scratch);
	return err;
}

int kx_map_lookup(int fd, const void *key, void *value)
{
	BEGIN();
	return bpf_map_lookup_elem(fd, key, value);
}

int kx_map_update(int fd, const void *key, const void *value, uint64_t flags)
{
	BEGIN();
	return bpf_map_update_elem(fd, key, value, flags);
}

int kx_map_delete(int fd, const void *key)
{
	BEGIN();
	return bpf_map_delete_elem(fd, key);
}

/* ---- attach ---- */

/* Opens the link pinned at path if it is a live link of link_type on ifindex (and, when
 * attach_type >= 0, on that hook). Returns 1 with *fd set, 0 if there is no usable pin (a pin
 * whose interface is gone is removed), -errno otherwise. */
static int pinned_link(const char *path, __u32 link_type, int ifindex, int attach_type, int *fd)
{
	struct bpf_link_info info;
	__u32 len = sizeof(info), pinned_ifindex, pinned_attach;
	int lfd, err;

	lfd = bpf_obj_get(path);
	if (lfd == -ENOENT)
		return 0;
	if (lfd < 0)
		return lfd;
	memset(&info, 0, sizeof(info));
	err = bpf_obj_get_info_by_fd(lfd, &info, &len);
	if (err)
		goto fail;
	/* xdp.ifindex and the 6.6+ tcx.{ifindex, attach_type} share the union's first bytes. */
	pinned_ifindex = info.xdp.ifindex;
	memcpy(&pinned_attach, (const char *)&info.xdp + sizeof(__u32), sizeof(__u32));
	err = -EEXIST;
	if (info.type != link_type)
		goto fail;
	if (pinned_ifindex == 0) { /* the interface went away: the link is defunct */
		close(lfd);
		return unlink(path) ? -errno : 0;
	}
	if ((int)pinned_ifindex != ifindex || (attach_type >= 0 && (int)pinned_attach != attach_type))
		goto fail;
	*fd = lfd;
	return 1;
fail:
	close(lfd);
	return err;
}

static int attach_link(int prog_fd, int ifindex, int attach_type, __u32 link_type,
		       __u32 flags, const char *path)
{
	int lfd = -1, err;

	if (!path)
		return -EINVAL;
	err = pinned_link(path, link_type, ifindex,
			  link_type == KX_BPF_LINK_TYPE_TCX ? attach_type : -1, &lfd);
	if (err < 0)
		return err;
	if (err == 1) {
		LIBBPF_OPTS(bpf_link_update_opts, uopts, .flags = 0, .old_prog_fd = 0);
		err = bpf_link_update(lfd, prog_fd, &uopts);
		close(lfd);
		return err;
	}
	if ((err = mkdir_parent(path)))
		return err;
	LIBBPF_OPTS(bpf_link_create_opts, copts,
		.flags = flags,
		.iter_info = NULL,
		.iter_info_len = 0,
		.target_btf_id = 0,
	);
	lfd = bpf_link_create(prog_fd, ifindex, attach_type, &copts);
	if (lfd < 0)
		return lfd;
	err = bpf_obj_pin(lfd, path);
	close(lfd); /* the pin holds the link; without it, closing detaches */
	return err;
}

int kx_attach_xdp(int prog_fd, int ifindex, int mode, const char *link_pin_path)
{
	__u32 flags;

	BEGIN();
	if (mode == KX_XDP_NATIVE)
		flags = XDP_FLAGS_DRV_MODE;
	else if (mode == KX_XDP_GENERIC)
		flags = XDP_FLAGS_SKB_MODE;
	else
		return -EINVAL;
	return attach_link(prog_fd, ifindex, BPF_XDP, BPF_LINK_TYPE_XDP, flags, link_pin_path);
}

static void tc_hook(struct bpf_tc_hook *h, int ifindex, int direction)
{
	memset(h, 0, sizeof(*h));
	h->sz = sizeof(*h);
	h->ifindex = ifindex;
	h->attach_point = direction ? BPF_TC_EGRESS : BPF_TC_INGRESS;
	h->parent = 0;
}

int kx_attach_tc(int prog_fd, int ifindex, int direction, int use_tcx, const char *link_pin_path)
{
	struct bpf_tc_hook hook;
	int err;

	BEGIN();
	if (direction != 0 && direction != 1)
		return -EINVAL;
	if (use_tcx)
		return attach_link(prog_fd, ifindex,
				   direction ? KX_BPF_TCX_EGRESS : KX_BPF_TCX_INGRESS,
				   KX_BPF_LINK_TYPE_TCX, 0, link_pin_path);
	tc_hook(&hook, ifindex, direction);
	err = bpf_tc_hook_create(&hook);
	if (err && err != -EEXIST)
		return err;
	LIBBPF_OPTS(bpf_tc_opts, opts,
		.prog_fd = prog_fd,
		.flags = BPF_TC_F_REPLACE,
		.prog_id = 0,
		.handle = KX_TC_HANDLE,
		.priority = KX_TC_PRIORITY,
	);
	return bpf_tc_attach(&hook, &opts);
}

int kx_attach_cgroup(int prog_fd, const char *cgroup_path, int attach_type, const char *link_pin_path)
{
	struct bpf_link_info info;
	__u32 len = sizeof(info);
	struct stat st;
	int cfd, lfd, err;

	BEGIN();
	if (!cgroup_path || !link_pin_path)
		return -EINVAL;
	cfd = open(cgroup_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cfd < 0)
		return -errno;
	if (fstat(cfd, &st)) {
		err = -errno;
		goto out;
	}
	lfd = bpf_obj_get(link_pin_path);
	if (lfd >= 0) {
		memset(&info, 0, sizeof(info));
		err = bpf_obj_get_info_by_fd(lfd, &info, &len);
		/* A cgroup's id is its directory's inode number on cgroup v2. */
		if (!err && info.type == BPF_LINK_TYPE_CGROUP && info.cgroup.cgroup_id == st.st_ino &&
		    info.cgroup.attach_type == (__u32)attach_type) {
			LIBBPF_OPTS(bpf_link_update_opts, uopts, .flags = 0, .old_prog_fd = 0);
			err = bpf_link_update(lfd, prog_fd, &uopts);
			close(lfd);
			goto out;
		}
		/* another cgroup (--cgroup-root changed) or a removed one: this pin is ours to replace */
		if (!err)
			bpf_link_detach(lfd);
		close(lfd);
		if (unlink(link_pin_path)) {
			err = -errno;
			goto out;
		}
	} else if (lfd != -ENOENT) {
		err = lfd;
		goto out;
	}
	if ((err = mkdir_parent(link_pin_path)))
		goto out;
	LIBBPF_OPTS(bpf_link_create_opts, copts,
		.flags = 0,
		.iter_info = NULL,
		.iter_info_len = 0,
		.target_btf_id = 0,
	);
	lfd = bpf_link_create(prog_fd, cfd, attach_type, &copts);
	if (lfd < 0) {
		err = lfd;
		goto out;
	}
	err = bpf_obj_pin(lfd, link_pin_path);
	close(lfd);
out:
	close(cfd);
	return err;
}

int kx_netns_cookie(uint64_t *out)
{
	socklen_t len = sizeof(*out);
	int fd, err = 0;

	BEGIN();
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (getsockopt(fd, SOL_SOCKET, 71 /* SO_NETNS_COOKIE, Linux 5.14 */, out, &len))
		err = -errno;
	close(fd);
	return err;
}

int kx_detach_link(const char *link_pin_path)
{
	int lfd, err;

	BEGIN();
	if (!link_pin_path)
		return -EINVAL;
	lfd = bpf_obj_get(link_pin_path);
	if (lfd == -ENOENT)
		return 0;
	if (lfd < 0)
		return lfd;
	err = bpf_link_detach(lfd);
	close(lfd);
	if (err && err != -ENOLINK) /* ENOLINK: already defunct */
		return err;
	return unlink(link_pin_path) ? -errno : 1;
}

int kx_detach_tc(int ifindex, int direction, int use_tcx, const char *link_pin_path)
{
	struct bpf_tc_hook hook;
	int err;

	if (use_tcx)
		return kx_detach_link(link_pin_path);
	BEGIN();
	if (direction != 0 && direction != 1)
		return -EINVAL;
	tc_hook(&hook, ifindex, direction);
	LIBBPF_OPTS(bpf_tc_opts, opts,
		.prog_fd = 0,
		.flags = 0,
		.prog_id = 0,
		.handle = KX_TC_HANDLE,
		.priority = KX_TC_PRIORITY,
	);
	err = bpf_tc_detach(&hook, &opts);
	/* ENOENT: no such filter; EINVAL: no clsact qdisc at all. */
	if (err == -ENOENT || err == -EINVAL)
		return 0;
	return err ? err : 1;
}

/* ---- probe ---- */

static int load_trivial(enum bpf_prog_type type, enum bpf_attach_type expected, int ret)
{
	const struct bpf_insn insns[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = ret },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	LIBBPF_OPTS(bpf_prog_load_opts, opts,
		.attempts = 0,
		.expected_attach_type = expected,
		.prog_btf_fd = 0,
		.prog_flags = 0,
		.prog_ifindex = 0,
		.kern_version = 0,
		.attach_btf_id = 0,
		.attach_prog_fd = 0,
		.attach_btf_obj_fd = 0,
		.fd_array = NULL,
		.func_info = NULL,
		.func_info_cnt = 0,
		.func_info_rec_size = 0,
		.line_info = NULL,
		.line_info_cnt = 0,
		.line_info_rec_size = 0,
		.log_level = 0,
		.log_size = 0,
		.log_buf = NULL,
	);
	return bpf_prog_load(type, "kx_probe", "GPL", insns, 2, &opts); /* fd or -errno (libbpf 1.x) */
}

int kx_probe_prog(int prog_type, int expected_attach_type, int retval)
{
	int fd;

	BEGIN();
	fd = load_trivial(prog_type, expected_attach_type, retval);
	if (fd < 0)
		return fd;
	close(fd);
	return 0;
}

int kx_probe_link(int prog_type, int expected_attach_type, int attach_type, uint32_t flags)
{
	int ifindex, pfd, lfd;

	BEGIN();
	ifindex = if_nametoindex("lo");
	if (!ifindex)
		return -errno;
	pfd = load_trivial(prog_type, expected_attach_type, prog_type == BPF_PROG_TYPE_XDP ? 2 /* XDP_PASS */ : 0);
	if (pfd < 0)
		return pfd;
	LIBBPF_OPTS(bpf_link_create_opts, copts,
		.flags = flags,
		.iter_info = NULL,
		.iter_info_len = 0,
		.target_btf_id = 0,
	);
	lfd = bpf_link_create(pfd, ifindex, attach_type, &copts);
	close(pfd);
	if (lfd == -EBUSY) /* someone else's program holds lo: the link type itself works */
		return 0;
	if (lfd < 0)
		return lfd;
	close(lfd); /* unpinned: closing the only fd detaches it */
	return 0;
}

int kx_probe_clsact(void)
{
	struct bpf_tc_hook hook;
	int ifindex, pfd, err, created;

	BEGIN();
	ifindex = if_nametoindex("lo");
	if (!ifindex)
		return -errno;
	tc_hook(&hook, ifindex, 0);
	err = bpf_tc_hook_create(&hook); /* the kernel loads sch_ingress (alias sch_clsact) on demand */
	if (err && err != -EEXIST)
		return err;
	created = !err;
	pfd = load_trivial(BPF_PROG_TYPE_SCHED_CLS, 0, 0);
	if (pfd < 0) {
		err = pfd;
		goto out;
	}
	LIBBPF_OPTS(bpf_tc_opts, opts,
		.prog_fd = pfd,
		.flags = 0,
		.prog_id = 0,
		.handle = KX_TC_HANDLE + 1, /* never the dataplane's own filter */
		.priority = KX_TC_PRIORITY,
	);
	err = bpf_tc_attach(&hook, &opts); /* and cls_bpf */
	close(pfd);
	if (!err) {
		LIBBPF_OPTS(bpf_tc_opts, dopts,
			.prog_fd = 0,
			.flags = 0,
			.prog_id = 0,
			.handle = KX_TC_HANDLE + 1,
			.priority = KX_TC_PRIORITY,
		);
		bpf_tc_detach(&hook, &dopts);
	} else if (err == -EEXIST) {
		err = 0;
	}
out:
	if (created) {
		hook.attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS; /* removes the qdisc we made */
		bpf_tc_hook_destroy(&hook);
	}
	return err;
}

int kx_probe_helper(int prog_type, int helper_id)
{
	BEGIN();
	return libbpf_probe_bpf_helper(prog_type, helper_id, NULL);
}

int kx_probe_map_type(int map_type)
{
	BEGIN();
	return libbpf_probe_bpf_map_type(map_type, NULL);
}

int kx_probe_test_run(void)
{
	unsigned char frame[64] = { 0 }, out[64];
	uint32_t size = sizeof(out), retval = 0;
	int fd, err;

	BEGIN();
	fd = load_trivial(BPF_PROG_TYPE_XDP, BPF_XDP, 2 /* XDP_PASS */);
	if (fd < 0)
		return fd;
	err = kx_prog_test_run(fd, frame, sizeof(frame), out, &size, 1, &retval, NULL);
	close(fd);
	if (err)
		return err;
	return retval == 2 ? 0 : -EPROTO;
}

/* ---- test run ---- */

int kx_prog_test_run(int prog_fd, const void *data_in, uint32_t size_in, void *data_out,
		     uint32_t *size_out, uint32_t repeat, uint32_t *retval, uint32_t *duration_ns)
{
	int err;

	BEGIN();
	LIBBPF_OPTS(bpf_test_run_opts, opts,
		.data_in = data_in,
		.data_out = data_out,
		.data_size_in = size_in,
		.data_size_out = (data_out && size_out) ? *size_out : 0,
		.ctx_in = NULL,
		.ctx_out = NULL,
		.ctx_size_in = 0,
		.ctx_size_out = 0,
		.retval = 0,
		.repeat = repeat ? (int)repeat : 1,
		.duration = 0,
		.flags = 0,
		.cpu = 0,
		.batch_size = 0,
	);
	err = bpf_prog_test_run_opts(prog_fd, &opts);
	if (size_out)
		*size_out = opts.data_size_out;
	if (err)
		return err;
	if (retval)
		*retval = opts.retval;
	if (duration_ns)
		*duration_ns = opts.duration;
	return 0;
}

int kx_prog_test_run_each(int prog_fd, const void *frames, uint32_t frame_size, uint32_t count,
			  uint32_t expect_retval, uint64_t *total_ns)
{
	int matched = 0, err;

	BEGIN();
	for (uint32_t i = 0; i < count; i++) {
		LIBBPF_OPTS(bpf_test_run_opts, opts,
			.data_in = (const char *)frames + (size_t)i * frame_size,
			.data_out = NULL,
			.data_size_in = frame_size,
			.data_size_out = 0,
			.ctx_in = NULL,
			.ctx_out = NULL,
			.ctx_size_in = 0,
			.ctx_size_out = 0,
			.retval = 0,
			.repeat = 1,
			.duration = 0,
			.flags = 0,
			.cpu = 0,
			.batch_size = 0,
		);
		err = bpf_prog_test_run_opts(prog_fd, &opts);
		if (err)
			return err;
		*total_ns += opts.duration;
		matched += opts.retval == expect_retval;
	}
	return matched;
}

/* ---- interfaces ---- */

int kx_if_list(char *buf, int len)
{
	struct if_nameindex *list, *i;
	int used = 0, err = 0;

	BEGIN();
	if (!buf || len <= 0)
		return -EINVAL;
	list = if_nameindex();
	if (!list)
		return -errno;
	buf[0] = '\0';
	for (i = list; i->if_index; i++) {
		int n = snprintf(buf + used, len - used, "%u %s\n", i->if_index, i->if_name);
		if (n < 0 || n >= len - used) {
			err = -ENOSPC;
			break;
		}
		used += n;
	}
	if_freenameindex(list);
	return err ? err : used;
}

int kx_if_index(const char *name)
{
	unsigned int idx;

	BEGIN();
	if (!name)
		return -EINVAL;
	idx = if_nametoindex(name);
	return idx ? (int)idx : -errno;
}
