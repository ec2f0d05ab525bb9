// The IPVS mode end to end on a kernel that has IPVS (Debian's 6.1 under qemu; the host has no
// IP_VS): the real controller runs inside the guest (`kube-xdp run --mode ipvs` on the file
// source), the guest's root namespace is the node, pods and an external client are network
// namespaces, and every check is real traffic or the kernel's own listing.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { SET_IDS, setName } from '../../src/dataplane/ipvs/ipsets.js';
import { canonical, parseIpvsadmList, parseIpvsadmSave, type VirtualServer } from '../../src/dataplane/ipvs/virtual-servers.js';
import type { InspectView } from '../../src/inspect/view.js';
import { CLIENT_POD, CLUSTER_IP, EXT_IP, GUEST_CLI, LAB_FILES, NODE_IP, NODE_PORT, PODS, guestClient, labObjects, labPod, labSetup, peersByIP, type PodName } from './guest-lab.js';
import { serviceObjects } from '../lab/manifests.js';
import { KernelVM, harnessUnavailable } from './vm.js';

const why = await harnessUnavailable();
const skip = why !== null && process.env.CI !== 'true' ? why : false;

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
/** The render flags; the guest's controller gets the same ones. */
const NODE_FLAGS = ['--node-name', 'node1', '--node-ip', NODE_IP, '--cluster-cidr', '10.244.0.0/16'];
/** `web` beside an externalTrafficPolicy Local LoadBalancer Service with a healthCheckNodePort. */
const HC_PORT = 32100;
const HC_OBJECTS = JSON.stringify({
  apiVersion: 'v1', kind: 'List', items: [
    ...(JSON.parse(labObjects(['a', 'b', 'c'])) as { items: object[] }).items,
    ...serviceObjects({ name: 'lb', clusterIP: '10.96.0.50', port: 80, targetPort: 8080, type: 'LoadBalancer', nodePort: 30050,
      externalTrafficPolicy: 'Local', healthCheckNodePort: HC_PORT, protocols: ['TCP'], endpoints: [labPod('a'), labPod('b')] }),
  ],
});
/** An HTTP GET from the guest: "<status> <body without whitespace>" or the error code. */
const HTTP_GET = `const [url] = process.argv.slice(2);
require('http').get(url, (r) => { let b = ''; r.on('data', (d) => { b += d; }); r.on('end', () => console.log(r.statusCode + ' ' + b.replace(/\\s+/g, ''))); })
  .on('error', (e) => console.log(e.code));`;

