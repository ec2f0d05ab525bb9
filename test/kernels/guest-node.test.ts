// Node and kube-xdp inside the qemu guest (vm.ts withKubeXdp): the controller's CLI loads and
// renders, and the lab echo server and client talk across a veth between two network
// namespaces. One boot for the suite; the groundwork for an end-to-end IPVS test.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { LabPod } from '../lab/lab.js';
import { serviceObjects } from '../lab/manifests.js';
import { KUBE_XDP_GUEST_DIR, kubeXdpBundle } from './guest-kube-xdp.js';
import { KernelVM, harnessUnavailable, type RunResult } from './vm.js';

// Under CI a missing prerequisite must fail; elsewhere the suite is skipped with the reason.
const why = await harnessUnavailable();
const skip = why !== null && process.env.CI !== 'true' ? why : false;

test('the kernel harness can run here (root, qemu, busybox-static, ipvsadm/ipset/iptables, cloud kernel)', { skip }, () => {
  assert.equal(why, null);
});

const MAIN = `${KUBE_XDP_GUEST_DIR}/dist/src/cli/main.js`;
const OBJECTS = '/opt/kx/objs.json';
const pod = (name: string, ip: string) => ({ name, ip, node: 'kx-guest' }) as unknown as LabPod; // serviceObjects reads these three
const objects = {
  apiVersion: 'v1', kind: 'List',
  items: serviceObjects({ name: 'web', clusterIP: '10.96.0.10', port: 80, targetPort: 8080, protocols: ['TCP'], endpoints: [pod('a', '10.1.0.1')] }),
};

describe('Node and kube-xdp in a qemu guest', { skip: skip || why !== null }, () => {
  let vm: KernelVM;
  let bootTotalMs = 0;
  let bundleBytes = 0;
  let bundleFiles = 0;
  const notes: string[] = [];
  const run = (cmd: string, timeoutMs?: number): Promise<RunResult> => vm.run(cmd, timeoutMs);
  const ok = (cmd: string, timeoutMs?: number): Promise<string> => vm.check(cmd, timeoutMs);

  before(async () => {
    const t0 = Date.now();
    const bundle = await kubeXdpBundle();
    bundleBytes = bundle.bytes;
    bundleFiles = Object.keys(bundle.files).length;
    vm = await KernelVM.boot({
      withKubeXdp: true,
      extraFiles: { [OBJECTS]: JSON.stringify(objects, null, 2) + '\n' },
      timeoutMs: 180_000,
    });
    await vm.run('true');
    bootTotalMs = Date.now() - t0;
    notes.push(`MemAvailable after boot: ${(await vm.run("awk '/MemTotal|MemAvailable/ {printf \"%s %d MB \", $1, $2/1024}' /proc/meminfo")).stdout}`);
  });

  after(async () => {
    if (!vm) return;
    await vm.close();
    const s = vm.stats;
    const lat = vm.latencies.map(([c, ms]) => `${ms} ms  ${c}`).join('\n  ');
    console.error([
      `kernel ${vm.kernel.version} (${s.kernelCached ? 'cached' : `downloaded ${s.kernelDownloadBytes} B in ${s.kernelDownloadMs} ms`})`,
      `kube-xdp bundle ${bundleFiles} files, ${bundleBytes} B unpacked`,
      `initramfs ${s.initramfsBytes} B (base ${s.initramfsCached ? 'cached' : 'built'}, ${s.initramfsBuildMs} ms), ${s.modules.length} modules`,
      `qemu spawn -> guest ready ${s.bootMs} ms; boot() + first command ${bootTotalMs} ms`,
      ...notes,
      `per command:\n  ${lat}`,
    ].join('\n'));
  });

  test('node --version in the guest is the host\'s', async () => {
    await ok('true'); // channel round trip, the baseline of the latencies below
    assert.equal((await ok('node --version')).trim(), process.version);
    await ok('node -e 0');
  });

  test('the kube-xdp CLI loads without @kubernetes/client-node (runtime node_modules, ffi addon) and prints usage', async () => {
    const r = await run(`node ${MAIN} --help`);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^usage: kube-xdp \[kube-proxy's flags\] \| kube-xdp <command>/);
    assert.match(r.stdout, /render\s+--mode iptables/);
  });

  test('render --mode iptables turns a Service + EndpointSlice into restore input', async () => {
    const r = await run(`node ${MAIN} render --mode iptables --source ${OBJECTS} --node-ip 10.0.0.1`);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^\*nat$/m);
    assert.match(r.stdout, /^:KUBE-SERVICES /m);
    assert.match(r.stdout, /-d 10\.96\.0\.10(\/32)? .*--dport 80 /);
    assert.match(r.stdout, /--to-destination 10\.1\.0\.1:8080/);
    assert.match(r.stdout, /^COMMIT$/m);
  });

  test('the tools kube-xdp runs are there: conntrack, ipvsadm, ipset, iptables nft/legacy, modprobe', async () => {
    const out = await ok('conntrack --version && ipvsadm --version && ipset --version && iptables-nft --version && iptables-legacy --version && modprobe -- ip_vs');
    assert.match(out, /conntrack v1\./);
    assert.match(out, /ipvsadm v1\./);
    assert.match(out, /ipset v\d/);
    assert.match(out, /\(nf_tables\)/);
    assert.match(out, /\(legacy\)/);
  });
});
