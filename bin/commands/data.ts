/** `skd data inspect` and `skd data make-toy`: look at a dataset, or write the built-in toy set as image folders. */
import type { Argv, CommandModule } from 'yargs';
import { DATASET_NAMES, type DatasetName } from '../../data/datasets.js';
import { discoverSplits } from '../../data/discover.js';
import { UserError } from '../../data/errors.js';
import { formatSummary, summarizeImageSet } from '../../data/stats.js';
import { writeToyFolders } from '../../data/toy-export.js';
import { TOY_IMAGES_PER_CLASS } from '../../data/toy.js';
import { positiveInt } from '../options/parse.js';

interface InspectArgs { path: string; dataset?: DatasetName; split?: string; 'image-size'?: number; json: boolean }
interface MakeToyArgs { out: string; seed: number; 'images-per-class': number; 'image-size': number }

const inspectCommand: CommandModule<object, InspectArgs> = {
  command: 'inspect <path>',
  describe: 'Show classes, images per class, image size and pixel statistics of a dataset folder or file',
  builder: (y: Argv) =>
    y
      .positional('path', { type: 'string', demandOption: true, describe: 'a dataset folder, a .pickle/.pkl file, a <split>_images.npz file or an image folder (ignored with --dataset toy)' })
      .option('dataset', { type: 'string', choices: DATASET_NAMES, describe: 'read the folder with this dataset\'s layout (default: guess from the files)' })
      .option('split', { type: 'string', describe: 'only this split (default: every split found)' })
      .option('image-size', { type: 'number', describe: 'side to resize image folders to (default 84)' })
      .option('json', { type: 'boolean', default: false, describe: 'print one JSON document on stdout' })
      .example('$0 data inspect datasets/CIFAR-FS', 'every split of the CIFAR-FS pickles')
      .example('$0 data inspect my-images --dataset folder --json', '<split>/<class>/*.jpg folders, as JSON') as unknown as Argv<InspectArgs>,
  handler: async (args) => {
    if (args['image-size'] !== undefined) positiveInt('image-size', args['image-size']);
    const loaded = await discoverSplits(args.path, { dataset: args.dataset, split: args.split, imageSize: args['image-size'] });
    const summaries = loaded.map(({ source, set }) => ({ source, ...summarizeImageSet(set) }));
    if (args.json) {
      process.stdout.write(`${JSON.stringify({ path: args.path, splits: summaries }, null, 2)}\n`);
    } else {
      process.stdout.write(`${summaries.map((s) => formatSummary(s, s.source)).join('\n\n')}\n`);
    }
  },
};

const makeToyCommand: CommandModule<object, MakeToyArgs> = {
  command: 'make-toy',
  describe: 'Write the built-in toy dataset as <out>/<split>/<class>/*.png',
  builder: (y: Argv) =>
    y
      .option('out', { type: 'string', demandOption: true, describe: 'folder to create (must not exist or be empty)' })
      .option('seed', { type: 'number', default: 0, describe: 'generator seed (same seed, same images)' })
      .option('images-per-class', { type: 'number', default: TOY_IMAGES_PER_CLASS, describe: 'images in each of the 100 classes (the toy set that training and evaluation generate has as many)' })
      .option('image-size', { type: 'number', default: 32, describe: 'side of the square images' })
      .example('$0 data make-toy --out toy-data --images-per-class 50', 'a small copy to look at') as unknown as Argv<MakeToyArgs>,
  handler: async (args) => {
    positiveInt('images-per-class', args['images-per-class']);
    positiveInt('image-size', args['image-size']);
    if (!Number.isInteger(args.seed) || args.seed < 0) throw new UserError(`--seed must be a non-negative integer, got ${args.seed}`);
    const tty = process.stderr.isTTY;
    let lastSplit = '';
    const result = await writeToyFolders({
      out: args.out,
      seed: args.seed,
      imagesPerClass: args['images-per-class'],
      imageSize: args['image-size'],
      onProgress: (done, total, split) => {
        if (tty) process.stderr.write(`\rwriting ${split}: class ${done}/${total}`);
        else if (split !== lastSplit) process.stderr.write(`writing ${split} ...\n`);
        lastSplit = split;
      },
    });
    if (tty) process.stderr.write('\n');
    for (const s of result.splits) process.stdout.write(`${s.split}: ${s.classes} classes, ${s.images} images\n`);
    process.stdout.write(`wrote ${result.out}\n`);
  },
};

export const dataCommand: CommandModule = {
  command: 'data <command>',
  describe: 'Inspect datasets; write the toy dataset as image folders',
  builder: (y: Argv) => y.command(inspectCommand).command(makeToyCommand).demandCommand(1, 'Name a data command: inspect or make-toy.'),
  handler: () => {},
};
