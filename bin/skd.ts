#!/usr/bin/env node
/** The `skd` command: each subcommand lives in bin/commands/<name>.ts and is a thin layer over the library. */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { dataCommand } from './commands/data.js';
import { trainCommand } from './commands/train.js';
import { exportCommand } from './commands/export.js';
import { inspectCommand } from './commands/inspect.js';
import { evalCommand } from './commands/eval.js';
import { serveCommand } from './commands/serve.js';
import { webCommand } from './commands/web.js';
import { demoCommand } from './commands/demo.js';
import { reportFailure } from './report-failure.js';
import { lastFlagWins } from './options/last-flag-wins.js';
import { packageVersion } from '../export/version.js';

// A reader that goes away (`skd inspect model.onnx | head -3`) ends the command quietly, as other Unix tools do.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    reportFailure(err);
  });
}

try {
  await yargs(hideBin(process.argv))
    .scriptName('skd')
    .middleware(lastFlagWins(hideBin(process.argv)), true)
    .usage('$0 <command> [options]\n\nFew-shot image classification with SKD: train, distil, export ONNX, evaluate, serve.')
    .command(demoCommand)
    .command(dataCommand)
    .command(trainCommand)
    .command(exportCommand)
    .command(inspectCommand)
    .command(evalCommand)
    .command(serveCommand)
    .command(webCommand)
    .demandCommand(1, 'Name a command; `skd --help` lists them.')
    .strictCommands()
    .strictOptions()
    .recommendCommands()
    .help()
    .alias('h', 'help')
    // Given explicitly: yargs guesses it from the folder above node_modules, and a folder name with a dot defeats that.
    .version(packageVersion())
    .wrap(Math.min(110, process.stdout.columns || 110))
    .fail((msg, err) => {
      if (err) throw err;
      console.error(`skd: ${msg}`);
      console.error('Run with --help for the options.');
      process.exit(2);
    })
    .parseAsync();
} catch (err) {
  reportFailure(err);
}
