// The nftables mode's view, read back from kube-proxy's nftables tables (`nft -j list table
// ip|ip6 kube-proxy`, libnftables-json(5)): the verdict maps give the frontends (service-ips,
// service-nodeports, the no-endpoint maps, firewall-ips), kube-proxy's chain names
// (`service-HASH-ns/name/proto/port`) and the no-endpoint elements' comments ("ns/name:port")
// name the Service port, the endpoint chains' `dnat to` the backends, the affinity sets' timeout
// the session affinity. The JSON is walked generically (any goto/jump/dnat anywhere in a rule),
// so it reads kube-proxy's own nftables rules too. Pure.
import {
  NFT_CLUSTER_IPS, NFT_FIREWALL_IPS, NFT_NODEPORT_IPS, NFT_NO_ENDPOINT_NODEPORTS, NFT_NO_ENDPOINT_SERVICES, NFT_REJECT_CHAIN,
  NFT_SERVICE_IPS, NFT_SERVICE_NODEPORTS,
} from '../dataplane/kube-names.js';
import { sortServices, type FrontendKind, type InspectedBackend, type InspectedFrontend, type InspectedService, type InspectView } from './view.js';

type J = unknown;
const isObj = (x: J): x is Record<string, J> => typeof x === 'object' && x !== null && !Array.isArray(x);

/** A set or map element: its key's fields, its value's verdict (maps), its comment. */
interface Element {
  readonly key: readonly string[];
  readonly verdict: Verdict | null;
  readonly comment: string | null;
}
/** goto/jump X, or drop/accept/return/continue (target null). */
interface Verdict { readonly kind: string; readonly target: string | null }

/** One key field (or a whole key) as text: "1.2.3.4", "tcp", "80", "10.0.0.0/8", "a-b". */
function scalar(x: J): string {
  if (typeof x === 'string' || typeof x === 'number') return String(x);
  if (isObj(x) && isObj(x.prefix)) return `${scalar(x.prefix.addr)}/${scalar(x.prefix.len)}`;
  if (isObj(x) && Array.isArray(x.range)) return x.range.map(scalar).join('-');
  return JSON.stringify(x);
}

function keyFields(x: J): string[] {
  return isObj(x) && Array.isArray(x.concat) ? x.concat.map(scalar) : [scalar(x)];
}

const VERDICTS = ['goto', 'jump', 'drop', 'accept', 'return', 'continue'];
function verdictOf(x: J): Verdict | null {
  if (!isObj(x)) return null;
  for (const kind of VERDICTS) {
    if (!(kind in x)) continue;
    const body = x[kind];
    return { kind, target: isObj(body) && typeof body.target === 'string' ? body.target : null };
  }
  return null;
}

/** A set's `elem` entry or a map's `[key, value]` pair; `{ elem: { val, comment } }` wraps a
 *  key that carries a comment (or a timeout). */
function element(x: J, isMap: boolean): Element {
  const [k, v] = isMap && Array.isArray(x) ? [x[0], x[1]] : [x, undefined];
  let comment: string | null = null;
  let key: J = k;
  if (isObj(k) && isObj(k.elem)) {
    key = k.elem.val;
    if (typeof k.elem.comment === 'string') comment = k.elem.comment;
  }
  return { key: keyFields(key), verdict: isMap ? verdictOf(v) : null, comment };
}

/** Every goto/jump target anywhere inside a rule's expressions (vmaps included). */
function targets(x: J, out: string[] = []): string[] {
  if (Array.isArray(x)) for (const y of x) targets(y, out);
  else if (isObj(x)) {
    for (const [k, v] of Object.entries(x)) {
      if ((k === 'goto' || k === 'jump') && isObj(v) && typeof v.target === 'string') out.push(v.target);
      else targets(v, out);
    }
  }
  return out;
}

/** The first `dnat` statement anywhere inside a rule's expressions. */
function dnatOf(x: J): { addr: string; port: number | null } | null {
  if (Array.isArray(x)) {
    for (const y of x) {
      const d = dnatOf(y);
      if (d) return d;
    }
  } else if (isObj(x)) {
    for (const [k, v] of Object.entries(x)) {
      if (k === 'dnat' && isObj(v) && v.addr !== undefined) return { addr: scalar(v.addr), port: typeof v.port === 'number' ? v.port : v.port === undefined ? null : Number(v.port) };
      const d = dnatOf(v);
      if (d) return d;
    }
  }
  return null;
}

const CHAIN = /^(service|local|external|firewall|endpoint)-[A-Z0-9]+-([^/]+)\/([^/]+)\/([a-z0-9]+)\/(.*?)(?:__(.+))?$/;

interface ChainName { readonly kind: string; readonly service: string; readonly protocol: string; readonly portName: string }

/** A kube-proxy chain (or affinity set, as "endpoint-…") name's parts; null for other chains and
 *  for names kube-proxy truncated with "...". */
function parseChain(name: string): ChainName | null {
  const m = CHAIN.exec(name);
  return m && !name.endsWith('...') ? { kind: m[1]!, service: `${m[2]}/${m[3]}`, protocol: m[4]!, portName: m[5]! } : null;
}

