// The object's compiled-in map capacities, mirrored from the KX_MAX_* of bpf/include/kx_maps.h
// (checked against its BTF by test/unit/btf-layout.test.ts); --bpf-map-sizes overrides them
// at load (map-sizes.ts).
export const KX_LIMITS = {
  frontends: 524288,
  slots: 2097152,
  backends: 1048576,
  revnat: 524288,
  ct: 524288,
  ctNew: 131072,
  srcRanges: 65536,
  clusterCidrs: 256,
  affinity: 131072,
  affinityMatch: 2097152,
  sockRevnat: 262144,
  // IPv6 twins: the IPv4 maps' capacities (kx_map_defs.h)
  frontends6: 524288,
  backends6: 1048576,
  revnat6: 524288,
  ct6: 524288,
  ctNew6: 131072,
  srcRanges6: 65536,
  clusterCidrs6: 256,
  affinity6: 131072,
  sockRevnat6: 262144,
} as const;
