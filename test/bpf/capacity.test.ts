// The eBPF dataplane over real pinned maps, told its maps are small: a state that does not fit
// programs the Services that do, logs one error naming the map, its limit and the demand,
// and sets the shortfall gauges; once the state fits again, it says so and the gauges drop.
// Needs root; under CI=true a non-root run fails.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { Libkx } from '../../src/kernel/libkx.js';
import { Metrics } from '../../src/observe/metrics.js';
import { EbpfDataplane } from '../../src/dataplane/ebpf/dataplane.js';
import type { ServicePort } from '../../src/model/types.js';
import { endpoint, servicePort } from '../unit/helpers/service.js';
import { ensureBpffs, KX_OBJ, removePinRoot, uniquePinRoot } from './fixture.js';

const isRoot = process.getuid?.() === 0;
const svc = (i: number, n: number): ServicePort => {
  const eps = Array.from({ length: n }, (_, k) => endpoint(`10.244.${i}.${k + 1}`, 8080));
  return servicePort(`s${i}`, { id: `default/s${i}:http`, clusterIPs: [`10.96.0.${i}`], endpoints: eps, clusterEndpoints: eps });
};

test('over capacity: the Services that fit are programmed, the full map is named once, gauges show the shortfall', { skip: !isRoot && process.env.CI !== 'true' ? 'needs root' : false }, () => {
  assert.ok(isRoot, 'CI=true requires root');
  ensureBpffs();
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: 'info' }, new Writable({ write(chunk, _e, cb) { lines.push(JSON.parse(String(chunk))); cb(); } }));
  const metrics = new Metrics();
  const pinDir = uniquePinRoot('kx-capacity');
  const dp = new EbpfDataplane(new Libkx(), log, metrics, {
    objectPath: KX_OBJ, pinDir, externalInterfaces: [], podInterfaces: [], xdpMode: 'auto', tcMode: 'auto', nodeAddresses: ['192.168.77.1'],
    limits: { frontends: 100, slots: 10, backends: 100, revnat: 100, srcRanges: 100, frontends6: 100, backends6: 100, revnat6: 100, srcRanges6: 100 },
  });
  try {
    dp.start();
    const four = [svc(1, 3), svc(2, 3), svc(3, 3), svc(4, 3)];
    const r = dp.sync({ services: four });
    dp.sync({ services: four }); // the same shortfall is not logged again
    assert.equal(r.detail?.servicesLeftOut, 1);
    assert.deepEqual(dp.describe().frontends.filter((f) => f.scope === 'internal').map((f) => f.address).sort(), ['10.96.0.1', '10.96.0.2', '10.96.0.3']);
    const full = lines.filter((l) => l['map'] === 'kx_slots');
    assert.equal(full.length, 1, JSON.stringify(full));
    assert.match(String(full[0]!['msg']), /^kx_slots is full: it holds 10 entries, this state needs 12; 1 Service ports left out \(default\/s4:http\)/);
    assert.equal(metrics.get('kubexdp_map_capacity_shortfall', { map: 'kx_slots' }), 2);
    assert.equal(metrics.get('kubexdp_services_not_programmed'), 1);

    dp.sync({ services: [svc(1, 3), svc(2, 3), svc(4, 3)] });
    assert.deepEqual(dp.describe().frontends.filter((f) => f.scope === 'internal').map((f) => f.address).sort(), ['10.96.0.1', '10.96.0.2', '10.96.0.4']);
    assert.ok(lines.some((l) => l['msg'] === 'every Service fits the maps again'));
    assert.equal(metrics.get('kubexdp_map_capacity_shortfall', { map: 'kx_slots' }), 0);
  } finally {
    dp.close();
    removePinRoot(pinDir);
  }
});
