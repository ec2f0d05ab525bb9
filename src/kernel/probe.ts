// The startup probe: which BPF features this kernel offers, each tried for real (a trivial
// program loaded, a link or a clsact qdisc created on `lo` for an instant, libbpf's helper and
// map probes), and what the eBPF mode makes of them. `kube-xdp probe` prints the report;
// `--mode auto` skips the eBPF mode when a required feature is missing, `--mode ebpf` fails
// naming it.
import { existsSync } from 'node:fs';
import { release } from 'node:os';
import { errnoCode } from './kernel-error.js';
import type { Libkx } from './libkx.js';

// uapi/linux/bpf.h and if_link.h values (checked against this machine's headers).
const PROG_XDP = 6, PROG_SCHED_CLS = 3, PROG_CGROUP_SOCK_ADDR = 18;
const ATTACH_XDP = 37, ATTACH_TCX_INGRESS = 46;
const MAP_HASH = 1, MAP_LRU_HASH = 9, MAP_PERCPU_ARRAY = 6;
const XDP_FLAGS_SKB_MODE = 2;
const HELPER_FOR_EACH_MAP_ELEM = 164, HELPER_FIB_LOOKUP = 69, HELPER_SKB_STORE_BYTES = 9, HELPER_L4_CSUM_REPLACE = 11;

export type FeatureName =
  | 'btf' | 'xdp' | 'tc' | 'hashMaps' | 'lruHash' | 'percpuArray' | 'forEachMapElem' | 'testRun' | 'xdpLink'
  | 'skbRewrite' | 'tcx' | 'clsact' | 'fibLookup'
  | 'connect4' | 'connect6' | 'sendmsg4' | 'sendmsg6' | 'recvmsg4' | 'recvmsg6' | 'getpeername4' | 'getpeername6';

/** What the eBPF mode does without a feature: cannot run, or does something else (written in `without`). */
export interface FeatureSpec {
  readonly name: FeatureName;
  readonly what: string;
  /** Mainline kernel that brought it (for the README table and the error message). */
  readonly since: string;
  readonly required: boolean;
  /** For optional features: what the eBPF mode does without it. */
  readonly without?: string;
}

export const FEATURES: readonly FeatureSpec[] = [
  { name: 'btf', what: 'kernel BTF (/sys/kernel/btf/vmlinux)', since: '5.4', required: true },
  { name: 'xdp', what: 'XDP programs', since: '4.8', required: true },
  { name: 'tc', what: 'tc (sched_cls) programs', since: '4.1', required: true },
  { name: 'hashMaps', what: 'hash maps', since: '3.19', required: true },
  { name: 'lruHash', what: 'LRU hash maps (conntrack)', since: '4.10', required: true },
  { name: 'percpuArray', what: 'per-CPU arrays (datapath counters)', since: '4.6', required: true },
  { name: 'skbRewrite', what: 'bpf_skb_store_bytes and bpf_l4_csum_replace in tc', since: '4.1', required: true },
  { name: 'forEachMapElem', what: 'the bpf_for_each_map_elem helper (conntrack GC)', since: '5.13', required: true },
  { name: 'testRun', what: 'BPF_PROG_TEST_RUN of XDP programs (the conntrack GC runs through it)', since: '4.12', required: true },
  { name: 'xdpLink', what: 'XDP links (bpf_link_create BPF_XDP)', since: '5.9', required: true },
  { name: 'tcx', what: 'TCX links (bpf_link_create BPF_TCX_INGRESS)', since: '6.6', required: false, without: 'tc programs go on a clsact qdisc filter' },
  { name: 'clsact', what: 'a clsact qdisc with a cls_bpf filter (Debian: modules sch_ingress, cls_bpf, loaded on demand)', since: '4.5', required: false, without: 'needed only without TCX' },
  { name: 'fibLookup', what: 'the bpf_fib_lookup helper in XDP', since: '4.18', required: false, without: 'not used yet' },
  { name: 'connect4', what: 'cgroup connect4 hooks', since: '4.17', required: false, without: 'host-network clients not served by socket hooks' },
  { name: 'connect6', what: 'cgroup connect6 hooks', since: '4.17', required: false, without: 'as connect4' },
  { name: 'sendmsg4', what: 'cgroup sendmsg4 hooks (UDP)', since: '4.18', required: false, without: 'as connect4' },
  { name: 'sendmsg6', what: 'cgroup sendmsg6 hooks (UDP)', since: '4.18', required: false, without: 'as connect4' },
  { name: 'recvmsg4', what: 'cgroup recvmsg4 hooks (UDP replies)', since: '5.2', required: false, without: 'as connect4' },
  { name: 'recvmsg6', what: 'cgroup recvmsg6 hooks (UDP replies)', since: '5.2', required: false, without: 'as connect4' },
  { name: 'getpeername4', what: 'cgroup getpeername4 hooks', since: '5.8', required: false, without: 'as connect4' },
  { name: 'getpeername6', what: 'cgroup getpeername6 hooks', since: '5.8', required: false, without: 'as connect4' },
];

