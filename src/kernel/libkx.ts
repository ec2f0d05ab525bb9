// The only door to native/kx.c (see its header for the rules). Knows fds, buffers and sizes,
// nothing about any particular map: codecs live with their maps.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import ffi from '@2060.io/ffi-napi';
import { KernelError } from './kernel-error.js';

/** An fd, or an fd with the label errors should name (a map name, a program name). */
export type FdLike = number | { readonly fd: number; readonly label: string };

export const XDP_NATIVE = 1;
export const XDP_GENERIC = 2;
export type XdpMode = typeof XDP_NATIVE | typeof XDP_GENERIC;
export type TcDirection = 'ingress' | 'egress';

export interface MapInfo {
  type: number;
  keySize: number;
  valueSize: number;
  /** Bytes per value in user-space buffers (per-CPU maps: round_up(valueSize, 8) × CPUs). */
  valueStride: number;
  maxEntries: number;
  id: number;
  flags: number;
  name: string;
}

export interface TestRunResult {
  retval: number;
  data: Buffer;
  durationNs: number;
}

/** A struct as the object's BTF describes it (sizes in bytes). */
export interface BtfStruct {
  size: number;
  members: { name: string; bitOffset: number; size: number }[];
}

export function defaultLibkxPath(): string {
  return process.env.KUBE_XDP_LIBKX ?? fileURLToPath(new URL('../../../build/libkx.so', import.meta.url));
}

const I = 'int', U32 = 'uint32', U64 = 'uint64', S = 'string', P = 'pointer';
const SIGNATURES = {
  kx_last_error: [I, [P, I]],
  kx_obj_open_load: [I, [S, S, S]],
  kx_obj_btf_struct: [I, [I, S, P, I]],
  kx_obj_open: [I, [S]],
  kx_obj_close: [I, [I]],
  kx_obj_map_fd: [I, [I, S]],
  kx_obj_prog_fd: [I, [I, S]],
  kx_obj_get: [I, [S]],
  kx_obj_pin: [I, [I, S]],
  kx_close: [I, [I]],
  kx_map_info: [I, [I, P]],
  kx_map_update_batch: [I, [I, P, P, U32, U64]],
  kx_map_delete_batch: [I, [I, P, U32]],
  kx_map_dump: [I, [I, P, P, U32]],
  kx_map_lookup: [I, [I, P, P]],
  kx_map_update: [I, [I, P, P, U64]],
  kx_map_delete: [I, [I, P]],
  kx_attach_xdp: [I, [I, I, I, S]],
  kx_attach_tc: [I, [I, I, I, I, S]],
  kx_detach_tc: [I, [I, I, I, S]],
  kx_detach_link: [I, [S]],
  kx_attach_cgroup: [I, [I, S, I, S]],
  kx_netns_cookie: [I, [P]],
  kx_probe_prog: [I, [I, I, I]],
  kx_probe_link: [I, [I, I, I, U32]],
  kx_probe_clsact: [I, []],
  kx_probe_helper: [I, [I, I]],
  kx_probe_map_type: [I, [I]],
  kx_probe_test_run: [I, []],
  kx_prog_test_run: [I, [I, P, U32, P, P, U32, P, P]],
  kx_prog_test_run_each: [I, [I, P, U32, U32, U32, P]],
  kx_if_list: [I, [P, I]],
  kx_if_index: [I, [S]],
} as const;
type Fn = keyof typeof SIGNATURES;
type Native = Record<Fn, (...args: (number | string | Buffer | null)[]) => number>;

const MAP_INFO_SIZE = 48;

function fdOf(f: FdLike): number {
  return typeof f === 'number' ? f : f.fd;
}
function labelOf(f: FdLike): string {
  return typeof f === 'number' ? `fd ${f}` : f.label;
}
function cstr(buf: Buffer, len: number): string {
  return buf.toString('utf8', 0, len);
}

/** Two reusable buffers for mapDump, grown when a dump needs more. */
export class DumpScratch {
  private readonly bufs: Record<'keys' | 'values', Buffer> = { keys: Buffer.alloc(0), values: Buffer.alloc(0) };
  take(size: number, which: 'keys' | 'values'): Buffer {
    if (this.bufs[which].length < size) this.bufs[which] = Buffer.alloc(size);
    return this.bufs[which].subarray(0, size);
  }
}

