// The IPVS mode: render (pure) → ipset restore, iptables-restore --noflush, ipvsadm --restore of
// the difference to the kernel's table, and kube-ipvs0's addresses — kube-proxy's IPVS proxier.
// Every sync reads the kernel (ipvsadm -Ln, ipset save, the dummy's addresses) and writes only
// what differs; draining real servers are found in that listing (weight 0), not remembered.
import { release } from 'node:os';
import type { Logger } from 'pino';
import type { IpvsSettings } from '../../config/run-config.js';
import { deleteConntrack } from '../../kernel/conntrack.js';
import { Iptables, type IptablesBackend } from '../../kernel/iptables.js';
import { restoreIpsets, saveIpsets } from '../../kernel/ipset.js';
import { listIpvs, restoreIpvs, setIpvsTimeouts } from '../../kernel/ipvsadm.js';
import { addAddress, deleteAddress, ensureDummy, linkAddresses } from '../../kernel/link.js';
import { ensureSysctl } from '../../kernel/sysctl.js';
import { cidrContains, parseCidr } from '../../model/cidr.js';
import type { ProxyState } from '../../model/types.js';
import { KP } from '../../observe/kube-proxy-metrics.js';
import type { Metrics } from '../../observe/metrics.js';
import { OwnerFileWriter, ownerFileForNetns } from '../../inspect/owners.js';
import { staleUdpConntrack } from '../conntrack.js';
import { kubeLines } from '../iptables/dataplane.js';
import { IPVS_JUMP_RULES, canaryGone, ensureJumpRules } from '../iptables/jumps.js';
import { KUBE_IPVS_DEVICE, KUBE_PROXY_CANARY } from '../kube-names.js';
import type { Dataplane, SyncResult } from '../types.js';
import { SET_IDS, ipsetRestoreText, parseIpsetSave, setName } from './ipsets.js';
import { planIpvs } from './plan.js';
import { renderIpvs, type IpvsConfig } from './render.js';
import { ipvsSysctls, readNodeAddresses, type NodeAddresses } from './setup.js';
import { canonical, parseIpvsadmList, type VirtualServer } from './virtual-servers.js';

export interface IpvsDataplaneOptions {
  /** One config per family the node serves; nodeAddresses are re-read on every sync. */
  readonly families: readonly IpvsConfig[];
  readonly backend: IptablesBackend;
  readonly ipvs: IpvsSettings;
  /** How often draining real servers are looked at again (kube-proxy: every minute). */
  readonly drainCheckPeriodMs: number;
  /** Injected for tests; default: the host's interfaces except kube-ipvs0. */
  readonly nodeAddresses?: () => NodeAddresses;
}

export class IpvsDataplane implements Dataplane {
  private readonly ipt: Map<string, Iptables>;
  private readonly excluded;
  private last: ProxyState | null = null;
  private needJumps = true;
  private draining = 0;
  private lastDrainCheck = 0;
  private readonly owners: OwnerFileWriter;