export interface FeatureResult {
  readonly ok: boolean;
  /** 'ok', or the kernel's answer ('EINVAL', 'not supported', 'missing'). */
  readonly detail: string;
}

export interface ProbeReport {
  /** uname -r */
  readonly kernel: string;
  readonly features: Readonly<Record<FeatureName, FeatureResult>>;
  /** How tc programs attach: TCX links when the kernel has them, else a clsact qdisc filter. */
  readonly tc: 'tcx' | 'clsact';
  /** null when the eBPF mode can run, else the missing required features, named. */
  readonly ebpfUnusable: string | null;
}

const fromRc = (rc: number): FeatureResult => (rc >= 0 ? { ok: true, detail: 'ok' } : { ok: false, detail: errnoCode(-rc) });
/** libbpf's helper/map probes: 1 supported, 0 not, <0 could not tell. */
const fromProbe = (rc: number): FeatureResult =>
  rc === 1 ? { ok: true, detail: 'ok' } : { ok: false, detail: rc === 0 ? 'not supported' : errnoCode(-rc) };
const both = (a: FeatureResult, b: FeatureResult): FeatureResult => (a.ok ? b : a);

/** Runs every probe (the link probes touch `lo` of the current netns for an instant). */
export function probeKernel(lib: Libkx): ProbeReport {
  const sockAddr = (attach: number) => fromRc(lib.probeProg(PROG_CGROUP_SOCK_ADDR, attach, 1));
  const features: Record<FeatureName, FeatureResult> = {
    btf: existsSync('/sys/kernel/btf/vmlinux') ? { ok: true, detail: 'ok' } : { ok: false, detail: 'missing' },
    xdp: fromRc(lib.probeProg(PROG_XDP, ATTACH_XDP, 2)),
    tc: fromRc(lib.probeProg(PROG_SCHED_CLS, 0, 0)),
    hashMaps: fromProbe(lib.probeMapType(MAP_HASH)),
    lruHash: fromProbe(lib.probeMapType(MAP_LRU_HASH)),
    percpuArray: fromProbe(lib.probeMapType(MAP_PERCPU_ARRAY)),
    skbRewrite: both(fromProbe(lib.probeHelper(PROG_SCHED_CLS, HELPER_SKB_STORE_BYTES)), fromProbe(lib.probeHelper(PROG_SCHED_CLS, HELPER_L4_CSUM_REPLACE))),
    forEachMapElem: fromProbe(lib.probeHelper(PROG_XDP, HELPER_FOR_EACH_MAP_ELEM)),
    testRun: fromRc(lib.probeTestRun()),
    xdpLink: fromRc(lib.probeLink(PROG_XDP, ATTACH_XDP, ATTACH_XDP, XDP_FLAGS_SKB_MODE)),
    tcx: fromRc(lib.probeLink(PROG_SCHED_CLS, 0, ATTACH_TCX_INGRESS, 0)),
    clsact: fromRc(lib.probeClsact()),
    fibLookup: fromProbe(lib.probeHelper(PROG_XDP, HELPER_FIB_LOOKUP)),
    connect4: sockAddr(10),
    connect6: sockAddr(11),
    sendmsg4: sockAddr(14),
    sendmsg6: sockAddr(15),
    recvmsg4: sockAddr(19),
    recvmsg6: sockAddr(20),
    getpeername4: sockAddr(29),
    getpeername6: sockAddr(30),
  };
  return report(release(), features);
}

/** Pure: the report's conclusions from the raw results. */
export function report(kernel: string, features: Record<FeatureName, FeatureResult>): ProbeReport {
  const missing = FEATURES.filter((f) => f.required && !features[f.name].ok)
    .map((f) => `${f.what}, kernel ≥ ${f.since} (probe: ${features[f.name].detail})`);
  if (!features.tcx.ok && !features.clsact.ok) {
    missing.push(`a way to attach tc programs: TCX links (kernel ≥ 6.6) or the clsact qdisc with cls_bpf (probe: ${features.clsact.detail})`);
  }
  return {
    kernel,
    features,
    tc: features.tcx.ok ? 'tcx' : 'clsact',
    ebpfUnusable: missing.length ? `missing ${missing.join('; ')}` : null,
  };
}

/** One line per feature for `kube-xdp probe` and the startup log. */
export function formatReport(r: ProbeReport): string {
  const lines = [`kernel ${r.kernel}`];
  for (const f of FEATURES) {
    const res = r.features[f.name];
    const note = res.ok ? '' : f.required ? '  (required by the eBPF mode)' : `  (without it: ${f.without})`;
    lines.push(`${res.ok ? 'yes' : 'no '} ${f.name.padEnd(14)} ${f.what}${res.ok ? '' : ` — ${res.detail}`}${note}`);
  }
  lines.push(`tc attach: ${r.tc}`);
  lines.push(r.ebpfUnusable === null ? 'eBPF mode: can run' : `eBPF mode: cannot run: ${r.ebpfUnusable}`);
  return lines.join('\n');
}
