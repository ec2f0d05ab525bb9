#!/usr/bin/env node
// kube-xdp: a drop-in replacement for kube-proxy. Without a subcommand (or with `proxy`) it
// takes kube-proxy's command line; subcommands: run, inspect, cleanup, render, probe, trace.
import { readFileSync } from 'node:fs';
import { ConfigError, UnknownFlagError } from '../config/flags.js';
import { cleanup } from './cleanup.js';
import { inspect } from './inspect.js';
import { probe } from './probe.js';
import { render } from './render.js';
import { run } from './run.js';
import { trace } from './trace.js';

const USAGE = `usage: kube-xdp [kube-proxy's flags] | kube-xdp <command> [flags]   (kube-xdp <command> --help: that command's)
  proxy    kube-proxy's command line, also without the word proxy: --config FILE --hostname-override NAME
           [--proxy-mode ebpf|iptables|ipvs|auto] [--cleanup] [--v N] [--logging-format text|json] [--master URL] [--kubeconfig FILE]
           [--cluster-cidr CIDR[,CIDR]] [--nodeport-addresses CIDR|primary|all|localhost,...] [--bind-address IP]
           [--healthz-bind-address IP[:PORT]] [--metrics-bind-address IP[:PORT]] [--oom-score-adj N]
           [--iptables-sync-period D] [--iptables-min-sync-period D] [--ipvs-sync-period D] [--ipvs-min-sync-period D]
           [--ipvs-tcp-timeout D] [--ipvs-tcpfin-timeout D] [--ipvs-udp-timeout D] and every run flag below;
           accepted with a warning, not honoured: --conntrack-*, --kube-api-qps/-burst/-content-type,
           --config-sync-period, --profiling, --bind-address-hard-fail, --detect-local-mode (but ClusterCIDR),
           --pod-bridge-interface, --pod-interface-name-prefix, --feature-gates, --show-hidden-metrics-for-version,
           --proxy-port-range, --log-flush-frequency, --vmodule
  run      --source file:PATH --node-name N [--mode ebpf|iptables|ipvs|auto] [--config KUBE_PROXY_CONFIG]
           eBPF:     --external-interfaces IF[,IF] [--bpf-pin-dir DIR]
           [--pod-interfaces GLOB,...] [--node-ip IP] [--xdp-mode auto|native|generic]
           [--tc-mode auto|tcx|clsact] [--min-sync-period D] [--sync-period D]
           [--metrics-bind-address HOST:PORT] [--log-level L] [--masquerade-local-endpoints] [--bpf-fib-forward]
           [--bpf-map-sizes MAP=N,...]  (frontends, slots, backends, revnat, ct, ct-new, affinity, …; IPv6 twins ct6, …)
           eBPF, iptables: [--cluster-cidr CIDR] [--masquerade-all] [--nodeport-addresses CIDR,...]
           iptables: [--iptables-masquerade-bit N] [--iptables-localhost-nodeports true|false]
                     [--iptables-backend auto|nft|legacy]
           ipvs:     the iptables flags, [--ipvs-scheduler rr|wrr|lc|…] [--ipvs-strict-arp]
                     [--ipvs-exclude-cidrs CIDR,...] [--ipvs-drain-check-period D]
           auto:     the first of ebpf, ipvs, iptables this kernel can run (every flag also as KUBE_XDP_<FLAG>)
  render   --mode iptables|ipvs [--source FILE|-] [--node-name N] [--node-ip IP]... [--cluster-cidr CIDR]
           [--config FILE] ...   prints what a sync would apply (ipvs: ipvsadm, ipset, iptables input
           and kube-ipvs0's addresses); touches nothing
  inspect  [--mode auto|ebpf|iptables|ipvs|nftables] [--bpf-pin-dir DIR] [-o table|wide|json|yaml]   every Service
           port this node serves (name, type, frontends, backends, affinity, counters), read back from the
           kernel of this network namespace; auto: pins → eBPF, kube-ipvs0 → IPVS, KUBE-SERVICES → iptables
  cleanup  [--bpf-pin-dir DIR] [--pod-interfaces GLOB,...]   detach programs, remove pins, remove
           every KUBE-* chain and jump rule (iptables and ip6tables, nft and legacy), every IPVS
           virtual server, kube-ipvs0 and kube-proxy's ipsets
  trace    --src IP[:PORT] --dst IP:PORT/PROTO [--from pod|external|host] [--mode auto|ebpf|iptables|nftables] [--bpf-pin-dir DIR] [-o text|json]
           where this packet goes: the loaded programs run on a scratch copy of the live maps
  probe    [-o text|json] [--external-interfaces IF,...]   the BPF features this kernel offers, each
           tried for real, whether the eBPF mode can run (exit 3 when it cannot) and the mode
           --mode auto would run, with why each earlier one was passed over
`;

/** One command's lines of USAGE. */
function usageOf(cmd: string): string {
  const lines = USAGE.split('\n');
  const start = lines.findIndex((l) => l.startsWith(`  ${cmd} `));
  if (start < 0) return USAGE;
  const end = lines.findIndex((l, i) => i > start && /^ {2}[a-z]/.test(l));
  return `usage: kube-xdp ${cmd === 'proxy' ? '[proxy]' : cmd} [flags]\n${lines.slice(start, end < 0 ? undefined : end).join('\n')}\n`;
}

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  return `kube-xdp v${pkg.version}\n`;
}

async function main(argv: string[]): Promise<void> {
  // kube-proxy's command line has no subcommand: it starts with a flag.
  const [cmd, ...rest] = argv[0]?.startsWith('-') && !['-h', '--help'].includes(argv[0]) ? ['proxy', ...argv] : argv;
  if (cmd !== undefined && rest.some((a) => a === '--help' || a === '-h')) return void process.stdout.write(usageOf(cmd));
  if (rest.includes('--version')) return void process.stdout.write(version());
  try {
    await dispatch(cmd, rest);
  } catch (err) {
    if (err instanceof UnknownFlagError) err.message += `\n${usageOf(cmd!)}`;
    throw err;
  }
}

async function dispatch(cmd: string | undefined, rest: string[]): Promise<void> {
  switch (cmd) {
    case 'proxy': case 'run': return run(rest);
    case 'inspect': return inspect(rest);
    case 'cleanup': return cleanup(rest);
    case 'render': return render(rest);
    case 'probe': return probe(rest);
    case 'trace': return trace(rest);
    case 'version': process.stdout.write(version()); return;
    case undefined: case '-h': case '--help': case 'help': process.stdout.write(USAGE); return;
    default: throw new ConfigError('command', `unknown command ${JSON.stringify(cmd)}\n${USAGE}`);
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`kube-xdp: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(err instanceof ConfigError ? 2 : 1);
});
