import r4Model from 'fhirpath/fhir-context/r4';
import { coreStructureDefinition, isResourceType } from '../validation/loader';
import { typeCodeOf } from '../validation/model';

/**
 * The paths of a FHIRPath Patch resolved against the R4 model before anything is applied:
 * every member a path names must be an element of the type at that point, and the `name`
 * an add creates an element of the type the path selects. FHIRPath.js reads any property
 * of a JavaScript object (`Patient.__proto__`, `name.constructor.prototype`): without this
 * check a patch could write into Object.prototype and change the whole process.
 */

export class PatchPathError extends Error {}

/** Where a path is in the model: an element of a StructureDefinition (`Patient.contact` in Patient, `HumanName` in HumanName). */
export interface Location {
  type: string;
  path: string;
}

/** The locations an expression selects, or 'unknown' when they cannot be told (after children(), resolve() …). */
export type Locations = Location[] | 'unknown';

interface ElementDef {
  path: string;
  type?: { code: string; extension?: unknown[] }[];
  contentReference?: string;
}

const elementsByType = new Map<string, Map<string, ElementDef> | null>();

function elementsOf(type: string): Map<string, ElementDef> | undefined {
  let found = elementsByType.get(type);
  if (found === undefined) {
    const sd = /^[A-Za-z][A-Za-z0-9]*$/.test(type) ? coreStructureDefinition(`http://hl7.org/fhir/StructureDefinition/${type}`) : undefined;
    found = sd?.snapshot?.element ? new Map((sd.snapshot.element as ElementDef[]).map((e) => [e.path, e])) : null;
    elementsByType.set(type, found);
  }
  return found ?? undefined;
}

/** The location of a FHIR type (the root of its definition), if R4 defines it. */
export function typeLocation(type: string): Location | undefined {
  return elementsOf(type)?.has(type) ? { type, path: type } : undefined;
}

const upperFirst = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);

/** Where an element leads: its own children (backbone elements), a content reference, or its type(s). */
function next(at: Location, element: ElementDef, codes: string[]): Location[] {
  if (element.contentReference) return [{ type: at.type, path: element.contentReference.slice(element.contentReference.indexOf('#') + 1) }];
  return codes.flatMap((code) => (code === 'BackboneElement' || code === 'Element' ? [{ type: at.type, path: element.path }] : (typeLocation(code) ? [typeLocation(code)!] : [])));
}

/**
 * The child `name` of the element at `at`: an element name, a choice element by its bare
 * name (`value`: every type it allows) or by a typed name (`valueQuantity`).
 * `typedOnly`: a choice element only by its typed name (the JSON property an add writes).
 */
export function child(at: Location, name: string, typedOnly = false): Location[] | undefined {
  const elements = elementsOf(at.type);
  if (!elements || !/^[A-Za-z][A-Za-z0-9]*$/.test(name)) return undefined;
  const element = elements.get(`${at.path}.${name}`);
  if (element) return next(at, element, (element.type ?? []).map(typeCodeOf));
  const choice = elements.get(`${at.path}.${name}[x]`);
  if (choice && !typedOnly) return next(at, choice, (choice.type ?? []).map(typeCodeOf));
  for (const [path, e] of elements) {
    if (!path.endsWith('[x]') || !path.startsWith(`${at.path}.`) || path.indexOf('.', at.path.length + 1) >= 0) continue;
    const prefix = path.slice(at.path.length + 1, -3);
    if (!name.startsWith(prefix)) continue;
    const code = (e.type ?? []).map(typeCodeOf).find((c) => upperFirst(c) === name.slice(prefix.length));
    if (code) return next(at, e, [code]);
  }
  return undefined;
}

/** The typed names a choice element allows (deceased → deceasedBoolean, deceasedDateTime), for messages. */
export function choiceNames(at: Location, name: string): string[] {
  const choice = elementsOf(at.type)?.get(`${at.path}.${name}[x]`);
  return (choice?.type ?? []).map((t) => name + upperFirst(typeCodeOf(t)));
}

interface AstNode {
  type: string;
  text?: string;
  atRoot?: number;
  children?: AstNode[];
}

/** Functions whose result is (part of) their input. */
const FILTERS = new Set(['where', 'first', 'last', 'tail', 'skip', 'take', 'single', 'distinct', 'trace', 'intersect', 'exclude']);
/** Functions that evaluate their arguments on each item of their input ("Expr" parameters in FHIRPath.js). */
const ON_EACH_ITEM = new Set(['where', 'select', 'exists', 'all', 'repeat', 'aggregate', 'iif', 'sort', 'coalesce']);

interface Scope {
  /** what $this is, and what a leading member applies to */
  self: Locations;
  root: Location;
}

