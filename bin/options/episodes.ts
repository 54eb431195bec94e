/**
 * The few-shot episode flags under the reference's names (RFS / SKD eval_fewshot.py): `skd eval` draws its
 * episodes with them; `skd train` uses them for its validation, as the reference's training scripts do.
 * Defaults are the protocol's (data/protocol.ts).
 */
import type { Argv } from 'yargs';
import { FEW_SHOT_PROTOCOL } from '../../data/protocol.js';

export interface EpisodeArgs {
  n_ways: number;
  n_shots: number;
  n_queries: number;
  n_aug_support_samples: number;
}

/** `eval`: the protocol's defaults. `validation`: unset flags leave training's validation defaults in place. */
export function episodeOptions<T>(y: Argv<T>, use: 'eval' | 'validation'): Argv<T & EpisodeArgs> {
  const p = FEW_SHOT_PROTOCOL;
  const forEval = use === 'eval';
  const dflt = (value: number) => (forEval ? { default: value } : {});
  const where = forEval ? '' : 'validation: ';
  return y
    .option('n_ways', { type: 'number', alias: 'n-ways', ...dflt(p.nWays), describe: `${where}classes per episode (N)${forEval ? '' : `, default ${p.nWays}`}` })
    .option('n_shots', { type: 'number', alias: 'n-shots', ...dflt(p.nShots), describe: `${where}support images per class (K)${forEval ? '' : `, default ${p.nShots}`}` })
    .option('n_queries', { type: 'number', alias: 'n-queries', ...dflt(p.nQueries), describe: `${where}query images per class${forEval ? '' : `, default ${p.nQueries}`}` })
    .option('n_aug_support_samples', {
      type: 'number', alias: 'n-aug-support-samples', ...dflt(p.nAugSupportSamples),
      describe: forEval
        ? 'augmented copies of each support image (0 and 1 both mean one, as the reference)'
        : 'validation: augmented copies of each support image (0 and 1 both mean one; default 1)',
    }) as unknown as Argv<T & EpisodeArgs>;
}
