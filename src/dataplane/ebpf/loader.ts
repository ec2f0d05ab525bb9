// Loads the dataplane object with its maps pinned under the pin dir and attaches its programs:
// XDP on the external interfaces, tc ingress on the pods' host-side veths, the socket hooks on
// the node's cgroup. Every attach has replace semantics, so a restarted controller swaps
// programs without a traffic gap.
import { mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { KernelError } from '../../kernel/kernel-error.js';
import { XDP_GENERIC, XDP_NATIVE, type Libkx } from '../../kernel/libkx.js';
import { FEATURES, probeKernel, type ProbeReport } from '../../kernel/probe.js';
import { ensureSysctl, readSysctl } from '../../kernel/sysctl.js';
import { MAPS, SNAT_PORTS } from './maps.js';
import { KX_LIMITS } from './limits.js';
import { maxEntriesByName, type MapSizes } from './map-sizes.js';
import { catchUpMigration, finishMigration, preparePins, type Migration } from './pins.js';
import { objectLayoutProblems } from './btf-check.js';

export const XDP_PROGRAM = 'kx_xdp_ext';
export const TC_PROGRAM = 'kx_tc_pod';
/** Never attached: run through BPF_PROG_TEST_RUN to delete expired conntrack entries. */
export const CT_GC_PROGRAM = 'kx_ct_gc';

/** The socket hooks (kx_sock.h): program, the kernel's BPF_CGROUP_* attach type, and the
 *  probe feature that says whether this kernel has the hook. */
export const SOCKET_HOOKS = [
  { hook: 'connect4', program: 'kx_sock_connect4', attachType: 10 },
  { hook: 'connect6', program: 'kx_sock_connect6', attachType: 11 },
  { hook: 'sendmsg4', program: 'kx_sock_sendmsg4', attachType: 14 },
  { hook: 'sendmsg6', program: 'kx_sock_sendmsg6', attachType: 15 },
  { hook: 'recvmsg4', program: 'kx_sock_recvmsg4', attachType: 19 },
  { hook: 'recvmsg6', program: 'kx_sock_recvmsg6', attachType: 20 },
  { hook: 'getpeername4', program: 'kx_sock_getpeername4', attachType: 29 },
  { hook: 'getpeername6', program: 'kx_sock_getpeername6', attachType: 30 },
] as const;

export type XdpModeSetting = 'auto' | 'native' | 'generic';
export type TcModeSetting = 'auto' | 'tcx' | 'clsact';

export interface LoaderOptions {
  readonly objectPath: string;
  readonly pinDir: string;
  readonly externalInterfaces: readonly string[];
  /** Globs ('*' only) naming the pods' host-side veths, e.g. "lxc*", "cali*". */
  readonly podInterfaces: readonly string[];
  readonly xdpMode: XdpModeSetting;
  readonly tcMode: TcModeSetting;
  /** The kernel probe, when the mode check already ran it (else load() runs it). */
  readonly probe?: ProbeReport;
  /** max_entries of the maps (--bpf-map-sizes); absent: the object's own. */
  readonly mapSizes?: MapSizes;
  /** The cgroup v2 directory of the socket hooks; null or absent: none attached. */
  readonly cgroupRoot?: string | null;
}

export interface AttachState {
  readonly tc: 'tcx' | 'clsact';
  readonly xdp: ReadonlyMap<string, 'native' | 'generic'>;
  readonly pods: ReadonlySet<string>;
  /** Socket hooks attached, by hook name (connect4, …). */
  readonly socketHooks: readonly string[];
}

export function globToRegExp(glob: string): RegExp {
  return new RegExp(`^${glob.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`);
}

const linkDir = (pinDir: string) => join(pinDir, 'links');
const xdpPin = (pinDir: string, ifname: string) => join(linkDir(pinDir), `xdp-${ifname}`);
const tcPin = (pinDir: string, ifname: string) => join(linkDir(pinDir), `tc-${ifname}`);
const cgroupPin = (pinDir: string, hook: string) => join(linkDir(pinDir), `cgroup-${hook}`);

export class Loader {
  private handle: number | null = null;
  private tcKind: 'tcx' | 'clsact' = 'tcx';
  private readonly xdp = new Map<string, 'native' | 'generic'>();
  private readonly pods = new Set<string>();
  private readonly podPatterns: RegExp[];
  private probe: ProbeReport | null = null;
  private socketHooks: string[] = [];
  private catchingUp: Migration[] = [];

  constructor(private readonly lib: Libkx, private readonly log: Logger, private readonly opts: LoaderOptions) {
    this.podPatterns = opts.podInterfaces.map(globToRegExp);
  }

  /** Loads the object (reusing pinned maps) and decides TCX vs clsact from the probe. */
  load(): number {
    // before anything touches the pins: a mismatched object must not migrate or replace them
    const mismatch = objectLayoutProblems(this.lib, this.opts.objectPath);
    if (mismatch.length > 0) {
      throw new Error(`${this.opts.objectPath} does not match this kube-xdp's map layouts (another version's object?): ${mismatch.join('; ')}`);
    }
    mkdirSync(linkDir(this.opts.pinDir), { recursive: true });
    const sizes = this.opts.mapSizes ?? KX_LIMITS;
    const migrating = preparePins(this.lib, this.opts.pinDir, sizes, this.log);
    this.handle = this.lib.objOpenLoad(this.opts.objectPath, this.opts.pinDir, maxEntriesByName(sizes));
    this.catchingUp = finishMigration(this.lib, this.handle, this.opts.pinDir, migrating, this.log);
    const probe = this.opts.probe ?? probeKernel(this.lib);
    this.probe = probe;
    const absent = FEATURES.filter((f) => !probe.features[f.name].ok).map((f) => `${f.name}: ${probe.features[f.name].detail}`);
    const ctx = { kernel: probe.kernel, absentFeatures: absent };
    if (this.opts.tcMode === 'auto') {
      this.tcKind = probe.tc;
      this.log.info({ ...ctx, tc: this.tcKind }, probe.tc === 'tcx'
        ? 'tc programs attach as TCX links (kernel supports BPF_TCX_INGRESS)'
        : 'TCX links unavailable (kernel < 6.6): falling back to a clsact qdisc filter');
    } else {
      this.tcKind = this.opts.tcMode;
      this.log.info({ ...ctx, tc: this.tcKind }, `tc attach mode forced to ${this.tcKind}`);
    }
    this.checkPortRange();
    return this.handle;
  }

  /** After every program is attached: the flows the previous release's programs opened since
   * the migration's copy are copied too (see catchUpMigration). */
  finishSwitch(): void {
    catchUpMigration(this.lib, this.objectHandle, this.opts.pinDir, this.catchingUp, this.log);
    this.catchingUp = [];
  }

  /** A node socket on a port in the SNAT range could share a 5-tuple with a translated flow. */
  private checkPortRange(): void {
    const [lo, hi] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number) as [number, number];
    if (hi >= SNAT_PORTS.min && lo <= SNAT_PORTS.max) {
      this.log.warn({ ipLocalPortRange: `${lo}-${hi}`, snatPorts: `${SNAT_PORTS.min}-${SNAT_PORTS.max}` },
        'net.ipv4.ip_local_port_range overlaps the NodePort SNAT ports: lower its upper bound below 61000 or reserve them in ip_local_reserved_ports');
    }
  }

  get objectHandle(): number {
    if (this.handle === null) throw new Error('dataplane object is not loaded');
    return this.handle;
  }

  attachExternal(): void {
    const prog = { fd: this.lib.objProgFd(this.objectHandle, XDP_PROGRAM), label: XDP_PROGRAM };
    for (const ifname of this.opts.externalInterfaces) {
      const ifindex = this.lib.ifIndex(ifname);
      const pin = xdpPin(this.opts.pinDir, ifname);
      const modes: Array<'native' | 'generic'> = this.opts.xdpMode === 'auto' ? ['native', 'generic'] : [this.opts.xdpMode];
      let lastErr: unknown = null;
      for (const mode of modes) {
        try {
          this.lib.attachXdp(prog, ifindex, mode === 'native' ? XDP_NATIVE : XDP_GENERIC, pin);
          this.xdp.set(ifname, mode);
          this.log.info({ interface: ifname, mode }, `XDP attached in ${mode} mode`);
          this.acceptLocal(ifname);
          lastErr = null;
          break;
        } catch (err) {
          lastErr = err;
          if (mode === 'native' && modes.length > 1) {
            this.log.warn({ interface: ifname, err: (err as Error).message }, 'native XDP refused by the driver: falling back to generic XDP');
          }
        }
      }
      if (lastErr) throw lastErr;
    }
  }

  /** The socket hooks on the cgroup, for the sockets of this network namespace only (the
   * node's: pods under the same cgroups keep the packet path). Hooks the kernel lacks are
   * reported and skipped; without a cgroup, links an earlier run left are detached. */
  attachSocketHooks(): void {
    const root = this.opts.cgroupRoot ?? null;
    const config = { fd: this.lib.objMapFd(this.objectHandle, MAPS.sockConfig.name), label: MAPS.sockConfig.name };
    const value = Buffer.alloc(MAPS.sockConfig.value.size);
    MAPS.sockConfig.value.encode({ hostNetnsCookie: root === null ? 0n : this.lib.netnsCookie() }, value, 0);
    this.lib.mapUpdate(config, Buffer.alloc(4), value);
    this.socketHooks = [];
    const missing: string[] = [];
    for (const h of SOCKET_HOOKS) {
      const pin = cgroupPin(this.opts.pinDir, h.hook);
      if (root === null) {
        this.removeStalePin(pin);
        continue;
      }
      if (this.probe && !this.probe.features[h.hook]?.ok) {
        missing.push(h.hook);
        this.removeStalePin(pin);
        continue;
      }
      this.lib.attachCgroup({ fd: this.lib.objProgFd(this.objectHandle, h.program), label: h.program }, root, h.attachType, pin);
      this.socketHooks.push(h.hook);
    }
    if (root === null) this.log.info('socket hooks off: host-network clients are not load-balanced');
    else this.log.info({ cgroup: root, attached: this.socketHooks, missing },
      missing.length ? `socket hooks attached except ${missing.join(', ')} (kernel lacks them)` : 'socket hooks attached');
  }

  /** Attaches to pod veths that appeared, forgets those that went away. Returns what changed. */
  syncPodInterfaces(): { added: string[]; removed: string[] } {
    const prog = { fd: this.lib.objProgFd(this.objectHandle, TC_PROGRAM), label: TC_PROGRAM };
    const present = new Map(this.lib.ifList().filter((i) => this.podPatterns.some((re) => re.test(i.name))).map((i) => [i.name, i.ifindex]));
    const added: string[] = [];
    const removed: string[] = [];
    for (const [name, ifindex] of present) {
      if (this.pods.has(name)) continue;
      try {
        this.lib.attachTc(prog, ifindex, 'ingress', this.tcKind === 'tcx', this.tcKind === 'tcx' ? tcPin(this.opts.pinDir, name) : null);
        this.pods.add(name);
        added.push(name);
        this.acceptLocal(name);
      } catch (err) {
        // The veth can vanish between listing and attaching; the next scan settles it.
        this.log.warn({ interface: name, err: (err as Error).message }, 'could not attach tc program to pod interface');
      }
    }
    for (const name of [...this.pods]) {
      if (present.has(name)) continue;
      this.pods.delete(name);
      removed.push(name);
      if (this.tcKind === 'tcx') this.removeStalePin(tcPin(this.opts.pinDir, name));
    }
    return { added, removed };
  }

  /** Translated packets can carry a node address as their source (SNAT toward a remote
   * backend on the external interface, reverse NAT of a NodePort reply on a pod veth); the
   * kernel drops those as martians unless the input interface accepts local sources. */
  private acceptLocal(ifname: string): void {
    // The kernel accepts local sources where `all` or the interface allows it. The DaemonSet's
    // init container sets `all` (/proc/sys is read-only to the unprivileged kube-xdp container).
    if (readSysctl('net/ipv4/conf/all/accept_local') === '1') return;
    const before = ensureSysctl(`net/ipv4/conf/${ifname}/accept_local`, '1');
    if (before !== null) this.log.info({ interface: ifname, before }, 'set accept_local=1 (translated packets may carry the node address as source)');
  }

  private removeStalePin(pin: string): void {
    try {
      this.lib.detachLink(pin);
    } catch (err) {
      if (!(err instanceof KernelError)) throw err;
      rmSync(pin, { force: true });
    }
  }

  state(): AttachState {
    return { tc: this.tcKind, xdp: new Map(this.xdp), pods: new Set(this.pods), socketHooks: [...this.socketHooks] };
  }

  close(): void {
    if (this.handle !== null) this.lib.objClose(this.handle);
    this.handle = null;
  }
}

/** Detaches every program kube-xdp attached and removes the pin dir (maps, links). */
export function cleanupPins(lib: Libkx, pinDir: string, podInterfaces: readonly string[], log: Logger): void {
  let links: string[] = [];
  try {
    links = readdirSync(linkDir(pinDir));
  } catch {
    // no links dir: nothing attached through links
  }
  for (const name of links) {
    try {
      lib.detachLink(join(linkDir(pinDir), name));
      log.info({ link: name }, 'detached');
    } catch (err) {
      log.warn({ link: name, err: (err as Error).message }, 'could not detach link');
    }
  }
  // clsact filters are not pinned: remove ours from every pod interface.
  const patterns = podInterfaces.map(globToRegExp);
  for (const i of lib.ifList().filter((x) => patterns.some((re) => re.test(x.name)))) {
    if (lib.detachTc(i.ifindex, 'ingress', false, null)) log.info({ interface: i.name }, 'detached clsact filter');
  }
  rmSync(pinDir, { recursive: true, force: true });
}
