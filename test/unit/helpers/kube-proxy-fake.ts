// kube-proxy's iptables unit-test fixture, for comparing our renderer with the expected
// iptables-restore text in kubernetes pkg/proxy/iptables/proxier_test.go (~v1.29/v1.30, the
// version with KUBE-PROXY-FIREWALL, KUBE-EXT-* chains and testHostname = "test-hostname").
// Public Go code is the reference; this is our own TypeScript.
import type { IptablesConfig } from '../../../src/dataplane/iptables/config.js';
import { makeEndpointSlice, makeService, type Json } from './kube-objects.js';

// Conventions of NewFakeProxier: pod IPs 10.0.0.0/8, service ClusterIPs 172.30.0.0/16,
// node IPs 192.168.0.0/24, external IPs 192.168.99.0/24, LB IPs 1.2.3.4 / 5.6.7.8 / 9.10.11.12,
// non-cluster clients 203.0.113.0/24 (LB source range 203.0.113.0/25).
export const TEST_HOSTNAME = 'test-hostname';
export const TEST_NODE_IP = '192.168.0.2';
export const TEST_NODE_IP_ALT = '192.168.1.2';
export const TEST_EXTERNAL_IP = '192.168.99.11';
export const TEST_NODE_IPV6 = '2001:db8::1';
export const TEST_NODE_IPV6_ALT = '2001:db8:1::2';
export const TEST_EXTERNAL_CLIENT = '203.0.113.2';
export const TEST_EXTERNAL_CLIENT_BLOCKED = '203.0.113.130';
/** kube-proxy's testNodeIPs: what its packet tracer treats as local (besides 127.0.0.1 and ::1). */
export const TEST_NODE_IPS = [TEST_NODE_IP, TEST_NODE_IP_ALT, TEST_EXTERNAL_IP, TEST_NODE_IPV6, TEST_NODE_IPV6_ALT];
export const TEST_POD_CIDR = '10.0.0.0/8';

/** NewFakeProxier sets masqueradeMark "0x4000" directly; NewProxier would format
 *  1<<masqueradeBit with "%#08x" ("0x00004000" for the default bit 14). */
export const FAKE_PROXIER_MASQUERADE_MARK = '0x4000';

/** NewFakeProxier for iptablestest.NewFake() (IPv4): NewDetectLocalByCIDR("10.0.0.0/8"),
 *  the fake "lo" and "eth0" interfaces, localhostNodePorts true, nodePortAddresses nil
 *  (match all), masqueradeAll false, conntrackTCPLiberal false (zero value), and a fake
 *  iptables whose HasRandomFully() is false unless SetHasRandomFully(true). */
export const FAKE_IPTABLES_CONFIG: IptablesConfig = Object.freeze<IptablesConfig>({
  family: 'IPv4',
  nodeIP: TEST_NODE_IP,
  // lo: 127.0.0.1/8; eth0: testNodeIP, testNodeIPAlt, testExternalIP (the IPv6 ones are the other family).
  localAddresses: Object.freeze(['127.0.0.1', TEST_NODE_IP, TEST_NODE_IP_ALT, TEST_EXTERNAL_IP]),
  clusterCIDRs: Object.freeze([TEST_POD_CIDR]),
  masqueradeAll: false,
  masqueradeMark: FAKE_PROXIER_MASQUERADE_MARK,
  localhostNodePorts: true,
  nodePortAddresses: Object.freeze([]),
  randomFully: false,
  conntrackTCPLiberal: false,
});

// ---- iptablestest.ParseIPTablesDump / IPTablesDump.String ------------------------------

export interface DumpRule {
  raw: string;
  /** The --comment value (quotes removed), or null. */
  comment: string | null;
}
export interface DumpChain {
  name: string;
  counters: string;
  rules: DumpRule[];
  deleted: boolean;
}
export interface DumpTable {
  name: string;
  chains: DumpChain[];
}

