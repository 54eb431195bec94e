/** The reference's step schedule: lr = base * 0.1^k, k = number of decay epochs strictly below the 1-indexed epoch. */
export function learningRateAt(base: number, decayEpochs: readonly number[], epoch: number): number {
  const k = decayEpochs.filter((d) => d < epoch).length;
  return base * Math.pow(0.1, k);
}
