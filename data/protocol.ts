/**
 * The few-shot evaluation protocol's defaults (RFS / SKD): 5-way episodes, 15 queries per class, 600 episodes,
 * 5 augmented copies of each support image, episode i seeded with seed + i from seed 0. `skd eval`, the demo,
 * the eval benchmark and training's validation start from these. Browser-safe.
 */
export const FEW_SHOT_PROTOCOL = {
  nWays: 5,
  nShots: 1,
  nQueries: 15,
  nTestRuns: 600,
  nAugSupportSamples: 5,
  seed: 0,
} as const;
