import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import { applyOperations, Operation, parseOperations, PatchError } from '../interactions/fhirpathPatch';
import { assertOwnRefusal, assertWithinBound, PropertyFailure, PropertySettings, run } from './bounds';

/**
 * FHIRPath Patch (src/interactions/fhirpathPatch.ts, patchPaths.ts) on hostile patches:
 * paths from a grammar of real elements, JavaScript property names (__proto__,
 * constructor, toString ...), functions that reach past the model (children(),
 * descendants(), resolve(), repeat()) and broken syntax; parameters of every shape.
 * - parseOperations and applyOperations throw nothing but PatchError, within the bound;
 * - no patch changes Object.prototype (nor the other built-in prototypes), the resource
 *   it is applied to, or the patch itself: only the copy it returns;
 * - operations read once apply the same way twice (nothing of them is consumed).
 */

export interface PatchInput {
  resource: Record<string, unknown>;
  parameters: unknown;
}

const EXT = [{ url: 'http://example.org/x', valueString: 'y' }];

const PATIENT = {
  resourceType: 'Patient',
  id: 'p',
  meta: { versionId: '1', tag: [{ system: 'http://example.org/t', code: 't' }] },
  text: { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml">Paul</div>' },
  extension: [{ url: 'http://example.org/a', valueString: 'v' }],
  identifier: [
    { system: 's1', value: '1' },
    { system: 's2', value: '2' },
  ],
  active: true,
  name: [{ use: 'official', family: 'Durand', given: ['Paul', 'Jean'], _given: [null, { extension: EXT }] }],
  telecom: [{ system: 'phone', value: '0102030405' }],
  gender: 'male',
  birthDate: '1970-01-01',
  _birthDate: { extension: EXT },
  deceasedBoolean: false,
  address: [{ line: ['1 rue de la Paix'], city: 'Paris' }],
  contact: [{ name: { family: 'Martin' }, telecom: [{ system: 'email', value: 'a@b.c' }] }],
  contained: [{ resourceType: 'Organization', id: 'o', name: 'Clinique' }],
  managingOrganization: { reference: '#o' },
};

const OBSERVATION = {
  resourceType: 'Observation',
  id: 'o',
  status: 'final',
  code: { coding: [{ system: 'http://loinc.org', code: '8867-4' }], text: 'Heart rate' },
  subject: { reference: 'Patient/p' },
  valueQuantity: { value: 72, unit: '/min' },
  component: [
    { code: { text: 'a' }, valueString: 'x' },
    { code: { text: 'b' }, valueBoolean: true },
  ],
  note: [{ text: 'n' }],
};

const ROOTS = ['Patient', 'Observation', 'Resource', 'DomainResource', '%resource', '%rootResource', '%context', '$this', '%ucum', '', 'name', 'Patient.name.given'];
const STEPS = [
  '.name', '.given', '.family', '.identifier', '.system', '.value', '.telecom', '.extension', '.url', '.active', '.deceased', '.deceasedBoolean',
  '.contact', '.contained', '.address', '.line', '.meta', '.versionId', '.tag', '.text', '.div', '.id', '.component', '.code', '.coding',
  '.valueQuantity', '.valueString', '.note', '.subject', '.reference', '.managingOrganization',
  '.__proto__', '.constructor', '.prototype', '.`__proto__`', '.`constructor`', '.`prototype`', '.toString', '.hasOwnProperty', '.length',
  '.valueOf', '.__defineGetter__', '.isPrototypeOf', '._given', '._birthDate', '.resourceType',
  '.first()', '.last()', '.tail()', '.skip(1)', '.take(1)', '.single()', '.children()', '.descendants()', '.resolve()', '.ofType(HumanName)',
  '.ofType(Object)', '.ofType(string)', '.ofType(Organization)', '.as(Patient)', ".where(system='s1')", '.where(use.exists())', '.select(given)',
  '.repeat(item)', '.repeat($this)', '.repeat(children())', ".extension('http://example.org/x')", ".where($this.matches('(a+)+$'))",
  ".where(value.matches('a'))", ".where(value.replaceMatches('(', 'x') = 'y')", '.distinct()', '.union(Patient.name)',
  '.aggregate($this)', '.iif(true, name, telecom)', '.getValue()', '.not()', '.count()', '.exists()', '.empty()', '.is(HumanName)',
  '[0]', '[1]', '[2]', '[-1]', '[99999999999]', '[0.5]', "['__proto__']", '[%resource]', ' | Patient.name', ' and true', ' = 1',
  '(', ')', "'", '`', '.', ' ', '$index', '$total', '%', '{}', '.`', '\\u005f_proto__',
];

const path = fc.oneof(
  { weight: 8, arbitrary: fc.tuple(fc.constantFrom(...ROOTS), fc.array(fc.constantFrom(...STEPS), { maxLength: 6 })).map(([root, steps]) => root + steps.join('')) },
  { weight: 1, arbitrary: fc.string({ maxLength: 20 }) },
);

const NAMES = [
  'given', 'family', 'telecom', 'gender', 'deceased', 'deceasedDateTime', 'deceasedBoolean', 'extension', 'contact', 'name', 'prefix', 'birthDate',
  'note', 'valueString', 'valueQuantity', 'component', '_given', '__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'length', '', '1x',
];

/** A value part: a typed value or parts, nested, named as anything. */
const valuePart: fc.Arbitrary<unknown> = fc.letrec<{ part: unknown }>((tie) => ({
  part: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.record({ name: fc.constantFrom(...NAMES, 'value'), valueString: fc.constantFrom('x', 'Marie', '', '__proto__') }),
    fc.record({ name: fc.constantFrom(...NAMES, 'value'), valueInteger: fc.constantFrom(0, 1, -1, 2 ** 53) }),
    fc.record({ name: fc.constantFrom(...NAMES, 'value'), valueBoolean: fc.boolean() }),
    fc.record({ name: fc.constantFrom(...NAMES, 'value'), valueDateTime: fc.constantFrom('2020-02-02', 'x') }),
    fc.record({ name: fc.constantFrom(...NAMES, 'value'), valueHumanName: fc.constantFrom({ family: 'X' }, { given: ['a'] }, {}) }),
    fc.record({ name: fc.constantFrom(...NAMES, 'value'), valueQuantity: fc.constantFrom({ value: 1 }, []) }),
    fc.record({ name: fc.constantFrom(...NAMES, 'value'), part: fc.array(tie('part'), { maxLength: 3 }) }),
    fc.record({ name: fc.constantFrom(...NAMES, 'value'), part: fc.constantFrom(null, 'x', {}, [null], [1], [[]]) }),
    fc.constantFrom<unknown>(null, 'x', 1, [], {}),
  ),
})).part;

