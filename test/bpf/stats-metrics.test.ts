// The datapath's counters reach /metrics: packets run through the loaded programs (over the
// controller's own pinned maps) show up as kubexdp_datapath_packets_total{result} after the
// controller's next tick, counted once. Needs root; under CI=true a non-root run fails.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { Libkx } from '../../src/kernel/libkx.js';
import { Metrics } from '../../src/observe/metrics.js';
import { EbpfDataplane } from '../../src/dataplane/ebpf/dataplane.js';
import { endpoint, servicePort } from '../unit/helpers/service.js';
import { ensureBpffs, KX_OBJ, PROGRAM_NAME, removePinRoot, uniquePinRoot } from './fixture.js';
import { buildFrame, TCP } from './packet.js';

const isRoot = process.getuid?.() === 0;

test('kx_stats become kubexdp_datapath_packets_total{result}; the conntrack GC runs on the first tick', { skip: !isRoot && process.env.CI !== 'true' ? 'needs root' : false }, async () => {
  assert.ok(isRoot, 'CI=true requires root');
  ensureBpffs();
  const lib = new Libkx();
  const metrics = new Metrics();
  const pinDir = uniquePinRoot('kx-stats-metrics');
  const dp = new EbpfDataplane(lib, pino({ level: 'silent' }), metrics, {
    objectPath: KX_OBJ, pinDir, externalInterfaces: [], podInterfaces: [], xdpMode: 'auto', tcMode: 'auto', nodeAddresses: ['192.168.77.1'],
  });
  let obj: number | null = null;
  try {
    dp.start();
    const eps = [endpoint('10.244.1.5', 8080)];
    dp.sync({ services: [servicePort('web', { endpoints: eps, clusterEndpoints: eps })] });
    obj = lib.objOpenLoad(KX_OBJ, pinDir);
    const tc = { fd: lib.objProgFd(obj, PROGRAM_NAME.tc), label: 'tc' };
    for (let i = 0; i < 5; i++) lib.progTestRun(tc, buildFrame({ src: `10.244.2.${i + 1}`, dst: '10.96.0.10', sport: 40000, dport: 80, proto: TCP }));
    const bad = buildFrame({ src: '10.244.2.9', dst: '10.96.0.10', sport: 40000, dport: 80, proto: TCP });
    bad[24]! ^= 0xff; // IPv4 header checksum
    lib.progTestRun(tc, bad);
    dp.tick();
    dp.tick(); // a second tick adds nothing
    const get = (result: string) => metrics.get('kubexdp_datapath_packets_total', { result });
    assert.deepEqual({ new_flow: get('new_flow'), malformed: get('malformed'), ct_lost: get('ct_lost') }, { new_flow: 5, malformed: 1, ct_lost: 0 });
    assert.match(await metrics.render(), /kubexdp_datapath_packets_total\{result="new_flow"\} 5/);
    assert.ok(metrics.get('kubexdp_conntrack_gc_duration_seconds') > 0, 'the first tick ran the conntrack GC');
  } finally {
    if (obj !== null) lib.objClose(obj);
    dp.close();
    removePinRoot(pinDir);
  }
});
