// The iptables mode on iptables-nft at a scale where its restores take minutes says so at its
// first sync, naming the way out; on iptables-legacy, or below the threshold, it says nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IPTABLES_NFT_WARN_PORTS, iptablesNftScaleWarning } from '../../src/dataplane/iptables/dataplane.js';

test('iptables-nft with thousands of Service ports: a warning with the measured reason and the way out', () => {
  const w = iptablesNftScaleWarning('nft', 10_000);
  assert.ok(w);
  assert.match(w, /10000 Service ports/);
  assert.match(w, /33\.6 min on iptables-nft/);
  assert.match(w, /--mode nftables/);
  assert.match(w, /--iptables-backend legacy/);
  assert.equal(iptablesNftScaleWarning('nft', IPTABLES_NFT_WARN_PORTS), null, 'at the threshold: quiet');
  assert.equal(iptablesNftScaleWarning('legacy', 100_000), null, 'legacy is fast enough');
});
