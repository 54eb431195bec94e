import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEMO_MINUTES } from '../bin/commands/demo.js';
import { REPO_ROOT, runSkd } from './helpers/run-skd.js';

test('the demo times in skd demo --help and in README agree', async () => {
  const help = (await runSkd(['demo', '--help'])).stdout.replace(/\s+/g, ' ');
  const helpTimes = /about ([\d.]+) minutes on 2 CPU cores; the default run takes about ([\d.]+)/.exec(help);
  assert.ok(helpTimes, help);
  const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8').replace(/\s+/g, ' ');
  const readmeTimes = /\(about ([\d.]+) minutes on 2 CPU cores; `--quick` takes about ([\d.]+)\)/.exec(readme);
  assert.ok(readmeTimes, 'README states the demo times in its quick start');
  assert.deepEqual({ quick: Number(helpTimes[1]), default: Number(helpTimes[2]) }, DEMO_MINUTES);
  assert.deepEqual({ quick: Number(readmeTimes[2]), default: Number(readmeTimes[1]) }, DEMO_MINUTES);
});
