// The eBPF mode on every kernel of the matrix: Debian 12's own 6.1 (no TCX: tc falls back to a
// clsact qdisc) and its 6.12 backport (TCX), each booted under qemu. The host's kernel runs the
// same suites outside the VM (test/bpf, test/lab). In each guest: the startup probe's report,
// the BPF fixture suites (BPF_PROG_TEST_RUN on that kernel's verifier and helpers), and a small
// lab — the guest's root namespace is the node, pods and an outside client are namespaces —
// with real sockets: ClusterIP and NodePort, an update, a restart under traffic, and a kernel
// without a required feature (BTF hidden) that `--mode ebpf` refuses and `--mode auto` passes by.
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Summary } from '../lab/client.js';
import type { ProbeReport } from '../../src/kernel/probe.js';
import { KUBE_XDP_GUEST_DIR } from './guest-kube-xdp.js';
import { CLIENT_POD, CLUSTER_IP, GUEST_CLI, GUEST_LAB, LAB_FILES, NODE_IP, NODE_PORT, PODS, guestClient, labSetup, peersByIP, type PodName } from './guest-lab.js';
import { KERNEL_SERIES, type KernelSeries } from './kernel.js';
import { KernelVM, harnessUnavailable } from './vm.js';

const PIN_DIR = '/sys/fs/bpf/kx';
/** Tools the checks read the kernel with (copied from the host). */
const TOOLS = ['/usr/sbin/bpftool', '/usr/sbin/tc', '/usr/sbin/ethtool'];
/** Fixture suites run in the guest, with their volume scaled to TCG (one emulated CPU). The crash
 *  suite is left to the host: it exercises the control plane's plan order, not the kernel. */
const BPF_SUITES = ['datapath', 'conntrack', 'fuzz', 'capacity', 'stats-metrics'];
// The flood still overflows kx_ct_new (131,072 entries), so the LRU eviction of that kernel is what is tested.
const GUEST_BPF_ENV = 'CI=true KX_FLOOD=200000 KX_FUZZ_CASES=3000';
/** KUBE_XDP_KERNELS=6.12 runs one kernel of the matrix. */
const SERIES = (process.env.KUBE_XDP_KERNELS?.split(',') ?? KERNEL_SERIES) as KernelSeries[];

/** The guest's node processes that are the node's own clients: the socket hooks' cgroup. */
const NODE_CGROUP = '/sys/fs/cgroup/kxnode';
const RUN_FLAGS = `--source file:/tmp/objects.json --node-name node1 --node-ip ${NODE_IP} --external-interfaces eth0 --pod-interfaces 'v*' --bpf-pin-dir ${PIN_DIR} --metrics-bind-address '' --healthz-bind-address '' --cgroup-root ${NODE_CGROUP} --logging-format json`;

