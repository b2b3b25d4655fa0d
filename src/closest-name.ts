/** Edit distance (insertions, deletions, substitutions; a swap of two neighbours counts once). */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, d[i - 2]![j - 2]! + 1);
      d[i]![j] = best;
    }
  }
  return d[a.length]![b.length]!;
}

/**
 * The candidate a misspelt name most likely meant, for "did you mean" hints: the nearest by edit distance after
 * `normalize` (lower case by default), if it is close enough to be a typo (at most a third of the name's length,
 * and at least 2 edits are tolerated).
 */
export function closestName(input: string, candidates: readonly string[], normalize: (s: string) => string = (s) => s.toLowerCase()): string | undefined {
  const wanted = normalize(input);
  let best: { name: string; distance: number } | undefined;
  for (const name of candidates) {
    const distance = editDistance(wanted, normalize(name));
    if (best === undefined || distance < best.distance) best = { name, distance };
  }
  return best !== undefined && best.distance <= Math.max(2, Math.floor(wanted.length / 3)) ? best.name : undefined;
}

/** ` (did you mean "x"?)`, or nothing when no candidate is close. */
export function didYouMean(input: string, candidates: readonly string[], normalize?: (s: string) => string): string {
  const name = closestName(input, candidates, normalize);
  return name === undefined ? '' : ` (did you mean "${name}"?)`;
}
