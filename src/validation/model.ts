/**
 * A StructureDefinition snapshot compiled into a tree of element nodes, once per
 * definition (cached by the conformance store).
 */

export interface TypeRef {
  /** FHIR type code (System.String & co. are mapped to their FHIR primitive). */
  code: string;
  profiles: string[];
  targetProfiles: string[];
}

export interface Discriminator {
  type: 'value' | 'pattern' | 'type' | 'profile' | 'exists';
  path: string;
}

export interface Constraint {
  key: string;
  severity: 'error' | 'warning';
  human: string;
  expression?: string;
  source: string;
  /** true when the constraint comes from a core (hl7.org/fhir) definition */
  core: boolean;
}

export interface ElementNode {
  id: string;
  path: string;
  /** last path segment, e.g. `name`, `value[x]` */
  name: string;
  /** for choice elements, the name without `[x]` */
  choicePrefix?: string;
  sliceName?: string;
  min: number;
  max: number;
  maxText: string;
  /** cardinality in the base definition (ElementDefinition.base) */
  baseMin: number;
  baseMaxText: string;
  /** does the JSON property hold an array? (from base.max) */
  isArray: boolean;
  /** the path of the element in its base definition (base.path) */
  basePath: string;
  types: TypeRef[];
  children: ElementNode[];
  childByName: Map<string, ElementNode>;
  choiceChildren: ElementNode[];
  slicing?: { discriminator: Discriminator[]; rules: 'open' | 'closed' | 'openAtEnd'; ordered: boolean };
  slices: ElementNode[];
  fixed?: { type: string; value: any };
  pattern?: { type: string; value: any };
  binding?: { strength: string; valueSet?: string };
  constraints: Constraint[];
  contentReference?: string;
  maxLength?: number;
  /** minValue[x] / maxValue[x]: a number, a date, dateTime, instant or time, or a Quantity */
  minValue?: { type: string; value: any };
  maxValue?: { type: string; value: any };
  isModifier: boolean;
  structure: CompiledStructure;
  parent?: ElementNode;
}

export interface CompiledStructure {
  url: string;
  version?: string;
  name: string;
  type: string;
  kind: string;
  derivation?: string;
  abstract: boolean;
  sd: any;
  root: ElementNode;
  byId: Map<string, ElementNode>;
  /** is this one of the official core definitions? */
  core: boolean;
  /** context of use, for extensions */
  context?: { type: string; expression: string }[];
  contextInvariant?: string[];
}

const FHIR_TYPE_EXT = 'http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type';
const SYSTEM_TYPES: Record<string, string> = {
  'http://hl7.org/fhirpath/System.String': 'string',
  'http://hl7.org/fhirpath/System.Boolean': 'boolean',
  'http://hl7.org/fhirpath/System.Integer': 'integer',
  'http://hl7.org/fhirpath/System.Decimal': 'decimal',
  'http://hl7.org/fhirpath/System.Date': 'date',
  'http://hl7.org/fhirpath/System.DateTime': 'dateTime',
  'http://hl7.org/fhirpath/System.Time': 'time',
};

export function typeCodeOf(t: any): string {
  const code: string = t.code ?? '';
  if (code.startsWith('http://hl7.org/fhirpath/')) {
    const ext = (t.extension ?? []).find((e: any) => e.url === FHIR_TYPE_EXT);
    const v = ext?.valueUrl ?? ext?.valueUri ?? ext?.valueString;
    return v ?? SYSTEM_TYPES[code] ?? 'string';
  }
  return code;
}

function firstKeyWithPrefix(e: any, prefix: string): string | undefined {
  for (const k of Object.keys(e)) {
    if (k.startsWith(prefix) && k.length > prefix.length && /[A-Z]/.test(k[prefix.length])) return k;
  }
  return undefined;
}

function lcFirst(s: string): string {
  return s[0].toLowerCase() + s.slice(1);
}

/** `fixedCodeableConcept` → CodeableConcept; `fixedUri` → uri */
function valueTypeFromKey(key: string, prefix: string): string {
  const t = key.slice(prefix.length);
  // primitive types are lower-case in FHIR (except when camel: dateTime, base64Binary, positiveInt...)
  const lc = lcFirst(t);
  const primitive = new Set([
    'boolean', 'integer', 'string', 'decimal', 'uri', 'url', 'canonical', 'base64Binary', 'instant', 'date',
    'dateTime', 'time', 'code', 'oid', 'id', 'markdown', 'unsignedInt', 'positiveInt', 'uuid', 'xhtml',
  ]);
  return primitive.has(lc) ? lc : t;
}

const CORE_PREFIX = 'http://hl7.org/fhir/StructureDefinition/';

