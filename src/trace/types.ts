// Shared types of the rule tracers (src/trace/iptables.ts, src/trace/nftables.ts): the packet a
// trace follows and what the walk found. Pure data.

export interface Packet {
  sourceIP: string;
  /** "TCP" | "UDP" | "SCTP" (any case); default tcp, as kube-proxy's runPacketFlowTests. */
  protocol?: string;
  destIP: string;
  destPort: number;
}

export type RuleVerdict = 'ACCEPT' | 'DROP' | 'REJECT';

export interface TraceResult {
  /** DNAT destinations and filter verdicts, joined by ", " ("" when nothing matched). */
  output: string;
  masq: boolean;
  /** The rules that matched, in order, for failure messages. */
  matches: string[];
  /** The chains entered, in order ("nat/KUBE-SERVICES" for iptables, the chain name for nftables). */
  chains: string[];
  /** The first DROP/REJECT/ACCEPT verdict the walk met (null: none, the packet goes on). */
  verdict: RuleVerdict | null;
}

/** Where the packet a live trace follows comes from: a pod (prerouting, then forward or input),
 *  outside the node (the same hooks) or the node itself (output, postrouting). */
export type TraceFrom = 'pod' | 'external' | 'host';
