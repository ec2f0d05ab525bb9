// Soak (`make soak`, not in CI): the eBPF lab under continuous churn and traffic for
// KX_SOAK_MINUTES (default 30). Every 100 ms the file source is rewritten (two permanent
// endpoints, four churning ones, a second Service created and deleted every 10 s); steady TCP
// clients (pod -> ClusterIP, outside -> NodePort) open a connection every 20 ms. Every 10 s it
// samples each controller's RSS, the maps' fill (frontends, slots, backends, both conntrack
// tables), and the latency of the syncs since the previous sample. Writes
// bench/results/soak.json and soak.png (gnuplot), and prints whether RSS and map fill grew
// after the warm-up (the first third): a number to read, not a pass/fail.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Libkx } from '../src/kernel/libkx.js';
import { MAPS, STAT_NAMES, STATS_MAP } from '../src/dataplane/ebpf/maps.js';
import { REPO } from '../test/bpf/fixture.js';
import { createLab, ensureBpffs, type Lab, type LabPod, type NodeName } from '../test/lab/lab.js';
import { Controller } from '../test/lab/kube-xdp.js';
import { writeSource, type LabService } from '../test/lab/manifests.js';
import type { Summary } from '../test/lab/client.js';

const MINUTES = Number(process.env.KX_SOAK_MINUTES ?? 30);
const SAMPLE_MS = 10_000;
/** KX_SOAK_STATIC=1 keeps the endpoints fixed: the baseline to tell churn's failures from the lab's. */
const STATIC = process.env.KX_SOAK_STATIC === '1';
const CHURN_MS = 100;
const CLIENT_SEGMENT_MS = 60_000;
const CLUSTER_IP = '10.96.0.10', OTHER_IP = '10.96.0.11', NODE_PORT = 30080;
const RESULTS = join(REPO, 'bench/results');

interface Sample {
  t_s: number;
  rss_mb: Record<NodeName, number>;
  maps: Record<NodeName, Record<string, number>>;
  syncs: number; sync_p50_ms: number; sync_p99_ms: number; change_to_sync_p99_ms: number;
  connections: number; failures: number; errors: Record<string, number>;
  /** node1's datapath counters (kx_stats), cumulative. */
  stats: Record<string, number>;
}

const pct = (xs: number[], p: number): number => {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};
const rssMb = (pid: number): number => {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Math.round(Number(m[1]) / 1024) : 0;
};

function datapathStats(lib: Libkx, pinDir: string): Record<string, number> {
  const fd = lib.objGet(join(pinDir, STATS_MAP));
  try {
    const d = lib.mapDump(fd, STAT_NAMES.length);
    const stride = d.values.length / Math.max(d.count, 1);
    const out: Record<string, number> = {};
    for (let i = 0; i < d.count; i++) {
      let sum = 0n;
      for (let off = 0; off < stride; off += 8) sum += d.values.readBigUInt64LE(i * stride + off);
      out[STAT_NAMES[d.keys.readUInt32LE(i * 4)]!] = Number(sum);
    }
    return out;
  } finally {
    lib.close(fd);
  }
}

function mapFill(lib: Libkx, pinDir: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of [MAPS.frontends, MAPS.slots, MAPS.backends, MAPS.ct, MAPS.ctNew]) {
    const fd = lib.objGet(join(pinDir, m.name));
    try {
      out[m.name] = lib.mapDump(fd).count;
    } finally {
      lib.close(fd);
    }
  }
  return out;
}

const mergeErrors = (xs: Summary[]): Record<string, number> => {
  const out: Record<string, number> = {};
  for (const x of xs) for (const [k, v] of Object.entries(x.errors)) out[k] = (out[k] ?? 0) + v;
  return out;
};

/** Slope of y over x by least squares (per second of x). */
function slope(xs: number[], ys: number[]): number {
  const n = xs.length;
  if (n < 2) return 0;
  const mx = xs.reduce((a, b) => a + b, 0) / n, my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0, den = 0;
  for (let i = 0; i < n; i++) { num += (xs[i]! - mx) * (ys[i]! - my); den += (xs[i]! - mx) ** 2; }
  return den === 0 ? 0 : num / den;
}

