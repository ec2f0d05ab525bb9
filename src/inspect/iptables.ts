// The iptables mode's view, read back from `iptables-save -c`: kube-proxy's comments name the
// Service port ("ns/name:port cluster IP"), kube-names.ts gives its KUBE-SVC/SVL/EXT/FW chains,
// and the KUBE-SEP chains they jump to hold the backends. Works on kube-proxy's own rules too.
// Pure.
import { KUBE_EXTERNAL_SERVICES, KUBE_NODEPORTS, KUBE_SERVICES, serviceChains } from '../dataplane/kube-names.js';
import { sortServices, type FrontendKind, type InspectedBackend, type InspectedFrontend, type InspectedService, type InspectView } from './view.js';

export interface SavedRule {
  readonly table: string;
  readonly chain: string;
  readonly args: readonly string[];
  readonly packets: number;
  readonly bytes: number;
}

/** iptables-save's quoting: double quotes around words with spaces, backslash escapes inside. */
export function splitWords(line: string): string[] {
  const words: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|(\S+)/g;
  for (let m = re.exec(line); m; m = re.exec(line)) words.push(m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : m[2]!);
  return words;
}

/** The `-A` rules of an `iptables-save [-c]` dump (any number of tables). */
export function parseIptablesSave(text: string): SavedRule[] {
  const rules: SavedRule[] = [];
  let table = '';
  for (const line of text.split('\n')) {
    if (line.startsWith('*')) table = line.slice(1).trim();
    const m = /^(?:\[(\d+):(\d+)\] )?-A (\S+) (.*)$/.exec(line);
    if (m) rules.push({ table, chain: m[3]!, args: splitWords(m[4]!), packets: Number(m[1] ?? 0), bytes: Number(m[2] ?? 0) });
  }
  return rules;
}

const opt = (args: readonly string[], flag: string): string | null => {
  const i = args.indexOf(flag);
  return i < 0 ? null : args[i + 1] ?? null;
};
const bareAddress = (cidr: string) => cidr.replace(/\/(32|128)$/, '');

/** "ns/name:port cluster IP" → the ServicePortName and what follows it. */
const CAPTURE_SUFFIX: ReadonlyArray<readonly [string, FrontendKind]> = [[' cluster IP', 'ClusterIP'], [' external IP', 'ExternalIP'], [' loadbalancer IP', 'LoadBalancer']];
const spnParts = (spn: string) => {
  const m = /^([^/\s]+\/[^:\s]+)(?::(\S*))?$/.exec(spn);
  return m ? { service: m[1]!, portName: m[2] ?? '' } : null;
};

type Mutable<F extends InspectedFrontend> = Omit<F, 'flags' | 'scope'> & { flags: string[]; scope: string };

interface Building {
  readonly spn: string;
  readonly protocol: string;
  readonly frontends: Map<string, Mutable<InspectedFrontend>>;
  healthCheck: boolean;
}