const integerPart = (name: string) =>
  fc.oneof(
    fc.record({ name: fc.constant(name), valueInteger: fc.constantFrom<unknown>(0, 1, 2, 3, -1, 1.5, 2 ** 53, 1e308, '1', null, [], {}) }),
    fc.record({ name: fc.constant(name), valueDecimal: fc.constantFrom(0, 1) }),
  );

const operationParts = fc
  .tuple(
    fc.oneof(
      { weight: 6, arbitrary: fc.record({ name: fc.constant('type'), valueCode: fc.constantFrom('add', 'insert', 'delete', 'replace', 'move') }) },
      fc.record({ name: fc.constant('type'), valueCode: fc.constantFrom<unknown>('ADD', '', 'copy', 'test', null, 1, ['add'], {}) }),
      fc.record({ name: fc.constant('type'), valueString: fc.constant('add') }),
    ),
    fc.oneof(
      { weight: 8, arbitrary: fc.record({ name: fc.constant('path'), valueString: path }) },
      fc.record({ name: fc.constant('path'), valueString: fc.constantFrom<unknown>(null, 1, [], {}, ['Patient']) }),
    ),
    fc.option(fc.record({ name: fc.constant('name'), valueString: fc.oneof(fc.constantFrom<unknown>(...NAMES), fc.constantFrom<unknown>(null, 1, [], {})) })),
    fc.option(valuePart.map((p) => (p && typeof p === 'object' && !Array.isArray(p) ? { ...(p as object), name: 'value' } : p))),
    fc.option(integerPart('index')),
    fc.option(integerPart('source')),
    fc.option(integerPart('destination')),
    fc.array(fc.constantFrom<unknown>(null, 'x', 1, [], {}, { name: 'unknown' }, { name: 'type', valueCode: 'delete' }, { name: '__proto__' }, { name: 'constructor', valueString: 'x' }), { maxLength: 1 }),
  )
  .map(([type, p, name, value, index, source, destination, extra]) => [type, p, name, value, index, source, destination, ...extra].filter((x) => x !== null));

