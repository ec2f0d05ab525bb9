// The probe's conclusions (pure): which missing features stop the eBPF mode, and how they are named.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FEATURES, formatReport, report, type FeatureName, type FeatureResult } from '../../src/kernel/probe.js';

const all = (over: Partial<Record<FeatureName, FeatureResult>> = {}): Record<FeatureName, FeatureResult> => ({
  ...Object.fromEntries(FEATURES.map((f) => [f.name, { ok: true, detail: 'ok' }])) as Record<FeatureName, FeatureResult>,
  ...over,
});

test('every feature there: TCX, eBPF mode usable', () => {
  const r = report('6.18.0', all());
  assert.equal(r.tc, 'tcx');
  assert.equal(r.ebpfUnusable, null);
  assert.match(formatReport(r), /eBPF mode: can run$/);
});

test('no TCX (6.1): clsact, still usable; the text says what replaces it', () => {
  const r = report('6.1.0-57-cloud-amd64', all({ tcx: { ok: false, detail: 'EINVAL' } }));
  assert.equal(r.tc, 'clsact');
  assert.equal(r.ebpfUnusable, null);
  assert.match(formatReport(r), /^no  tcx .* — EINVAL  \(without it: tc programs go on a clsact qdisc filter\)$/m);
});

test('a missing required feature makes the mode unusable, named with its kernel and the probe\'s answer', () => {
  const r = report('5.10.0', all({ forEachMapElem: { ok: false, detail: 'not supported' }, btf: { ok: false, detail: 'missing' } }));
  assert.equal(r.ebpfUnusable,
    'missing kernel BTF (/sys/kernel/btf/vmlinux), kernel ≥ 5.4 (probe: missing); the bpf_for_each_map_elem helper (conntrack GC), kernel ≥ 5.13 (probe: not supported)');
  assert.match(formatReport(r), /eBPF mode: cannot run: missing kernel BTF/);
});

test('socket hooks are optional: their absence is reported, not fatal', () => {
  const r = report('5.4.0', all({ recvmsg4: { ok: false, detail: 'EINVAL' }, getpeername4: { ok: false, detail: 'EINVAL' } }));
  assert.equal(r.ebpfUnusable, null);
  assert.equal(r.features.recvmsg4.ok, false);
});
