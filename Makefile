# kube-xdp — build, demo, test, bench. Every target installs what it needs (deps).
SHELL := /bin/bash
BUILD := build
CLANG ?= clang
BPF_CFLAGS := -O2 -g -Wall -Werror -target bpf -D__TARGET_ARCH_x86 -I$(BUILD) -Ibpf/include
DEB_PACKAGES := clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev gcc make iproute2 ethtool \
	iptables nftables ipset ipvsadm conntrack util-linux
# The kernel tests: qemu (TCG) boots Debian's 6.1 cloud kernel, which has IPVS; the kernel package
# is fetched once with apt-get download into $(or $(KUBE_XDP_KERNEL_CACHE),/var/cache/kube-xdp/kernels).
KERNEL_TEST_PACKAGES := qemu-system-x86 busybox-static cpio xz-utils
# Test files are listed by shell glob at run time: Node 20's `node --test` does not glob.
BPFFS := mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf

.PHONY: all deps build bpf native ts demo test test-unit test-bpf test-lab test-kernels bench soak clean

all: build

deps: .deps-stamp
.deps-stamp: package.json package-lock.json
	@missing=""; for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi
	@missing=""; for p in $(KERNEL_TEST_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages for the kernel tests:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
	npm ci --no-audit --no-fund
	@touch $@

build: deps bpf native ts

bpf: $(BUILD)/kube_xdp.bpf.o $(BUILD)/empty.bpf.o
native: $(BUILD)/libkx.so

# Through a temporary file: a failed dump must not leave an empty header that make trusts.
$(BUILD)/vmlinux.h: | deps
	@mkdir -p $(BUILD)
	bpftool btf dump file /sys/kernel/btf/vmlinux format c > $@.tmp && mv $@.tmp $@

# Objects through a temporary file too: a running test keeps the file it opened (a rename,
# not a rewrite in place).
$(BUILD)/%.bpf.o: bpf/%.bpf.c $(wildcard bpf/include/*.h) $(BUILD)/vmlinux.h
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@.tmp && mv $@.tmp $@

$(BUILD)/libkx.so: $(wildcard native/*.c native/*.h)
	@mkdir -p $(BUILD)
	$(CC) -O2 -g -Wall -Werror -fPIC -shared -o $@.tmp native/*.c -lbpf && mv $@.tmp $@

ts: deps
	npx tsc -p tsconfig.json

demo: build
	$(BPFFS)
	node dist/scripts/demo.js

# Everything (unit, BPF fixtures, lab, kernels under qemu) in one node:test run: its closing
# summary counts all.
test: build
	$(BPFFS)
	node --test --test-concurrency=1 dist/test/unit/*.test.js dist/test/bpf/*.test.js dist/test/lab/*.test.js dist/test/kernels/*.test.js

test-unit: build
	node --test dist/test/unit/*.test.js

test-bpf: build
	$(BPFFS)
	node --test dist/test/bpf/*.test.js

test-lab: build
	$(BPFFS)
	node --test --test-concurrency=1 dist/test/lab/*.test.js

# sync.js: iptables (nft and legacy, scratch netns) vs eBPF map writes at 1k/10k Services; each
# 10k iptables-nft 1.8.9 full restore takes 20-35 min (KXBENCH_SIZES=1000 for a quick run).
# connect.js: a host process's connect() to a ClusterIP, socket hook vs iptables DNAT, 1 and 10k.
bench: build
	$(BPFFS)
	node dist/bench/datapath.js
	node dist/bench/connect.js
	node dist/bench/sync.js

# The eBPF lab under churn and traffic for KX_SOAK_MINUTES (default 30): RSS, map fill and sync
# latency every 10 s -> bench/results/soak.json and soak.png (gnuplot). Not part of make test.
soak: build
	$(BPFFS)
	@dpkg -s gnuplot-nox >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends gnuplot-nox >/dev/null; }
	node dist/bench/soak.js

clean:
	rm -rf $(BUILD) dist

test-kernels: build
	node --test dist/test/kernels/*.test.js
