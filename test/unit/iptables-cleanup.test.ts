import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cleanupRestoreText } from '../../src/dataplane/iptables/cleanup.js';
import { JUMP_RULES } from '../../src/dataplane/iptables/jumps.js';

describe('iptables cleanup', () => {
  it('flushes and deletes our chains only, service chains only in nat', () => {
    const nat = new Set(['PREROUTING', 'KUBE-SERVICES', 'KUBE-MARK-MASQ', 'KUBE-SVC-AAAA', 'KUBE-SEP-BBBB', 'KUBE-FW-CCCC', 'CNI-HOSTPORT-DNAT', 'KUBE-CUSTOM']);
    assert.equal(cleanupRestoreText('nat', nat), [
      '*nat', ':KUBE-FW-CCCC - [0:0]', ':KUBE-MARK-MASQ - [0:0]', ':KUBE-SEP-BBBB - [0:0]', ':KUBE-SERVICES - [0:0]', ':KUBE-SVC-AAAA - [0:0]',
      '-X KUBE-FW-CCCC', '-X KUBE-MARK-MASQ', '-X KUBE-SEP-BBBB', '-X KUBE-SERVICES', '-X KUBE-SVC-AAAA', 'COMMIT', '',
    ].join('\n'));
    assert.equal(cleanupRestoreText('filter', new Set(['INPUT', 'KUBE-SVC-AAAA'])), null);
  });

  it('jump rules come from built-in chains, with kube-proxy comments', () => {
    const builtin = new Set(['INPUT', 'FORWARD', 'OUTPUT', 'PREROUTING', 'POSTROUTING']);
    for (const j of JUMP_RULES) assert.ok(builtin.has(j.from), j.from);
    const nat = JUMP_RULES.filter((j) => j.table === 'nat').map((j) => `${j.from} ${j.args.join(' ')}`);
    assert.deepEqual(nat, [
      'OUTPUT -m comment --comment kubernetes service portals -j KUBE-SERVICES',
      'PREROUTING -m comment --comment kubernetes service portals -j KUBE-SERVICES',
      'POSTROUTING -m comment --comment kubernetes postrouting rules -j KUBE-POSTROUTING',
    ]);
  });
});