const identifier = (text: string) => (text.startsWith('`') && text.endsWith('`') ? text.slice(1, -1) : text);

function union(a: Locations, b: Locations): Locations {
  return a === 'unknown' || b === 'unknown' ? 'unknown' : [...a, ...b];
}

function member(input: Locations, name: string, path: string): Locations {
  if (input === 'unknown') throw new PatchPathError(`path "${path}": "${name}" follows an expression whose type cannot be told from the model`);
  const found = input.flatMap((at) => child(at, name) ?? []);
  if (found.length === 0 && !input.some((at) => child(at, name))) {
    const where = [...new Set(input.map((at) => at.path))].join(' or ') || 'an empty selection';
    throw new PatchPathError(`path "${path}": "${name}" is not an element of ${where}`);
  }
  return found;
}

/** The R4 type names (the definitions are looked up, and their lookups cached, only for these). */
const KNOWN_TYPES = new Set([...Object.keys((r4Model as unknown as { type2Parent: Record<string, string> }).type2Parent), 'Resource', 'Element']);

function typeSpecifier(node: AstNode | undefined): Locations {
  const text = node?.text ?? '';
  const name = text.replace(/^FHIR\./, '');
  const at = KNOWN_TYPES.has(name) ? typeLocation(name) : undefined;
  return at ? [at] : 'unknown';
}

function locations(node: AstNode, input: Locations, scope: Scope, path: string): Locations {
  const kids = node.children ?? [];
  switch (node.type) {
    case 'EntireExpression':
    case 'TermExpression':
    case 'InvocationTerm':
    case 'ParenthesizedTerm':
      return kids.length === 1 ? locations(kids[0], input, scope, path) : 'unknown';
    case 'InvocationExpression': {
      const left = locations(kids[0], input, scope, path);
      return locations(kids[1], left, scope, path);
    }
    case 'MemberInvocation': {
      const name = identifier(kids[0]?.text ?? '');
      // a leading type name selects the resource itself (Patient.name, Resource.id)
      if (node.atRoot && input !== 'unknown' && input.length === 1 && input[0] === scope.root && (name === scope.root.type || name === 'Resource' || name === 'DomainResource')) return input;
      return member(input, name, path);
    }
    case 'IndexerExpression':
      locations(kids[1], scope.self, scope, path);
      return locations(kids[0], input, scope, path);
    case 'FunctionInvocation':
      return locations(kids[0], input, scope, path);
    case 'Functn': {
      const name = kids[0]?.text ?? '';
      const params = kids[1]?.children ?? [];
      if (name === 'ofType' || name === 'as') return typeSpecifier(params[0]);
      if (name === 'is') return 'unknown';
      const results = params.map((p) => (ON_EACH_ITEM.has(name) ? locations(p, input, { ...scope, self: input }, path) : locations(p, scope.self, scope, path)));
      if (FILTERS.has(name)) return input;
      if (name === 'select' || name === 'repeat') return results[0] ?? 'unknown';
      if (name === 'union' || name === 'combine') return union(input, results[0] ?? 'unknown');
      if (name === 'extension') return typeLocation('Extension') ? [typeLocation('Extension')!] : 'unknown';
      return 'unknown';
    }
    case 'ThisInvocation':
      return scope.self;
    case 'ExternalConstantTerm': {
      const name = kids[0]?.children?.[0]?.text ?? node.text ?? '';
      return ['resource', 'rootResource', 'context'].includes(name) ? [scope.root] : 'unknown';
    }
    case 'UnionExpression':
      return union(locations(kids[0], input, scope, path), locations(kids[1], input, scope, path));
    case 'TypeExpression': {
      locations(kids[0], input, scope, path);
      return node.text === 'as' ? typeSpecifier(kids[1]) : 'unknown';
    }
    case 'LiteralTerm':
    case 'IndexInvocation':
    case 'TotalInvocation':
      return 'unknown';
    default:
      // operators: every operand is checked, the result is a value
      if (node.type.endsWith('Expression')) {
        for (const k of kids) locations(k, input, scope, path);
        return 'unknown';
      }
      throw new PatchPathError(`path "${path}": ${node.type} is not supported in a patch path`);
  }
}

/**
 * Checks every member the parsed path names against the model of `resourceType` and
 * returns what the path selects. PatchPathError names the path and the member.
 */
export function resolvePath(ast: unknown, path: string, resourceType: string): Locations {
  const root = isResourceType(resourceType) ? typeLocation(resourceType) : undefined;
  if (!root) throw new PatchPathError(`path "${path}": ${resourceType} is not a resource type`);
  return locations(ast as AstNode, [root], { self: [root], root }, path);
}
