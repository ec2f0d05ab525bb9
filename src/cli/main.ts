#!/usr/bin/env node
// kube-xdp: a drop-in replacement for kube-proxy. Subcommands: run, inspect, cleanup, probe.
import { ConfigError } from '../config/flags.js';
import { cleanup } from './cleanup.js';
import { inspect } from './inspect.js';
import { probe } from './probe.js';
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
  inspect  [--mode auto|ebpf|iptables|ipvs] [--bpf-pin-dir DIR] [-o table|wide|json|yaml]   every Service
           port this node serves (name, type, frontends, backends, affinity, counters), read back from the
           kernel of this network namespace; auto: pins → eBPF, kube-ipvs0 → IPVS, KUBE-SERVICES → iptables
  cleanup  [--bpf-pin-dir DIR] [--pod-interfaces GLOB,...]   detach programs, remove pins, remove
           every KUBE-* chain and jump rule (iptables and ip6tables, nft and legacy), every IPVS
           virtual server, kube-ipvs0 and kube-proxy's ipsets
  trace    --src IP[:PORT] --dst IP:PORT/PROTO [--from pod|external|host] [--bpf-pin-dir DIR] [-o text|json]
           where this packet goes: the loaded programs run on a scratch copy of the live maps
  probe    [-o text|json] [--external-interfaces IF,...]   the BPF features this kernel offers, each
           tried for real, whether the eBPF mode can run (exit 3 when it cannot) and the mode
           --mode auto would run, with why each earlier one was passed over
`;

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