export class Libkx {
  readonly path: string;
  private readonly n: Native;
  private readonly errBuf = Buffer.alloc(32768);

  constructor(path: string = defaultLibkxPath()) {
    if (!existsSync(path)) throw new Error(`libkx not found at ${path} (run make native, or set KUBE_XDP_LIBKX)`);
    this.path = path;
    this.n = ffi.Library(path, SIGNATURES) as Native;
  }

  /** Returns rc when >= 0, else throws KernelError(op, target, -rc, libbpf's messages). */
  private check(rc: number, op: string, target: string): number {
    if (rc >= 0) return rc;
    const len = this.n.kx_last_error(this.errBuf, this.errBuf.length);
    const detail = len > 0 ? cstr(this.errBuf, len).trim() : '';
    throw new KernelError(op, target, -rc, detail === '' ? null : detail);
  }

  // ---- objects ----

  /** Opens and loads a BPF object; LIBBPF_PIN_BY_NAME maps are pinned under (or reused from)
   * pinRoot (null: libbpf's /sys/fs/bpf). maxEntries overrides map sizes by map name.
   * Returns a handle for objClose/objMapFd/objProgFd. */
  objOpenLoad(objectPath: string, pinRoot: string | null, maxEntries: Readonly<Record<string, number>> = {}): number {
    const spec = Object.entries(maxEntries).map(([name, n]) => `${name}=${n}`).join(',');
    return this.check(this.n.kx_obj_open_load(objectPath, pinRoot, spec === '' ? null : spec), 'bpf_object__load', objectPath);
  }
  /** Opens an object without loading it (its BTF only); close with objClose. */
  objOpen(objectPath: string): number {
    return this.check(this.n.kx_obj_open(objectPath), 'bpf_object__open_file', objectPath);
  }
  /** A struct's layout from the object's BTF, or null when it has no such struct. */
  objBtfStruct(handle: number, name: string): BtfStruct | null {
    const out = Buffer.alloc(4096);
    const rc = this.n.kx_obj_btf_struct(handle, name, out, out.length);
    if (rc === -2) return null; // ENOENT
    const text = cstr(out, this.check(rc, 'btf__find_by_name_kind', `struct ${name}`));
    const [size, ...members] = text.split(' ');
    return {
      size: Number(size),
      members: members.map((m) => {
        const [mname, bitOffset, msize] = m.split(':');
        return { name: mname!, bitOffset: Number(bitOffset), size: Number(msize) };
      }),
    };
  }
  objClose(handle: number): void {
    this.check(this.n.kx_obj_close(handle), 'bpf_object__close', `handle ${handle}`);
  }
  /** The map's fd, owned by the object (valid until objClose; do not close it). */
  objMapFd(handle: number, name: string): number {
    return this.check(this.n.kx_obj_map_fd(handle, name), 'bpf_object__find_map_by_name', name);
  }
  objProgFd(handle: number, name: string): number {
    return this.check(this.n.kx_obj_prog_fd(handle, name), 'bpf_object__find_program_by_name', name);
  }
  /** A new fd for a pinned object: the caller closes it. */
  objGet(pinPath: string): number {
    return this.check(this.n.kx_obj_get(pinPath), 'bpf_obj_get', pinPath);
  }
  objPin(f: FdLike, pinPath: string): void {
    this.check(this.n.kx_obj_pin(fdOf(f), pinPath), 'bpf_obj_pin', pinPath);
  }
  close(f: FdLike): void {
    this.check(this.n.kx_close(fdOf(f)), 'close', labelOf(f));
  }

  // ---- maps ----

  mapInfo(map: FdLike): MapInfo {
    const b = Buffer.alloc(MAP_INFO_SIZE);
    this.check(this.n.kx_map_info(fdOf(map), b), 'bpf_obj_get_info_by_fd', labelOf(map));
    const nul = b.indexOf(0, 32);
    return {
      type: b.readUInt32LE(0),
      keySize: b.readUInt32LE(4),
      valueSize: b.readUInt32LE(8),
      maxEntries: b.readUInt32LE(12),
      id: b.readUInt32LE(16),
      flags: b.readUInt32LE(20),
      valueStride: b.readUInt32LE(24),
      name: b.toString('utf8', 32, nul < 0 ? 48 : nul),
    };
  }

