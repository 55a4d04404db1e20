/**
 * A FHIR JSON resource written as FHIR XML (xml.html): elements in the order of the R4
 * definitions, primitives as `value` attributes with their `_name` id and extensions,
 * `id` and `url` as attributes, resources inside their wrapper element, the narrative's
 * XHTML as it is. Decimals are written with the text they were received with (`decimals`,
 * by JSON Pointer, as src/json/decimals.ts keeps them).
 */
import { NotAcceptable } from '../errors';
import type { DecimalTexts } from '../json/decimals';
import { escapeAttr as escapeCharacters, FHIR_NS } from './readXml';
import { Member, resourceStruct, Struct } from './schema';

/** A value the R4 definitions cannot place: the resource was not valid FHIR. */
export class XmlWriteError extends Error {}

/** What an attribute value cannot hold as it is, and the characters XML 1.0 cannot carry at all. */
const ATTR = /[&<>"\n\r\t\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/;
const NOT_XML_CHAR = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/;

function escapeAttr(s: string): string {
  if (!ATTR.test(s)) return s;
  const bad = NOT_XML_CHAR.exec(s);
  // a FHIR string may hold U+0001 (JSON escapes it); XML 1.0 has no way to write it, not even as a reference
  if (bad) throw new NotAcceptable(`The answer holds the character U+${bad[0].charCodeAt(0).toString(16).padStart(4, '0').toUpperCase()}, which XML cannot carry: ask for FHIR JSON`);
  return escapeCharacters(s);
}

type Json = Record<string, unknown>;

/** The XML text of a FHIR resource given as parsed JSON; `pretty`: one element a line, indented (`_pretty`). */
export function writeXml(resource: Json, decimals?: DecimalTexts, options: { pretty?: boolean } = {}): string {
  const out: string[] = [];
  new Writer(out, decimals, options.pretty ?? false).resource(resource, '', true);
  return out.join('');
}

class Writer {
  private depth = 0;

  constructor(
    private readonly out: string[],
    private readonly decimals: DecimalTexts | undefined,
    private readonly pretty: boolean,
  ) {}

  /** What goes before a tag: nothing, or a new line indented to the depth (the narrative keeps its own text). */
  private line(): string {
    return this.pretty ? `\n${'  '.repeat(this.depth)}` : '';
  }

  resource(obj: Json, pointer: string, root: boolean): void {
    const type = obj.resourceType;
    const struct = typeof type === 'string' ? resourceStruct(type) : undefined;
    if (!struct) throw new XmlWriteError(`${pointer || 'the root'} is not an R4 resource (resourceType ${JSON.stringify(type)})`);
    this.out.push(root ? `<${type} xmlns="${FHIR_NS}">` : `${this.line()}<${type}>`);
    this.depth++;
    this.children(struct, obj, pointer, true);
    this.depth--;
    this.out.push(`${this.line()}</${type}>`);
  }

  /** The child elements of `obj`, in the order of its type's definition. */
  children(struct: Struct, obj: Json, pointer: string, isResource = false): void {
    const members: Member[] = [];
    for (const key of Object.keys(obj)) {
      if (isResource && key === 'resourceType') continue;
      const name = key.charCodeAt(0) === 95 ? key.slice(1) : key;
      const member = struct.members.get(name);
      if (!member) throw new XmlWriteError(`${struct.name} has no element ${name} (${pointer}/${key})`);
      if (member.attribute || (name !== key && name in obj)) continue;
      members.push(member);
    }
    if (members.length > 1) members.sort((a, b) => a.order - b.order);
    for (const member of members) {
      const name = member.name;
      const value = obj[name];
      const extra = obj[`_${name}`];
      if (member.array) {
        const values = value === undefined || value === null ? [] : Array.isArray(value) ? value : [value];
        const extras = extra === undefined || extra === null ? [] : Array.isArray(extra) ? extra : [extra];
        const n = Math.max(values.length, extras.length);
        for (let i = 0; i < n; i++) this.element(member, values[i], extras[i], `${pointer}/${name}/${i}`);
      } else this.element(member, value, extra, `${pointer}/${name}`);
    }
  }

  element(member: Member, value: unknown, extra: unknown, pointer: string): void {
    const out = this.out;
    const name = member.name;
    switch (member.kind) {
      case 'primitive': {
        const holder = extra && typeof extra === 'object' ? (extra as Json) : undefined;
        if ((value === undefined || value === null) && !holder) return;
        let open = `<${name}`;
        if (typeof holder?.id === 'string') open += ` id="${escapeAttr(holder.id)}"`;
        if (value !== undefined && value !== null) open += ` value="${this.primitive(member, value, pointer)}"`;
        const line = this.line();
        if (holder && holder.extension !== undefined) {
          out.push(line + open + '>');
          this.depth++;
          this.children(member.struct(), holder, pointer.replace(/\/([^/]+)(\/\d+)?$/, (_m, n: string, i = '') => `/_${n}${i}`));
          this.depth--;
          out.push(`${line}</${name}>`);
        } else out.push(line + open + '/>');
        return;
      }
      case 'xhtml':
        // FHIR JSON carries the div as XHTML text with its namespace: it is XML as it is
        if (typeof value !== 'string') throw new XmlWriteError(`${pointer} is not XHTML text`);
        out.push(this.line() + value);
        return;
      case 'resource':
        if (!value || typeof value !== 'object') throw new XmlWriteError(`${pointer} is not a resource`);
        const line = this.line();
        out.push(`${line}<${name}>`);
        this.depth++;
        this.resource(value as Json, pointer, false);
        this.depth--;
        out.push(`${line}</${name}>`);
        return;
      default: {
        if (!value || typeof value !== 'object' || Array.isArray(value)) throw new XmlWriteError(`${pointer} is not an object`);
        const obj = value as Json;
        const struct = member.struct();
        let open = `<${name}`;
        for (const a of struct.attributes) {
          const v = obj[a.name];
          if (v !== undefined && v !== null) open += ` ${a.name}="${escapeAttr(String(v))}"`;
        }
        const line = this.line();
        const at = out.length;
        out.push(line + open + '>');
        this.depth++;
        this.children(struct, obj, pointer);
        this.depth--;
        if (out.length === at + 1) out[at] = line + open + '/>';
        else out.push(`${line}</${name}>`);
      }
    }
  }

  primitive(member: Member, value: unknown, pointer: string): string {
    if (typeof value === 'string') return escapeAttr(value);
    if (typeof value === 'number') {
      if (member.type === 'decimal' && this.decimals) {
        const text = this.decimals.get(pointer);
        if (text !== undefined && Number(text) === value) return text;
      }
      return String(value);
    }
    if (typeof value === 'boolean') return value ? 'true' : 'false';
    throw new XmlWriteError(`${pointer} is not a primitive value`);
  }
}
