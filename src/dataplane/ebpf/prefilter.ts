// The datapath's prefilter (kx_maps.h): a Bloom filter of frontend addresses and a bitmap of
// backend ports. A packet that matches neither never touches conntrack. Bits are only set:
// a flow on a removed frontend or endpoint must still pass. Pure, but for writeTo/readFrom.
import { addressBytes } from '../../model/cidr.js';
import { decodeAll, encodeAll, u32Codec, u64Codec } from './codec.js';
import type { MapIO } from './apply.js';
import { MAPS, SCOPE_HOST } from './maps.js';
import type { DesiredFrontend } from './compile.js';

/** Words of kx_vip_bloom and kx_port_bits (KX_VIP_BLOOM_WORDS, KX_PORT_WORDS). */
export const PREFILTER_WORDS = { vipBloom: 65536, portBits: 1024 } as const;
const HASHES = [0x9e3779b1, 0x85ebca6b]; // KX_VIP_HASH1/2

/** The 32 bits the datapath hashes: an IPv4 address as a number; an IPv6 one folded, the XOR
 * of its four 32-bit words (kx_in6_fold in kx_addr.h). */
function addressHashInput(ip: string): number {
  const b = addressBytes(ip);
  if (!b) throw new Error(`not an IP address: ${JSON.stringify(ip)}`);
  let x = 0;
  for (let i = 0; i < b.length; i += 4) x ^= b.readUInt32BE(i);
  return x >>> 0;
}
/** The Bloom bits of an address: the top 22 bits of two multiplicative hashes. */
export const vipBits = (ip: string): number[] => HASHES.map((h) => Math.imul(addressHashInput(ip), h) >>> 10);

export class Prefilter {
  private readonly words = { vipBloom: new BigUint64Array(PREFILTER_WORDS.vipBloom), portBits: new BigUint64Array(PREFILTER_WORDS.portBits) };
  private readonly dirty = { vipBloom: new Set<number>(), portBits: new Set<number>() };

  private set(map: 'vipBloom' | 'portBits', bit: number): void {
    const w = bit >>> 6, mask = 1n << BigInt(bit & 63);
    const words = this.words[map];
    if (words[w]! & mask) return;
    words[w] = words[w]! | mask;
    this.dirty[map].add(w);
  }

  addFrontend(addr: string): void {
    for (const bit of vipBits(addr)) this.set('vipBloom', bit);
  }
  addBackendPort(port: number): void {
    this.set('portBits', port);
  }
  /** Every frontend address and backend port of desired frontends (a state's, or those a
   *  partial plan writes). */
  addDesired(frontends: Iterable<DesiredFrontend>): void {
    for (const fe of frontends) {
      if (fe.key.scope === SCOPE_HOST) continue; // no packet is ever addressed to it here
      this.addFrontend(fe.key.addr);
      for (const b of fe.backends) this.addBackendPort(b.port);
    }
  }
  has(map: 'vipBloom' | 'portBits', bit: number): boolean {
    return (this.words[map][bit >>> 6]! & (1n << BigInt(bit & 63))) !== 0n;
  }

  /** What the maps hold already (bits set by an earlier run); false when no bit is set. */
  readFrom(io: MapIO): boolean {
    let any = false;
    for (const map of ['vipBloom', 'portBits'] as const) {
      const d = io.dump(MAPS[map].name, 4, 8, PREFILTER_WORDS[map]);
      const keys = decodeAll(u32Codec, d.keys, d.count), values = decodeAll(u64Codec, d.values, d.count);
      keys.forEach((k, i) => {
        this.words[map][k] = this.words[map][k]! | values[i]!;
        if (values[i]) any = true;
      });
    }
    return any;
  }

  /** Writes the words that gained bits since the last write; returns how many. */
  writeTo(io: MapIO): number {
    let n = 0;
    for (const map of ['vipBloom', 'portBits'] as const) {
      const ws = [...this.dirty[map]];
      if (ws.length === 0) continue;
      io.updateBatch(MAPS[map].name, encodeAll(u32Codec, ws), encodeAll(u64Codec, ws.map((w) => this.words[map][w]!)), ws.length);
      this.dirty[map].clear();
      n += ws.length;
    }
    return n;
  }
}
