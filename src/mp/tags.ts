/** Internal tags on the collective context (each collective step has its own). */
export const CollTag = {
  Barrier: 1,
  Bcast: 2,
  BcastScatter: 3,
  BcastRing: 4,
  Scatter: 5,
  Gather: 6,
  Allgather: 7,
  Reduce: 8,
  Allreduce: 9,
  ReduceScatter: 10,
  AllgatherRing: 11,
  Alltoall: 12,
  Scatterv: 13,
  Gatherv: 14,
  ReduceForward: 15,
} as const;
export type CollTag = (typeof CollTag)[keyof typeof CollTag];
