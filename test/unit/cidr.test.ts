import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cidrContains, cidrString, parseCidr } from '../../src/model/cidr.js';
import { formatGoFixed, probability } from '../../src/dataplane/iptables/go-format.js';

describe('CIDRs', () => {
  it('contains addresses of its own family only', () => {
    const c = parseCidr('10.0.0.0/8')!;
    assert.equal(cidrContains(c, '10.255.1.2'), true);
    assert.equal(cidrContains(c, '11.0.0.1'), false);
    assert.equal(cidrContains(c, '::ffff:10.0.0.1'), false);
    const v6 = parseCidr('fd00:10::/64')!;
    assert.equal(cidrContains(v6, 'fd00:10::1'), true);
    assert.equal(cidrContains(v6, 'fd00:10:0:1::1'), false);
    assert.equal(cidrContains(parseCidr('0.0.0.0/0')!, '203.0.113.9'), true);
  });

  it('prints the network like Go net.IPNet.String()', () => {
    assert.equal(cidrString(parseCidr('192.168.7.9/16')!), '192.168.0.0/16');
    assert.equal(cidrString(parseCidr('2001:DB8:0:0:1::5/64')!), '2001:db8::/64');
    assert.equal(cidrString(parseCidr('2001:db8:0:1:0:0:0:1/128')!), '2001:db8:0:1::1/128');
    assert.equal(cidrString(parseCidr('::ffff:1.2.3.4/128')!), '::ffff:102:304/128');
  });

  it('rejects what is not a CIDR', () => {
    for (const bad of ['10.0.0.0', '10.0.0.0/33', 'fd00::/129', 'x/8', '10.0.0.0/-1']) assert.equal(parseCidr(bad), null, bad);
  });
});

describe("Go's %0.10f", () => {
  it('formats 1/n like kube-proxy', () => {
    assert.equal(probability(2), '0.5000000000');
    assert.equal(probability(3), '0.3333333333');
    assert.equal(probability(6), '0.1666666667');
    assert.equal(probability(1000), '0.0010000000');
  });

  it('rounds exact ties half to even, where toFixed rounds up', () => {
    // 1/2048 = 0.00048828125 exactly: the 11th digit is an exact 5.
    assert.equal(probability(2048), '0.0004882812');
    assert.equal((1 / 2048).toFixed(10), '0.0004882813');
    assert.equal(formatGoFixed(0.125, 2), '0.12');
    assert.equal(formatGoFixed(0.375, 2), '0.38');
    // Not a tie in binary: 0.15 is slightly below, so it rounds down in Go as in JS.
    assert.equal(formatGoFixed(0.15, 1), '0.1');
  });
});
