#!/usr/bin/env node
// kube-xdp: a drop-in replacement for kube-proxy. Subcommands: run, inspect, cleanup, probe.
import { ConfigError, readFlags } from '../config/flags.js';
import { Libkx } from '../kernel/libkx.js';
import { formatReport, probeKernel } from '../kernel/probe.js';
import { cleanup } from './cleanup.js';
import { inspect } from './inspect.js';
import { render } from './render.js';
import { run } from './run.js';
import { trace } from './trace.js';

const USAGE = `usage: kube-xdp <command> [flags]
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
  inspect  [--bpf-pin-dir DIR] [-o table|json]   programmed services and backends, from the pinned maps
  cleanup  [--bpf-pin-dir DIR] [--pod-interfaces GLOB,...]   detach programs, remove pins, remove
           every KUBE-* chain and jump rule (iptables and ip6tables, nft and legacy), every IPVS
           virtual server, kube-ipvs0 and kube-proxy's ipsets
  trace    --src IP[:PORT] --dst IP:PORT/PROTO [--from pod|external|host] [--bpf-pin-dir DIR] [-o text|json]
           where this packet goes: the loaded programs run on a scratch copy of the live maps
  probe    [-o text|json]   the BPF features this kernel offers, each tried for real, and whether
           the eBPF mode can run (exit 3 when it cannot)
`;

function probe(argv: string[]): void {
  const { values } = readFlags(argv, { output: { type: 'string', short: 'o', default: 'text' } });
  if (values.output !== 'text' && values.output !== 'json') throw new ConfigError('output', `must be text or json, not ${JSON.stringify(values.output)}`);
  const r = probeKernel(new Libkx());
  process.stdout.write(values.output === 'json' ? `${JSON.stringify(r, null, 2)}\n` : `${formatReport(r)}\n`);
  if (r.ebpfUnusable !== null) process.exitCode = 3;
}

async function main(argv: string[]): Promise<void> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'run': return run(rest);
    case 'inspect': return inspect(rest);
    case 'cleanup': return cleanup(rest);
    case 'render': return render(rest);
    case 'probe': return probe(rest);
    case 'trace': return trace(rest);
    case undefined: case '-h': case '--help': case 'help': process.stdout.write(USAGE); return;
    default: throw new ConfigError('command', `unknown command ${JSON.stringify(cmd)}\n${USAGE}`);
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`kube-xdp: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(err instanceof ConfigError ? 2 : 1);
});
