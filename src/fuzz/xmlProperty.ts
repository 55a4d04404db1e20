import fc from 'fast-check';
import type { FhirError } from '../errors';
import type { JsonLimits } from '../json/jsonReader';
import { readXml } from '../xml/readXml';
import { writeXml } from '../xml/writeXml';
import { assertOwnRefusal, assertWithinBound, isClientError, PropertyFailure, PropertySettings, run } from './bounds';

/**
 * readXml (src/xml/readXml.ts) and writeXml (src/xml/writeXml.ts):
 * - whatever the text, readXml gives a value or refuses with 400, 413 or 415, in bounded
 *   time (the parser, saxes, is linear; nothing recurses on the input);
 * - what it reads, writeXml writes and readXml reads back to the same value (the two agree
 *   on every shape the reader accepts: repeats with nulls, `_name` holders, resources in
 *   wrappers, narratives, decimals), unless the resource is not writable as is — a 413
 *   cannot happen there, the limits are the same;
 * - an untouched resource written by writeXml reads back as the value it was written from.
 */

export interface XmlInput {
  text: string;
  limits: JsonLimits;
}

const F = 'xmlns="http://hl7.org/fhir"';
const DIV = '<div xmlns="http://www.w3.org/1999/xhtml"><p>a &amp; <b>b</b></p><br/></div>';

/** Resources of the shapes FHIR XML has, written by writeXml. */
const SEEDS: Record<string, unknown>[] = [
  { resourceType: 'Patient', id: 'p', text: { status: 'generated', div: DIV }, name: [{ id: 'n', family: 'Dupont', given: ['A', null, 'B'], _given: [null, { extension: [{ url: 'http://e/x', valueCode: 'UNK' }] }, null] }], birthDate: '1980', _birthDate: { id: 'b' }, active: true },
  { resourceType: 'Observation', status: 'final', code: { text: 'w' }, valueQuantity: { value: 72.5, unit: 'kg' }, contained: [{ resourceType: 'Practitioner', id: 'x' }], component: [{ code: { text: 'c' }, valueInteger: -3 }] },
  { resourceType: 'Bundle', type: 'transaction', entry: [{ fullUrl: 'urn:uuid:1', resource: { resourceType: 'Parameters', parameter: [{ name: 'r', resource: { resourceType: 'Patient', active: false } }] }, request: { method: 'POST', url: 'Parameters' } }] },
  { resourceType: 'Questionnaire', status: 'draft', item: [{ linkId: '1', type: 'group', item: [{ linkId: '1.1', type: 'decimal', extension: [{ url: 'http://e/y', valueDecimal: 1.5 }] }] }] },
];
const seedTexts = SEEDS.map((r) => writeXml(r));

/** Pieces of XML and of what is almost XML. */
const TOKENS = [
  '<', '>', '/>', '</', '<!--', '-->', '--', '<![CDATA[', ']]>', '<?xml version="1.0"?>', '<?pi x?>', '<!DOCTYPE x [<!ENTITY e "ee">]>', '<!ENTITY e SYSTEM "file:///etc/passwd">',
  '&e;', '&amp;', '&lt;', '&#0;', '&#x41;', '&#xD800;', '&#1114112;', '&nbsp;', '&', ';', '"', "'", '=', ' ', '\n', '\t', '\r\n', '\u0001', '\ufeff', '\u00e9',
  'xmlns="http://hl7.org/fhir"', 'xmlns="http://www.w3.org/1999/xhtml"', 'xmlns:h="http://www.w3.org/1999/xhtml"', 'h:', 'x:', 'value="1.50"', 'value="true"', 'value=""', 'id="i"', 'url="u"',
  '<Patient ', '<Patient>', '</Patient>', '<name>', '</name>', '<given value="g"/>', '<given/>', '<active value="yes"/>', '<contained>', '</contained>', '<div>', '</div>', '<valueDecimal value="1e2"/>',
  '__proto__', 'constructor', 'extension', '<extension url="http://e/z">', '</extension>',
];

