/**
 * FHIR XML (xml.html) read into the value the JSON reader gives for the same resource,
 * with the decimals whose text a number would not keep noted by JSON Pointer, as
 * src/json/jsonReader.ts does: the rest of the server sees no difference.
 *
 * The structure comes from the R4 definitions (schema.ts): which elements repeat (JSON
 * arrays), which are primitives (`value` attribute; `id` and extensions go to `_name`),
 * which hold a resource (`contained`, `Bundle.entry.resource`, `Parameters…resource`) or
 * the narrative's XHTML `div` (kept as the text that was sent when it can be).
 *
 * Hostile input (decision 005): the parser (xmlEvents.ts, saxes) knows the five XML
 * entities only; a DOCTYPE (and with it every entity declaration, external or not) is refused as
 * soon as it is met, so nothing is ever expanded or fetched. Nesting, element count and
 * repetitions are capped as for JSON bodies, checked as the elements open.
 */
import { BadRequest, PayloadTooLarge, UnsupportedMediaType } from '../errors';
import type { DecimalTexts } from '../json/decimals';
import type { JsonLimits, JsonRead } from '../json/jsonReader';
import { Member, NUMBER_TYPES, resourceStruct, Struct } from './schema';
import { lineAndColumn, readXmlEvents, XmlSyntaxError, XmlTag } from './xmlEvents';

export const FHIR_NS = 'http://hl7.org/fhir';
export const XHTML_NS = 'http://www.w3.org/1999/xhtml';

/** NUL and unpaired halves of surrogate pairs (character references can make them). */
const UNSTORABLE = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const INTEGER = /^-?(?:0|[1-9]\d*)$/;
const DECIMAL = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/;

interface ObjectFrame {
  t: 'object';
  name: string;
  struct: Struct;
  obj: Record<string, unknown>;
  /** The frame it is in and its key there (`name/0`, `_given/1`): its JSON Pointer, built only when needed. */
  up?: ObjectFrame | WrapperFrame;
  key: string;
  pointer?: string;
  /** Repetitions of each element so far (array index of the next one). */
  counts?: Map<string, number>;
  /** Primitive arrays: values and `_` holders, set on the object when it closes. */
  primitives?: Map<string, { values: unknown[]; holders: unknown[] }>;
  /** For a primitive element: where its value goes when it closes. */
  primitive?: { parent: ObjectFrame; member: Member; value: unknown; index: number };
  /** For a resource: the wrapper element it goes into (undefined for the root). */
  wrapper?: WrapperFrame;
}

interface WrapperFrame {
  t: 'wrapper';
  parent: ObjectFrame;
  member: Member;
  index: number;
  up: ObjectFrame;
  key: string;
  pointer?: string;
  resource?: Record<string, unknown>;
}

interface XhtmlFrame {
  t: 'xhtml';
  parent: ObjectFrame;
  member: Member;
  index: number;
  start: number;
  depth: number;
  /** The element was written so that its text can be kept as it is (see `closeXhtml`). */
  verbatim: boolean;
  /** The same XHTML written again, for when it cannot. */
  rewritten: string[];
  /** An element was opened and not yet given content (to write `<br/>`). */
  pendingOpen: boolean;
}

