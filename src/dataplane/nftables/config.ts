// What the nftables renderer needs besides the ProxyState: the settings every rule-writing mode
// shares (one family's node facts, kube-proxy's masquerade settings). The Service CIDRs come
// from ProxyState.serviceCIDRs.
import type { RuleModeConfig } from '../iptables/config.js';

export type NftablesConfig = RuleModeConfig;
