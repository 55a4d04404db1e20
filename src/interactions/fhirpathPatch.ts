import fhirpath from 'fhirpath';
import r4Model from 'fhirpath/fhir-context/r4';
import { literalPatternProblem, regexFunctions } from '../validation/fhirpathRegex';
import { coreStructureDefinition } from '../validation/loader';
import { child, choiceNames, Locations, PatchPathError, resolvePath } from './patchPaths';

/**
 * FHIRPath Patch (http://hl7.org/fhir/R4/fhirpatch.html): a Parameters resource whose
 * `operation` parameters add, insert, delete, replace or move elements located by FHIRPath.
 * The French document replacement flow (PDSm ITI-65) marks the replaced DocumentReference
 * `superseded` this way. Applied to a copy; a failure says which operation and why.
 *
 * Paths are resolved against the R4 model before anything is applied (patchPaths.ts), and
 * every element located must belong to the document: no patch reaches a prototype. The
 * regular expression functions of a path run on RE2 (fhirpathRegex.ts).
 */

export class PatchError extends Error {}

interface Part {
  name?: string;
  part?: Part[];
  [key: string]: unknown;
}

export interface Operation {
  type: string;
  path: string;
  /** The path compiled once, when the patch is read. */
  select: (resource: object) => Node[];
  name?: string;
  value?: unknown;
  /** The FHIR type of a primitive value (the X of its valueX part): names a choice element (deceasedDateTime). */
  valueType?: string;
  index?: number;
  source?: number;
  destination?: number;
}

/** A located element: the object or array that holds it, and where. */
interface Node {
  data: unknown;
  propName: string | null;
  index: number | null;
  path: string | null;
  parentResNode: Node | null;
}

const isObject = (v: unknown): v is Part => typeof v === 'object' && v !== null && !Array.isArray(v);

const TYPES = new Set(['add', 'insert', 'delete', 'replace', 'move']);

/** Names that would reach an object's prototype if used as keys. */
export const PROTOTYPE_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/** FHIRPath.js evaluation options: the model's own paths, regular expressions on RE2. */
const EVALUATION = { resolveInternalTypes: false, userInvocationTable: regexFunctions, async: false as const };

/** The value of a part: its value[x], or an object built from its own parts (complex values). */
function partValue(p: Part): unknown {
  for (const [k, v] of Object.entries(p)) if (k.startsWith('value') && k.length > 5) return v;
  if (!Array.isArray(p.part)) return undefined;
  const out: Record<string, unknown> = {};
  for (const sub of p.part) {
    if (typeof sub?.name !== 'string') continue;
    if (PROTOTYPE_KEYS.has(sub.name)) throw new PatchError(`a value part may not be named "${sub.name}"`);
    const v = partValue(sub);
    if (Object.hasOwn(out, sub.name)) out[sub.name] = ([] as unknown[]).concat(out[sub.name], v);
    else out[sub.name] = v;
  }
  return out;
}

function integer(p: Part, what: string): number {
  const v = p.valueInteger;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new PatchError(`${what} must be a non-negative valueInteger`);
  return v;
}

/** The path read once: checked against the model of `resourceType`, its patterns against RE2, then compiled. */
function readPath(path: string, resourceType: string, what: string): { select: Operation['select']; selects: Locations } {
  let ast: unknown;
  let compiled: (resource: object) => unknown;
  try {
    ast = fhirpath.parse(path);
    compiled = fhirpath.compile(path, r4Model, EVALUATION);
  } catch (e) {
    throw new PatchError(`${what}: path "${path}" is not a valid FHIRPath expression (${(e as Error).message.split('\n')[0]})`);
  }
  let selects: Locations;
  try {
    selects = resolvePath(ast, path, resourceType);
  } catch (e) {
    if (e instanceof PatchPathError) throw new PatchError(`${what}: ${e.message}`);
    throw e;
  }
  const problem = literalPatternProblem(ast as Parameters<typeof literalPatternProblem>[0]);
  if (problem) throw new PatchError(`${what}: path "${path}": ${problem}`);
  return { select: (resource) => compiled(resource) as Node[], selects };
}

