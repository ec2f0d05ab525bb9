// IPVS, ipset and iptables in Debian's 6.1 cloud kernel under qemu (the host kernel has no
// IP_VS): one boot, many commands through vm.ts's command channel.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { KernelVM, harnessUnavailable, type RunResult } from './vm.js';

// Under CI a missing prerequisite must fail; elsewhere the suite is skipped with the reason.
const why = await harnessUnavailable();
const skip = why !== null && process.env.CI !== 'true' ? why : false;

test('the kernel harness can run here (root, qemu, busybox-static, ipvsadm/ipset/iptables, cloud kernel)', { skip }, () => {
  assert.equal(why, null);
});

describe('IPVS smoke in a qemu guest', { skip: skip || why !== null }, () => {
  let vm: KernelVM;
  let bootTotalMs = 0;
  const run = (cmd: string, timeoutMs?: number): Promise<RunResult> => vm.run(cmd, timeoutMs);
  const ok = (cmd: string, timeoutMs?: number): Promise<string> => vm.check(cmd, timeoutMs);

  before(async () => {
    const t0 = Date.now();
    vm = await KernelVM.boot({
      extraFiles: { '/opt/kx/hello.sh': '#!/bin/sh\necho "hello $1"\n' },
      timeoutMs: 180_000,
    });
    await vm.run('true');
    bootTotalMs = Date.now() - t0;
  });

  after(async () => {
    if (!vm) return;
    await vm.close();
    const s = vm.stats;
    const lat = vm.latencies.map(([c, ms]) => `${ms} ms  ${c}`).join('\n  ');
    const report = [
      `kernel ${vm.kernel.version} (${s.kernelCached ? 'cached' : `downloaded ${s.kernelDownloadBytes} B in ${s.kernelDownloadMs} ms`})`,
      `initramfs ${s.initramfsBytes} B (${s.initramfsCached ? 'cached' : 'built'}, ${s.initramfsBuildMs} ms), ${s.modules.length} modules`,
      `qemu spawn -> guest ready ${s.bootMs} ms; boot() + first command ${bootTotalMs} ms`,
      `per command:\n  ${lat}`,
    ].join('\n');
    console.error(report); // node --test shows a test file's stderr lines as `# …` diagnostics
  });

  test('uname -r is the cloud kernel', async () => {
    assert.equal((await ok('uname -r')).trim(), vm.kernel.version);
    assert.match(vm.kernel.version, /^6\.1\.0-\d+-cloud-amd64$/);
  });

  test('IPVS, ipset, netfilter and veth modules are loaded', async () => {
    assert.deepEqual(vm.stats.missingModules, []);
    const mods = new Set((await ok('cat /proc/modules')).split('\n').map((l) => l.split(' ')[0]));
    for (const m of ['ip_vs', 'ip_vs_rr', 'ip_vs_wrr', 'ip_vs_sh', 'nf_conntrack', 'ip_set', 'xt_set',
      'ip_set_hash_ipportip', 'nf_tables', 'nft_compat', 'iptable_nat', 'veth', 'dummy']) {
      assert.ok(mods.has(m), `${m} not in /proc/modules`);
    }
    assert.equal((await ok('grep -c failed /run/kx-modules.log || true')).trim(), '0');
  });

  test('commands get stdout, stderr and the exit code apart; extra files are there', async () => {
    assert.deepEqual(await run('echo out; echo err >&2; exit 7'), { code: 7, stdout: 'out\n', stderr: 'err\n' });
    assert.equal(await ok('/opt/kx/hello.sh world'), 'hello world\n');
    const big = await ok('seq 1 20000');
    assert.equal(big.split('\n').length, 20001);
  });

  test('ipvsadm: virtual service with a masqueraded real server', async () => {
    const out = await ok('ipvsadm -A -t 10.96.0.1:443 -s rr && ipvsadm -a -t 10.96.0.1:443 -r 10.0.0.1:6443 -m && ipvsadm -Ln');
    assert.match(out, /TCP {2}10\.96\.0\.1:443 rr/);
    assert.match(out, /-> 10\.0\.0\.1:6443\s+Masq/);
  });

  test('ipset: the set types ipvs-mode kube-proxy creates', async () => {
    await ok('ipset create KUBE-LOOP-BACK hash:ip,port,ip && ipset add KUBE-LOOP-BACK 10.0.0.1,tcp:6443,10.0.0.1');
    await ok('ipset create KUBE-CLUSTER-IP hash:ip,port && ipset create KUBE-NODE-PORT-TCP bitmap:port range 0-65535');
    assert.match(await ok('ipset list KUBE-LOOP-BACK'), /10\.0\.0\.1,tcp:6443,10\.0\.0\.1/);
  });

  test('iptables (nft and legacy): ipvs-mode style rules with set, comment, MASQUERADE', async () => {
    for (const ipt of ['iptables', 'iptables-legacy']) {
      await ok(`${ipt} -t nat -N KUBE-SERVICES && ${ipt} -t nat -N KUBE-POSTROUTING
${ipt} -t nat -A KUBE-SERVICES -m comment --comment "Kubernetes service cluster ip + port" -m set --match-set KUBE-CLUSTER-IP dst,dst -j ACCEPT
${ipt} -t nat -A KUBE-POSTROUTING -m set --match-set KUBE-LOOP-BACK dst,dst,src -j MASQUERADE
${ipt} -t nat -A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
${ipt} -t filter -A INPUT -m conntrack --ctstate INVALID -j DROP
${ipt} -t nat -A PREROUTING -m addrtype --dst-type LOCAL -j KUBE-SERVICES`);
      const save = await ok(`${ipt}-save -t nat`);
      assert.match(save, /--match-set KUBE-LOOP-BACK dst,dst,src -j MASQUERADE/, ipt);
    }
  });

  test('veth between two network namespaces: ping and nc across', async () => {
    await ok(`set -e
ip netns add a
ip netns add b
ip link add va type veth peer name vb
ip link set va netns a
ip link set vb netns b
ip -n a addr add 10.1.0.1/24 dev va
ip -n b addr add 10.1.0.2/24 dev vb
ip -n a link set lo up; ip -n a link set va up
ip -n b link set lo up; ip -n b link set vb up`);
    assert.match(await ok('ip netns exec a ping -c 1 -W 5 10.1.0.2'), /1 packets received/);
    const got = await ok(`ip netns exec b nc -l -p 8080 > /tmp/got &
for i in $(seq 50); do ip netns exec b netstat -ltn | grep -q ':8080 ' && break; sleep 0.1; done
echo across-the-veth | ip netns exec a nc -w 2 10.1.0.2 8080
for i in $(seq 50); do [ -s /tmp/got ] && break; sleep 0.1; done
cat /tmp/got`);
    assert.equal(got, 'across-the-veth\n');
  });
});
