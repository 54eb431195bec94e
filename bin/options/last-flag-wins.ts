/**
 * A flag given more than once: the last one wins, as with the reference's argparse, so that settings can be
 * appended to a command line. Left to itself, yargs makes a list of the values, or, for a number whose last value
 * is 1, adds 1 to the first (`--epochs 65 --epochs 1` trained 66 epochs).
 */
import type { Arguments } from 'yargs';

/** What yargs' getOptions() returns (not in @types/yargs), for the command being parsed. */
interface ParserOptions { alias: Record<string, string[]>; array: string[]; boolean: string[]; number: string[]; string: string[] }

function camelCase(name: string): string {
  return name.replace(/[-_]+([a-z0-9])/gi, (_, c: string) => c.toUpperCase());
}

/** yargs middleware (run before validation) that gives each repeated flag its last value from `raw`. */
export function lastFlagWins(raw: string[]): (argv: Arguments, ...rest: unknown[]) => void {
  // yargs calls middleware with (argv, yargs).
  return (argv, yargs) => {
    const options = (yargs as { getOptions(): ParserOptions }).getOptions();
    const names = new Map<string, string[]>(); // every spelling -> all spellings of that option
    for (const [key, aliases] of Object.entries(options.alias)) {
      const spellings = [key, ...aliases];
      for (const s of spellings) names.set(s, spellings);
    }
    for (const key of [...options.string, ...options.number]) if (!names.has(key)) names.set(key, [key]);
    // Booleans take no value; array options (--cors ORIGIN, given once per origin) collect their values.
    const booleans = new Set<string>([...options.boolean, ...options.array]);
    const numbers = new Set<string>(options.number);
    const seen = new Map<string[], { count: number; value: string }>();
    for (let i = 0; i < raw.length; i++) {
      const arg = raw[i]!;
      if (arg === '--') break;
      if (!arg.startsWith('--')) continue;
      const eq = arg.indexOf('=');
      const name = arg.slice(2, eq < 0 ? undefined : eq);
      const spellings = names.get(name);
      if (!spellings || spellings.some((s) => booleans.has(s))) continue;
      const value = eq < 0 ? raw[i + 1] : arg.slice(eq + 1);
      if (value === undefined) continue;
      const entry = seen.get(spellings);
      seen.set(spellings, { count: (entry?.count ?? 0) + 1, value });
    }
    for (const [spellings, { count, value }] of seen) {
      if (count < 2) continue;
      const coerced = spellings.some((s) => numbers.has(s)) ? Number(value) : value;
      for (const s of spellings) for (const key of new Set([s, camelCase(s)])) if (key in argv) argv[key] = coerced;
    }
  };
}
