// ProxyState → the nftables transaction kube-proxy's nftables proxier would run
// (kubernetes pkg/proxy/nftables/proxier.go at b0f823e6ccd8a10b3893fc75011b9981af39285c:
// setupNFTables + syncProxyRules): the same table, chains, sets, maps, rules, elements and
// comments, and the same incremental behaviour (element storages that only add/delete what
// changed, partial syncs that leave unchanged Services' chains alone, stale chains flushed
// and deleted a second later). Our own TypeScript, written from kube-proxy's behaviour. Pure:
// the caller passes what kube-proxy would read from the kernel (existing chains and sets) and
// the time.
import { cidrContains, cidrString, isLoopback, parseCidr, type Cidr } from '../../model/cidr.js';
import { endpointKey } from '../../model/endpoints.js';
import { familyView } from '../../model/family.js';
import { cidrFamilyOf } from '../../model/k8s.js';
import type { Endpoint, ProxyState, ServicePort } from '../../model/types.js';
import { matchNodePortAddresses } from '../iptables/node-ports.js';
import {
  NFT_CLUSTER_IPS, NFT_CLUSTER_IPS_CHECK, NFT_FILTER_FORWARD, NFT_FILTER_INPUT, NFT_FILTER_OUTPUT, NFT_FILTER_OUTPUT_POST_DNAT,
  NFT_FILTER_PREROUTING, NFT_FIREWALL_CHECK, NFT_FIREWALL_IPS, NFT_MARK_MASQ, NFT_MASQUERADING, NFT_NAT_OUTPUT, NFT_NAT_POSTROUTING,
  NFT_NAT_PREROUTING, NFT_NODEPORT_ENDPOINTS_CHECK, NFT_NODEPORT_IPS, NFT_NO_ENDPOINT_NODEPORTS, NFT_NO_ENDPOINT_SERVICES, NFT_REJECT_CHAIN,
  NFT_SERVICES, NFT_SERVICE_ENDPOINTS_CHECK, NFT_SERVICE_IPS, NFT_SERVICE_NODEPORTS, NFT_TABLE, isNftAffinitySetName, isNftServiceChainName,
  nftAffinitySet, nftEndpointChain, nftServiceChains, servicePortName,
} from '../kube-names.js';
import type { NftablesConfig } from './config.js';
import { nftFamilyOf, type NftObject, type NftOp } from './ops.js';
import { NftRuleset } from './ruleset.js';

// ---- memory -------------------------------------------------------------------------------

/** The sets/maps kube-proxy fills through an nftElementStorage (only changed elements written). */
export type NftElementStorageName =
  | 'cluster-ips' | 'service-ips' | 'firewall-ips' | 'no-endpoint-services' | 'no-endpoint-nodeports' | 'service-nodeports';

const STORAGES: ReadonlyArray<readonly [NftElementStorageName, 'set' | 'map']> = [
  [NFT_CLUSTER_IPS, 'set'],
  [NFT_SERVICE_IPS, 'map'],
  [NFT_FIREWALL_IPS, 'map'],
  [NFT_NO_ENDPOINT_SERVICES, 'map'],
  [NFT_NO_ENDPOINT_NODEPORTS, 'map'],
  [NFT_SERVICE_NODEPORTS, 'map'],
];

/** What kube-proxy's proxier keeps between syncs. */
export interface NftablesMemory {
  /** nftElementStorage contents: element key → value, both joined with " . " (value "" for sets). */
  readonly elements: { readonly [K in NftElementStorageName]: ReadonlyMap<string, string> };
  /** Service chains flushed as stale, with the time (ms) they became stale. */
  readonly staleChains: ReadonlyMap<string, number>;
  /** The one-time add+delete of the base chains has been done. */
  readonly flushed: boolean;
  /** The service chains and affinity sets the table holds after this sync (in use, or stale and
   *  not yet deleted): what the next partial sync compares with instead of listing the table —
   *  `nft list chains` of 100,000 chains takes seconds. kube-proxy lists on every sync. */
  readonly chains: ReadonlySet<string>;
  readonly affinitySets: ReadonlySet<string>;
}