// Parameters iptablestest.Rule knows, with whether "!" may precede them and whether they take
// a value; ParseRule rejects a negated non-negatable one and a value parameter at the end.
const RULE_PARAMS: Record<string, { negatable: boolean; value: boolean }> = {
  '-A': { negatable: false, value: true },
  '--comment': { negatable: false, value: true },
  '-p': { negatable: true, value: true },
  '-s': { negatable: true, value: true },
  '--src-type': { negatable: true, value: true },
  '--sport': { negatable: true, value: true },
  '-d': { negatable: true, value: true },
  '--dst-type': { negatable: true, value: true },
  '--dport': { negatable: true, value: true },
  '--match-set': { negatable: true, value: true },
  '-j': { negatable: false, value: true },
  '--random-fully': { negatable: false, value: false },
  '--probability': { negatable: false, value: true },
  '--to-destination': { negatable: false, value: true },
  '--rcheck': { negatable: true, value: false },
  '--mark': { negatable: true, value: true },
  '--ctstate': { negatable: true, value: true },
  '--name': { negatable: false, value: true },
  '--seconds': { negatable: false, value: true },
  '--set': { negatable: true, value: false },
  '--reap': { negatable: false, value: false },
  '--mode': { negatable: false, value: true },
};

/** iptablestest.ParseRule(rule, false), keeping only what the sort needs (the comment). */
function parseRule(raw: string): DumpRule {
  // A word is a quoted string or a run of non-space characters (Go's wordRegex, quotes trimmed).
  const words = [...raw.matchAll(/(?:^|\s)("[^"]*"|[^"]\S*)/g)].map((m) => m[1]!.replace(/^"+|"+$/g, ''));
  if (words.length < 2 || words[0] !== '-A') throw new Error('bad iptables rule (does not start with "-A CHAIN")');
  if (words.length < 3) throw new Error('bad iptables rule (no match rules)');
  let comment: string | null = null;
  let negated = false;
  for (let w = 0; w < words.length; ) {
    const word = words[w]!;
    if (word === '-m' && w < words.length - 1) {
      w += 2; // "-m MODULE" is skipped
      continue;
    }
    if (word === '!') {
      negated = true;
      w++;
      continue;
    }
    const param = RULE_PARAMS[word];
    if (param) {
      if (negated && !param.negatable) throw new Error(`cannot negate parameter "${word}"`);
      if (param.value && w === words.length - 1) throw new Error(`parameter "${word}" requires an argument`);
      if (word === '--comment') comment = words[w + 1]!;
      w += param.value ? 2 : 1;
    } else {
      w++; // unrecognized words are skipped (non-strict parsing)
    }
    negated = false;
  }
  return { raw, comment };
}

/** iptablestest.ParseIPTablesDump: tables of chain declarations, then "-A"/"-X" lines and COMMIT. */
export function parseIptablesDump(data: string): DumpTable[] {
  const tables: DumpTable[] = [];
  let state: 'table' | 'chains' | 'rules' = 'table';
  let table: DumpTable | null = null;
  const chainOf = (name: string, line: string): DumpChain => {
    const c = table!.chains.find((ch) => ch.name === name);
    if (!c) throw new Error(`error parsing rule "${line}": no such chain "${name}"`);
    return c;
  };
  for (const rawLine of data.replace(/^\n+|\n+$/g, '').split('\n')) {
    const line = rawLine.trim();
    if (line === '' || line.startsWith('#')) continue;
    if (state === 'table') {
      const m = /^\*(.*)$/.exec(line);
      if (!m) throw new Error(`could not parse iptables data (table ${tables.length + 1} starts with "${line}" not a table name)`);
      table = { name: m[1]!, chains: [] };
      tables.push(table);
      state = 'chains';
      continue;
    }
    if (state === 'chains') {
      const m = /^:([^ ]*) - \[([0-9]*):([0-9]*)\]$/.exec(line);
      if (m) {
        table!.chains.push({ name: m[1]!, counters: `[${Number(m[2] || 0)}:${Number(m[3] || 0)}]`, rules: [], deleted: false });
        continue;
      }
      state = 'rules';
    }
    const add = /^-A ([^ ]*) (.*)$/.exec(line);
    const del = /^-X (.*)$/.exec(line);
    if (add) {
      const c = chainOf(add[1]!, line);
      if (c.deleted) throw new Error(`cannot add rules to deleted chain "${c.name}"`);
      c.rules.push(parseRule(line));
    } else if (del) {
      const c = chainOf(del[1]!, line);
      if (c.rules.length !== 0) throw new Error(`cannot delete chain "${c.name}" after adding rules`);
      c.deleted = true;
    } else if (line === 'COMMIT') {
      state = 'table';
    } else {
      throw new Error(`error parsing rule "${line}"`);
    }
  }
  if (state !== 'table') throw new Error('could not parse iptables data (no COMMIT line?)');
  return tables;
}