export function iptablesView(rules: readonly SavedRule[], source: string): InspectView {
  const nat = new Map<string, SavedRule[]>();
  for (const r of rules) if (r.table === 'nat') (nat.get(r.chain) ?? nat.set(r.chain, []).get(r.chain)!).push(r);
  const jumpsOf = (chain: string) => (nat.get(chain) ?? []).map((r) => ({ rule: r, target: opt(r.args, '-j') ?? '' }));

  const services = new Map<string, Building>();
  const get = (spn: string, protocol: string): Building => {
    const k = `${spn} ${protocol}`;
    return services.get(k) ?? services.set(k, { spn, protocol, frontends: new Map(), healthCheck: false }).get(k)!;
  };
  const chainsOf = (b: Building) => serviceChains(b.spn, b.protocol);
  /** The endpoint chain a frontend's rules end in (KUBE-EXT and KUBE-FW lead on to it). */
  const policyChain = (b: Building, chain: string): string | null => {
    const c = chainsOf(b);
    if (chain === c.cluster || chain === c.local) return chain;
    // KUBE-FW jumps to KUBE-EXT from the allowed ranges; KUBE-EXT ends in an unconditional jump
    // to the policy's chain, absent when that policy has no endpoints (the filter table drops)
    const next = chain === c.firewall
      ? jumpsOf(chain).find((j) => j.target === c.external)
      : jumpsOf(chain).find((j) => j.rule.args.length === 2 && [c.cluster, c.local].includes(j.target));
    return next ? policyChain(b, next.target) : null;
  };
  const addFrontend = (b: Building, f: Omit<InspectedFrontend, 'backends' | 'flags'>, flag: string | null, endChain: string | null) => {
    const k = `${f.kind} ${f.address} ${f.port}`;
    const have = b.frontends.get(k);
    const scope = endChain === null ? f.scope : endChain === chainsOf(b).local ? 'local' : 'cluster';
    const entry = have ?? { ...f, scope, flags: [], backends: endChain === null ? 0 : endpointsOf(endChain).length };
    if (flag) entry.flags.push(flag);
    b.frontends.set(k, entry);
  };
  const endpointsOf = (chain: string) => jumpsOf(chain).filter((j) => j.target.startsWith('KUBE-SEP-') && !j.rule.args.includes('--rcheck'));

  // nat first: the filter rules' flags land on the frontends the nat rules found
  for (const r of [...rules.filter((x) => x.table === 'nat'), ...rules.filter((x) => x.table !== 'nat')]) {
    const comment = opt(r.args, '--comment');
    const protocol = opt(r.args, '-p');
    if (comment === null || protocol === null) continue;
    const port = Number(opt(r.args, '--dport'));
    const target = opt(r.args, '-j') ?? '';
    const counters = { [r.table === 'nat' ? 'connections' : 'packets']: r.packets };
    if (r.table === 'nat' && (r.chain === KUBE_SERVICES || r.chain === KUBE_NODEPORTS)) {
      if (r.chain === KUBE_NODEPORTS) {
        if (!spnParts(comment)) continue;
        const b = get(comment, protocol);
        addFrontend(b, { kind: 'NodePort', address: '*', port, scope: '', counters }, null, policyChain(b, target));
        continue;
      }
      const suffix = CAPTURE_SUFFIX.find(([s]) => comment.endsWith(s));
      const spn = suffix ? comment.slice(0, -suffix[0].length) : '';
      if (!suffix || !spnParts(spn)) continue;
      const b = get(spn, protocol);
      addFrontend(b, { kind: suffix[1], address: bareAddress(opt(r.args, '-d') ?? '?'), port, scope: '', counters },
        target === chainsOf(b).firewall ? 'source-ranges' : null, policyChain(b, target));
    } else if (r.table === 'filter') {
      // kube-proxy's filter rules: REJECT without endpoints, DROP without local ones, and a
      // LoadBalancer's health check node port
      const hc = / health check node port$/.exec(comment);
      if (hc && r.chain === KUBE_NODEPORTS) {
        const spn = comment.slice(0, hc.index);
        if (spnParts(spn)) get(spn, 'tcp').healthCheck = true;
        continue;
      }
      const none = / has no (local )?endpoints$/.exec(comment);
      if (!none || (r.chain !== KUBE_SERVICES && r.chain !== KUBE_EXTERNAL_SERVICES)) continue;
      const spn = comment.slice(0, none.index);
      if (!spnParts(spn)) continue;
      const b = get(spn, protocol);
      const nodePort = r.args.includes('--dst-type') && opt(r.args, '-d') === null;
      const address = nodePort ? '*' : bareAddress(opt(r.args, '-d') ?? '?');
      const existing = [...b.frontends.values()].find((f) => f.address === address && f.port === port);
      const kind: FrontendKind = existing?.kind ?? (nodePort ? 'NodePort' : r.chain === KUBE_SERVICES ? 'ClusterIP' : 'unknown');
      const flag = target === 'REJECT' ? 'reject' : 'drop';
      if (existing) {
        existing.flags.push(flag);
        existing.scope ||= none[1] ? 'local' : 'cluster';
      }
      else addFrontend(b, { kind, address, port, scope: none[1] ? 'local' : 'cluster', counters }, flag, null);
    }
  }

  const out: InspectedService[] = [];
  for (const b of services.values()) {
    if (b.frontends.size === 0) continue; // a health check rule alone: the Service's other rules are in another family
    const c = chainsOf(b);
    const local = nat.has(c.local) ? new Set(endpointsOf(c.local).map((j) => j.target)) : null;
    const backends = new Map<string, InspectedBackend>();
    let affinity: number | null = null;
    for (const chain of [c.cluster, c.local]) {
      for (const { rule, target } of jumpsOf(chain)) {
        if (!target.startsWith('KUBE-SEP-')) continue;
        if (rule.args.includes('--rcheck')) {
          affinity = Number(opt(rule.args, '--seconds'));
          continue;
        }
        const dnat = jumpsOf(target).find((j) => j.target === 'DNAT');
        const dest = dnat ? opt(dnat.rule.args, '--to-destination') : null;
        const m = dest ? /^\[?([^\]]+?)\]?:(\d+)$/.exec(dest) : null;
        if (!m) continue;
        // iptables keeps no terminating state: kube-proxy only falls back to terminating endpoints
        backends.set(target, {
          address: m[1]!, port: Number(m[2]), local: local === null ? null : local.has(target), terminating: null,
          counters: { connections: dnat!.rule.packets },
        });
      }
    }
    const parts = spnParts(b.spn)!;
    const kinds = new Set([...b.frontends.values()].map((f) => f.kind));
    out.push({
      service: parts.service, portName: parts.portName,
      // the kernel keeps no type: the widest one its rules show
      type: kinds.has('LoadBalancer') || b.healthCheck ? 'LoadBalancer' : kinds.has('NodePort') ? 'NodePort' : 'ClusterIP',
      protocol: b.protocol.toUpperCase(), affinitySeconds: affinity,
      frontends: [...b.frontends.values()], backends: [...backends.values()],
    });
  }
  return { mode: 'iptables', source, services: sortServices(out), counters: {}, notes: [] };
}
