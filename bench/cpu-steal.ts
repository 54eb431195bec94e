/**
 * The share of the machine's CPU time that the hypervisor gave to other guests while something ran (the
 * "steal" column of /proc/stat). On a shared host it is what makes two runs of the same step differ; the
 * benchmarks report it beside their timings. Undefined where /proc/stat does not exist.
 */
import { readFileSync } from 'node:fs';

function cpuTimes(): number[] | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0];
    return line.trim().split(/\s+/).slice(1).map(Number);
  } catch {
    return undefined;
  }
}

/** Starts a measurement; the returned function gives the steal share since then, in percent. */
export function stealMeter(): () => number | undefined {
  const before = cpuTimes();
  return () => {
    const after = cpuTimes();
    if (!before || !after || after.length < 8) return undefined;
    const delta = after.map((v, i) => v - (before[i] ?? 0));
    const total = delta.reduce((a, b) => a + b, 0);
    // Fields: user nice system idle iowait irq softirq steal guest guest_nice; guest time is already in user.
    const counted = total - (delta[8] ?? 0) - (delta[9] ?? 0);
    return counted > 0 ? +((100 * delta[7]) / counted).toFixed(1) : undefined;
  };
}