const chaoticOperation = fc.oneof(
  { weight: 10, arbitrary: operationParts.map((part) => ({ name: 'operation', part })) },
  fc.constantFrom<unknown>(null, 'x', 1, [], {}, { name: 'operation' }, { name: 'operation', part: null }, { name: 'operation', part: 'x' }, { name: 'operation', part: {} }, { name: 'operation', part: [null] }, { name: 'operation', part: [1] }, { name: 'other' }),
);

/** Paths that select something in the fixtures, to which hostile steps are added. */
const KNOWN_PATHS: Record<string, string[]> = {
  Patient: [
    'Patient', 'Patient.name', 'Patient.name[0]', 'Patient.name[0].given', 'Patient.name.given', "Patient.identifier.where(system='s1')", 'Patient.identifier',
    'Patient.active', 'Patient.deceased', 'Patient.birthDate', 'Patient.telecom[0]', 'Patient.contact[0].telecom', 'Patient.contact[0]', 'Patient.extension',
    'Patient.meta', 'Patient.meta.tag', 'Patient.address[0].line', 'Patient.contained[0]', 'Patient.contained.ofType(Organization).name', 'Patient.name.first().family',
    'Patient.text', 'Patient.managingOrganization', 'Patient.name[0].given[1]', 'Patient.children()', 'Patient.descendants()', 'Patient.name.children()',
  ],
  Observation: [
    'Observation', 'Observation.value', 'Observation.valueQuantity.value', 'Observation.component', 'Observation.component[1].value', 'Observation.component[0]',
    'Observation.code.coding', 'Observation.code', 'Observation.note', 'Observation.status', 'Observation.subject', 'Observation.value.as(Quantity)',
  ],
};

/** An operation with the parts its type needs, on a path near one that selects something. */
const plausibleOperation = (resourceType: string) =>
  fc
    .tuple(
      fc.constantFrom('add', 'insert', 'delete', 'replace', 'move'),
      fc.constantFrom(...KNOWN_PATHS[resourceType]),
      fc.oneof(fc.constant([]), fc.array(fc.constantFrom(...STEPS), { maxLength: 2 })),
      fc.constantFrom(...NAMES),
      valuePart,
      fc.constantFrom(0, 1, 2, 5, -1),
      fc.constantFrom(0, 1, 2, -1),
    )
    .map(([type, known, steps, name, value, a, b]) => {
      const part: unknown[] = [
        { name: 'type', valueCode: type },
        { name: 'path', valueString: known + steps.join('') },
      ];
      const valueOf = value && typeof value === 'object' && !Array.isArray(value) ? { ...(value as object), name: 'value' } : { name: 'value', valueString: 'x' };
      if (type === 'add') part.push({ name: 'name', valueString: name }, valueOf);
      if (type === 'replace') part.push(valueOf);
      if (type === 'insert') part.push({ name: 'index', valueInteger: a }, valueOf);
      if (type === 'move') part.push({ name: 'source', valueInteger: a }, { name: 'destination', valueInteger: b });
      return { name: 'operation', part };
    });

export const patchInput: fc.Arbitrary<PatchInput> = fc.constantFrom(PATIENT, OBSERVATION).chain((resource) =>
  fc.record({
    resource: fc.constant(resource as Record<string, unknown>),
    parameters: fc.oneof(
      {
        weight: 12,
        arbitrary: fc
          .array(fc.oneof({ weight: 6, arbitrary: plausibleOperation(resource.resourceType) }, chaoticOperation), { minLength: 1, maxLength: 3 })
          .map((parameter) => ({ resourceType: 'Parameters', parameter })),
      },
      fc.constantFrom<unknown>(null, 'x', [], {}, { resourceType: 'Parameters' }, { resourceType: 'Parameters', parameter: null }, { resourceType: 'Parameters', parameter: 'x' }, { resourceType: 'Parameters', parameter: {} }, { resourceType: 'Parameters', parameter: [] }, { resourceType: 'Patient' }),
    ),
  }),
);

// ---------------------------------------------------------------- the built-in objects a patch must not reach

const BUILT_INS: [string, object][] = [
  ['Object.prototype', Object.prototype],
  ['Array.prototype', Array.prototype],
  ['Function.prototype', Function.prototype],
  ['String.prototype', String.prototype],
  ['Number.prototype', Number.prototype],
  ['Boolean.prototype', Boolean.prototype],
  ['Object', Object],
  ['Array', Array],
];