export const EMPTY_NFTABLES_MEMORY: NftablesMemory = Object.freeze({
  elements: Object.freeze(Object.fromEntries(STORAGES.map(([n]) => [n, new Map<string, string>()]))) as unknown as NftablesMemory['elements'],
  staleChains: new Map<string, number>(),
  flushed: false,
  chains: new Set<string>(),
  affinitySets: new Set<string>(),
});

export interface NftSyncOptions {
  /** false: a full sync (kube-proxy's needFullSync: setupNFTables, every container flushed and
   *  refilled). true: a partial sync on top of the transaction `memory` describes. */
  readonly partial: boolean;
  /** Partial sync: only these Services ("namespace/name") rewrite their chains (kube-proxy's
   *  skipServiceUpdate for the others); null: every Service. Ignored by a full sync. */
  readonly changedServices: ReadonlySet<string> | null;
  /** `nft list chains` of the table (after staleChainDeletes would have run, or before: the
   *  chains it deletes are left out here); null: unknown (no stale-chain handling). */
  readonly existingChains: readonly string[] | null;
  /** `nft list sets` of the table; null: unknown (stale affinity sets are not deleted). */
  readonly existingSets: readonly string[] | null;
  /** Now, in ms (stale chains are deleted once stale for more than 1 s). */
  readonly now: number;
}

export interface NftablesSync {
  /** kube-proxy's separate first transaction: deletes chains stale for more than 1 s. Empty
   *  when there are none; run it (and ignore its failure, as kube-proxy does) before `ops`. */
  readonly staleChainDeletes: readonly NftOp[];
  /** The sync transaction. */
  readonly ops: readonly NftOp[];
  /** The memory after this sync: keep it only if `ops` succeeded (otherwise do a full sync next). */
  readonly memory: NftablesMemory;
  /** Service ports with a Local policy and no local endpoint (sync_proxy_rules_no_local_endpoints_total). */
  readonly noLocalEndpoints: { readonly internal: number; readonly external: number };
  /** Problems kube-proxy would log and survive. */
  readonly warnings: readonly string[];
  /** "add" operations of `ops` by object kind. */
  readonly counts: { readonly chains: number; readonly rules: number; readonly elements: number };
}

// ---- transaction building ----------------------------------------------------------------

class Tx {
  readonly ops: NftOp[] = [];
  add(obj: NftObject): void {
    this.ops.push({ verb: 'add', obj });
  }
  flush(obj: NftObject): void {
    this.ops.push({ verb: 'flush', obj });
  }
  del(obj: NftObject): void {
    this.ops.push({ verb: 'delete', obj });
  }
}

/** kube-proxy's nftElementStorage: writes only elements that are new or changed, deletes the rest. */
class ElementStorage {
  private elements: Map<string, string>;
  private leftover: Set<string>;

  constructor(readonly name: NftElementStorageName, readonly container: 'set' | 'map', previous: ReadonlyMap<string, string>) {
    this.elements = new Map(previous);
    this.leftover = new Set(previous.keys());
  }

  /** Full sync: the container is flushed and everything re-added. */
  reset(tx: Tx): void {
    this.elements.clear();
    tx.flush(this.container === 'set' ? { kind: 'set', name: this.name } : { kind: 'map', name: this.name });
    this.leftover = new Set(this.elements.keys());
  }

  ensure(tx: Tx, key: string[], value: string[] | null, comment?: string): void {
    const k = key.join(' . ');
    const v = (value ?? []).join(' . ');
    const elem: NftObject = {
      kind: 'element', container: this.container, name: this.name, key,
      ...(value ? { value } : {}), ...(comment !== undefined ? { comment } : {}),
    };
    const existing = this.elements.get(k);
    if (existing !== undefined) {
      if (existing !== v) {
        tx.del(elem);
        tx.add(elem);
        this.elements.set(k, v);
      }
      this.leftover.delete(k);
    } else {
      tx.add(elem);
      this.elements.set(k, v);
    }
  }

  cleanup(tx: Tx): void {
    for (const k of this.leftover) {
      tx.del({ kind: 'element', container: this.container, name: this.name, key: k.split(' . ') });
      this.elements.delete(k);
    }
    this.leftover = new Set(this.elements.keys());
  }

  snapshot(): ReadonlyMap<string, string> {
    return new Map(this.elements);
  }
}