describe('IPVS mode in a qemu guest', { skip: skip || why !== null }, () => {
  let vm: KernelVM;
  const dir = mkdtempSync(join(tmpdir(), 'kx-ipvs-mode-'));
  const timings: [string, number][] = [];
  const timed = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    const t0 = Date.now();
    try {
      return await fn();
    } finally {
      timings.push([what, Date.now() - t0]);
    }
  };
  const ok = (cmd: string, timeoutMs = 60_000): Promise<string> => vm.check(cmd, timeoutMs);
  const syncs = async () => Number((await ok("grep -c '\"msg\":\"synced\"' /tmp/kx.log || true")).trim());
  const waitForSync = async (after: number) => {
    for (let i = 0; i < 300; i++) {
      if ((await syncs()) > after) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.fail(`no sync after #${after}:\n${await ok('tail -20 /tmp/kx.log')}`);
  };
  const client = (ns: string, proto: 'tcp' | 'udp', target: string, count: number) => guestClient(vm, ns, proto, target, count, 3000);
  const kernelIpvs = async () => canonical(parseIpvsadmList(await ok('ipvsadm -Ln')));
  /** `kube-xdp render --mode ipvs` on the host for these backends: its four parts. */
  const render = (backends: readonly PodName[]) => {
    const path = join(dir, `objects-${backends.join('')}.json`);
    writeFileSync(path, labObjects(backends));
    const r = spawnSync(process.execPath, [CLI, 'render', '--mode', 'ipvs', '--source', path, ...NODE_FLAGS], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const parts = new Map<string, string>();
    let head = '';
    for (const line of r.stdout.split('\n')) {
      if (line.startsWith('# ')) head = line.slice(2);
      else if (line !== '') parts.set(head, `${parts.get(head) ?? ''}${line}\n`);
    }
    return parts;
  };
  const rendered = (backends: readonly PodName[]): VirtualServer[] => canonical(parseIpvsadmSave(render(backends).get('ipvsadm --restore')!));
  /** Polls `probe` until it returns true (syncs also come from the drain check, so counting them
   *  says nothing about which change was applied). */
  const eventually = async (what: string, probe: () => Promise<boolean>) => {
    for (let i = 0; i < 150; i++) {
      if (await probe()) return;
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.fail(`${what}: not within 30 s\n${await ok('tail -5 /tmp/kx.log; ipvsadm -Ln')}`);
  };
  const tcpClusterIP = async () => (await kernelIpvs()).find((vs) => vs.protocol === 'TCP' && vs.address === CLUSTER_IP)!;
  const switchTo = (backends: readonly PodName[]) =>
    ok(`cp /opt/kx/objects-${backends.join('')}.json /tmp/objects.new && mv /tmp/objects.new /tmp/objects.json`);

  before(async () => {
    vm = await timed('boot (qemu + kube-xdp bundle)', () => KernelVM.boot({
      withKubeXdp: true,
      extraFiles: { ...LAB_FILES, '/opt/kx/objects-hc.json': HC_OBJECTS, '/opt/kx/http-get.js': HTTP_GET },
      timeoutMs: 180_000,
    }));
    await timed('namespaces, veths, echo servers', () => ok(labSetup()));
    await timed('controller start → first sync', async () => {
      await ok(`node ${GUEST_CLI} run --mode ipvs --source file:/tmp/objects.json ${NODE_FLAGS.join(' ')} --metrics-bind-address '' --healthz-bind-address '' --ipvs-drain-check-period 1s --logging-format json > /dev/null 2> /tmp/kx.log &`);
      await waitForSync(0);
    });
  });

  after(async () => {
    if (vm) {
      const r = await vm.run('cat /tmp/kx.log | tail -5; ps | grep -c node', 10_000).catch(() => null);
      if (process.env.KUBE_XDP_VM_DEBUG) console.error(r?.stdout);
      await vm.close();
      const s = vm.stats;
      console.error([
        `kernel ${vm.kernel.version}, initramfs ${s.initramfsBytes} B, qemu spawn → guest ready ${s.bootMs} ms`,
        ...timings.map(([w, ms]) => `${ms} ms  ${w}`),
      ].join('\n'));
    }
    rmSync(dir, { recursive: true, force: true });
  });

  test('the controller started in IPVS mode: sysctls set, kube-ipvs0 down with the ClusterIP on it', async () => {
    const log = await ok('cat /tmp/kx.log');
    assert.match(log, /"msg":"starting kube-xdp \(IPVS mode\)"/);
    assert.equal((await ok('cat /proc/sys/net/ipv4/vs/conntrack /proc/sys/net/ipv4/vs/expire_nodest_conn /proc/sys/net/ipv4/vs/expire_quiescent_template')).split('\n').slice(0, 3).join(), '1,1,1');
    const link = await ok('ip -o link show kube-ipvs0');
    assert.match(link, /: kube-ipvs0: <BROADCAST,NOARP>/, 'a dummy that stays down');
    assert.deepEqual((await ok("ip -o -4 addr show dev kube-ipvs0 | awk '{print $4}'")).trim().split('\n'), [`${CLUSTER_IP}/32`]);
  });

  test('ipvsadm -Ln in the guest is what `kube-xdp render --mode ipvs` printed', async () => {
    const kernel = await kernelIpvs();
    assert.deepEqual(kernel, rendered(['a', 'b', 'c']));
    // ClusterIP and NodePort, TCP and UDP, 3 masqueraded real servers each.
    assert.deepEqual(kernel.map((vs) => `${vs.protocol} ${vs.address}:${vs.port} ${vs.scheduler} ${vs.realServers.length}`), [
      `TCP ${CLUSTER_IP}:80 rr 3`, `UDP ${CLUSTER_IP}:80 rr 3`, `TCP ${NODE_IP}:${NODE_PORT} rr 3`, `UDP ${NODE_IP}:${NODE_PORT} rr 3`,
    ]);
    assert.match(await ok('ipvsadm -Ln'), /-> 10\.244\.1\.2:8080\s+Masq\s+1/);
  });

  test('kube-xdp inspect finds the IPVS mode (kube-ipvs0) and names every virtual server from the owner file', async () => {
    const v = JSON.parse(await ok(`node ${GUEST_CLI} inspect --bpf-pin-dir /sys/fs/bpf/none -o json`)) as InspectView;
    assert.equal(v.mode, 'ipvs');
    assert.deepEqual(v.notes, []);
    assert.deepEqual(v.services.map((s) => `${s.service}:${s.portName} ${s.type} ${s.protocol} ${s.frontends.map((f) => `${f.kind} ${f.address}:${f.port}`).join(',')} ${s.backends.length}`), [
      `default/web:tcp NodePort TCP ClusterIP ${CLUSTER_IP}:80,NodePort ${NODE_IP}:${NODE_PORT} 3`,
      `default/web:udp NodePort UDP ClusterIP ${CLUSTER_IP}:80,NodePort ${NODE_IP}:${NODE_PORT} 3`,
    ]);
    assert.ok(v.services[0]!.backends.every((b) => b.weight === 1 && b.counters !== undefined), JSON.stringify(v.services[0]!.backends));
  });

  test('the ipsets and kube-ipvs0 addresses in the guest are what render printed', async () => {
    const parts = render(['a', 'b', 'c']);
    const want = new Map<string, string[]>();
    for (const line of parts.get('IPv4: ipset restore')!.split('\n')) {
      const [verb, set, entry] = line.split(' ');
      if (verb === 'create') want.set(set!, []);
      if (verb === 'add') want.get(set!)!.push(entry!);
    }
    const saved = await ok('ipset save');
    const have = new Map<string, string[]>();
    for (const line of saved.split('\n')) {
      const [verb, set, entry] = line.split(' ');
      if (verb === 'create') have.set(set!, []);
      if (verb === 'add') have.get(set!)!.push(entry!);
    }
    for (const id of SET_IDS) {
      const name = setName(id, 'IPv4');
      assert.deepEqual([...(have.get(name) ?? ['<missing set>'])].sort(), [...want.get(name)!].sort(), name);
    }
    assert.deepEqual(have.get('KUBE-LOOP-BACK')!.sort(), ['10.244.1.2,tcp:8080,10.244.1.2', '10.244.1.2,udp:8080,10.244.1.2',
      '10.244.1.3,tcp:8080,10.244.1.3', '10.244.1.3,udp:8080,10.244.1.3', '10.244.1.4,tcp:8080,10.244.1.4', '10.244.1.4,udp:8080,10.244.1.4']);
    assert.equal(parts.get('kube-ipvs0 addresses'), `${CLUSTER_IP}\n`);
    const nat = await ok('iptables-save -t nat');
    for (const rule of parts.get('IPv4: iptables-restore --noflush')!.split('\n').filter((l) => l.startsWith('-A KUBE-'))) {
      // iptables-save prints the mark and comments in its own form; compare on the set matches.
      const set = /--match-set (\S+ \S+)/.exec(rule)?.[1];
      if (set && /^-A KUBE-(SERVICES|POSTROUTING|NODE-PORT|LOAD-BALANCER) /.test(rule) && !rule.includes('HEALTH-CHECK')) {
        assert.ok(nat.includes(`--match-set ${set}`), `${rule}\nnot in\n${nat}`);
      }
    }
  });

  test('ClusterIP from a pod: 30 TCP connections, exactly 10 per backend (rr)', async () => {
    const s = await client('client', 'tcp', `${CLUSTER_IP}:80`, 30);
    assert.equal(s.ok, 30, JSON.stringify(s));
    assert.deepEqual(s.byPod, { a: 10, b: 10, c: 10 });
    assert.deepEqual(peersByIP(s), { [CLIENT_POD]: 30 }, 'pod traffic keeps its source');
  });

  test('ClusterIP over UDP: 30 requests, exactly 10 per backend', async () => {
    const s = await client('client', 'udp', `${CLUSTER_IP}:80`, 30);
    assert.equal(s.ok, 30, JSON.stringify(s));
    assert.deepEqual(s.byPod, { a: 10, b: 10, c: 10 });
  });

  test('NodePort from the external namespace: exactly 10 per backend, the client masqueraded', async () => {
    const s = await client('ext', 'tcp', `${NODE_IP}:${NODE_PORT}`, 30);
    assert.equal(s.ok, 30, JSON.stringify(s));
    assert.deepEqual(s.byPod, { a: 10, b: 10, c: 10 });
    assert.equal(peersByIP(s)[EXT_IP], undefined, 'KUBE-NODE-PORT-TCP → KUBE-MARK-MASQ hides the client');
  });

  test('ClusterIP from outside the cluster CIDR (a route to the service range): masqueraded, balanced', async () => {
    const s = await client('ext', 'tcp', `${CLUSTER_IP}:80`, 30);
    assert.deepEqual(s.byPod, { a: 10, b: 10, c: 10 });
    assert.equal(peersByIP(s)[EXT_IP], undefined);
  });

  test('hairpin: a backend reaching its own service is masqueraded through KUBE-LOOP-BACK and gets its reply', async () => {
    const counter = async () => {
      const out = await ok('iptables -t nat -L KUBE-POSTROUTING -v -n -x');
      const line = out.split('\n').find((l) => l.includes('KUBE-LOOP-BACK'));
      assert.ok(line, out);
      return Number(line.trim().split(/\s+/)[0]);
    };
    const before = await counter();
    const s = await client('a', 'tcp', `${CLUSTER_IP}:80`, 9);
    assert.equal(s.ok, 9, JSON.stringify(s));
    assert.deepEqual(s.byPod, { a: 3, b: 3, c: 3 });
    const peers = peersByIP(s);
    // b and c see the pod itself (pod-to-pod traffic is not masqueraded); a sees its own
    // connections come from the node, not from itself — else it would have dropped them.
    assert.equal(peers[PODS.a], 6, JSON.stringify(peers));
    const others = Object.entries(peers).filter(([ip]) => ip !== PODS.a);
    assert.equal(others.length, 1, JSON.stringify(peers));
    assert.equal(others[0]![1], 3);
    assert.match(others[0]![0], /^(192\.168\.77\.1|169\.254\.)/, 'masqueraded to a node address');
    assert.equal(await counter() - before, 3, 'the 3 self-connections went through the KUBE-LOOP-BACK MASQUERADE rule');
  });

  test('scale 3 → 1: TCP real servers drain at weight 0, UDP ones go at once; all traffic to the one left', async () => {
    await switchTo(['a']);
    await eventually('b and c at weight 0', async () => (await tcpClusterIP()).realServers.filter((r) => r.weight === 1).length === 1);
    const kernel = await kernelIpvs();
    const tcp = kernel.find((vs) => vs.protocol === 'TCP' && vs.address === CLUSTER_IP)!;
    // b and c still have connections in TIME_WAIT (InActConn): kube-proxy keeps them at weight 0.
    assert.deepEqual(tcp.realServers.map((r) => [r.address, r.weight]), [[PODS.a, 1], [PODS.b, 0], [PODS.c, 0]]);
    const udp = kernel.find((vs) => vs.protocol === 'UDP' && vs.address === CLUSTER_IP)!;
    assert.deepEqual(udp.realServers.map((r) => [r.address, r.weight]), [[PODS.a, 1]]);
    const s = await client('client', 'tcp', `${CLUSTER_IP}:80`, 30);
    assert.deepEqual(s.byPod, { a: 30 });
    const np = await client('ext', 'tcp', `${NODE_IP}:${NODE_PORT}`, 10);
    assert.deepEqual(np.byPod, { a: 10 });
    assert.deepEqual((await ok('ipset list KUBE-LOOP-BACK')).split('\n').filter((l) => l.startsWith('10.')).sort(),
      ['10.244.1.2,tcp:8080,10.244.1.2', '10.244.1.2,udp:8080,10.244.1.2']);
  });

  test('scale 1 → 3: the draining real servers come back at weight 1, rr exact again, kernel == render', async () => {
    await switchTo(['a', 'b', 'c']);
    await eventually('b and c back at weight 1', async () => (await tcpClusterIP()).realServers.every((r) => r.weight === 1));
    assert.deepEqual(await kernelIpvs(), rendered(['a', 'b', 'c']));
    const s = await client('client', 'tcp', `${CLUSTER_IP}:80`, 30);
    assert.deepEqual(s.byPod, { a: 10, b: 10, c: 10 });
    const u = await client('client', 'udp', `${CLUSTER_IP}:80`, 30);
    assert.deepEqual(u.byPod, { a: 10, b: 10, c: 10 });
  });

  test('a flushed nat table is found (canary) and everything is written again', async () => {
    await ok('iptables -t nat -F KUBE-POSTROUTING && iptables -t mangle -F && iptables -t mangle -X KUBE-PROXY-CANARY');
    await eventually('the hairpin rule restored', async () => /--match-set KUBE-LOOP-BACK dst,dst,src -j MASQUERADE/.test(await ok('iptables-save -t nat')));
    // The canary is recreated by the same resync, possibly a moment after the nat rules.
    await eventually('the canary recreated', async () => /:KUBE-PROXY-CANARY/.test(await ok('iptables-save -t mangle')));
    const s = await client('a', 'tcp', `${CLUSTER_IP}:80`, 3);
    assert.equal(s.ok, 3);
  });

  test('healthCheckNodePort (same server as every mode): 200 with localEndpoints 2 from outside; the Service removed, the port closed', async () => {
    const get = () => ok(`ip netns exec ext node /opt/kx/http-get.js http://${NODE_IP}:${HC_PORT}/`).then((o) => o.trim());
    await ok('cp /opt/kx/objects-hc.json /tmp/objects.new && mv /tmp/objects.new /tmp/objects.json');
    await eventually('the healthCheckNodePort answering', async () => (await get()).startsWith('200 '));
    const body = JSON.parse((await get()).slice(4)) as { service: { namespace: string; name: string }; localEndpoints: number };
    assert.deepEqual([body.service, body.localEndpoints], [{ namespace: 'default', name: 'lb' }, 2]);
    await switchTo(['a', 'b', 'c']);
    await eventually('the healthCheckNodePort closed', async () => (await get()) === 'ECONNREFUSED');
  });

  test('kube-xdp cleanup removes virtual servers, kube-ipvs0, the sets and the chains', async () => {
    await ok("kill $(ps | grep 'main.js run' | grep -v grep | awk '{print $1}')");
    await ok(`node ${GUEST_CLI} cleanup --pod-interfaces 'none*' 2>&1`);
    assert.equal((await ok('ipvsadm -Sn')).trim(), '');
    assert.notEqual((await vm.run('ip link show kube-ipvs0')).code, 0);
    assert.equal((await ok('ipset list -n')).trim(), '');
    assert.doesNotMatch(await ok('iptables-save'), /KUBE-/);
  });
});