/** A seed, changed: a token inserted, a piece dropped or repeated. */
const mutated = fc
  .tuple(fc.constantFrom(...seedTexts), fc.array(fc.tuple(fc.nat(), fc.nat({ max: 12 }), fc.constantFrom(...TOKENS), fc.constantFrom('insert', 'drop', 'repeat')), { minLength: 0, maxLength: 3 }))
  .map(([text, changes]) => {
    let t = text;
    for (const [at, length, token, how] of changes) {
      const i = at % (t.length + 1);
      if (how === 'insert') t = t.slice(0, i) + token + t.slice(i);
      else if (how === 'drop') t = t.slice(0, i) + t.slice(i + length);
      else t = t.slice(0, i) + t.slice(i, i + length) + t.slice(i);
    }
    return t;
  });

const soup = fc.array(fc.constantFrom(...TOKENS), { maxLength: 40 }).map((t) => `<Patient ${F}>${t.join('')}</Patient>`);

/** Deep nesting, long repeats: what the limits are for. */
const large = fc.oneof(
  fc.integer({ min: 1, max: 3000 }).map((n) => `<Questionnaire ${F}>${'<item>'.repeat(n)}${'</item>'.repeat(n)}</Questionnaire>`),
  fc.integer({ min: 0, max: 400 }).map((n) => `<Patient ${F}>${'<name><given value="x"/></name>'.repeat(n)}</Patient>`),
);

const limits = fc.record({ maxDepth: fc.integer({ min: 1, max: 12 }), maxNodes: fc.integer({ min: 1, max: 400 }), maxArrayLength: fc.integer({ min: 0, max: 50 }) });
const generous: JsonLimits = { maxDepth: 100, maxNodes: 100_000, maxArrayLength: 10_000 };

export const xmlInput: fc.Arbitrary<XmlInput> = fc.record({
  text: fc.oneof({ weight: 4, arbitrary: mutated }, { weight: 2, arbitrary: soup }, large),
  limits: fc.oneof(limits, fc.constant(generous), fc.constant(generous)),
});

const canonical = (v: unknown): string =>
  JSON.stringify(v, (_k, x: unknown) => (x && typeof x === 'object' && !Array.isArray(x) ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => (a < b ? -1 : 1))) : x));

export const xmlStats = { runs: 0, read: 0, untouched: 0 };

export function checkXml(input: XmlInput, settings: PropertySettings): void {
  xmlStats.runs++;
  // the reader is given text decoded from UTF-8 (src/http/app.ts): never a lone surrogate as such
  const text = Buffer.from(input.text, 'utf8').toString('utf8');
  const outcome = run(() => readXml(text, input.limits));
  assertWithinBound(outcome, settings.boundMs, 'readXml');
  assertOwnRefusal(outcome, isClientError, 'readXml');
  if (!outcome.ok) {
    const status = (outcome.error as FhirError).status;
    if (status !== 400 && status !== 413 && status !== 415) throw new PropertyFailure(`readXml refused with status ${status}`);
    return;
  }
  xmlStats.read++;
  const { value, decimals } = outcome.value;
  const seed = seedTexts.indexOf(text);
  if (seed >= 0) {
    xmlStats.untouched++;
    // XML puts members in the order of the definitions: compared whatever the order
    if (canonical(value) !== canonical(SEEDS[seed])) throw new PropertyFailure('an untouched resource read back as another value');
  }
  const again = run(() => readXml(writeXml(value as Record<string, unknown>, decimals), generous));
  if (!again.ok) throw new PropertyFailure(`what readXml read, writeXml wrote and readXml refused: ${(again.error as Error).message}`);
  // the reader takes elements in any order, the writer puts them in the definitions' order: compared whatever the order
  if (canonical(again.value.value) !== canonical(value)) throw new PropertyFailure('written and read again, the value changed');
  const sorted = (d: Map<string, string> | undefined) => JSON.stringify([...(d ?? [])].sort(([a], [b]) => (a < b ? -1 : 1)));
  if (sorted(again.value.decimals) !== sorted(decimals)) throw new PropertyFailure('written and read again, the decimal texts changed');
}

/** Loads the R4 definitions the first read needs, so that the time bound measures the reader. */
export function warmXml(): void {
  for (const t of seedTexts) readXml(t, generous);
}