interface Table {
  readonly chains: Map<string, J[]>;
  readonly sets: Map<string, { elements: Element[]; timeout: number | null }>;
}

/** One `nft -j list table` document → its chains' rule expressions and its sets/maps. */
function readTable(doc: J): Table {
  const chains = new Map<string, J[]>();
  const sets = new Map<string, { elements: Element[]; timeout: number | null }>();
  const list = isObj(doc) && Array.isArray(doc.nftables) ? doc.nftables : Array.isArray(doc) ? doc : [];
  for (const o of list) {
    if (!isObj(o)) continue;
    if (isObj(o.chain) && typeof o.chain.name === 'string') {
      if (!chains.has(o.chain.name)) chains.set(o.chain.name, []);
    } else if (isObj(o.rule) && typeof o.rule.chain === 'string') {
      const rules = chains.get(o.rule.chain) ?? chains.set(o.rule.chain, []).get(o.rule.chain)!;
      rules.push(o.rule.expr ?? []);
    } else if (isObj(o.set) || isObj(o.map)) {
      const s = (o.set ?? o.map) as Record<string, J>;
      if (typeof s.name !== 'string') continue;
      const elem = Array.isArray(s.elem) ? s.elem : [];
      sets.set(s.name, { elements: elem.map((e) => element(e, isObj(o.map))), timeout: typeof s.timeout === 'number' ? s.timeout : null });
    }
  }
  return { chains, sets };
}

type Frontend = Omit<InspectedFrontend, 'flags' | 'scope'> & { flags: string[]; scope: string };

interface Building {
  readonly service: string;
  readonly portName: string;
  readonly protocol: string;
  readonly frontends: Map<string, Frontend>;
  /** endpoint chain → backend */
  readonly backends: Map<string, InspectedBackend>;
  affinity: number | null;
}

const AMBIGUOUS = 'an external address without loadBalancerSourceRanges is an externalIP or a LoadBalancer ingress IP: ' +
  'kube-proxy writes the same elements for both (shown as ExternalIP; the type is inferred from what the rules show)';