type Frame = ObjectFrame | WrapperFrame | XhtmlFrame;

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', '\n': '&#10;', '\r': '&#13;', '\t': '&#9;' };
const escapeText = (s: string) => s.replace(/[&<>]/g, (c) => ESCAPES[c]);
/** An attribute value's text with what it cannot hold as it is written as references. */
export const escapeAttr = (s: string) => s.replace(/[&<>"\n\r\t]/g, (c) => ESCAPES[c]);

function bad(message: string): BadRequest {
  return new BadRequest(`FHIR XML: ${message}`, 'structure');
}

/** Reads a FHIR XML resource; throws BadRequest (400) or PayloadTooLarge (413) for what it refuses. */
export function readXml(text: string, limits: JsonLimits): JsonRead {
  const stack: Frame[] = [];
  /** Where the parser is, for messages. */
  let offset = 0;
  let decimals: DecimalTexts | undefined;
  let root: Record<string, unknown> | undefined;
  let nodes = 0;

  const where = (at = offset) => {
    const { line, column } = lineAndColumn(text, at);
    return ` (line ${line}, column ${column})`;
  };
  const fail = (message: string) => bad(message + where());

  const storable = (s: string, what: string) => {
    if (UNSTORABLE.test(s)) throw fail(`${what} holds a NUL character or an unpaired surrogate, which a FHIR string cannot hold`);
    return s;
  };

  const top = () => stack[stack.length - 1];

  /** The array index (or -1) of the next `member` element in `parent`, with the repetition limits checked. */
  const nextIndex = (parent: ObjectFrame, member: Member): number => {
    const counts = (parent.counts ??= new Map());
    const count = counts.get(member.name) ?? 0;
    if (count > 0 && !member.array) throw fail(`${member.name} appears more than once in ${parent.name}, which allows one`);
    if (count >= limits.maxArrayLength) throw new PayloadTooLarge(`FHIR XML: more than ${limits.maxArrayLength} ${member.name} elements in one ${parent.name} (JSON_MAX_ARRAY_LENGTH)`);
    counts.set(member.name, count + 1);
    return member.array ? count : -1;
  };
  const keyOf = (name: string, index: number) => (index >= 0 ? `${name}/${index}` : name);
  const pointerOf = (frame: ObjectFrame | WrapperFrame): string => (frame.pointer ??= `${frame.up ? pointerOf(frame.up) : ''}${frame.key ? `/${frame.key}` : ''}`);

  const put = (parent: ObjectFrame, member: Member, index: number, value: unknown) => {
    if (index < 0) parent.obj[member.name] = value;
    else ((parent.obj[member.name] ??= []) as unknown[])[index] = value;
  };

  const newResource = (tag: XmlTag, wrapper?: WrapperFrame): ObjectFrame => {
    if (tag.uri !== FHIR_NS) throw fail(`<${tag.name}> is not in the FHIR namespace ${FHIR_NS}`);
    const struct = resourceStruct(tag.local);
    if (!struct) throw fail(`${tag.local} is not an R4 resource type`);
    attributesOf(tag, struct, {});
    return { t: 'object', name: tag.local, struct, obj: { resourceType: tag.local }, up: wrapper, key: '', wrapper };
  };

  /** The attributes of a FHIR element: `id`, `url`, `value` as the struct allows; other namespaces are ignored (xsi:schemaLocation). */
  const attributesOf = (tag: XmlTag, struct: Struct, into: Record<string, unknown>, primitive?: boolean): string | undefined => {
    let value: string | undefined;
    for (const a of tag.attributes) {
      if (a.prefix === 'xmlns' || a.name === 'xmlns' || a.uri) continue;
      if (primitive && a.local === 'value') value = storable(a.value, `The value of ${tag.local}`);
      else if (struct.members.get(a.local)?.attribute) into[a.local] = storable(a.value, `The ${a.local} of ${tag.local}`);
      else throw fail(`<${tag.local}> has an attribute "${a.name}" that FHIR does not define there`);
    }
    return value;
  };

  const primitiveValue = (member: Member, text: string, pointer: () => string): unknown => {
    if (member.type === 'boolean') {
      if (text !== 'true' && text !== 'false') throw fail(`${member.name} must be true or false, got "${text}"`);
      return text === 'true';
    }
    if (!NUMBER_TYPES.has(member.type)) return text;
    if (member.type === 'decimal') {
      if (!DECIMAL.test(text)) throw fail(`${member.name} is not a decimal: "${text}"`);
      const n = Number(text);
      // 1.50 stays 1.50 (datatypes.html#decimal), as the JSON reader keeps it
      if (String(n) !== text) (decimals ??= new Map()).set(pointer(), text);
      return n;
    }
    if (!INTEGER.test(text)) throw fail(`${member.name} is not an integer: "${text}"`);
    return Number(text);
  };

  const openChild = (parent: ObjectFrame, tag: XmlTag) => {
    if (tag.uri !== FHIR_NS) throw fail(`<${tag.name}> is not in the FHIR namespace ${FHIR_NS}`);
    const member = parent.struct.members.get(tag.local);
    if (!member || member.attribute) throw fail(`${parent.name} has no element ${tag.local}`);
    const index = nextIndex(parent, member);
    switch (member.kind) {
      case 'resource': {
        attributesOf(tag, EMPTY, {});
        stack.push({ t: 'wrapper', parent, member, index, up: parent, key: keyOf(member.name, index) });
        return;
      }
      case 'xhtml':
        throw fail(`${member.name} must be an XHTML <div> in the namespace ${XHTML_NS}`);
      case 'primitive': {
        const struct = member.struct();
        const holder: Record<string, unknown> = {};
        const text = attributesOf(tag, struct, holder, true);
        const value = text === undefined ? undefined : primitiveValue(member, text, () => `${pointerOf(parent)}/${keyOf(member.name, index)}`);
        stack.push({ t: 'object', name: member.name, struct, obj: holder, up: parent, key: keyOf(`_${member.name}`, index), primitive: { parent, member, value, index } });
        return;
      }
      default: {
        const struct = member.struct();
        const obj: Record<string, unknown> = {};
        attributesOf(tag, struct, obj);
        put(parent, member, index, obj);
        stack.push({ t: 'object', name: member.name, struct, obj, up: parent, key: keyOf(member.name, index) });
      }
    }
  };

  const closeObject = (frame: ObjectFrame) => {
    if (frame.primitives) {
      for (const [name, { values, holders }] of frame.primitives) {
        if (values.some((v) => v !== null)) frame.obj[name] = values;
        else delete frame.obj[name];
        if (holders.some((h) => h !== null)) frame.obj[`_${name}`] = holders;
        else delete frame.obj[`_${name}`];
      }
    }
    if (frame.primitive) {
      const { parent, member, value, index } = frame.primitive;
      let holder: Record<string, unknown> | undefined;
      for (const _ in frame.obj) {
        holder = frame.obj;
        break;
      }
      if (value === undefined && !holder) throw fail(`${member.name} has neither a value nor an extension`);
      if (index < 0) {
        if (value !== undefined) parent.obj[member.name] = value;
        if (holder) parent.obj[`_${member.name}`] = holder;
      } else {
        const arrays = (parent.primitives ??= new Map());
        let entry = arrays.get(member.name);
        if (!entry) {
          arrays.set(member.name, (entry = { values: [], holders: [] }));
          // the members keep the place of their first element, as in the JSON the same resource gives
          parent.obj[member.name] = undefined;
          parent.obj[`_${member.name}`] = undefined;
        }
        entry.values[index] = value ?? null;
        entry.holders[index] = holder ?? null;
      }
    } else if (frame.wrapper) {
      if (frame.wrapper.resource) throw fail(`${frame.wrapper.member.name} holds more than one resource`);
      frame.wrapper.resource = frame.obj;
    } else if (stack.length === 0) root = frame.obj;
  };

  const openXhtml = (parent: ObjectFrame, tag: XmlTag) => {
    const member = parent.struct.members.get(tag.local);
    if (!member || member.kind !== 'xhtml') throw fail(`${parent.name} has no XHTML element ${tag.local}`);
    const index = nextIndex(parent, member);
    const declared = tag.prefix === '' && tag.attributes.some((a) => a.name === 'xmlns' && a.value === XHTML_NS);
    const frame: XhtmlFrame = { t: 'xhtml', parent, member, index, start: tag.start, depth: 0, verbatim: declared, rewritten: [], pendingOpen: false };
    stack.push(frame);
    xhtmlOpen(frame, tag);
  };

  const xhtmlOpen = (frame: XhtmlFrame, tag: XmlTag) => {
    if (tag.uri !== XHTML_NS) throw fail(`<${tag.name}> inside the narrative is not XHTML (${XHTML_NS})`);
    if (tag.prefix !== '') frame.verbatim = false;
    if (frame.pendingOpen) frame.rewritten.push('>');
    const out = [`<${tag.local}`];
    if (frame.depth === 0) out.push(` xmlns="${XHTML_NS}"`);
    for (const a of tag.attributes) {
      if (a.prefix === 'xmlns' || a.name === 'xmlns') continue;
      if (a.prefix && a.prefix !== 'xml') frame.verbatim = false;
      out.push(` ${a.prefix === 'xml' ? a.name : a.local}="${escapeAttr(storable(a.value, 'The narrative'))}"`);
    }
    frame.rewritten.push(out.join(''));
    frame.pendingOpen = true;
    frame.depth++;
  };

  const xhtmlContent = (frame: XhtmlFrame, s: string) => {
    if (frame.pendingOpen) frame.rewritten.push('>');
    frame.pendingOpen = false;
    frame.rewritten.push(s);
  };

  const closeXhtml = (frame: XhtmlFrame, tag: XmlTag, end: number) => {
    frame.depth--;
    if (frame.pendingOpen) frame.rewritten.push('/>');
    else frame.rewritten.push(`</${tag.local}>`);
    frame.pendingOpen = false;
    if (frame.depth > 0) return;
    stack.pop();
    // The text as sent when the div declares the XHTML namespace itself and uses no prefix:
    // it then reads the same out of context, as FHIR JSON carries it. Otherwise written again.
    const div = frame.verbatim ? text.slice(frame.start, end) : frame.rewritten.join('');
    put(frame.parent, frame.member, frame.index, storable(div, 'The narrative'));
  };

  const handler = {
    xmlDeclaration(declared: string | undefined) {
      // FHIR bodies are UTF-8 (http.html#mime-type): the body was decoded so, a declaration saying otherwise is refused
      const encoding = declared?.toLowerCase();
      if (encoding && encoding !== 'utf-8' && encoding !== 'utf8') throw new UnsupportedMediaType(`encoding ${encoding} is not supported: FHIR bodies are UTF-8`);
    },
    processingInstruction(target: string) {
      throw fail(`the processing instruction <?${target}?> is not accepted`);
    },
    comment(c: string) {
      const frame = top();
      if (frame?.t === 'xhtml') xhtmlContent(frame, `<!--${c}-->`);
    },
    text(t: string) {
      const frame = top();
      if (frame?.t === 'xhtml') xhtmlContent(frame, escapeText(storable(t, 'The narrative')));
      else if (/\S/.test(t)) throw fail(`text is not allowed ${frame?.t === 'object' ? `in ${frame.name}` : 'there'}: FHIR XML puts values in value attributes`);
    },
    cdata(t: string) {
      const frame = top();
      if (frame?.t === 'xhtml') xhtmlContent(frame, escapeText(storable(t, 'The narrative')));
      else throw fail('CDATA is only allowed inside the narrative');
    },
    openTag(tag: XmlTag) {
      offset = tag.start;
      if (++nodes > limits.maxNodes) throw new PayloadTooLarge(`FHIR XML: more than ${limits.maxNodes} elements (JSON_MAX_NODES)`);
      if (stack.length >= limits.maxDepth) throw new PayloadTooLarge(`FHIR XML: elements nested more than ${limits.maxDepth} deep (JSON_MAX_DEPTH)`);
      const frame = top();
      if (!frame) stack.push(newResource(tag));
      else if (frame.t === 'xhtml') xhtmlOpen(frame, tag);
      else if (frame.t === 'wrapper') {
        if (frame.resource) throw fail(`${frame.member.name} holds more than one resource`);
        stack.push(newResource(tag, frame));
      } else if (tag.uri === XHTML_NS) openXhtml(frame, tag);
      else openChild(frame, tag);
    },
    closeTag(tag: XmlTag, end: number) {
      offset = end;
      const frame = top();
      if (frame.t === 'xhtml') return closeXhtml(frame, tag, end);
      stack.pop();
      if (frame.t === 'object') closeObject(frame);
      else {
        if (!frame.resource) throw fail(`${frame.member.name} must hold a resource`);
        put(frame.parent, frame.member, frame.index, frame.resource);
      }
    },
  };

  try {
    readXmlEvents(text, handler);
  } catch (e) {
    if (e instanceof XmlSyntaxError) throw bad(`the body is not well-formed XML: ${e.message}${where(e.offset)}`);
    throw e;
  }
  if (!root) throw bad('the body holds no resource');
  return { value: root, decimals };
}

/** A wrapper element (`contained`, `resource`) takes no attribute that FHIR defines. */
const EMPTY: Struct = { name: 'resource', members: new Map(), attributes: [] };
