// `kube-xdp probe`'s answer to "what would --mode auto run here, and why".
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatAutoChoice } from '../../src/cli/probe.js';

test('the mode auto picks, and why each earlier mode was passed over', () => {
  assert.equal(formatAutoChoice({ mode: 'iptables', checks: [
    { mode: 'ebpf', unusable: 'no --external-interfaces given' },
    { mode: 'ipvs', unusable: 'missing kernel module: ip_vs: not built in' },
    { mode: 'iptables', unusable: null },
  ] }), [
    '--mode auto would run: iptables',
    '  ebpf      passed over: no --external-interfaces given',
    '  ipvs      passed over: missing kernel module: ip_vs: not built in',
    '  iptables  usable',
  ].join('\n'));
  assert.equal(formatAutoChoice({ mode: 'ebpf', checks: [{ mode: 'ebpf', unusable: null }] }), '--mode auto would run: ebpf\n  ebpf      usable');
  assert.match(formatAutoChoice({ mode: null, checks: [] }), /^--mode auto would run: nothing/);
});
