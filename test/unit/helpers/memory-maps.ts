// An in-memory MapIO for planner tests: byte keys -> byte values, per map name. The kernel
// path is covered by the BPF and lab tests; this checks what the planner asks for.
import type { MapIO } from '../../../src/dataplane/ebpf/apply.js';

export class MemoryMaps implements MapIO {
  readonly maps = new Map<string, Map<string, Buffer>>();
  readonly calls: string[] = [];

  private map(name: string): Map<string, Buffer> {
    let m = this.maps.get(name);
    if (!m) this.maps.set(name, (m = new Map()));
    return m;
  }
  updateBatch(map: string, keys: Buffer, values: Buffer, count: number): void {
    this.calls.push(`update ${map} ${count}`);
    const ks = keys.length / count, vs = values.length / count;
    for (let i = 0; i < count; i++) {
      this.map(map).set(keys.subarray(i * ks, (i + 1) * ks).toString('hex'), Buffer.from(values.subarray(i * vs, (i + 1) * vs)));
    }
  }
  deleteBatch(map: string, keys: Buffer, count: number): void {
    this.calls.push(`delete ${map} ${count}`);
    const ks = keys.length / count;
    for (let i = 0; i < count; i++) this.map(map).delete(keys.subarray(i * ks, (i + 1) * ks).toString('hex'));
  }
  dump(map: string, keySize: number, valueSize: number): { keys: Buffer; values: Buffer; count: number } {
    const entries = [...this.map(map)];
    return {
      keys: Buffer.concat(entries.map(([k]) => Buffer.from(k, 'hex')), entries.length * keySize),
      values: Buffer.concat(entries.map(([, v]) => v), entries.length * valueSize),
      count: entries.length,
    };
  }
}