interface BaseChain {
  readonly name: string;
  readonly type: 'filter' | 'nat';
  readonly hook: string;
  readonly priority: number;
}

// knftables.DNATPriority is -100, SNATPriority 100; filter chains run before/after DNAT.
const BASE_CHAINS: readonly BaseChain[] = [
  { name: NFT_FILTER_PREROUTING, type: 'filter', hook: 'prerouting', priority: -110 },
  { name: NFT_FILTER_INPUT, type: 'filter', hook: 'input', priority: -110 },
  { name: NFT_FILTER_FORWARD, type: 'filter', hook: 'forward', priority: -110 },
  { name: NFT_FILTER_OUTPUT, type: 'filter', hook: 'output', priority: -110 },
  { name: NFT_FILTER_OUTPUT_POST_DNAT, type: 'filter', hook: 'output', priority: -90 },
  { name: NFT_NAT_PREROUTING, type: 'nat', hook: 'prerouting', priority: -100 },
  { name: NFT_NAT_OUTPUT, type: 'nat', hook: 'output', priority: -100 },
  { name: NFT_NAT_POSTROUTING, type: 'nat', hook: 'postrouting', priority: 100 },
];

// Top-level regular chains and the base chain rule that jumps to each.
const JUMP_CHAINS: ReadonlyArray<readonly [dst: string, src: string, extra: string]> = [
  // The endpoints checks are not in filter-prerouting: reject only works in input, forward and
  // output hooks on kernels before 5.9.
  [NFT_NODEPORT_ENDPOINTS_CHECK, NFT_FILTER_INPUT, 'ct state new'],
  [NFT_SERVICE_ENDPOINTS_CHECK, NFT_FILTER_INPUT, 'ct state new'],
  [NFT_SERVICE_ENDPOINTS_CHECK, NFT_FILTER_FORWARD, 'ct state new'],
  [NFT_SERVICE_ENDPOINTS_CHECK, NFT_FILTER_OUTPUT, 'ct state new'],
  [NFT_FIREWALL_CHECK, NFT_FILTER_PREROUTING, 'ct state new'],
  [NFT_FIREWALL_CHECK, NFT_FILTER_OUTPUT, 'ct state new'],
  [NFT_SERVICES, NFT_NAT_OUTPUT, ''],
  [NFT_SERVICES, NFT_NAT_PREROUTING, ''],
  [NFT_MASQUERADING, NFT_NAT_POSTROUTING, ''],
  [NFT_CLUSTER_IPS_CHECK, NFT_FILTER_FORWARD, 'ct state new'],
  [NFT_CLUSTER_IPS_CHECK, NFT_FILTER_OUTPUT_POST_DNAT, 'ct state new'],
];

/** knftables.Concat: words joined by spaces, empty ones dropped, and "@" glued to the set or
 *  map name after it ("vmap @service-ips"). */
function concat(...words: Array<string | number | readonly string[]>): string {
  let out = '';
  let glue = false;
  for (const w of words.flat().map(String)) {
    if (w === '') continue;
    out += out === '' || glue ? w : ` ${w}`;
    glue = w === '@';
  }
  return out;
}

/** kube-proxy's ensureChain: add + flush a chain once per transaction (only noted when skipped). */
function ensureChain(chain: string, tx: Tx, created: Set<string>, skipCreation: boolean): void {
  if (created.has(chain)) return;
  created.add(chain);
  if (skipCreation) return;
  tx.add({ kind: 'chain', name: chain });
  tx.flush({ kind: 'chain', name: chain });
}

// ---- the sync -----------------------------------------------------------------------------