/** The element an add creates: an element of (one of) the types its path selects, a choice by its typed name. */
function addedName(name: unknown, selects: Locations, path: string, what: string): string {
  if (typeof name !== 'string') throw new PatchError(`${what}: add needs the name of the element to add`);
  if (!/^[A-Za-z][A-Za-z0-9]*$/.test(name)) throw new PatchError(`${what}: "${name}" is not an element name`);
  if (selects === 'unknown') throw new PatchError(`${what}: path "${path}" selects an element whose type cannot be told from the model, so "${name}" cannot be checked`);
  if (selects.some((at) => child(at, name, true))) return name;
  const typed = selects.flatMap((at) => choiceNames(at, name));
  if (typed.length) throw new PatchError(`${what}: "${name}" is a choice element: name it by its type (${typed.join(', ')})`);
  throw new PatchError(`${what}: "${name}" is not an element of ${[...new Set(selects.map((at) => at.path))].join(' or ') || `what "${path}" selects`}`);
}

/** Reads the operations of a FHIRPath Patch of a `resourceType` resource; PatchError says which operation is wrong and why. */
export function parseOperations(parameters: unknown, resourceType: string): Operation[] {
  const params = parameters as { resourceType?: string; parameter?: unknown };
  if (!isObject(params) || params.resourceType !== 'Parameters') throw new PatchError('A FHIRPath Patch is a Parameters resource');
  // the body is any JSON: its shape is checked before it is read
  const parameter = params.parameter ?? [];
  if (!Array.isArray(parameter) || !parameter.every(isObject)) throw new PatchError('A FHIRPath Patch holds a list of parameters, each an object');
  const ops = parameter.filter((p) => p.name === 'operation');
  if (ops.length === 0 || ops.length !== parameter.length) throw new PatchError('A FHIRPath Patch holds "operation" parameters only, at least one');
  const KNOWN_PARTS = new Set(['type', 'path', 'name', 'value', 'index', 'source', 'destination']);
  return ops.map((op, i) => {
    const part = op.part ?? [];
    if (!Array.isArray(part) || !part.every(isObject)) throw new PatchError(`operation ${i}: its parts are a list of objects`);
    const names = part.map((p) => p.name);
    const unknown = names.find((n) => !n || !KNOWN_PARTS.has(n));
    if (unknown !== undefined) throw new PatchError(`operation ${i}: unknown part "${unknown}"`);
    const twice = names.find((n, k) => names.indexOf(n) !== k);
    if (twice) throw new PatchError(`operation ${i}: part "${twice}" appears more than once`);
    const parts = new Map(part.map((p) => [p.name, p]));
    const type = parts.get('type')?.valueCode;
    const path = parts.get('path')?.valueString;
    if (typeof type !== 'string' || !TYPES.has(type)) throw new PatchError(`operation ${i}: type must be add, insert, delete, replace or move`);
    if (typeof path !== 'string' || path === '') throw new PatchError(`operation ${i}: path (valueString) is required`);
    const { select, selects } = readPath(path, resourceType, `operation ${i}`);
    const out: Operation = { type, path, select };
    if (type === 'add') out.name = addedName(parts.get('name')?.valueString, selects, path, `operation ${i}`);
    if (type === 'add' || type === 'insert' || type === 'replace') {
      const value = parts.get('value');
      out.value = value ? partValue(value) : undefined;
      const typed = value && Object.keys(value).find((k) => k.startsWith('value') && k.length > 5);
      if (typed) out.valueType = typed.slice(5);
      if (out.value === undefined) throw new PatchError(`operation ${i}: ${type} needs a value`);
    }
    if (type === 'insert') out.index = integer(parts.get('index') ?? {}, `operation ${i}: index`);
    if (type === 'move') {
      out.source = integer(parts.get('source') ?? {}, `operation ${i}: source`);
      out.destination = integer(parts.get('destination') ?? {}, `operation ${i}: destination`);
    }
    return out;
  });
}

