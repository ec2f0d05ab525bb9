// SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause)
/*
 * bench/datapath.ts's packet loop: one BPF_PROG_TEST_RUN call (repeat = 1) per frame, with
 * the kernel's duration of EACH call kept, and the empty program run on the same frame just
 * before or after it (alternately), so both see the same noise. libkx's FFI costs ~75 us a
 * call through ffi-napi; this loop costs ~2 us a call, so the bench can afford 10^5-10^6
 * distinct packets per row. Compiled by bench/datapath.ts at run time (cc -shared ... -lbpf)
 * into a temporary directory; nothing here is part of kube-xdp.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <bpf/bpf.h>

static int run_one(int fd, const uint8_t *in, uint32_t size, uint8_t *out, uint32_t out_cap,
		   uint32_t *duration, uint32_t *retval, uint32_t *out_size)
{
	LIBBPF_OPTS(bpf_test_run_opts, opts,
		.data_in = in,
		.data_size_in = size,
		.data_out = out,
		.data_size_out = out ? out_cap : 0,
		.repeat = 1,
	);
	int err = bpf_prog_test_run_opts(fd, &opts);

	if (err)
		return err < 0 ? err : -errno;
	*duration = opts.duration;
	if (retval)
		*retval = opts.retval;
	if (out_size)
		*out_size = opts.data_size_out;
	return 0;
}

/*
 * For i in [0, count): runs prog_fd once on frame i (frames back to back, frame_size bytes
 * each), keeping its duration (ns, the kernel's), verdict and — when out is not NULL — its
 * output frame (out + i * out_stride, at most out_stride bytes; out_sizes[i] its length).
 * When empty_fd >= 0, the empty program runs once on the same frame too, before the measured
 * call on even i and after it on odd i; its durations go to empty_durations.
 * Returns count, or -errno of the first failing call (the arrays hold what ran before it).
 */
int kxb_run(int prog_fd, int empty_fd, const uint8_t *frames, uint32_t frame_size, uint32_t count,
	    uint8_t *out, uint32_t out_stride, uint32_t *out_sizes, uint32_t *durations,
	    uint32_t *empty_durations, uint32_t *retvals)
{
	for (uint32_t i = 0; i < count; i++) {
		const uint8_t *f = frames + (size_t)i * frame_size;
		uint8_t *o = out ? out + (size_t)i * out_stride : NULL;
		int err;

		if (empty_fd >= 0 && !(i & 1) && (err = run_one(empty_fd, f, frame_size, NULL, 0, &empty_durations[i], NULL, NULL)))
			return err;
		err = run_one(prog_fd, f, frame_size, o, out_stride, &durations[i], &retvals[i], out_sizes ? &out_sizes[i] : NULL);
		if (err)
			return err;
		if (empty_fd >= 0 && (i & 1) && (err = run_one(empty_fd, f, frame_size, NULL, 0, &empty_durations[i], NULL, NULL)))
			return err;
	}
	return (int)count;
}
