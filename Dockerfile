# kube-xdp image: build stage (BPF objects, libkx.so, TypeScript), slim runtime stage.
#   docker build -t ghcr.io/kube-xdp/kube-xdp:0.1.0 .
# amd64 only: the Makefile compiles the BPF programs with -D__TARGET_ARCH_x86.

FROM node:20-bookworm AS build
# clang/llvm/libbpf-dev/bpftool: the BPF objects; gcc/libelf/zlib: libkx.so (-lbpf);
# python3/g++/make: node-gyp, which builds @2060.io/ffi-napi and ref-napi during npm ci.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev gcc g++ make python3 \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY Makefile tsconfig.json ./
COPY bpf ./bpf
COPY native ./native
COPY src ./src

# build/vmlinux.h (the kernel's types for the BPF programs) is dumped from a kernel's BTF. The
# default, /sys/kernel/btf/vmlinux, is the *build host's* kernel: RUN steps see the host's
# sysfs (read-only), which is enough on any kernel built with CONFIG_DEBUG_INFO_BTF (most
# distributions since 5.x). The programs only use UAPI types (xdp_md, __sk_buff, packet
# headers), so the build kernel need not match the nodes'. Where the build host has no BTF,
# put a BTF file in the context under bpf/ and pass its path relative to /src:
#   docker build --build-arg VMLINUX_BTF=bpf/vmlinux.btf .
ARG VMLINUX_BTF=/sys/kernel/btf/vmlinux
# make does not regenerate build/vmlinux.h once it exists. `make bpf native` compiles only
# (the `build` and `ts` targets depend on `deps`, which runs apt-get and npm ci again).
RUN mkdir -p build \
 && bpftool btf dump file "$VMLINUX_BTF" format c > build/vmlinux.h \
 && make bpf native \
 && npx tsc -p tsconfig.json \
 && chmod 0755 dist/src/cli/main.js \
 && npm prune --omit=dev --no-audit --no-fund

FROM node:20-bookworm-slim
LABEL org.opencontainers.image.title="kube-xdp" \
      org.opencontainers.image.description="A drop-in replacement for kube-proxy with an eBPF (XDP + tc) dataplane" \
      org.opencontainers.image.source="https://github.com/kube-xdp/kube-xdp" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="0.1.0"
# libbpf1/libelf1: libkx.so's dependencies. iptables (both iptables-nft and -legacy, with their
# -save/-restore), nftables, ipset, ipvsadm, conntrack, iproute2, kmod: the iptables mode,
# `kube-xdp cleanup` and what kube-proxy's image ships. bpftool: `bpftool map show` and
# `bpftool net` from `kubectl exec` when checking a node.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libbpf1 libelf1 iptables nftables ipset ipvsadm conntrack iproute2 kmod ca-certificates bpftool \
 && rm -rf /var/lib/apt/lists/*
# The layout the code resolves at run time: dist/src/config/run-config.js -> ../../../build/
# kube_xdp.bpf.o and dist/src/kernel/libkx.js -> ../../../build/libkx.so, i.e.
# /opt/kube-xdp/build/; package.json ("type": "module") makes dist/ ES modules.
WORKDIR /opt/kube-xdp
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY --from=build /src/build/kube_xdp.bpf.o /src/build/libkx.so ./build/
# main.js starts with `#!/usr/bin/env node`; node follows the link to resolve its imports.
RUN ln -s /opt/kube-xdp/dist/src/cli/main.js /usr/local/bin/kube-xdp \
 && kube-xdp --help >/dev/null
ENV NODE_ENV=production
# The DaemonSet gives the command (`kube-xdp run ...`).
CMD ["kube-xdp", "--help"]