/** IPTablesDump.String(): per table its chain lines, all rules chain by chain, "-X" lines, COMMIT. */
export function formatIptablesDump(tables: readonly DumpTable[]): string {
  let out = '';
  for (const t of tables) {
    out += `*${t.name}\n`;
    for (const c of t.chains) out += `:${c.name} - ${c.counters}\n`;
    for (const c of t.chains) for (const r of c.rules) out += `${r.raw}\n`;
    for (const c of t.chains) if (c.deleted) out += `-X ${c.name}\n`;
    out += 'COMMIT\n';
  }
  return out;
}

/** The rules of one chain, one per line (kube-proxy's assertIPTablesChainEqual view). */
export function iptablesChainRules(text: string, table: string, chain: string): string {
  const t = parseIptablesDump(text.replace(/^[ \t\n]+/, '')).find((x) => x.name === table);
  const c = t?.chains.find((x) => x.name === chain);
  return (c?.rules ?? []).map((r) => `${r.raw}\n`).join('');
}

// ---- sortIPTablesRules --------------------------------------------------------------------

/** orderByCommentServiceName: by the comment up to its first space or colon; false when
 *  either rule has no comment. */
function orderByCommentServiceName(a: DumpRule, b: DumpRule): boolean {
  if (a.comment === null || b.comment === null) return false;
  const name = (c: string) => {
    const i = c.search(/[ :]/);
    return i === -1 ? c : c.slice(0, i);
  };
  return name(a.comment) < name(b.comment);
}

/** Go's sort.SliceStable (insertion sort on blocks of 20, then SymMerge), ported so that a
 *  comparator which is not a strict weak order (rules without comments) sorts as in Go. */
function goStableSort<T>(data: T[], less: (a: T, b: T) => boolean): void {
  const lessAt = (i: number, j: number) => less(data[i]!, data[j]!);
  const swap = (i: number, j: number) => {
    const t = data[i]!;
    data[i] = data[j]!;
    data[j] = t;
  };
  const insertionSort = (a: number, b: number) => {
    for (let i = a + 1; i < b; i++) for (let j = i; j > a && lessAt(j, j - 1); j--) swap(j, j - 1);
  };
  const swapRange = (a: number, b: number, n: number) => {
    for (let i = 0; i < n; i++) swap(a + i, b + i);
  };
  const rotate = (a: number, m: number, b: number) => {
    let i = m - a;
    let j = b - m;
    while (i !== j) {
      if (i > j) {
        swapRange(m - i, m, j);
        i -= j;
      } else {
        swapRange(m - i, m + j - i, i);
        j -= i;
      }
    }
    swapRange(m - i, m, i);
  };
  const symMerge = (a: number, m: number, b: number): void => {
    if (m - a === 1) {
      let i = m;
      let j = b;
      while (i < j) {
        const h = (i + j) >>> 1;
        if (lessAt(h, a)) i = h + 1;
        else j = h;
      }
      for (let k = a; k < i - 1; k++) swap(k, k + 1);
      return;
    }
    if (b - m === 1) {
      let i = a;
      let j = m;
      while (i < j) {
        const h = (i + j) >>> 1;
        if (!lessAt(m, h)) i = h + 1;
        else j = h;
      }
      for (let k = m; k > i; k--) swap(k, k - 1);
      return;
    }
    const mid = (a + b) >>> 1;
    const n = mid + m;
    let start: number;
    let r: number;
    if (m > mid) {
      start = n - b;
      r = mid;
    } else {
      start = a;
      r = m;
    }
    const p = n - 1;
    while (start < r) {
      const c = (start + r) >>> 1;
      if (!lessAt(p - c, c)) start = c + 1;
      else r = c;
    }
    const end = n - start;
    if (start < m && m < end) rotate(start, m, end);
    if (a < start && start < mid) symMerge(a, start, mid);
    if (mid < end && end < b) symMerge(mid, end, b);
  };
  const n = data.length;
  let blockSize = 20;
  let a = 0;
  let b = blockSize;
  while (b <= n) {
    insertionSort(a, b);
    a = b;
    b += blockSize;
  }
  insertionSort(a, n);
  while (blockSize < n) {
    a = 0;
    b = 2 * blockSize;
    while (b <= n) {
      symMerge(a, a + blockSize, b);
      a = b;
      b += 2 * blockSize;
    }
    const m = a + blockSize;
    if (m < n) symMerge(a, m, n);
    blockSize *= 2;
  }
}

