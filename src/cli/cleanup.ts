// `kube-xdp cleanup` (kube-proxy's --cleanup): remove what every mode left in the kernel —
// the eBPF programs and pins, the KUBE-* chains of both iptables backends and families, the
// nftables mode's `kube-proxy` tables, and IPVS mode's virtual servers, kube-ipvs0 and ipsets.
import { readFlags } from '../config/flags.js';
import { DEFAULT_PIN_DIR, RUN_FLAGS } from '../config/run-config.js';
import { cleanupPins } from '../dataplane/ebpf/loader.js';
import { cleanupIptables } from '../dataplane/iptables/cleanup.js';
import { cleanupIpvs } from '../dataplane/ipvs/cleanup.js';
import { cleanupNftables } from '../dataplane/nftables/cleanup.js';
import { ownerFileForNetns, ownerFileForPins, removeOwnerFile } from '../inspect/owners.js';
import { Iptables } from '../kernel/iptables.js';
import { Libkx } from '../kernel/libkx.js';
import { nftVersion } from '../kernel/nft.js';
import type { Logger } from 'pino';
import { createLogger } from '../observe/log.js';

export async function cleanup(argv: string[]): Promise<void> {
  const { values } = readFlags(argv, {
    'bpf-pin-dir': { type: 'string', default: DEFAULT_PIN_DIR },
    'pod-interfaces': RUN_FLAGS['pod-interfaces']!,
  });
  await cleanupNode(values['bpf-pin-dir'] as string, values['pod-interfaces'] as string[], createLogger());
}

/** Also kube-proxy's `--cleanup` (`kube-xdp --cleanup`, run.ts). */
export async function cleanupNode(pinDir: string, podInterfaces: string[], log: Logger): Promise<void> {
  cleanupPins(new Libkx(), pinDir, podInterfaces, log);
  // inspect's names for the state removed
  removeOwnerFile(ownerFileForPins(pinDir));
  removeOwnerFile(ownerFileForNetns());
  for (const family of ['IPv4', 'IPv6'] as const) {
    for (const backend of ['nft', 'legacy'] as const) {
      const ipt = new Iptables(family, backend);
      if (!ipt.available()) continue;
      const removed = await cleanupIptables(ipt);
      if (removed.filter + removed.nat + removed.mangle > 0) log.info({ family, backend, removed }, 'removed iptables chains');
    }
  }
  if (nftVersion() !== null) {
    const tables = await cleanupNftables();
    if (tables.length > 0) log.info({ tables }, 'removed nftables tables');
  }
  const ipvs = cleanupIpvs();
  if (ipvs.ipvsCleared || ipvs.deviceDeleted || ipvs.setsDestroyed.length) log.info(ipvs, 'removed IPVS state');
}