for (const series of SERIES) {
  const why = await harnessUnavailable(series) ?? (TOOLS.find((t) => !existsSync(t)) ? `missing ${TOOLS.join(', ')} (apt-get install bpftool iproute2 ethtool)` : null);
  const skip = why !== null && process.env.CI !== 'true' ? why : false;

  test(`the kernel harness can boot Debian's ${series} cloud kernel with the eBPF tools`, { skip }, () => {
    assert.equal(why, null);
  });

  describe(`eBPF mode on Debian's ${series} cloud kernel (qemu)`, { skip: skip || why !== null }, () => {
    let vm: KernelVM;
    const timings: [string, number][] = [];
    const notes: string[] = [];
    const timed = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
      const t0 = Date.now();
      try {
        return await fn();
      } finally {
        timings.push([what, Date.now() - t0]);
      }
    };
    const ok = (cmd: string, timeoutMs = 60_000): Promise<string> => vm.check(cmd, timeoutMs);
    const syncs = async (log = '/tmp/kx.log') => Number((await ok(`grep -c '"msg":"synced"' ${log} || true`)).trim());
    const waitFor = async (what: string, probe: () => Promise<boolean>, tries = 300) => {
      for (let i = 0; i < tries; i++) {
        if (await probe()) return;
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.fail(`${what}: not within ${tries / 10} s\n${await ok('tail -20 /tmp/kx.log')}`);
    };
    const startController = async (log = '/tmp/kx.log') => {
      await ok(`node ${GUEST_CLI} run --mode ebpf ${RUN_FLAGS} > /dev/null 2> ${log} & echo $! > /tmp/kx.pid`);
      await waitFor('first sync', async () => (await syncs(log)) > 0);
    };
    const switchTo = async (backends: readonly PodName[]) => {
      const n = await syncs();
      await ok(`cp /opt/kx/objects-${backends.join('')}.json /tmp/objects.new && mv /tmp/objects.new /tmp/objects.json`);
      await waitFor('a sync after the update', async () => (await syncs()) > n);
    };
    const client = (ns: string, proto: 'tcp' | 'udp', target: string, count: number) => guestClient(vm, ns, proto, target, count, 5000);
    let report: ProbeReport;

    before(async () => {
      vm = await timed('boot (qemu + kube-xdp bundle + BPF suites)', () => KernelVM.boot({
        kernel: series,
        withKubeXdp: { withBpfTests: true },
        binaries: TOOLS,
        // As on a Debian node: present, loaded by the kernel on demand when a clsact qdisc is made.
        loadableModules: ['sch_ingress', 'cls_bpf'],
        extraFiles: LAB_FILES,
        memoryMb: 1536,
        timeoutMs: 240_000,
      }));
    });

    after(async () => {
      if (!vm) return;
      if (process.env.KUBE_XDP_VM_DEBUG) console.error((await vm.run('tail -30 /tmp/kx.log', 10_000).catch(() => null))?.stdout);
      await vm.close();
      const s = vm.stats;
      console.error([
        `kernel ${vm.kernel.version}, initramfs ${s.initramfsBytes} B, qemu spawn → guest ready ${s.bootMs} ms`,
        ...notes,
        ...timings.map(([w, ms]) => `${ms} ms  ${w}`),
      ].join('\n'));
    });

    test('the startup probe: every required feature there, tc attach as the kernel allows', async () => {
      const r = await vm.run(`node ${GUEST_CLI} probe -o json`);
      assert.equal(r.code, 0, r.stderr + r.stdout);
      report = JSON.parse(r.stdout) as ProbeReport;
      notes.push(`probe: ${(await ok(`node ${GUEST_CLI} probe`)).trim().split('\n').filter((l) => /^no |^tc |^eBPF/.test(l)).join(' | ')}`);
      assert.equal(report.kernel, vm.kernel.version);
      assert.equal(report.ebpfUnusable, null);
      // TCX came in 6.6: Debian's 6.1 must fall back to clsact, 6.12 has TCX.
      assert.equal(report.tc, series === '6.1' ? 'clsact' : 'tcx');
      for (const f of ['xdpLink', 'forEachMapElem', 'testRun', 'fibLookup', 'connect4', 'sendmsg4', 'recvmsg4', 'getpeername4'] as const) {
        assert.equal(report.features[f].ok, true, `${f}: ${report.features[f].detail}`);
      }
    });

    test(`the BPF fixture suites pass on this kernel (${BPF_SUITES.join(', ')})`, async () => {
      const files = BPF_SUITES.map((s) => `${KUBE_XDP_GUEST_DIR}/dist/test/bpf/${s}.test.js`).join(' ');
      const r = await timed('BPF suites', () => vm.run(`cd /tmp && ${GUEST_BPF_ENV} node --test --test-concurrency=1 ${files} 2>&1`, 900_000));
      const count = (k: string) => Number(new RegExp(`^# ${k} (\\d+)$`, 'm').exec(r.stdout)?.[1] ?? NaN);
      notes.push(`BPF suites: ${count('pass')} passed, ${count('fail')} failed, ${count('skipped')} skipped, ${count('todo')} todo`);
      if (r.code !== 0) {
        const path = join(tmpdir(), `kx-guest-bpf-${series}.tap`);
        writeFileSync(path, r.stdout);
        // The failing tests with their error and location (TAP), without the TODO ones.
        const lines = r.stdout.split('\n');
        const failing = lines.flatMap((l, i) => (/^\s*not ok /.test(l) && !/# TODO/.test(l) ? lines.slice(i, i + 30) : []))
          .filter((l) => !/^\s+(at |stack|\.\.\.|---|duration_ms|failureType)/.test(l) && !/cancelled/.test(l));
        assert.fail(`exit ${r.code}; whole TAP output in ${path}\n${failing.slice(0, 120).join('\n')}`);
      }
      assert.equal(count('fail'), 0);
      assert.equal(count('skipped'), 0);
      assert.ok(count('pass') >= 100, `${count('pass')} tests passed`);
    });

    test('the controller starts in eBPF mode: XDP on eth0, tc on every pod veth the way the probe said', async () => {
      await timed('namespaces, veths, echo servers', () => ok(labSetup({ forwarding: true, extTxOff: true })));
      await ok(`mkdir -p /sys/fs/cgroup && (mountpoint -q /sys/fs/cgroup || mount -t cgroup2 none /sys/fs/cgroup) && mkdir -p ${NODE_CGROUP}`);
      await timed('controller start → first sync', () => startController());
      const log = await ok('cat /tmp/kx.log');
      const hooks = /"attached":\[([^\]]*)\][^\n]*"msg":"socket hooks attached/.exec(log);
      assert.ok(hooks, log);
      assert.equal(hooks[1]!.split(',').length, 8, `every socket hook attached: ${hooks[1]}`);
      assert.match(log, /"msg":"starting kube-xdp \(eBPF mode\)"/);
      assert.match(log, new RegExp(`"tc":"${report.tc}"`));
      const xdp = /"interface":"eth0","mode":"(native|generic)","msg":"XDP attached/.exec(log);
      assert.ok(xdp, log);
      notes.push(`XDP on the veth: ${xdp[1]}`);
      assert.match(await ok('ip -d link show eth0'), /prog\/xdp id \d+/);
      for (const p of [...Object.keys(PODS), 'client']) {
        if (report.tc === 'clsact') {
          assert.match(await ok(`tc filter show dev v${p} ingress`), /bpf .*kx_tc_pod/, `v${p}`);
        } else {
          // Debian 12's bpftool (7.1) predates TCX and lists no tcx attachments: read the pinned link.
          const link = JSON.parse(await ok(`bpftool -j link show pinned ${PIN_DIR}/links/tc-v${p}`)) as { prog_id: number };
          const prog = JSON.parse(await ok(`bpftool -j prog show id ${link.prog_id}`)) as { name: string };
          assert.equal(prog.name, 'kx_tc_pod', `v${p}`);
          assert.doesNotMatch(await ok(`tc filter show dev v${p} ingress`), /kx_tc_pod/, 'no clsact filter beside the TCX link');
        }
      }
      const pins = await ok(`ls ${PIN_DIR}`);
      for (const m of ['kx_frontends', 'kx_ct', 'kx_ct_new']) assert.match(pins, new RegExp(`^${m}$`, 'm'));
    });

    test('ClusterIP from a pod, TCP and UDP: every connection answered, every backend used, the client address kept', async () => {
      const s = await client('client', 'tcp', `${CLUSTER_IP}:80`, 30);
      assert.equal(s.ok, 30, JSON.stringify(s));
      assert.deepEqual(Object.keys(s.byPod).sort(), ['a', 'b', 'c'], JSON.stringify(s.byPod));
      assert.deepEqual(peersByIP(s), { [CLIENT_POD]: 30 });
      assert.deepEqual(Object.keys(s.replyPeers).map((p) => p.replace(/:\d+$/, '')), [CLUSTER_IP], 'replies come from the ClusterIP');
      const u = await client('client', 'udp', `${CLUSTER_IP}:80`, 30);
      assert.equal(u.ok, 30, JSON.stringify(u));
      assert.deepEqual(Object.keys(u.byPod).sort(), ['a', 'b', 'c'], JSON.stringify(u.byPod));
    });

    test('NodePort from outside the node: every connection answered by a backend, replies from the node address', async () => {
      const s = await client('ext', 'tcp', `${NODE_IP}:${NODE_PORT}`, 30);
      assert.equal(s.ok, 30, JSON.stringify(s));
      assert.deepEqual(Object.keys(s.byPod).sort(), ['a', 'b', 'c'], JSON.stringify(s.byPod));
      assert.deepEqual(Object.keys(s.replyPeers), [`${NODE_IP}:${NODE_PORT}`]);
      const u = await client('ext', 'udp', `${NODE_IP}:${NODE_PORT}`, 20);
      assert.equal(u.ok, 20, JSON.stringify(u));
    });

    test('the node\'s own client (socket hooks): TCP and UDP to the ClusterIP and localhost:NodePort, every backend, the Service as peer', async () => {
      const fromNode = async (proto: 'tcp' | 'udp', target: string, count: number): Promise<Summary> => JSON.parse((await ok(
        `sh -c 'echo $$ > ${NODE_CGROUP}/cgroup.procs; exec node ${GUEST_LAB}/client.js --${proto} --target ${target} --count ${count} --timeout-ms 5000'`,
      )).trim().split('\n').pop()!) as Summary;
      for (const [proto, target] of [['tcp', `${CLUSTER_IP}:80`], ['udp', `${CLUSTER_IP}:80`], ['tcp', `127.0.0.1:${NODE_PORT}`]] as const) {
        const s = await fromNode(proto, target, 30);
        assert.equal(s.ok, 30, `${proto} ${target}: ${JSON.stringify(s)}`);
        assert.deepEqual(Object.keys(s.byPod).sort(), ['a', 'b', 'c'], `${proto} ${target}: ${JSON.stringify(s.byPod)}`);
        assert.deepEqual(Object.keys(s.replyPeers), [target], `${proto} ${target}: getpeername()/recvmsg() give the Service address`);
      }
    });

    test('an update (3 backends → 1 → 3) reaches the maps: new connections follow it', async () => {
      await switchTo(['a']);
      assert.deepEqual((await client('client', 'tcp', `${CLUSTER_IP}:80`, 20)).byPod, { a: 20 });
      assert.deepEqual((await client('ext', 'tcp', `${NODE_IP}:${NODE_PORT}`, 10)).byPod, { a: 10 });
      await switchTo(['a', 'b', 'c']);
      const s = await client('client', 'tcp', `${CLUSTER_IP}:80`, 30);
      assert.equal(s.ok, 30);
      assert.deepEqual(Object.keys(s.byPod).sort(), ['a', 'b', 'c']);
    });

    test('a controller killed and restarted under traffic: no new connection fails, a held one stays on its backend', async () => {
      await ok(`ip netns exec ext node ${GUEST_LAB}/client.js --tcp --target ${NODE_IP}:${NODE_PORT} --steady --interval-ms 100 --duration-ms 9000 --timeout-ms 5000 > /tmp/steady.json 2>&1 &
ip netns exec client node ${GUEST_LAB}/client.js --tcp --target ${CLUSTER_IP}:80 --hold --interval-ms 100 --duration-ms 9000 --timeout-ms 5000 > /tmp/hold.json 2>&1 &`);
      await new Promise((r) => setTimeout(r, 2500));
      await ok('kill -9 $(cat /tmp/kx.pid)');
      await new Promise((r) => setTimeout(r, 1500)); // traffic with no controller at all: the pinned maps and links serve it
      await timed('restart → first sync', () => startController('/tmp/kx2.log').catch(async (e) => {
        throw new Error(`${(e as Error).message}\n${await ok('tail -20 /tmp/kx2.log')}`);
      }));
      const done = async (f: string) => /\}\s*$/.test(await ok(`cat ${f} 2>/dev/null || true`));
      await waitFor('the clients to finish', async () => (await done('/tmp/steady.json')) && (await done('/tmp/hold.json')), 300);
      const steady = JSON.parse((await ok('cat /tmp/steady.json')).trim().split('\n').pop()!) as Summary;
      const hold = JSON.parse((await ok('cat /tmp/hold.json')).trim().split('\n').pop()!) as Summary;
      notes.push(`restart under traffic: steady ${steady.ok} ok / ${steady.failed} failed; held connection ${JSON.stringify(hold.byPod)} ${hold.failed} failed`);
      assert.equal(steady.failed, 0, JSON.stringify(steady));
      assert.ok(steady.ok >= 40, `${steady.ok} connections`);
      assert.equal(hold.failed, 0, JSON.stringify(hold));
      assert.equal(Object.keys(hold.byPod).length, 1, `the held connection moved: ${JSON.stringify(hold.byPod)}`);
      assert.match(await ok('cat /tmp/kx2.log'), /"msg":"synced"/);
    });

    test('cleanup detaches everything; with BTF hidden, --mode ebpf refuses naming it and --mode auto runs IPVS', async () => {
      await ok('kill $(cat /tmp/kx.pid); sleep 1');
      await ok(`node ${GUEST_CLI} cleanup --bpf-pin-dir ${PIN_DIR} --pod-interfaces 'v*' 2>&1`);
      assert.doesNotMatch(await ok('ip -d link show eth0'), /prog\/xdp/);
      assert.doesNotMatch(await ok('bpftool net show'), /kx_/);
      assert.doesNotMatch(await ok(`bpftool cgroup show ${NODE_CGROUP}`), /kx_sock/);
      assert.notEqual((await vm.run(`ls ${PIN_DIR}`)).code, 0, 'pin dir removed');

      await ok('mount -t tmpfs none /sys/kernel/btf');
      try {
        const r = await vm.run(`node ${GUEST_CLI} run --mode ebpf ${RUN_FLAGS}`, 60_000);
        assert.notEqual(r.code, 0);
        assert.match(r.stderr, /--mode ebpf cannot run on this node: missing kernel BTF \(\/sys\/kernel\/btf\/vmlinux\), kernel ≥ 5\.4/);
        assert.notEqual((await vm.run(`ls ${PIN_DIR}`)).code, 0, 'nothing loaded');
        await ok(`node ${GUEST_CLI} run --mode auto ${RUN_FLAGS} --cluster-cidr 10.244.0.0/16 > /dev/null 2> /tmp/kx-auto.log & echo $! > /tmp/kx.pid`);
        await waitFor('the IPVS mode to sync', async () => /"msg":"synced"/.test(await ok('cat /tmp/kx-auto.log')));
        const log = await ok('cat /tmp/kx-auto.log');
        assert.match(log, /"msg":"--mode auto chose ipvs"/);
        assert.match(log, /"ebpf":"missing kernel BTF/);
        const s = await client('client', 'tcp', `${CLUSTER_IP}:80`, 9);
        assert.equal(s.ok, 9, JSON.stringify(s));
        await ok('kill $(cat /tmp/kx.pid); sleep 1');
        await ok(`node ${GUEST_CLI} cleanup --bpf-pin-dir ${PIN_DIR} --pod-interfaces 'v*' 2>&1`);
      } finally {
        await vm.run('umount /sys/kernel/btf');
      }
    });
  });
}