export function compileStructure(sd: any, core: boolean): CompiledStructure {
  const elements: any[] = sd.snapshot?.element ?? [];
  const structure: CompiledStructure = {
    url: sd.url,
    version: sd.version,
    name: sd.name ?? sd.id,
    type: sd.type,
    kind: sd.kind,
    derivation: sd.derivation,
    abstract: !!sd.abstract,
    sd,
    root: undefined as any,
    byId: new Map(),
    core,
    context: sd.context,
    contextInvariant: sd.contextInvariant,
  };
  for (let i = 0; i < elements.length; i++) {
    const e = elements[i];
    const id: string = e.id ?? synthId(e);
    const path: string = e.path;
    const segs = path.split('.');
    const name = segs[segs.length - 1];
    const maxText: string = e.max ?? '*';
    const baseMax: string = e.base?.max ?? maxText;
    const node: ElementNode = {
      id,
      path,
      name,
      choicePrefix: name.endsWith('[x]') ? name.slice(0, -3) : undefined,
      sliceName: e.sliceName,
      min: e.min ?? 0,
      max: maxText === '*' ? Infinity : parseInt(maxText, 10),
      maxText,
      baseMin: e.base?.min ?? e.min ?? 0,
      baseMaxText: baseMax,
      isArray: baseMax !== '1' && baseMax !== '0',
      basePath: e.base?.path ?? path,
      types: (e.type ?? []).map((t: any) => ({
        code: typeCodeOf(t),
        profiles: t.profile ?? [],
        targetProfiles: t.targetProfile ?? [],
      })),
      children: [],
      childByName: new Map(),
      choiceChildren: [],
      slices: [],
      constraints: (e.constraint ?? [])
        .filter((c: any) => c.severity === 'error' || c.severity === 'warning')
        .map((c: any) => ({
          key: c.key,
          severity: c.severity,
          human: c.human ?? '',
          expression: c.expression,
          source: c.source ?? sd.url,
          core: (c.source ?? sd.url ?? '').startsWith(CORE_PREFIX) && core,
        })),
      contentReference: e.contentReference,
      maxLength: e.maxLength,
      isModifier: !!e.isModifier,
      structure,
    };
    // the root of a resource / type has no base array-ness
    if (i === 0) node.isArray = false;
    if (e.slicing) {
      node.slicing = {
        discriminator: (e.slicing.discriminator ?? []).map((d: any) => ({ type: d.type, path: d.path })),
        rules: e.slicing.rules ?? 'open',
        ordered: !!e.slicing.ordered,
      };
    }
    const fk = firstKeyWithPrefix(e, 'fixed');
    if (fk) node.fixed = { type: valueTypeFromKey(fk, 'fixed'), value: e[fk] };
    const pk = firstKeyWithPrefix(e, 'pattern');
    if (pk) node.pattern = { type: valueTypeFromKey(pk, 'pattern'), value: e[pk] };
    const mink = firstKeyWithPrefix(e, 'minValue');
    if (mink && e[mink] !== undefined && e[mink] !== null) node.minValue = { type: valueTypeFromKey(mink, 'minValue'), value: e[mink] };
    const maxk = firstKeyWithPrefix(e, 'maxValue');
    if (maxk && e[maxk] !== undefined && e[maxk] !== null) node.maxValue = { type: valueTypeFromKey(maxk, 'maxValue'), value: e[maxk] };
    if (e.binding) node.binding = { strength: e.binding.strength, valueSet: e.binding.valueSet };

    structure.byId.set(id, node);
    if (i === 0) {
      structure.root = node;
      continue;
    }
    // attach to parent or slicing owner
    const lastDot = lastSegmentStart(id);
    const lastSeg = id.slice(lastDot);
    const colon = lastSeg.indexOf(':');
    if (colon >= 0) {
      // slice (or re-slice `a:b/c`): owner = same id with the last slice name removed
      const sliceSpec = lastSeg.slice(colon + 1);
      const slash = sliceSpec.lastIndexOf('/');
      const ownerId =
        slash >= 0 ? id.slice(0, lastDot) + lastSeg.slice(0, colon + 1) + sliceSpec.slice(0, slash) : id.slice(0, lastDot) + lastSeg.slice(0, colon);
      const owner = structure.byId.get(ownerId);
      if (owner) {
        owner.slices.push(node);
        node.parent = owner.parent;
        continue;
      }
    }
    const parentId = lastDot > 0 ? id.slice(0, lastDot - 1) : '';
    const parent = structure.byId.get(parentId);
    if (parent) {
      node.parent = parent;
      parent.children.push(node);
      if (node.choicePrefix) parent.choiceChildren.push(node);
      else parent.childByName.set(name, node);
    }
  }
  if (!structure.root) {
    structure.root = {
      id: sd.type,
      path: sd.type,
      name: sd.type,
      min: 0,
      max: Infinity,
      maxText: '*',
      baseMin: 0,
      baseMaxText: '*',
      isArray: false,
      basePath: sd.type,
      types: [],
      children: [],
      childByName: new Map(),
      choiceChildren: [],
      slices: [],
      constraints: [],
      isModifier: false,
      structure,
    };
  }
  return structure;
}

/** index of the first char of the last segment of an element id (dots inside slice names are ignored) */
function lastSegmentStart(id: string): number {
  // slice names may contain '.', so scan from the start tracking whether we're in a slice name
  let last = 0;
  let inSlice = false;
  for (let i = 0; i < id.length; i++) {
    const c = id[i];
    if (c === ':') inSlice = true;
    else if (c === '.') {
      // a '.' after a slice name ends it only if followed by a lower-case element name char
      if (inSlice) {
        // heuristic: slice names rarely contain '.', treat '.' as a separator
        inSlice = false;
      }
      last = i + 1;
    }
  }
  return last;
}

function synthId(e: any): string {
  return e.sliceName ? `${e.path}:${e.sliceName}` : e.path;
}

/** Resolve `#Questionnaire.item` within a structure. */
export function resolveContentReference(node: ElementNode): ElementNode | undefined {
  const ref = node.contentReference;
  if (!ref) return undefined;
  const hash = ref.indexOf('#');
  const id = ref.slice(hash + 1);
  return node.structure.byId.get(id) ?? [...node.structure.byId.values()].find((n) => n.path === id && !n.sliceName);
}
