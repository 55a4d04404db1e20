import fc from 'fast-check';
import { TARGETS } from './targets';

/**
 * Each fuzzing property (npm run fuzz) with a few runs, so that the properties stay
 * compiled and working; the long runs and the time bound are the script's
 * (docs/operations/fuzzing.md). Seeded: a failure here is reproducible.
 */
describe.each(Object.entries(TARGETS))('fuzz target %s', (_name, target) => {
  it('holds on a few inputs', () => {
    target.warm();
    fc.assert(
      fc.property(target.input(), (input) => target.check(input, { boundMs: Infinity })),
      { numRuns: 50, seed: 20240601 },
    );
  });
});