/** `tables`: parsed `nft -j list table ip|ip6 kube-proxy` documents (null ones skipped). */
export function nftablesView(tables: readonly unknown[], source: string): InspectView {
  const services = new Map<string, Building>();
  const notes = new Set<string>();
  const get = (service: string, portName: string, protocol: string): Building => {
    const k = `${service}:${portName} ${protocol.toLowerCase()}`;
    return services.get(k) ?? services.set(k, {
      service, portName, protocol: protocol.toLowerCase(), frontends: new Map(), backends: new Map(), affinity: null,
    }).get(k)!;
  };

  for (const doc of tables) {
    if (doc === null || doc === undefined) continue;
    const { chains, sets } = readTable(doc);
    const elements = (name: string) => sets.get(name)?.elements ?? [];
    const clusterIPs = new Set(elements(NFT_CLUSTER_IPS).map((e) => e.key[0]!));
    // no nodeport-ips set: NodePorts answer on every local address (kube-proxy's "fib daddr type local")
    const nodePortIPs = sets.has(NFT_NODEPORT_IPS) ? elements(NFT_NODEPORT_IPS).map((e) => e.key[0]!) : ['*'];
    const firewalled = new Set(elements(NFT_FIREWALL_IPS).map((e) => e.key.join(' . ')));
    const rulesOf = (chain: string) => chains.get(chain) ?? [];
    /** The policy chain (service- or local-) an external- chain ends in: its unconditional goto
     *  (absent when that policy has no endpoints: the no-endpoint maps drop). The conditional
     *  gotos before it are the short-circuits for pods and the node itself. */
    const policyChain = (chain: string): string | null => {
      const kind = parseChain(chain)?.kind;
      if (kind === 'service' || kind === 'local') return chain;
      if (kind !== 'external') return null;
      for (const expr of rulesOf(chain)) {
        if (!Array.isArray(expr) || expr.length !== 1) continue;
        const v = verdictOf(expr[0]);
        if (v?.kind === 'goto' && v.target && ['service', 'local'].includes(parseChain(v.target)?.kind ?? '')) return v.target;
      }
      return null;
    };
    /** The endpoint chains a policy chain picks from (its affinity gotos and numgen vmap). */
    const endpointsOf = (chain: string) => [...new Set(rulesOf(chain).flatMap((expr) => targets(expr)).filter((t) => parseChain(t)?.kind === 'endpoint'))];

    const addBackends = (b: Building, policy: string) => {
      // a local- chain exists only with a Local policy and local endpoints: its endpoints are
      // this node's; without one, the rules do not tell
      const localChain = policy.replace(/^service-/, 'local-');
      const local = chains.has(localChain) ? new Set(endpointsOf(localChain)) : null;
      for (const ep of endpointsOf(policy)) {
        const dnat = rulesOf(ep).map((expr) => dnatOf(expr)).find((d) => d !== null);
        if (!dnat) continue;
        b.backends.set(ep, { address: dnat.addr, port: dnat.port ?? 0, local: local === null ? null : local.has(ep), terminating: null });
      }
    };
    const addFrontend = (chain: string, f: { kind: FrontendKind; address: string; port: number }, flags: string[]) => {
      const p = parseChain(chain);
      if (!p) {
        notes.add(`a frontend leads to ${chain}, a chain name that does not name its Service port (left out)`);
        return;
      }
      const b = get(p.service, p.portName, p.protocol);
      const policy = policyChain(chain);
      if (policy) addBackends(b, policy);
      b.frontends.set(`${f.kind} ${f.address} ${f.port}`, {
        ...f, scope: policy === null ? 'local' : parseChain(policy)?.kind === 'local' ? 'local' : 'cluster',
        flags, backends: policy ? endpointsOf(policy).length : 0,
      });
    };
    const externalKind = (key: readonly string[]): FrontendKind => {
      if (firewalled.has(key.join(' . '))) return 'LoadBalancer';
      notes.add(AMBIGUOUS);
      return 'ExternalIP';
    };

    for (const e of elements(NFT_SERVICE_IPS)) {
      const [address, , port] = e.key;
      const chain = e.verdict?.target;
      if (!chain || address === undefined || port === undefined) continue;
      const kind = parseChain(chain)?.kind;
      const f: FrontendKind = kind === 'external' ? externalKind(e.key) : clusterIPs.has(address) ? 'ClusterIP' : 'unknown';
      if (f === 'unknown') notes.add(`${address} leads to ${chain} but is not in ${NFT_CLUSTER_IPS} (shown as unknown)`);
      addFrontend(chain, { kind: f, address, port: Number(port) }, firewalled.has(e.key.join(' . ')) ? ['source-ranges'] : []);
    }
    for (const e of elements(NFT_SERVICE_NODEPORTS)) {
      const chain = e.verdict?.target;
      if (!chain || e.key[1] === undefined) continue;
      for (const address of nodePortIPs) addFrontend(chain, { kind: 'NodePort', address, port: Number(e.key[1]) }, []);
    }
    // no endpoints at all (reject), or none for the address's policy (drop): the element's
    // comment names the Service port; an address with endpoints for some sources (the
    // short-circuits of a Local policy) is in service-ips too and gets the flag
    for (const [map, nodePort] of [[NFT_NO_ENDPOINT_SERVICES, false], [NFT_NO_ENDPOINT_NODEPORTS, true]] as const) {
      for (const e of elements(map)) {
        const m = /^([^/\s]+\/[^:\s]+):(\S*)$/.exec(e.comment ?? '');
        if (!m) {
          notes.add(`an element of ${map} without a "namespace/name:port" comment (left out): ${e.key.join(' . ')}`);
          continue;
        }
        const protocol = (nodePort ? e.key[0] : e.key[1]) ?? '?';
        const port = Number(nodePort ? e.key[1] : e.key[2]);
        const b = get(m[1]!, m[2]!, protocol);
        const flag = e.verdict?.kind === 'goto' && e.verdict.target === NFT_REJECT_CHAIN ? 'reject' : e.verdict?.kind ?? '?';
        for (const address of nodePort ? nodePortIPs : [e.key[0]!]) {
          const existing = [...b.frontends.values()].find((f) => f.address === address && f.port === port && (f.kind === 'NodePort') === nodePort);
          if (existing) {
            existing.flags.push(flag);
            existing.scope = flag === 'drop' ? 'local' : existing.scope;
            continue;
          }
          const kind: FrontendKind = nodePort ? 'NodePort' : clusterIPs.has(address) ? 'ClusterIP' : externalKind(e.key);
          b.frontends.set(`${kind} ${address} ${port}`, {
            kind, address, port, scope: flag === 'drop' ? 'local' : 'cluster',
            flags: [...(firewalled.has(e.key.join(' . ')) && !nodePort ? ['source-ranges'] : []), flag], backends: 0,
          });
        }
      }
    }
    // ClientIP affinity: one set per endpoint, its timeout the Service's timeoutSeconds
    for (const [name, set] of sets) {
      if (!name.startsWith('affinity-') || set.timeout === null) continue;
      const p = parseChain(`endpoint-${name.slice('affinity-'.length)}`);
      if (p) get(p.service, p.portName, p.protocol).affinity = set.timeout;
    }
  }

  const out: InspectedService[] = [...services.values()].filter((b) => b.frontends.size > 0).map((b) => {
    const kinds = new Set([...b.frontends.values()].map((f) => f.kind));
    return {
      service: b.service, portName: b.portName,
      // the kernel keeps no type: the widest one its rules show
      type: kinds.has('LoadBalancer') ? 'LoadBalancer' : kinds.has('NodePort') ? 'NodePort' : 'ClusterIP',
      protocol: b.protocol.toUpperCase(), affinitySeconds: b.affinity,
      frontends: [...b.frontends.values()], backends: [...b.backends.values()],
    };
  });
  return { mode: 'nftables', source, services: sortServices(out), counters: {}, notes: [...notes] };
}