export function renderNftablesSync(state: ProxyState, cfg: NftablesConfig, memory: NftablesMemory, opts: NftSyncOptions): NftablesSync {
  const isIPv6 = cfg.family === 'IPv6';
  const ipX = isIPv6 ? 'ip6' : 'ip';
  const addrType = isIPv6 ? 'ipv6_addr' : 'ipv4_addr';
  const warnings: string[] = [];
  const tryPartialSync = opts.partial;

  const localCIDR: Cidr | null = cfg.clusterCIDRs.map(parseCidr).find((c) => c !== null && c.bits === (isIPv6 ? 128 : 32)) ?? null;
  const ifLocal = localCIDR ? concat(ipX, 'saddr', cidrString(localCIDR)) : null;
  const ifNotLocal = localCIDR ? concat(ipX, 'saddr', '!=', cidrString(localCIDR)) : null;

  // Chains stale for more than a second go in a transaction of their own.
  const staleChains = new Map(memory.staleChains);
  const staleChainDeletes: NftOp[] = [];
  const oneSecondAgo = opts.now - 1000;
  for (const [chain, since] of [...staleChains].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (since < oneSecondAgo) {
      staleChainDeletes.push({ verb: 'delete', obj: { kind: 'chain', name: chain } });
      staleChains.delete(chain);
    }
  }
  const deletedNow = new Set(staleChainDeletes.map((op) => (op.obj as { name: string }).name));

  const tx = new Tx();
  const storages = new Map(STORAGES.map(([name, container]) => [name, new ElementStorage(name, container, memory.elements[name])]));
  const store = (name: NftElementStorageName) => storages.get(name)!;
  let flushed = memory.flushed;

  if (!tryPartialSync) {
    flushed = setupNFTables(tx, state, cfg, flushed, storages, warnings);
  }

  const activeChains = new Set<string>();
  const activeAffinitySets = new Set<string>();
  const noLocal = { internal: 0, external: 0 };

  const services = state.services.map((sp) => familyView(sp, cfg.family)).filter((sp): sp is ServicePort => sp !== null && sp.clusterIPs.length > 0);

  for (const sp of services) {
    const protocol = sp.protocol.toLowerCase();
    const spn = servicePortName(sp);
    const chains = nftServiceChains(sp, protocol);
    const clusterIP = sp.clusterIPs[0]!;
    const port = String(sp.port);
    const hasEndpoints = sp.hasAnyEndpoints;
    const affinity = sp.sessionAffinityTimeoutSeconds !== null;
    const skipServiceUpdate = tryPartialSync && opts.changedServices !== null && !opts.changedServices.has(`${sp.namespace}/${sp.name}`);

    for (const ep of sp.allReachableEndpoints) {
      ensureChain(nftEndpointChain(sp, protocol, ep), tx, activeChains, skipServiceUpdate);
      if (affinity) activeAffinitySets.add(nftAffinitySet(sp, protocol, ep));
    }

    const clusterPolicyChain = chains.cluster;
    const usesClusterPolicyChain = sp.clusterEndpoints.length > 0 && sp.usesClusterEndpoints;
    if (usesClusterPolicyChain) ensureChain(clusterPolicyChain, tx, activeChains, skipServiceUpdate);

    const localPolicyChain = chains.local;
    const usesLocalPolicyChain = sp.localEndpoints.length > 0 && sp.usesLocalEndpoints;
    if (usesLocalPolicyChain) ensureChain(localPolicyChain, tx, activeChains, skipServiceUpdate);

    let internalTrafficChain = clusterPolicyChain;
    let hasInternalEndpoints = hasEndpoints;
    if (sp.internalTrafficPolicy === 'Local') {
      internalTrafficChain = localPolicyChain;
      if (sp.localEndpoints.length === 0) hasInternalEndpoints = false;
    }

    const externalPolicyLocal = sp.externalTrafficPolicy === 'Local';
    let externalPolicyChain = clusterPolicyChain;
    let hasExternalEndpoints = hasEndpoints;
    if (externalPolicyLocal) {
      externalPolicyChain = localPolicyChain;
      if (sp.localEndpoints.length === 0) hasExternalEndpoints = false;
    }
    const externalTrafficChain = chains.external;
    // Needed even without externally usable endpoints: the short-circuit rules for local sources.
    const usesExternalTrafficChain = hasEndpoints && sp.externallyAccessible;
    if (usesExternalTrafficChain) ensureChain(externalTrafficChain, tx, activeChains, skipServiceUpdate);

    let internalVerdict = '';
    let externalVerdict = '';
    if (!hasEndpoints) {
      internalVerdict = `goto ${NFT_REJECT_CHAIN}`;
      externalVerdict = internalVerdict;
    } else {
      if (!hasInternalEndpoints) {
        internalVerdict = 'drop';
        noLocal.internal++;
      }
      if (!hasExternalEndpoints) {
        externalVerdict = 'drop';
        noLocal.external++;
      }
    }

    // Capture the clusterIP.
    store(NFT_CLUSTER_IPS).ensure(tx, [clusterIP], null);
    if (hasInternalEndpoints) {
      store(NFT_SERVICE_IPS).ensure(tx, [clusterIP, protocol, port], [`goto ${internalTrafficChain}`]);
    } else {
      store(NFT_NO_ENDPOINT_SERVICES).ensure(tx, [clusterIP, protocol, port], [internalVerdict], spn);
    }

    // Capture externalIPs.
    for (const ip of sp.externalIPs) {
      if (hasEndpoints) store(NFT_SERVICE_IPS).ensure(tx, [ip, protocol, port], [`goto ${externalTrafficChain}`]);
      if (!hasExternalEndpoints) store(NFT_NO_ENDPOINT_SERVICES).ensure(tx, [ip, protocol, port], [externalVerdict], spn);
    }

    const sourceRanges = sp.loadBalancerSourceRanges.map(parseCidr).filter((c): c is Cidr => c !== null);
    const usesFWChain = sp.loadBalancerIPs.length > 0 && sourceRanges.length > 0;
    const fwChain = chains.firewall;
    if (usesFWChain) ensureChain(fwChain, tx, activeChains, skipServiceUpdate);

    // Capture load-balancer ingress.
    for (const ip of sp.loadBalancerIPs) {
      if (hasEndpoints) store(NFT_SERVICE_IPS).ensure(tx, [ip, protocol, port], [`goto ${externalTrafficChain}`]);
      if (usesFWChain) store(NFT_FIREWALL_IPS).ensure(tx, [ip, protocol, port], [`goto ${fwChain}`]);
    }
    if (!hasExternalEndpoints) {
      for (const ip of sp.loadBalancerIPs) store(NFT_NO_ENDPOINT_SERVICES).ensure(tx, [ip, protocol, port], [externalVerdict], spn);
    }

    // Capture nodePorts (not subject to loadBalancerSourceRanges).
    if (sp.nodePort !== null && sp.nodePort !== 0) {
      const nodePort = String(sp.nodePort);
      if (hasEndpoints) store(NFT_SERVICE_NODEPORTS).ensure(tx, [protocol, nodePort], [`goto ${externalTrafficChain}`]);
      if (!hasExternalEndpoints) store(NFT_NO_ENDPOINT_NODEPORTS).ensure(tx, [protocol, nodePort], [externalVerdict], spn);
    }

    // The rest is the Service's own chains: an unchanged Service keeps them in a partial sync.
    if (skipServiceUpdate) continue;

    const rule = (chain: string, text: string, comment?: string) =>
      tx.add({ kind: 'rule', chain, rule: text, ...(comment !== undefined ? { comment } : {}) });

    if (hasInternalEndpoints) {
      if (cfg.masqueradeAll) {
        rule(internalTrafficChain, concat(ipX, 'daddr', clusterIP, protocol, 'dport', port, 'jump', NFT_MARK_MASQ));
      } else if (ifNotLocal) {
        // Off-cluster sources reaching a ClusterIP may bounce off-node: masquerade them.
        rule(internalTrafficChain, concat(ipX, 'daddr', clusterIP, protocol, 'dport', port, ifNotLocal, 'jump', NFT_MARK_MASQ));
      }
    }

    if (usesExternalTrafficChain) {
      if (!externalPolicyLocal) {
        rule(externalTrafficChain, concat('jump', NFT_MARK_MASQ));
      } else {
        // Pods reaching an external address are subject to neither policy.
        if (ifLocal) rule(externalTrafficChain, concat(ifLocal, 'goto', clusterPolicyChain), 'short-circuit pod traffic');
        // The node itself picks the VIP as source: masquerade, and use the cluster chain.
        rule(externalTrafficChain, concat('fib', 'saddr', 'type', 'local', 'jump', NFT_MARK_MASQ), 'masquerade local traffic');
        rule(externalTrafficChain, concat('fib', 'saddr', 'type', 'local', 'goto', clusterPolicyChain), 'short-circuit local traffic');
      }
      if (hasExternalEndpoints) rule(externalTrafficChain, concat('goto', externalPolicyChain));
    }

    if (usesFWChain) {
      const sources: string[] = [];
      let allowFromNode = false;
      for (const cidr of sourceRanges) {
        if (sources.length > 0) sources.push(',');
        sources.push(cidrString(cidr));
        if (cfg.nodeIP !== null && cidrContains(cidr, cfg.nodeIP)) allowFromNode = true;
      }
      // A VIP-like LB's IP is often local: a node reaching it loops back with the VIP as source.
      if (allowFromNode) for (const ip of sp.loadBalancerIPs) sources.push(',', ip);
      rule(fwChain, concat(ipX, 'saddr', '!=', '{', sources, '}', 'drop'));
    }

    if (affinity) {
      for (const ep of sp.allReachableEndpoints) {
        tx.add({
          kind: 'set', name: nftAffinitySet(sp, protocol, ep), type: addrType,
          // "dynamic": some kernels add it anyway, and re-adding a set with other flags fails.
          flags: ['dynamic', 'timeout'], timeoutSeconds: sp.sessionAffinityTimeoutSeconds!,
        });
      }
    }

    if (usesClusterPolicyChain) writeServiceToEndpointRules(rule, sp, protocol, ipX, clusterPolicyChain, sp.clusterEndpoints);
    if (usesLocalPolicyChain) writeServiceToEndpointRules(rule, sp, protocol, ipX, localPolicyChain, sp.localEndpoints);

    for (const ep of sp.allReachableEndpoints) {
      const chain = nftEndpointChain(sp, protocol, ep);
      // Hairpin: a pod reaching itself through the service is masqueraded.
      rule(chain, concat(ipX, 'saddr', ep.ip, 'jump', NFT_MARK_MASQ));
      if (affinity) rule(chain, concat('update', `@${nftAffinitySet(sp, protocol, ep)}`, '{', ipX, 'saddr', '}'));
      rule(chain, concat('meta l4proto', protocol, 'dnat to', endpointKey(ep)));
    }
  }

  // Service chains no longer used are flushed now and deleted a second later (before kernel
  // 6.2 a chain a just-deleted map element pointed to cannot be deleted at once).
  if (opts.existingChains !== null) {
    for (const chain of [...opts.existingChains].filter((c) => !deletedNow.has(c)).sort()) {
      if (!isNftServiceChainName(chain)) continue;
      if (!activeChains.has(chain)) {
        tx.flush({ kind: 'chain', name: chain });
        staleChains.set(chain, opts.now);
      } else {
        staleChains.delete(chain);
      }
    }
  }
  // Stale affinity sets can go at once.
  if (opts.existingSets !== null) {
    for (const set of [...opts.existingSets].sort()) {
      if (isNftAffinitySetName(set) && !activeAffinitySets.has(set)) tx.del({ kind: 'set', name: set });
    }
  }

  for (const [name] of STORAGES) store(name).cleanup(tx);

  const counts = { chains: 0, rules: 0, elements: 0 };
  for (const op of tx.ops) {
    if (op.verb !== 'add') continue;
    if (op.obj.kind === 'chain') counts.chains++;
    else if (op.obj.kind === 'rule') counts.rules++;
    else if (op.obj.kind === 'element') counts.elements++;
  }

  const elements = Object.fromEntries(STORAGES.map(([name]) => [name, store(name).snapshot()])) as NftablesMemory['elements'];
  return {
    staleChainDeletes,
    ops: tx.ops,
    memory: { elements, staleChains, flushed, chains: new Set([...activeChains, ...staleChains.keys()]), affinitySets: activeAffinitySets },
    noLocalEndpoints: noLocal,
    warnings,
    counts,
  };
}