const byteOrder = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** kube-proxy's sortIPTablesRules: tables by name; chains KUBE-NODEPORTS, KUBE-SERVICES, other
 *  KUBE-* alphabetically, then the rest alphabetically; the rules of KUBE-NODEPORTS (filter,
 *  nat) and KUBE-SERVICES (filter, nat) stably by service name, the nat KUBE-SERVICES "must be
 *  the last rule" rule last; every other chain keeps its rule order. Throws on unparsable input. */
export function sortIptablesRules(text: string): string {
  const tables = parseIptablesDump(text);
  tables.sort((a, b) => byteOrder(a.name, b.name));
  const rank = (n: string) => (n === 'KUBE-NODEPORTS' ? 0 : n === 'KUBE-SERVICES' ? 1 : n.startsWith('KUBE-') ? 2 : 3);
  for (const t of tables) t.chains.sort((a, b) => rank(a.name) - rank(b.name) || byteOrder(a.name, b.name));
  const chain = (table: string, name: string) => tables.find((t) => t.name === table)?.chains.find((c) => c.name === name);
  const isLast = (r: DumpRule) => r.comment !== null && r.comment.includes('must be the last rule');
  for (const [table, name] of [['filter', 'KUBE-NODEPORTS'], ['nat', 'KUBE-NODEPORTS'], ['filter', 'KUBE-SERVICES']] as const) {
    const c = chain(table, name);
    if (c) goStableSort(c.rules, orderByCommentServiceName);
  }
  const natServices = chain('nat', 'KUBE-SERVICES');
  if (natServices) {
    goStableSort(natServices.rules, (a, b) => (isLast(a) ? false : isLast(b) ? true : orderByCommentServiceName(a, b)));
  }
  return formatIptablesDump(tables);
}

// ---- kube-proxy's test objects (makeTestService / makeTestEndpointSlice) -------------------

/** A TCP ServicePort / EndpointPort; `extra` adds fields such as nodePort or targetPort. */
export const tcp = (name: string, port: number, extra: Json = {}): Json => ({ name, port, protocol: 'TCP', ...extra });

/** A Service with `spec` merged into its spec and, if any, `lbIPs` as its LoadBalancer ingress. */
export function service(ns: string, name: string, spec: Json, lbIPs: string[] = []): Json {
  return makeService(ns, name, (s) => {
    Object.assign(s.spec, spec);
    if (lbIPs.length > 0) s.status.loadBalancer = { ingress: lbIPs.map((ip) => ({ ip })) };
  });
}

/** An endpoint: a bare IP, or an IP with its node and whichever conditions are given. */
export type Ep = string | { ip: string; node?: string; ready?: boolean; serving?: boolean; terminating?: boolean };

/** Ready (and serving) on `node`. */
export const ready = (ip: string, node: string): Ep => ({ ip, node, ready: true, serving: true, terminating: false });
/** Terminating but still serving on `node`. */
export const servingTerminating = (ip: string, node: string): Ep => ({ ip, node, ready: false, serving: true, terminating: true });
/** Terminating and no longer serving on `node`. */
export const terminating = (ip: string, node: string): Ep => ({ ip, node, ready: false, serving: false, terminating: true });