  constructor(private readonly opts: IpvsDataplaneOptions, private readonly log: Logger, private readonly metrics: Metrics) {
    this.owners = new OwnerFileWriter(ownerFileForNetns(), log);
    this.ipt = new Map(opts.families.map((f) => [f.family, new Iptables(f.family, opts.backend)]));
    this.excluded = opts.ipvs.excludeCIDRs.map(parseCidr).filter((c) => c !== null);
    for (const [key, value] of ipvsSysctls(release(), opts.ipvs.strictARP)) {
      const before = ensureSysctl(key, value);
      if (before !== null) log.info({ sysctl: key.replace(/\//g, '.'), from: before, to: value }, 'set sysctl for IPVS mode');
    }
    const { tcpTimeoutS: tcp, tcpFinTimeoutS: fin, udpTimeoutS: udp } = opts.ipvs;
    if (tcp || fin || udp) setIpvsTimeouts(tcp, fin, udp);
    if (ensureDummy(KUBE_IPVS_DEVICE)) log.info({ device: KUBE_IPVS_DEVICE }, 'created the dummy interface for service addresses');
  }

  async sync(state: ProxyState, opts: { full?: boolean } = {}): Promise<SyncResult> {
    try {
      const r = await this.syncOnce(state, opts.full ?? false);
      this.metrics.inc('kubexdp_ipvs_sync_total', 'IPVS mode syncs', { result: 'ok' });
      return r;
    } catch (err) {
      this.needJumps = true;
      this.metrics.inc('kubexdp_ipvs_sync_total', 'IPVS mode syncs', { result: 'error' });
      throw err;
    }
  }

  private async syncOnce(state: ProxyState, full: boolean): Promise<SyncResult> {
    ensureDummy(KUBE_IPVS_DEVICE);
    const nodeAddresses = (this.opts.nodeAddresses ?? readNodeAddresses)();
    const renders = this.opts.families.map((cfg) => ({ cfg, r: renderIpvs(state, { ...cfg, nodeAddresses: nodeAddresses[cfg.family] }) }));

    // ipsets before the iptables rules that match them.
    const savedSets = parseIpsetSave(saveIpsets());
    let setChanges = 0;
    for (const { cfg, r } of renders) {
      const ours = new Map(SET_IDS.map((id) => setName(id, cfg.family)).filter((n) => savedSets.has(n)).map((n) => [n, savedSets.get(n)!]));
      const text = ipsetRestoreText(r.ipsets, cfg.family, ours);
      setChanges += text.split('\n').filter((l) => l.startsWith('add ') || l.startsWith('del ')).length;
      restoreIpsets(text);
    }
    let rules = 0;
    for (const { cfg, r } of renders) {
      const ipt = this.ipt.get(cfg.family)!;
      if (full || this.needJumps) ensureJumpRules(ipt, IPVS_JUMP_RULES);
      try {
        await ipt.restore(r.iptables);
      } catch (err) {
        this.metrics.inc(KP.iptablesRestoreFailures);
        throw err;
      }
      rules += r.iptables.split('\n').filter((l) => l.startsWith('-A ')).length;
    }
    this.needJumps = false;

    const desired: VirtualServer[] = renders.flatMap(({ r }) => r.virtualServers);
    const plan = planIpvs(parseIpvsadmList(listIpvs()), desired, (vs) => !this.excluded.some((c) => cidrContains(c!, vs.address)));
    restoreIpvs(plan.lines);
    this.draining = plan.terminating.length;
    this.lastDrainCheck = Date.now();

    const bound = new Set(linkAddresses(KUBE_IPVS_DEVICE));
    const wanted = new Set(renders.flatMap(({ r }) => r.bindAddresses));
    let bindChanges = 0;
    for (const ip of wanted) if (!bound.has(ip)) { addAddress(KUBE_IPVS_DEVICE, ip); bindChanges++; }
    for (const ip of bound) if (!wanted.has(ip)) { deleteAddress(KUBE_IPVS_DEVICE, ip); bindChanges++; }

    // After IPVS has the new real servers: UDP flows to removed ones would otherwise stick.
    let conntrack = 0;
    for (const { cfg } of renders) {
      const stale = staleUdpConntrack(this.last, state, cfg.family);
      conntrack += stale.length;
      for (const f of deleteConntrack(stale, cfg.family)) this.log.warn({ family: cfg.family }, `stale UDP conntrack entries not removed: ${f}`);
    }
    this.last = state;
    this.owners.write(state);
    this.metrics.set('kubexdp_ipvs_draining_real_servers', 'Real servers at weight 0 waiting for their connections to end', this.draining);
    const ipvsWrites = plan.lines.length;
    return {
      writes: ipvsWrites + setChanges + bindChanges,
      detail: {
        ipvs: {
          virtualServers: desired.length, commands: ipvsWrites, servicesAdded: plan.servicesAdded, servicesDeleted: plan.servicesDeleted,
          realServersAdded: plan.realServersAdded, realServersDeleted: plan.realServersDeleted, draining: plan.terminating.length,
        },
        ipsetChanges: setChanges, iptablesRules: rules, bindChanges, conntrack,
      },
    };
  }

  /** A full sync when the tables were flushed (the canary is gone), or to retire drained real servers. */
  tick(): boolean {
    for (const [family, ipt] of this.ipt) {
      if (canaryGone(ipt)) {
        this.log.warn({ family }, `${KUBE_PROXY_CANARY} is gone (tables flushed?): syncing everything again`);
        return true;
      }
    }
    if (this.draining > 0 && Date.now() - this.lastDrainCheck >= this.opts.drainCheckPeriodMs) {
      this.lastDrainCheck = Date.now();
      return true;
    }
    return false;
  }

  describe(): unknown {
    const sets = parseIpsetSave(saveIpsets());
    return {
      ipvs: canonical(parseIpvsadmList(listIpvs())),
      [KUBE_IPVS_DEVICE]: linkAddresses(KUBE_IPVS_DEVICE).sort(),
      ...Object.fromEntries(this.opts.families.map((cfg) => [cfg.family, {
        ipsets: Object.fromEntries(SET_IDS.map((id) => setName(id, cfg.family)).map((n) => [n, [...(sets.get(n) ?? [])].sort()])),
        nat: kubeLines(this.ipt.get(cfg.family)!.save('nat')),
        filter: kubeLines(this.ipt.get(cfg.family)!.save('filter')),
      }])),
    };
  }

  close(): void {}
}