/** kube-proxy's setupNFTables; returns the new `flushed`. */
function setupNFTables(
  tx: Tx, state: ProxyState, cfg: NftablesConfig, flushed: boolean, storages: Map<NftElementStorageName, ElementStorage>, warnings: string[],
): boolean {
  const isIPv6 = cfg.family === 'IPv6';
  const ipX = isIPv6 ? 'ip6' : 'ip';
  const addrType = isIPv6 ? 'ipv6_addr' : 'ipv4_addr';
  const noLocalhost = isIPv6 ? 'ip6 daddr != ::1' : 'ip daddr != 127.0.0.0/8';
  const mark = cfg.masqueradeMark;
  const rule = (chain: string, text: string, comment?: string) =>
    tx.add({ kind: 'rule', chain, rule: text, ...(comment !== undefined ? { comment } : {}) });

  tx.add({ kind: 'table', comment: 'rules for kube-proxy' });

  // Once per process: add+delete the base chains so that changed properties (say, priority)
  // do not fail the transaction.
  if (!flushed) {
    for (const bc of BASE_CHAINS) {
      tx.add({ kind: 'chain', name: bc.name });
      tx.del({ kind: 'chain', name: bc.name });
    }
  }

  for (const bc of BASE_CHAINS) {
    const chain: NftObject = { kind: 'chain', name: bc.name, type: bc.type, hook: bc.hook, priority: bc.priority };
    tx.add(chain);
    tx.flush(chain);
  }

  const created = new Set<string>();
  for (const [dst, src, extra] of JUMP_CHAINS) {
    ensureChain(dst, tx, created, false);
    rule(src, concat(extra, 'jump', dst));
  }
  for (const chain of [NFT_SERVICES, NFT_CLUSTER_IPS_CHECK, NFT_MASQUERADING, NFT_MARK_MASQ]) ensureChain(chain, tx, created, false);

  rule(NFT_MARK_MASQ, concat('mark', 'set', 'mark', 'or', mark));
  rule(NFT_MASQUERADING, concat('mark', 'and', mark, '==', '0', 'return'));
  rule(NFT_MASQUERADING, concat('mark', 'set', 'mark', 'xor', mark));
  rule(NFT_MASQUERADING, 'masquerade fully-random');

  tx.add({ kind: 'set', name: NFT_CLUSTER_IPS, type: addrType, comment: 'Active ClusterIPs' });
  rule(NFT_CLUSTER_IPS_CHECK, concat(ipX, 'daddr', '@', NFT_CLUSTER_IPS, 'reject'), 'Reject traffic to invalid ports of ClusterIPs');

  const serviceCIDRs = (state.serviceCIDRs ?? []).filter((c) => (cidrFamilyOf(c) === 'IPv4') === !isIPv6).join(',');
  if (serviceCIDRs.length > 0) {
    rule(NFT_CLUSTER_IPS_CHECK, concat(ipX, 'daddr', '{', serviceCIDRs, '}', 'drop'), 'Drop traffic to unallocated ClusterIPs');
  }

  // nodeport-ips: filled, or (add+delete) removed when NodePorts answer on every address.
  const nodePorts = matchNodePortAddresses(cfg);
  tx.add({ kind: 'set', name: NFT_NODEPORT_IPS, type: addrType, comment: 'IPs that accept NodePort traffic' });
  if (nodePorts.matchAll) {
    tx.del({ kind: 'set', name: NFT_NODEPORT_IPS });
  } else {
    tx.flush({ kind: 'set', name: NFT_NODEPORT_IPS });
    let added = 0;
    for (const ip of nodePorts.addresses) {
      if (isLoopback(ip)) {
        warnings.push(`nodePortAddresses includes localhost ${ip} but localhost NodePorts are not supported`);
        continue;
      }
      tx.add({ kind: 'element', container: 'set', name: NFT_NODEPORT_IPS, key: [ip] });
      added++;
    }
    if (added === 0) warnings.push(`no local address matches nodePortAddresses ${cfg.nodePortAddresses.join(',')}: NodePorts answer nowhere`);
  }

  // Services without endpoints: drop or reject.
  tx.add({
    kind: 'map', name: NFT_NO_ENDPOINT_SERVICES, type: `${addrType} . inet_proto . inet_service : verdict`,
    comment: 'vmap to drop or reject packets to services with no endpoints',
  });
  tx.add({
    kind: 'map', name: NFT_NO_ENDPOINT_NODEPORTS, type: 'inet_proto . inet_service : verdict',
    comment: 'vmap to drop or reject packets to service nodeports with no endpoints',
  });
  tx.add({ kind: 'chain', name: NFT_REJECT_CHAIN, comment: 'helper for @no-endpoint-services / @no-endpoint-nodeports' });
  tx.flush({ kind: 'chain', name: NFT_REJECT_CHAIN });
  rule(NFT_REJECT_CHAIN, 'reject');

  rule(NFT_SERVICE_ENDPOINTS_CHECK, concat(ipX, 'daddr', '.', 'meta l4proto', '.', 'th dport', 'vmap', `@${NFT_NO_ENDPOINT_SERVICES}`));
  if (nodePorts.matchAll) {
    rule(NFT_NODEPORT_ENDPOINTS_CHECK, concat(noLocalhost, 'meta l4proto . th dport', 'vmap', `@${NFT_NO_ENDPOINT_NODEPORTS}`));
  } else {
    rule(NFT_NODEPORT_ENDPOINTS_CHECK, concat(ipX, 'daddr', `@${NFT_NODEPORT_IPS}`, 'meta l4proto . th dport', 'vmap', `@${NFT_NO_ENDPOINT_NODEPORTS}`));
  }

  // loadBalancerSourceRanges.
  tx.add({
    kind: 'map', name: NFT_FIREWALL_IPS, type: `${addrType} . inet_proto . inet_service : verdict`,
    comment: 'destinations that are subject to LoadBalancerSourceRanges',
  });
  ensureChain(NFT_FIREWALL_CHECK, tx, created, false);
  rule(NFT_FIREWALL_CHECK, concat(ipX, 'daddr', '.', 'meta l4proto', '.', 'th dport', 'vmap', `@${NFT_FIREWALL_IPS}`));

  // Service dispatch.
  tx.add({
    kind: 'map', name: NFT_SERVICE_IPS, type: `${addrType} . inet_proto . inet_service : verdict`,
    comment: 'ClusterIP, ExternalIP and LoadBalancer IP traffic',
  });
  tx.add({ kind: 'map', name: NFT_SERVICE_NODEPORTS, type: 'inet_proto . inet_service : verdict', comment: 'NodePort traffic' });
  rule(NFT_SERVICES, concat(ipX, 'daddr', '.', 'meta l4proto', '.', 'th dport', 'vmap', `@${NFT_SERVICE_IPS}`));
  if (nodePorts.matchAll) {
    rule(NFT_SERVICES, concat('fib daddr type local', noLocalhost, 'meta l4proto . th dport', 'vmap', `@${NFT_SERVICE_NODEPORTS}`));
  } else {
    rule(NFT_SERVICES, concat(ipX, 'daddr @nodeport-ips', 'meta l4proto . th dport', 'vmap', `@${NFT_SERVICE_NODEPORTS}`));
  }

  for (const [name] of STORAGES) storages.get(name)!.reset(tx);
  return true;
}