type Snapshot = Map<string, Map<PropertyKey, PropertyDescriptor>>;

function snapshotBuiltIns(): Snapshot {
  const out: Snapshot = new Map();
  for (const [name, object] of BUILT_INS) {
    const own = new Map<PropertyKey, PropertyDescriptor>();
    for (const key of Reflect.ownKeys(object)) own.set(key, Object.getOwnPropertyDescriptor(object, key)!);
    out.set(name, own);
  }
  return out;
}

const SAME_DESCRIPTOR = (a: PropertyDescriptor, b: PropertyDescriptor) =>
  Object.is(a.value, b.value) && a.get === b.get && a.set === b.set && a.writable === b.writable && a.enumerable === b.enumerable && a.configurable === b.configurable;

/** What changed on the built-ins since `before`, put back as it was (so that one polluting input does not spoil the next ones). */
function restoreBuiltIns(before: Snapshot): string[] {
  const changed: string[] = [];
  for (const [name, object] of BUILT_INS) {
    const own = before.get(name)!;
    for (const key of Reflect.ownKeys(object)) {
      if (!own.has(key)) {
        changed.push(`${name}.${String(key)} added`);
        Reflect.deleteProperty(object, key);
      }
    }
    for (const [key, descriptor] of own) {
      const now = Object.getOwnPropertyDescriptor(object, key);
      if (!now || !SAME_DESCRIPTOR(now, descriptor)) {
        changed.push(`${name}.${String(key)} changed`);
        Object.defineProperty(object, key, descriptor);
      }
    }
  }
  return changed;
}

const isPatchError = (e: unknown) => e instanceof PatchError;

/** How far the runs went: patches read, patches applied. */
export const patchStats = { runs: 0, read: 0, applied: 0 };

export function checkPatch(input: PatchInput, settings: PropertySettings): void {
  const builtIns = snapshotBuiltIns();
  // copies: what the functions are given, and what it must still be after (as JSON would make it)
  const resource = structuredClone(input.resource);
  const parameters = structuredClone(input.parameters);
  const resourceBefore = structuredClone(input.resource);
  const parametersBefore = structuredClone(input.parameters);
  try {
    const parsed = run(() => parseOperations(parameters, String(resource.resourceType)));
    assertWithinBound(parsed, settings.boundMs, 'parseOperations');
    assertOwnRefusal(parsed, isPatchError, 'parseOperations');
    if (!isDeepStrictEqual(parameters, parametersBefore)) throw new PropertyFailure('parseOperations changed the patch');
    patchStats.runs++;
    if (!parsed.ok) return;
    patchStats.read++;
    const operations: Operation[] = parsed.value;
    const applied = run(() => applyOperations(resource, operations));
    assertWithinBound(applied, settings.boundMs, 'applyOperations');
    assertOwnRefusal(applied, isPatchError, 'applyOperations');
    if (applied.ok) patchStats.applied++;
    if (!isDeepStrictEqual(resource, resourceBefore)) throw new PropertyFailure('applyOperations changed the resource it was given (not its copy)');
    if (!isDeepStrictEqual(parameters, parametersBefore)) throw new PropertyFailure('applyOperations changed the patch');
    if (applied.ok && applied.value === resource) throw new PropertyFailure('applyOperations returned the resource it was given, not a copy');
    const again = run(() => applyOperations(structuredClone(resourceBefore), operations));
    if (applied.ok !== again.ok || (applied.ok && again.ok && !isDeepStrictEqual(applied.value, again.value))) {
      throw new PropertyFailure('the same operations applied twice to the same resource gave different results');
    }
  } finally {
    const changed = restoreBuiltIns(builtIns);
    // eslint-disable-next-line no-unsafe-finally
    if (changed.length) throw new PropertyFailure(`the patch changed built-in objects: ${changed.join(', ')}`);
  }
}

/** Loads the R4 definitions the first path resolution reads, so that the time bound measures the patch. */
export function warmPatch(): void {
  for (const resource of [PATIENT, OBSERVATION]) {
    const type = resource.resourceType;
    const ops = parseOperations({ resourceType: 'Parameters', parameter: [{ name: 'operation', part: [{ name: 'type', valueCode: 'delete' }, { name: 'path', valueString: `${type}.id` }] }] }, type);
    applyOperations(structuredClone(resource), ops);
  }
}