function plot(samples: Sample[], dir: string): string | null {
  if (spawnSync('gnuplot', ['--version']).status !== 0) return null;
  const dat = join(dir, 'soak.dat');
  writeFileSync(dat, samples.map((s) => [
    s.t_s / 60, s.rss_mb.node1, s.rss_mb.node2, s.maps.node1.kx_ct ?? 0, s.maps.node1.kx_ct_new ?? 0,
    s.maps.node1.kx_slots ?? 0, s.sync_p50_ms, s.sync_p99_ms,
  ].join(' ')).join('\n') + '\n');
  const png = join(RESULTS, 'soak.png');
  const script = `set terminal png size 1200,900
set output '${png}'
set multiplot layout 3,1 title 'kube-xdp soak: ${MINUTES} min of churn every ${CHURN_MS} ms under traffic'
set xlabel 'minutes'
set ylabel 'RSS (MB)'
plot '${dat}' using 1:2 with lines title 'controller node1', '' using 1:3 with lines title 'controller node2'
set ylabel 'entries'
plot '${dat}' using 1:4 with lines title 'kx_ct', '' using 1:5 with lines title 'kx_ct_new', '' using 1:6 with lines title 'kx_slots'
set ylabel 'sync (ms)'
plot '${dat}' using 1:7 with lines title 'sync p50', '' using 1:8 with lines title 'sync p99'
unset multiplot
`;
  const r = spawnSync('gnuplot', [], { input: script, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`gnuplot: ${r.stderr}`);
  return png;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('bench/soak: needs root (netns lab, bpffs)');
  ensureBpffs();
  const lib = new Libkx();
  const dir = mkdtempSync(join(tmpdir(), 'kx-soak-'));
  const source = join(dir, 'services.json');
  let lab: Lab | null = null;
  const controllers: Controller[] = [];
  const clients: ReturnType<Lab['spawn']>[] = [];
  let stop = false;
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => { stop = true; });
  try {
    lab = await createLab({
      pods: [
        { name: 'cl', node: 'node1' }, { name: 'b', node: 'node1' }, { name: 'd', node: 'node1' }, { name: 'e', node: 'node1' },
        { name: 'c', node: 'node2' }, { name: 'f', node: 'node2' }, { name: 'g', node: 'node2' },
      ],
    });
    const l = lab;
    const pods = (...n: string[]): LabPod[] => n.map((x) => l.pod(x));
    const web = (eps: LabPod[]): LabService => ({ name: 'web', clusterIP: CLUSTER_IP, port: 80, targetPort: 8080, type: 'NodePort', nodePort: NODE_PORT, endpoints: eps });
    const other = (eps: LabPod[]): LabService => ({ name: 'other', clusterIP: OTHER_IP, port: 80, targetPort: 8080, endpoints: eps });
    writeSource(source, [web(pods('b', 'c'))]);
    controllers.push(await Controller.start(lab, 'node1', source), await Controller.start(lab, 'node2', source));

    let rnd = 0x50a4;
    const bit = () => { rnd ^= rnd << 13; rnd >>>= 0; rnd ^= rnd >>> 17; rnd ^= rnd << 5; rnd >>>= 0; return rnd & 1; };
    const churning = ['d', 'e', 'f', 'g'];
    const t0 = Date.now();
    const samples: Sample[] = [];
    let lastSampleAt = t0, lastClientsAt = 0, changes = 0;
    const done: Summary[] = [];
    const startClients = () => {
      for (const [ns, target] of [[l.pod('cl').ns, `${CLUSTER_IP}:80`], [l.ext.ns, `${l.nodes.node1.ip}:${NODE_PORT}`]] as const) {
        clients.push(l.spawn(ns, [process.execPath, join(REPO, 'dist/test/lab/client.js'), '--tcp', '--target', target, '--steady', '--interval-ms', '20', '--duration-ms', String(CLIENT_SEGMENT_MS)]));
      }
    };
    const collectClients = async () => {
      for (const c of clients.splice(0)) {
        if (c.exitCode === null && c.signalCode === null) await new Promise((r) => c.once('exit', r));
        const last = c.output().stdout.trim().split('\n').pop();
        if (last) done.push(JSON.parse(last) as Summary);
      }
    };

    while (!stop && Date.now() - t0 < MINUTES * 60_000) {
      const now = Date.now();
      if (now - lastClientsAt >= CLIENT_SEGMENT_MS) {
        await collectClients();
        startClients();
        lastClientsAt = now;
      }
      const eps = STATIC ? pods('b', 'c', ...churning) : pods('b', 'c', ...churning.filter(() => bit()));
      const withOther = !STATIC && Math.floor((now - t0) / 10_000) % 2 === 0;
      writeSource(source, withOther ? [web(eps), other(pods('b', 'f'))] : [web(eps)]);
      changes++;
      if (now - lastSampleAt >= SAMPLE_MS) {
        // By time: the controller's captured stderr keeps its last 1 MiB only.
        const syncs = controllers.flatMap((c) => c.syncs().filter((x) => x.time > lastSampleAt - SAMPLE_MS && x.time <= now));
        const segment = done.splice(0);
        const s: Sample = {
          t_s: Math.round((now - t0) / 1000),
          rss_mb: { node1: rssMb(controllers[0]!.proc.pid!), node2: rssMb(controllers[1]!.proc.pid!) },
          maps: { node1: mapFill(lib, l.pinDir('node1')), node2: mapFill(lib, l.pinDir('node2')) },
          syncs: syncs.length,
          sync_p50_ms: pct(syncs.map((x) => x.durationMs as number), 50),
          sync_p99_ms: pct(syncs.map((x) => x.durationMs as number), 99),
          change_to_sync_p99_ms: pct(syncs.map((x) => (x.sinceChangeMs as number | undefined) ?? 0), 99),
          connections: segment.reduce((a, x) => a + x.ok + x.failed, 0),
          failures: segment.reduce((a, x) => a + x.failed, 0),
          errors: mergeErrors(segment),
          stats: datapathStats(lib, l.pinDir('node1')),
        };
        samples.push(s);
        lastSampleAt = now;
        process.stderr.write(`${JSON.stringify(s)}\n`);
      }
      await new Promise((r) => setTimeout(r, CHURN_MS));
    }
    await collectClients();

    const warm = samples.filter((s) => s.t_s >= (MINUTES * 60) / 3);
    const per = (f: (s: Sample) => number) => Math.round(slope(warm.map((s) => s.t_s / 60), warm.map(f)) * 100) / 100;
    const summary = {
      minutes: MINUTES, changes, samples: samples.length,
      growth_after_warmup_per_min: {
        rss_mb_node1: per((s) => s.rss_mb.node1), rss_mb_node2: per((s) => s.rss_mb.node2),
        kx_ct_node1: per((s) => s.maps.node1.kx_ct ?? 0), kx_ct_new_node1: per((s) => s.maps.node1.kx_ct_new ?? 0),
        kx_slots_node1: per((s) => s.maps.node1.kx_slots ?? 0),
      },
      rss_mb_max: { node1: Math.max(...samples.map((s) => s.rss_mb.node1)), node2: Math.max(...samples.map((s) => s.rss_mb.node2)) },
      connections: samples.reduce((a, s) => a + s.connections, 0) + done.reduce((a, x) => a + x.ok + x.failed, 0),
      failures: samples.reduce((a, s) => a + s.failures, 0) + done.reduce((a, x) => a + x.failed, 0),
      sync_p99_ms_max: Math.max(...samples.map((s) => s.sync_p99_ms)),
    };
    mkdirSync(RESULTS, { recursive: true });
    writeFileSync(join(RESULTS, 'soak.json'), JSON.stringify({ summary, samples }, null, 2) + '\n');
    const png = plot(samples, dir);
    console.log(JSON.stringify(summary, null, 2));
    console.log(`-> ${join(RESULTS, 'soak.json')}${png ? `, ${png}` : ' (gnuplot missing: no plot)'}`);
  } finally {
    for (const c of clients) await c.stop();
    for (const c of controllers) await c.kill('SIGTERM');
    await lab?.teardown();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.stack : String(err));
  process.exit(1);
});