/** Session-affinity lookups first, then one numgen vmap over the endpoints. */
function writeServiceToEndpointRules(
  rule: (chain: string, text: string) => void, sp: ServicePort, protocol: string, ipX: string, chain: string, endpoints: readonly Endpoint[],
): void {
  if (sp.sessionAffinityTimeoutSeconds !== null) {
    for (const ep of endpoints) {
      rule(chain, concat(ipX, 'saddr', `@${nftAffinitySet(sp, protocol, ep)}`, 'goto', nftEndpointChain(sp, protocol, ep)));
    }
  }
  const elements: string[] = [];
  endpoints.forEach((ep, i) => {
    elements.push(String(i), ':', 'goto', nftEndpointChain(sp, protocol, ep));
    if (i !== endpoints.length - 1) elements.push(',');
  });
  rule(chain, concat('numgen random mod', endpoints.length, 'vmap', '{', elements, '}'));
}

/** The full-sync transaction applied to an empty table (what `kube-xdp render --mode nftables`
 *  prints via ruleset.dump()). */
export function renderNftablesFull(state: ProxyState, cfg: NftablesConfig): { ruleset: NftRuleset; ops: readonly NftOp[]; warnings: readonly string[] } {
  const sync = renderNftablesSync(state, cfg, EMPTY_NFTABLES_MEMORY, {
    partial: false, changedServices: null, existingChains: null, existingSets: null, now: 0,
  });
  const ruleset = new NftRuleset(nftFamilyOf(cfg.family), NFT_TABLE);
  ruleset.apply(sync.ops);
  return { ruleset, ops: sync.ops, warnings: sync.warnings };
}
