/** Checks and conversions of flag values shared by the commands; each failure is one UserError naming the flag. */
import { UserError } from '../../data/errors.js';

/** An integer >= min (default 1). */
export function positiveInt(flag: string, v: number | undefined, min = 1): number {
  if (v === undefined || !Number.isInteger(v) || v < min) throw new UserError(`--${flag} must be an integer >= ${min}, got ${String(v)}`);
  return v;
}

/** "60,80" -> [60, 80]; "" -> []; undefined stays undefined. */
export function numberList(flag: string, text: string | undefined): number[] | undefined {
  if (text === undefined) return undefined;
  const trimmed = String(text).trim();
  if (trimmed === '') return [];
  const values = trimmed.split(',').map((s) => Number(s.trim()));
  if (values.some((v) => !Number.isFinite(v))) throw new UserError(`--${flag} expects a comma-separated list of numbers, got "${text}"`);
  return values;
}

/** Three numbers, given as "0.5,0.49,0.44", "0.5 0.49 0.44" or "[0.5, 0.49, 0.44]". */
export function parseTriple(flag: string, text: string | undefined): [number, number, number] | undefined {
  if (text === undefined) return undefined;
  const parts = String(text).trim().replace(/^\[|\]$/g, '').split(/[\s,]+/).filter((p) => p.length > 0).map(Number);
  if (parts.length !== 3 || parts.some((v) => !Number.isFinite(v))) throw new UserError(`--${flag} expects 3 numbers such as "0.5,0.5,0.5", got "${text}"`);
  return parts as [number, number, number];
}

/** "cifarfs, may30" -> ["cifarfs", "may30"] (empty entries dropped). */
export function stringList(text: string | undefined): string[] | undefined {
  if (text === undefined) return undefined;
  return String(text).split(',').map((s) => s.trim()).filter((s) => s.length > 0);
}
