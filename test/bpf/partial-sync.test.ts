// The eBPF dataplane over real pinned maps, fed by the ChangeTracker: after the first (full)
// sync, a change to one Service is a partial sync that writes only its entries, a no-op change
// writes nothing, and the periodic full sync that re-reads the maps afterwards finds nothing to
// write; what the maps serve equals a fresh dataplane's given the same objects at once.
// Needs root; under CI=true a non-root run fails.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { Libkx } from '../../src/kernel/libkx.js';
import { Metrics } from '../../src/observe/metrics.js';
import { EbpfDataplane } from '../../src/dataplane/ebpf/dataplane.js';
import { objects, type Json } from '../unit/helpers/kube-objects.js';
import { ready, service, slice, tcp } from '../unit/helpers/kube-proxy-fake.js';
import { ensureBpffs, KX_OBJ, removePinRoot, uniquePinRoot } from './fixture.js';

const isRoot = process.getuid?.() === 0;
const NODE = '192.168.77.1';
const SERVICES = 30;

const svcObj = (i: number): Json => service('ns', `s${i}`, i % 3 === 0
  ? { type: 'NodePort', clusterIP: `10.96.1.${i}`, ports: [tcp('p', 80, { nodePort: 30000 + i, targetPort: 8080 })] }
  : { clusterIP: `10.96.1.${i}`, ports: [tcp('p', 80, { targetPort: 8080 })] });
/** Endpoints from a pool of 12 pods, so Services share backends. */
const sliceObj = (i: number, pods: number[]): Json => slice('ns', `s${i}`, pods.map((p) => ready(`10.244.1.${p % 12 + 1}`, p % 2 ? 'node2' : 'test-hostname')), [tcp('p', 8080)]);

/** What the maps serve, ids left out. */
const served = (dp: EbpfDataplane) => dp.describe().frontends
  .map((f) => `${f.protocol} ${f.address}:${f.port} ${f.scope} [${f.flags}] -> ${f.backends.map((b) => `${b.address}:${b.port}[${b.flags}]`).join(',')} revnat ${f.revNat}`).sort();

test('a change to one Service is a partial sync of its entries; a no-op writes nothing; the full sync after them writes nothing', { skip: !isRoot && process.env.CI !== 'true' ? 'needs root' : false }, () => {
  assert.ok(isRoot, 'CI=true requires root');
  ensureBpffs();
  const dataplane = (pinDir: string) => new EbpfDataplane(new Libkx(), pino({ level: 'silent' }), new Metrics(), {
    objectPath: KX_OBJ, pinDir, externalInterfaces: [], podInterfaces: [], xdpMode: 'auto', tcMode: 'auto', nodeAddresses: [NODE],
  });
  const pins = [uniquePinRoot('kx-partial'), uniquePinRoot('kx-partial-fresh')];
  const [dp, fresh] = pins.map(dataplane) as [EbpfDataplane, EbpfDataplane];
  try {
    dp.start();
    fresh.start();
    const all: Json[] = [];
    for (let i = 1; i <= SERVICES; i++) all.push(svcObj(i), sliceObj(i, [i, i + 1, i + 2]));
    const o = objects(...all);
    const first = dp.sync(o.state());
    assert.equal(first.detail?.plan, 'full');

    // one endpoint more for s5 (a ClusterIP): a slot, its two frontends' counts (no socket hooks here: no host frontend)
    o.apply(sliceObj(5, [5, 6, 7, 8]));
    const one = dp.sync(o.state());
    assert.deepEqual([one.detail?.plan, one.detail?.changedServices], ['partial', 1]);
    assert.deepEqual([one.detail?.updates, one.detail?.deletes], [{ kx_slots: 1, kx_frontends: 2 }, {}], 'pod 9 backs other Services already: no backend entry written');

    // s6 (a NodePort) removed, s31 added with a new pod
    o.remove(svcObj(6), sliceObj(6, [6, 7, 8]));
    o.apply(svcObj(31), sliceObj(31, [40]));
    const two = dp.sync(o.state());
    assert.deepEqual([two.detail?.plan, two.detail?.changedServices], ['partial', 2]);
    assert.equal((two.detail?.deletes as Record<string, number>).kx_frontends, 4, 's6: its ClusterIP internal and external, its NodePort external and internal');

    // the same object again: the tracker drops the change, nothing is written
    o.apply(sliceObj(7, [7, 8, 9]));
    const none = dp.sync(o.state());
    assert.deepEqual([none.detail?.plan, none.writes], ['partial', 0]);

    // the periodic full sync reads the maps back: nothing to do
    const full = dp.sync(o.state(), { full: true });
    assert.deepEqual([full.detail?.plan, full.writes], ['full', 0]);
    fresh.sync(o.state());
    assert.deepEqual(served(dp), served(fresh));
  } finally {
    dp.close();
    fresh.close();
    pins.forEach(removePinRoot);
  }
});
