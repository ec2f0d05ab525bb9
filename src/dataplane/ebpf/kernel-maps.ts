// MapIO over libkx: the maps of a loaded object, or the pinned maps of a running controller.
import { join } from 'node:path';
import type { Libkx } from '../../kernel/libkx.js';
import type { MapIO } from './apply.js';

export class KernelMaps implements MapIO {
  private constructor(private readonly lib: Libkx, private readonly fds: ReadonlyMap<string, number>, private readonly owned: boolean) {}

  /** Maps of a loaded object: fds owned by the object. */
  static ofObject(lib: Libkx, handle: number, names: readonly string[]): KernelMaps {
    return new KernelMaps(lib, new Map(names.map((n) => [n, lib.objMapFd(handle, n)])), false);
  }

  /** Pinned maps under pinDir (for inspect): fds owned here, released by close(). */
  static openPinned(lib: Libkx, pinDir: string, names: readonly string[]): KernelMaps {
    return new KernelMaps(lib, new Map(names.map((n) => [n, lib.objGet(join(pinDir, n))])), true);
  }

  fd(map: string): { fd: number; label: string } {
    const fd = this.fds.get(map);
    if (fd === undefined) throw new Error(`map ${map} is not open`);
    return { fd, label: map };
  }

  updateBatch(map: string, keys: Buffer, values: Buffer, count: number): void {
    this.lib.mapUpdateBatch(this.fd(map), keys, values, count);
  }
  deleteBatch(map: string, keys: Buffer, count: number): void {
    this.lib.mapDeleteBatch(this.fd(map), keys, count);
  }
  /** Every entry: up to the map's own max_entries (--bpf-map-sizes may have raised `max`). */
  dump(map: string, _keySize: number, _valueSize: number, max: number) {
    const fd = this.fd(map);
    return this.lib.mapDump(fd, Math.max(max, this.lib.mapInfo(fd).maxEntries));
  }
  /** Per-CPU u64 counters summed over CPUs. */
  sumPerCpu(map: string, count: number): bigint[] {
    const d = this.lib.mapDump(this.fd(map), count);
    const stride = d.values.length / Math.max(d.count, 1);
    const out: bigint[] = new Array(count).fill(0n);
    for (let i = 0; i < d.count; i++) {
      const idx = d.keys.readUInt32LE(i * 4);
      for (let off = 0; off < stride; off += 8) out[idx] = out[idx]! + d.values.readBigUInt64LE(i * stride + off);
    }
    return out;
  }

  close(): void {
    if (this.owned) for (const fd of this.fds.values()) this.lib.close(fd);
  }
}