  /** One FFI call for `count` entries encoded back to back. Returns the number written. */
  mapUpdateBatch(map: FdLike, keys: Buffer, values: Buffer, count: number, elemFlags = 0): number {
    if (count === 0) return 0;
    return this.check(this.n.kx_map_update_batch(fdOf(map), keys, values, count, elemFlags),
      'bpf_map_update_batch', labelOf(map));
  }

  /** Deletes `count` keys; missing keys are skipped. Returns the number actually deleted. */
  mapDeleteBatch(map: FdLike, keys: Buffer, count: number): number {
    if (count === 0) return 0;
    return this.check(this.n.kx_map_delete_batch(fdOf(map), keys, count), 'bpf_map_delete_batch', labelOf(map));
  }

  /** Every entry (keys and values back to back). max defaults to the map's max_entries;
   * a map holding more than max throws ENOSPC. `scratch` lends buffers to dump into, grown when
   * too small (the result then views them, until the next dump): a synchronous loop of dumps gives V8 no turn
   * to collect fresh ones, and their committed memory piles up (fork() then fails). */
  mapDump(map: FdLike, max?: number, scratch?: DumpScratch): { count: number; keys: Buffer; values: Buffer } {
    const info = this.mapInfo(map);
    const cap = max ?? info.maxEntries;
    const keys = scratch?.take(cap * info.keySize, 'keys') ?? Buffer.alloc(cap * info.keySize);
    const values = scratch?.take(cap * info.valueStride, 'values') ?? Buffer.alloc(cap * info.valueStride);
    const count = this.check(this.n.kx_map_dump(fdOf(map), keys, values, cap), 'bpf_map_lookup_batch', labelOf(map));
    return {
      count,
      keys: keys.subarray(0, count * info.keySize),
      values: values.subarray(0, count * info.valueStride),
    };
  }

  /** Fills `value` and returns true, or returns false when the key is absent. */
  mapLookup(map: FdLike, key: Buffer, value: Buffer): boolean {
    const rc = this.n.kx_map_lookup(fdOf(map), key, value);
    if (rc === -2 /* ENOENT */) return false;
    this.check(rc, 'bpf_map_lookup_elem', labelOf(map));
    return true;
  }
  mapUpdate(map: FdLike, key: Buffer, value: Buffer, flags = 0): void {
    this.check(this.n.kx_map_update(fdOf(map), key, value, flags), 'bpf_map_update_elem', labelOf(map));
  }
  /** Adds the entry unless its key is present (BPF_NOEXIST). Returns false when it was. */
  mapInsert(map: FdLike, key: Buffer, value: Buffer): boolean {
    const rc = this.n.kx_map_update(fdOf(map), key, value, 1 /* BPF_NOEXIST */);
    if (rc === -17 /* EEXIST */) return false;
    this.check(rc, 'bpf_map_update_elem', labelOf(map));
    return true;
  }
  /** Returns false when the key was absent. */
  mapDelete(map: FdLike, key: Buffer): boolean {
    const rc = this.n.kx_map_delete(fdOf(map), key);
    if (rc === -2 /* ENOENT */) return false;
    this.check(rc, 'bpf_map_delete_elem', labelOf(map));
    return true;
  }

  // ---- attach (replace semantics: an existing pinned link gets the new program) ----

  attachXdp(prog: FdLike, ifindex: number, mode: XdpMode, linkPin: string): void {
    this.check(this.n.kx_attach_xdp(fdOf(prog), ifindex, mode, linkPin), 'attach_xdp', linkPin);
  }

  /** useTcx: a TCX link pinned at linkPin; otherwise a clsact filter (linkPin unused). */
  attachTc(prog: FdLike, ifindex: number, direction: TcDirection, useTcx: boolean, linkPin: string | null): void {
    const rc = this.n.kx_attach_tc(fdOf(prog), ifindex, direction === 'egress' ? 1 : 0, useTcx ? 1 : 0, linkPin);
    this.check(rc, useTcx ? 'attach_tcx' : 'attach_tc_clsact', linkPin ?? `ifindex ${ifindex} ${direction}`);
  }

  /** Returns whether something was attached (false: nothing to detach). */
  detachTc(ifindex: number, direction: TcDirection, useTcx: boolean, linkPin: string | null): boolean {
    const rc = this.n.kx_detach_tc(ifindex, direction === 'egress' ? 1 : 0, useTcx ? 1 : 0, linkPin);
    return this.check(rc, useTcx ? 'detach_tcx' : 'detach_tc_clsact', linkPin ?? `ifindex ${ifindex} ${direction}`) === 1;
  }