function locate(resource: object, path: string, what: string, select?: Operation['select']): Node[] {
  try {
    return select ? select(resource) : (fhirpath.evaluate(resource, path, undefined, r4Model, EVALUATION) as unknown as Node[]);
  } catch (e) {
    throw new PatchError(`${what}: path "${path}" could not be evaluated (${(e as Error).message})`);
  }
}

function single(nodes: Node[], path: string, what: string): Node {
  if (nodes.length !== 1) throw new PatchError(`${what}: path "${path}" must select exactly one element, it selects ${nodes.length}`);
  return nodes[0];
}

/** Every object and array of the document: what a patch may change (never a prototype or anything else FHIRPath.js reached). */
function partsOf(doc: object): WeakSet<object> {
  const parts = new WeakSet<object>();
  const visit = (v: unknown) => {
    if (!v || typeof v !== 'object' || parts.has(v)) return;
    parts.add(v);
    for (const x of Object.values(v)) visit(x);
  };
  visit(doc);
  return parts;
}

/** The object the patch is about to change, when it is part of the document. */
function ownedBy(parts: WeakSet<object>, data: unknown, path: string, what: string): Record<string, unknown> {
  if (!data || typeof data !== 'object' || !parts.has(data)) throw new PatchError(`${what}: path "${path}" does not select an element of the resource`);
  return data as Record<string, unknown>;
}

function holder(node: Node, parts: WeakSet<object>, path: string, what: string): Record<string, unknown> {
  const parent = node.parentResNode?.data;
  if (!node.propName || !parent || typeof parent !== 'object') throw new PatchError(`${what}: the resource itself cannot be replaced or deleted`);
  if (PROTOTYPE_KEYS.has(node.propName)) throw new PatchError(`${what}: path "${path}" does not select an element of the resource`);
  return ownedBy(parts, parent, path, what);
}

/** Does the element `child` of the element at model path `path` repeat (max ≠ 1)? */
export function repeats(path: string, child: string): boolean {
  let [type, ...rest] = path.split('.');
  let within = [type, ...rest].join('.');
  for (let hops = 0; hops < 10; hops++) {
    const sd = coreStructureDefinition(`http://hl7.org/fhir/StructureDefinition/${type}`);
    const elements = (sd?.snapshot?.element ?? []) as { path: string; max?: string; type?: { code: string }[] }[];
    const wanted = `${within}.${child}`;
    const found = elements.find((e) => e.path === wanted || (e.path.endsWith('[x]') && wanted.startsWith(e.path.slice(0, -3))));
    if (found) return found.max !== '1';
    // the path goes through a datatype: continue in that datatype's definition
    const owner = elements.find((e) => e.path === within);
    const code = owner?.type?.[0]?.code;
    if (!code || code === 'BackboneElement' || code === 'Element') return false;
    type = code;
    within = code;
  }
  return false;
}

/** The list a path names and the object holding it (insert, move): `<parent>.<name>` in the path. */
function listOf(resource: object, path: string, what: string): { owner: Record<string, unknown>; name: string } {
  const m = /^(.*)\.([A-Za-z][A-Za-z0-9]*)$/.exec(path);
  if (!m || PROTOTYPE_KEYS.has(m[2])) throw new PatchError(`${what}: path "${path}" must end with the name of a repeating element`);
  const owner = single(locate(resource, m[1], what), m[1], what).data;
  if (!owner || typeof owner !== 'object' || Array.isArray(owner)) throw new PatchError(`${what}: "${m[1]}" is not an element that holds "${m[2]}"`);
  return { owner: ownedBy(partsOf(resource), owner, m[1], what), name: m[2] };
}

/**
 * A repeating primitive keeps the id and extensions of its items in a parallel `_name`
 * array (json.html#primitive): whatever happens to an item happens to its companion.
 */
function companion(owner: Record<string, unknown>, name: string, change: (list: unknown[]) => void): void {
  const list = owner[`_${name}`];
  if (!Array.isArray(list)) return;
  change(list);
  if (list.every((x) => x === null)) delete owner[`_${name}`];
}

