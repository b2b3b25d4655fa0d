// Open bugs found by the property tests, so that the fuzzers can skip inputs that hit them and keep looking.
/**
 * Bugs this fuzzing found and that are still open, each pinned by a regression test in
 * test/mutation-regressions.test.ts (the ones fixed since are listed there too). The properties
 * skip an input that hits one (and count it), so a long run keeps looking for other bugs. Remove an entry once the
 * bug is fixed.
 */
export interface KnownBug {
  readonly name: string;
  matches(err: Error): boolean;
}
export const KNOWN_BUGS: readonly KnownBug[] = [];