/** The EndpointSlice `${name}-1` of Service ns/name with these endpoints and ports. */
export function slice(ns: string, name: string, eps: Ep[], ports: Json[], addressType: 'IPv4' | 'IPv6' = 'IPv4'): Json {
  return makeEndpointSlice(ns, name, 1, (s) => {
    s.addressType = addressType;
    s.ports = ports;
    s.endpoints = eps.map((e) => {
      const ep = typeof e === 'string' ? { ip: e } : e;
      const conditions: Json = {};
      for (const k of ['ready', 'serving', 'terminating'] as const) if (ep[k] !== undefined) conditions[k] = ep[k];
      return { addresses: [ep.ip], ...(ep.node ? { nodeName: ep.node } : {}), ...(Object.keys(conditions).length ? { conditions } : {}) };
    });
  });
}

// ---- scenarios of kube-proxy's tests, shared by the render and packet-flow tests ------------

/** The Services and EndpointSlices of TestOverallIPTablesRules. */
export function overallObjects(): Json[] {
  return [
    // ClusterIP service
    service('ns1', 'svc1', { clusterIP: '172.30.0.41', ports: [tcp('p80', 80)] }),
    // LoadBalancer service with Local traffic policy
    service('ns2', 'svc2', {
      type: 'LoadBalancer', externalTrafficPolicy: 'Local', clusterIP: '172.30.0.42', ports: [tcp('p80', 80, { nodePort: 3001 })],
      externalIPs: ['192.168.99.22'], healthCheckNodePort: 30000,
    }, ['1.2.3.4']),
    // NodePort service
    service('ns3', 'svc3', { type: 'NodePort', clusterIP: '172.30.0.43', ports: [tcp('p80', 80, { nodePort: 3003 })] }),
    // ExternalIP service
    service('ns4', 'svc4', { type: 'NodePort', clusterIP: '172.30.0.44', externalIPs: ['192.168.99.33'], ports: [tcp('p80', 80, { targetPort: 80 })] }),
    // LoadBalancer service with Cluster traffic policy, source ranges, and session affinity
    service('ns5', 'svc5', {
      type: 'LoadBalancer', externalTrafficPolicy: 'Cluster', clusterIP: '172.30.0.45', ports: [tcp('p80', 80, { nodePort: 3002 })],
      healthCheckNodePort: 30000,
      // Extra whitespace to ensure that invalid value will not result in a crash, for backward compatibility.
      loadBalancerSourceRanges: [' 203.0.113.0/25'],
      sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 10800 } },
    }, ['5.6.7.8']),
    // ClusterIP service with no endpoints
    service('ns6', 'svc6', { type: 'ClusterIP', clusterIP: '172.30.0.46', ports: [tcp('p80', 80, { targetPort: 80 })] }),
    slice('ns1', 'svc1', ['10.180.0.1'], [tcp('p80', 80)]),
    // Local LoadBalancer endpoint without NodeName: non-local, so svc2 has no local endpoints.
    slice('ns2', 'svc2', ['10.180.0.2'], [tcp('p80', 80)]),
    slice('ns3', 'svc3', ['10.180.0.3'], [tcp('p80', 80)]),
    slice('ns4', 'svc4', ['10.180.0.4', { ip: '10.180.0.5', node: TEST_HOSTNAME }], [tcp('p80', 80)]),
    slice('ns5', 'svc5', ['10.180.0.3'], [tcp('p80', 80)]),
  ];
}

/** TestClusterIPGeneral: svc1 with one local endpoint; svc2 with TCP, UDP and SCTP ports (three
 *  on 53), targetPorts, and one local and one remote endpoint. */