/** Reads the operations of a FHIRPath Patch and applies them in order to a copy of `resource`. */
export function applyFhirPathPatch(resource: Record<string, unknown>, parameters: unknown): Record<string, unknown> {
  return applyOperations(resource, parseOperations(parameters, String(resource.resourceType)));
}

/** Applies operations already read (parseOperations) in order to a copy of `resource`. */
export function applyOperations(resource: Record<string, unknown>, operations: Operation[]): Record<string, unknown> {
  const doc = structuredClone(resource);
  operations.forEach((op, i) => {
    const what = `operation ${i} (${op.type})`;
    // a copy: the document must not share objects with the patch, or a later operation
    // changing the value in the document would change the patch (and the next application of it)
    const value = structuredClone(op.value);
    switch (op.type) {
      case 'replace':
      case 'delete': {
        const nodes = locate(doc, op.path, what, op.select);
        if (op.type === 'delete' && nodes.length === 0) return; // nothing to delete
        const node = single(nodes, op.path, what);
        const parent = holder(node, partsOf(doc), op.path, what);
        let key = node.propName!;
        if (!Object.hasOwn(parent, key)) {
          // a choice element (Patient.deceased) is stored under its typed name (deceasedBoolean)
          const typedKey = Object.keys(parent).find((k) => k.startsWith(key) && /^[A-Z]/.test(k.slice(key.length)));
          if (typedKey) {
            if (op.type === 'replace' && node.index === null) {
              delete parent[typedKey];
              delete parent[`_${typedKey}`];
              parent[op.valueType ? key + op.valueType : typedKey] = value;
              return;
            }
            key = typedKey;
          }
        }
        if (op.type === 'delete' && node.index === null) delete parent[`_${key}`]; // the primitive's extensions go with it
        if (node.index !== null && Array.isArray(parent[key])) {
          const list = parent[key] as unknown[];
          const at = node.index;
          if (op.type === 'replace') {
            list[at] = value;
            companion(parent, key, (c) => (c[at] = null));
          } else {
            list.splice(at, 1);
            companion(parent, key, (c) => c.splice(at, 1));
            if (list.length === 0) delete parent[key];
          }
        } else if (op.type === 'replace') parent[key] = value;
        else delete parent[key];
        return;
      }
      case 'add': {
        const node = single(locate(doc, op.path, what, op.select), op.path, what);
        const target = node.data;
        if (!target || typeof target !== 'object' || Array.isArray(target)) throw new PatchError(`${what}: path "${op.path}" is not an element that can hold "${op.name}"`);
        const obj = ownedBy(partsOf(doc), target, op.path, what);
        const modelPath = node.path ?? String((target as { resourceType?: string }).resourceType ?? '');
        if (Array.isArray(obj[op.name!]) || repeats(modelPath, op.name!)) obj[op.name!] = [...((obj[op.name!] as unknown[]) ?? []), value];
        else if (obj[op.name!] !== undefined) throw new PatchError(`${what}: "${op.name}" already has a value and does not repeat (use replace)`);
        else obj[op.name!] = value;
        return;
      }
      case 'insert':
      case 'move': {
        const { owner, name } = listOf(doc, op.path, what);
        const list = (owner[name] as unknown[] | undefined) ?? [];
        if (!Array.isArray(list)) throw new PatchError(`${what}: "${op.path}" is not a list`);
        if (op.type === 'insert') {
          if (op.index! > list.length) throw new PatchError(`${what}: index ${op.index} is past the end of the list (${list.length})`);
          list.splice(op.index!, 0, value);
          companion(owner, name, (c) => c.splice(op.index!, 0, null));
        } else {
          if (op.source! >= list.length || op.destination! >= list.length) throw new PatchError(`${what}: source and destination must be within the list (${list.length})`);
          const move = (l: unknown[]) => l.splice(op.destination!, 0, l.splice(op.source!, 1)[0]);
          move(list);
          companion(owner, name, move);
        }
        owner[name] = list;
        return;
      }
    }
  });
  return doc;
}
