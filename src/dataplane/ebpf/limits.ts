// Map capacities, mirrored from the KX_MAX_* of bpf/include/kx_maps.h (checked against the
// loaded maps' max_entries by test/unit/btf-layout.test.ts).
export const KX_LIMITS = {
  frontends: 262144,
  slots: 2097152,
  backends: 262144,
  revnat: 262144,
  ct: 524288,
  ctNew: 131072,
  srcRanges: 65536,
  clusterCidrs: 256,
  affinity: 131072,
  affinityMatch: 2097152,
} as const;
