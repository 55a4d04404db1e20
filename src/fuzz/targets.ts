import type fc from 'fast-check';
import type { PropertySettings } from './bounds';
import { checkJson, jsonInput, jsonStats, warmJson } from './jsonProperty';
import { checkNarrative, narrativeInput, narrativeStats, warmNarrative } from './narrativeProperty';
import { checkPatch, patchInput, patchStats, warmPatch } from './patchProperty';
import { checkQuery, queryInput, queryStats, warmQuery } from './queryProperty';
import { checkXml, warmXml, xmlInput, xmlStats } from './xmlProperty';

/** One parser under fuzzing: its inputs, the property each must satisfy, and how many runs make a default session. */
export interface FuzzTarget<T = unknown> {
  /** What is fuzzed, in a few words. */
  subject: string;
  input: () => fc.Arbitrary<T>;
  /** Throws PropertyFailure (or anything unexpected) when the property does not hold. */
  check: (input: T, settings: PropertySettings) => void;
  /** Loads what the first call loads, so that the time bound measures the parser only. */
  warm: () => void;
  /** Runs for a default session of a minute or two on the whole set (npm run fuzz). */
  defaultRuns: number;
  /** A line about what the runs met, when there is more to say than their number. */
  stats?: () => string;
}

const target = <T>(t: FuzzTarget<T>): FuzzTarget => t as unknown as FuzzTarget;

export const TARGETS = {
  json: target({ subject: 'readJson (src/json/jsonReader.ts)', input: () => jsonInput, check: checkJson, warm: warmJson, defaultRuns: 80_000, stats: () => `${jsonStats.accepted} texts read as JSON.parse reads them, ${jsonStats.refusedByReader} refused for a reason JSON.parse ignores, ${jsonStats.refusedByBoth} refused by both` }),
  patch: target({ subject: 'FHIRPath Patch (src/interactions/fhirpathPatch.ts, patchPaths.ts)', input: () => patchInput, check: checkPatch, warm: warmPatch, defaultRuns: 20_000, stats: () => `${patchStats.read} of ${patchStats.runs} patches read, ${patchStats.applied} applied` }),
  query: target({ subject: 'search query parsing (src/search/parseSearch.ts via parseRequestSearch)', input: queryInput, check: checkQuery, warm: warmQuery, defaultRuns: 60_000, stats: () => `${queryStats.parsed} queries parsed, ${queryStats.refused} refused` }),
  narrative: target({
    subject: 'narrative checker (src/validation/xhtml.ts, narrativePolicy.ts)',
    input: () => narrativeInput,
    check: checkNarrative,
    warm: warmNarrative,
    defaultRuns: 100_000,
    stats: () => `${narrativeStats.accepted} of ${narrativeStats.runs} narratives accepted (and checked as a browser reads them)`,
  }),
  xml: target({
    subject: 'FHIR XML reader and writer (src/xml/readXml.ts, xmlEvents.ts over saxes, writeXml.ts)',
    input: () => xmlInput,
    check: checkXml,
    warm: warmXml,
    defaultRuns: 40_000,
    stats: () => `${xmlStats.read} of ${xmlStats.runs} texts read (and written and read back the same), ${xmlStats.untouched} untouched resources read back as written`,
  }),
} satisfies Record<string, FuzzTarget>;

export type TargetName = keyof typeof TARGETS;