export function clusterIPGeneralObjects(): Json[] {
  return [
    service('ns1', 'svc1', { clusterIP: '172.30.0.41', ports: [tcp('http', 80)] }),
    service('ns2', 'svc2', {
      clusterIP: '172.30.0.42',
      ports: [
        tcp('http', 80),
        tcp('https', 443, { targetPort: 8443 }),
        { name: 'dns-udp', port: 53, protocol: 'UDP' },
        tcp('dns-tcp', 53, { targetPort: 5353 }),
        { name: 'dns-sctp', port: 53, protocol: 'SCTP' },
      ],
    }),
    slice('ns1', 'svc1', [{ ip: '10.180.0.1', node: TEST_HOSTNAME }], [tcp('http', 80)]),
    slice('ns2', 'svc2', [{ ip: '10.180.0.1', node: TEST_HOSTNAME }, { ip: '10.180.2.1', node: 'host2' }], [
      tcp('http', 80), tcp('https', 8443), { name: 'dns-udp', port: 53, protocol: 'UDP' }, tcp('dns-tcp', 5353), { name: 'dns-sctp', port: 53, protocol: 'SCTP' },
    ]),
  ];
}

/** TestNoEndpointsReject: a LoadBalancer Service with an external IP, a NodePort and no endpoints. */
export function noEndpointsRejectObjects(): Json[] {
  return [
    service('ns1', 'svc1', {
      type: 'LoadBalancer', clusterIP: '172.30.0.41', externalIPs: ['192.168.99.11'], ports: [tcp('p80', 80, { nodePort: 3001 })],
    }, ['1.2.3.4']),
  ];
}

/** TestLoadBalancer: LB IPs 1.2.3.4 and 5.6.7.8 behind `sourceRanges` (kube-proxy's, with its
 *  stray space, by default), NodePort 3001, one endpoint. */
export function loadBalancerObjects(sourceRanges: string[] = ['192.168.0.0/24', ' 203.0.113.0/25']): Json[] {
  return [
    service('ns1', 'svc1', {
      type: 'LoadBalancer', clusterIP: '172.30.0.41', ports: [tcp('p80', 80, { nodePort: 3001 })], loadBalancerSourceRanges: sourceRanges,
    }, ['1.2.3.4', '5.6.7.8']),
    slice('ns1', 'svc1', ['10.180.0.1'], [tcp('p80', 80)]),
  ];
}

/** TestInternalTrafficPolicy: a ClusterIP Service with an unnamed port and the given policy. */
export const internalTrafficPolicyService = (policy: 'Cluster' | 'Local'): Json => service('ns1', 'svc1', {
  clusterIP: '172.30.1.1', selector: { foo: 'bar' }, ports: [tcp('', 80)], internalTrafficPolicy: policy,
});

/** TestInternalTrafficPolicy: ready endpoints 10.0.1.1, 10.0.1.2, ... on these nodes. */
export const internalTrafficPolicySlice = (nodes: string[]): Json =>
  slice('ns1', 'svc1', nodes.map((node, i) => ({ ip: `10.0.1.${i + 1}`, node, ready: true })), [tcp('', 80)]);

/** TestInternalExternalMasquerade: LoadBalancers svc1 (eTP Cluster), svc2 (eTP Local) and svc3
 *  (iTP Local), each with a local endpoint 10.180.0.n and a remote one 10.180.1.n. */
export function internalExternalMasqueradeObjects(): Json[] {
  return [
    service('ns1', 'svc1', { type: 'LoadBalancer', clusterIP: '172.30.0.41', ports: [tcp('p80', 80, { nodePort: 3001 })], healthCheckNodePort: 30001 }, ['1.2.3.4']),
    service('ns2', 'svc2', {
      type: 'LoadBalancer', clusterIP: '172.30.0.42', ports: [tcp('p80', 80, { nodePort: 3002 })], healthCheckNodePort: 30002, externalTrafficPolicy: 'Local',
    }, ['5.6.7.8']),
    service('ns3', 'svc3', {
      type: 'LoadBalancer', clusterIP: '172.30.0.43', ports: [tcp('p80', 80, { nodePort: 3003 })], healthCheckNodePort: 30003, internalTrafficPolicy: 'Local',
    }, ['9.10.11.12']),
    ...[1, 2, 3].map((n) => slice(`ns${n}`, `svc${n}`, [{ ip: `10.180.0.${n}`, node: TEST_HOSTNAME }, { ip: `10.180.1.${n}`, node: 'remote' }], [tcp('p80', 80)])),
  ];
}
