// bench/datapath.ts's inputs: the Services the controller reads (Kubernetes List JSON files,
// as `kubectl get -o json` prints them) and the TCP frames sent through BPF_PROG_TEST_RUN,
// written in bulk with valid IPv4 and TCP checksums; plus the statistics of a row.
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildFrame, TCP } from '../test/bpf/packet.js';

export const ipNum = (s: string): number => s.split('.').reduce((a, o) => a * 256 + Number(o), 0) >>> 0;
export const ipStr = (n: number): string => `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;

// ---- the address plan ----

export const NODE_NAME = 'bench';
export const NODE_IP = ipNum('10.255.0.1');
/** --cluster-cidr: pods (backends, and the tc rows' clients) are inside, the node is not. */
export const CLUSTER_CIDR = '10.128.0.0/10';
/** Service i: ClusterIP CLUSTER_IP_BASE + i, port 80 -> targetPort 8080; NodePort NODE_PORT_BASE + i. */
export const CLUSTER_IP_BASE = ipNum('10.96.0.1');
export const SERVICE_PORT = 80;
export const TARGET_PORT = 8080;
export const NODE_PORT_BASE = 2000;
/** Highest number of NodePorts: one TCP port each, below 65536. */
export const MAX_NODE_PORTS = 60_000;
/** Backend k (of the pool) is the pod POD_BASE + k:8080, on this node. */
export const POD_BASE = ipNum('10.128.0.0');
/** Clients: from outside (XDP rows) and pods of this cluster, not backends (tc rows). */
export const XDP_CLIENT_BASE = ipNum('100.64.0.0');
export const TC_CLIENT_BASE = ipNum('10.160.0.0');
/** Destinations of non-Service packets: no frontend, no conntrack entry, ever. */
export const STRAY_BASE = ipNum('172.16.0.0');
export const ENDPOINTS_PER_SERVICE = 10;

export interface ServicePlan {
  services: number;
  /** Services 0 .. nodePorts-1 are type NodePort. */
  nodePorts: number;
  /** Distinct backends: Service i's endpoints are pool members (i*10 + j) mod pool, j < 10. */
  pool: number;
}

/** Is addr:port one of Service s's endpoints? */
export function isBackendOf(plan: ServicePlan, s: number, addr: number, port: number): boolean {
  const k = addr - POD_BASE;
  if (port !== TARGET_PORT || k < 0 || k >= plan.pool) return false;
  return (k - ((s * ENDPOINTS_PER_SERVICE) % plan.pool) + plan.pool) % plan.pool < ENDPOINTS_PER_SERVICE;
}

/** Writes the Services and their EndpointSlices as List files of at most `perFile` Services
 * each under dir (a file is at most 64 MiB for the file source); returns the file count. */
export function writeServiceFiles(dir: string, plan: ServicePlan, perFile = 5_000): number {
  mkdirSync(dir, { recursive: true });
  let files = 0;
  for (let first = 0; first < plan.services; first += perFile) {
    const items: object[] = [];
    for (let i = first; i < Math.min(plan.services, first + perFile); i++) {
      const name = `svc-${i}`;
      const clusterIP = ipStr(CLUSTER_IP_BASE + i);
      const nodePort = i < plan.nodePorts;
      items.push({
        apiVersion: 'v1', kind: 'Service',
        metadata: { name, namespace: 'bench', uid: `uid-${name}`, resourceVersion: '1' },
        spec: {
          type: nodePort ? 'NodePort' : 'ClusterIP', clusterIP, clusterIPs: [clusterIP],
          ipFamilies: ['IPv4'], ipFamilyPolicy: 'SingleStack', sessionAffinity: 'None', internalTrafficPolicy: 'Cluster',
          ...(nodePort ? { externalTrafficPolicy: 'Cluster' } : {}),
          ports: [{ name: 'http', protocol: 'TCP', port: SERVICE_PORT, targetPort: TARGET_PORT, ...(nodePort ? { nodePort: NODE_PORT_BASE + i } : {}) }],
        },
        status: { loadBalancer: {} },
      }, {
        apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', addressType: 'IPv4',
        metadata: {
          name: `${name}-abcde`, namespace: 'bench', resourceVersion: '1',
          labels: { 'kubernetes.io/service-name': name, 'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io' },
        },
        ports: [{ name: 'http', protocol: 'TCP', port: TARGET_PORT }],
        endpoints: Array.from({ length: ENDPOINTS_PER_SERVICE }, (_, j) => ({
          addresses: [ipStr(POD_BASE + ((i * ENDPOINTS_PER_SERVICE + j) % plan.pool))],
          conditions: { ready: true, serving: true, terminating: false }, nodeName: NODE_NAME,
        })),
      });
    }
    const path = join(dir, `services-${String(files).padStart(3, '0')}.json`);
    writeFileSync(`${path}.tmp`, JSON.stringify({ apiVersion: 'v1', kind: 'List', items }));
    renameSync(`${path}.tmp`, path);
    files++;
  }
  return files;
}

// ---- frames ----

export const TCP_SYN = 0x02;
export const TCP_ACK = 0x10;
export const TCP_SYNACK = 0x12;
/** TCP payload of every frame: 14 + 20 + 20 + 64 = 118 bytes, past KX_MAX_HDR (94), so tc
 * never has to pull headers (a real SYN with options is 74 bytes, an ACK 66, a data segment more). */
export const PAYLOAD_BYTES = 64;

export interface Tuple { saddr: number; daddr: number; sport: number; dport: number; flags: number }

const fold = (s: number): number => {
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
};

/** Writes IPv4/TCP frames (no IP options, TCP data offset 5) with both checksums valid. */
export class FrameWriter {
  readonly template: Buffer;
  readonly size: number;
  private readonly payloadSum: number;

  constructor() {
    const payload = Buffer.alloc(PAYLOAD_BYTES);
    for (let i = 0; i < PAYLOAD_BYTES; i++) payload[i] = (i * 37 + 11) & 255;
    this.template = buildFrame({ src: '1.1.1.1', dst: '2.2.2.2', sport: 1, dport: 2, proto: TCP, payload });
    this.size = this.template.length;
    if (this.size !== 14 + 20 + 20 + PAYLOAD_BYTES || this.template[14] !== 0x45 || this.template[46]! >> 4 !== 5) {
      throw new Error(`unexpected frame template (${this.size} bytes)`);
    }
    let s = 0;
    for (let i = 54; i < this.size; i += 2) s += this.template.readUInt16BE(i);
    this.payloadSum = s;
  }

  write(buf: Buffer, off: number, t: Tuple): void {
    this.template.copy(buf, off);
    buf.writeUInt32BE(t.saddr >>> 0, off + 26);
    buf.writeUInt32BE(t.daddr >>> 0, off + 30);
    buf.writeUInt16BE(t.sport, off + 34);
    buf.writeUInt16BE(t.dport, off + 36);
    buf[off + 47] = t.flags;
    // IPv4 header checksum over 20 bytes, field zeroed.
    buf.writeUInt16BE(0, off + 24);
    let s = 0;
    for (let i = 14; i < 34; i += 2) s += buf.readUInt16BE(off + i);
    buf.writeUInt16BE(~fold(s) & 0xffff, off + 24);
    // TCP checksum: pseudo-header + header (field zeroed) + payload.
    buf.writeUInt16BE(0, off + 50);
    const l4len = this.size - 34;
    s = (t.saddr >>> 16) + (t.saddr & 0xffff) + (t.daddr >>> 16) + (t.daddr & 0xffff) + TCP + l4len + this.payloadSum;
    for (let i = 34; i < 54; i += 2) s += buf.readUInt16BE(off + i);
    buf.writeUInt16BE(~fold(s) & 0xffff, off + 50);
  }
}

/** The tuple fields of a frame (as written or as a program left it). */
export function tupleAt(buf: Buffer, off: number): Tuple {
  return {
    saddr: buf.readUInt32BE(off + 26), daddr: buf.readUInt32BE(off + 30),
    sport: buf.readUInt16BE(off + 34), dport: buf.readUInt16BE(off + 36), flags: buf[off + 47]!,
  };
}

/** xorshift32: reproducible picks. */
export function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    return x;
  };
}

// ---- statistics ----

export interface Dist { mean: number; p50: number; p90: number; p99: number; p999: number; max: number; min: number }

const r1 = (x: number): number => Math.round(x * 10) / 10;

export function dist(xs: Uint32Array): Dist {
  const s = Uint32Array.from(xs).sort();
  const n = s.length;
  const q = (p: number) => s[Math.min(n - 1, Math.floor(p * n))]!;
  let sum = 0;
  for (let i = 0; i < n; i++) sum += s[i]!;
  return { mean: r1(sum / n), p50: q(0.5), p90: q(0.9), p99: q(0.99), p999: q(0.999), max: s[n - 1]!, min: s[0]! };
}

/** Calls over `thresholdNs`: their share, and the most common gap (in calls) between two of
 * them — a periodic slow call (e.g. every 64th new flow: an LRU free-list refill of 128
 * entries, two per flow) shows as a dominant gap. */
export function slowCalls(xs: Uint32Array, thresholdNs: number): { threshold_ns: number; share: number; common_gap: number | null; gap_share: number } {
  const gaps = new Map<number, number>();
  let last = -1, n = 0;
  for (let i = 0; i < xs.length; i++) {
    if (xs[i]! <= thresholdNs) continue;
    n++;
    if (last >= 0) gaps.set(i - last, (gaps.get(i - last) ?? 0) + 1);
    last = i;
  }
  let best: number | null = null, bestN = 0;
  for (const [g, c] of gaps) if (c > bestN) [best, bestN] = [g, c];
  return { threshold_ns: thresholdNs, share: Math.round((n / xs.length) * 1e5) / 1e5, common_gap: best, gap_share: n > 1 ? Math.round((bestN / (n - 1)) * 1000) / 1000 : 0 };
}