  /** Detaches the link pinned at linkPin and removes the pin. False if there was none. */
  detachLink(linkPin: string): boolean {
    return this.check(this.n.kx_detach_link(linkPin), 'bpf_link_detach', linkPin) === 1;
  }

  /** A cgroup link (attachType: the kernel's BPF_CGROUP_* number) on the cgroup v2 directory. */
  attachCgroup(prog: FdLike, cgroupPath: string, attachType: number, linkPin: string): void {
    this.check(this.n.kx_attach_cgroup(fdOf(prog), cgroupPath, attachType, linkPin), 'attach_cgroup', `${labelOf(prog)} on ${cgroupPath}`);
  }

  /** The cookie of the current network namespace. */
  netnsCookie(): bigint {
    const out = Buffer.alloc(8);
    this.check(this.n.kx_netns_cookie(out), 'getsockopt(SO_NETNS_COOKIE)', 'netns');
    return out.readBigUInt64LE();
  }

  // ---- probe, test run, interfaces ----

  // Raw feature probes (src/kernel/probe.ts composes the report): 0 or 1 = accepted, <0 = -errno.
  /** Loads a trivial program of this type (and expected attach type) returning retval. */
  probeProg(progType: number, expectedAttachType: number, retval: number): number {
    return this.n.kx_probe_prog(progType, expectedAttachType, retval);
  }
  /** A link of a trivial program on `lo` of the current netns, destroyed at once. */
  probeLink(progType: number, expectedAttachType: number, attachType: number, flags: number): number {
    return this.n.kx_probe_link(progType, expectedAttachType, attachType, flags);
  }
  /** A clsact qdisc with a trivial cls_bpf filter on `lo`, removed at once (what we made only). */
  probeClsact(): number {
    return this.n.kx_probe_clsact();
  }
  probeHelper(progType: number, helperId: number): number {
    return this.n.kx_probe_helper(progType, helperId);
  }
  probeMapType(mapType: number): number {
    return this.n.kx_probe_map_type(mapType);
  }
  probeTestRun(): number {
    return this.n.kx_probe_test_run();
  }

  /** bpf_prog_test_run_opts; data is a full Ethernet frame for XDP and tc programs. */
  progTestRun(prog: FdLike, data: Buffer, repeat = 1, outCapacity = data.length + 512): TestRunResult {
    const out = Buffer.alloc(outCapacity);
    const size = Buffer.alloc(4);
    const retval = Buffer.alloc(4);
    const duration = Buffer.alloc(4);
    size.writeUInt32LE(out.length);
    this.check(this.n.kx_prog_test_run(fdOf(prog), data, data.length, out, size, repeat, retval, duration),
      'bpf_prog_test_run_opts', labelOf(prog));
    return {
      retval: retval.readUInt32LE(),
      data: out.subarray(0, size.readUInt32LE()),
      durationNs: duration.readUInt32LE(),
    };
  }

  /** Runs each of `count` frames (back to back in `frames`) once, in one FFI call. Returns
   * the kernel-measured total duration and how many runs returned expectRetval. */
  progTestRunEach(prog: FdLike, frames: Buffer, frameSize: number, count: number, expectRetval: number): { totalNs: number; matched: number } {
    const total = Buffer.alloc(8);
    const matched = this.check(this.n.kx_prog_test_run_each(fdOf(prog), frames, frameSize, count, expectRetval, total),
      'bpf_prog_test_run_opts', labelOf(prog));
    return { totalNs: Number(total.readBigUInt64LE()), matched };
  }

  /** Interfaces of the current network namespace. */
  ifList(): { ifindex: number; name: string }[] {
    for (let len = 16384; ; len *= 4) {
      const buf = Buffer.alloc(len);
      const rc = this.n.kx_if_list(buf, len);
      if (rc === -28 /* ENOSPC */ && len < 1 << 24) continue;
      const text = cstr(buf, this.check(rc, 'if_nameindex', 'netns'));
      return text.split('\n').filter((l) => l !== '').map((l) => {
        const sp = l.indexOf(' ');
        return { ifindex: Number(l.slice(0, sp)), name: l.slice(sp + 1) };
      });
    }
  }

  ifIndex(name: string): number {
    return this.check(this.n.kx_if_index(name), 'if_nametoindex', name);
  }
}
