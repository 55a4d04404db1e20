import { BadRequest, NotAcceptable, UnsupportedMediaType } from '../errors';
import { mediaTypeProblem } from '../interactions/binaryContentType';

export const FHIR_JSON = 'application/fhir+json';

const JSON_FORMATS = new Set(['json', 'application/json', 'application/fhir+json', 'application/json+fhir', 'text/json']);
const XML_FORMATS = new Set(['xml', 'application/xml', 'application/fhir+xml', 'application/xml+fhir', 'text/xml']);

export const FHIR_XML = 'application/fhir+xml';

/** The two FHIR formats this server reads and writes. */
export type FhirFormat = 'json' | 'xml';

/** What the client will take back: a FHIR format, or any type at all (for raw Binary). */
export interface Negotiated {
  /** The FHIR format to answer in; undefined when the client accepts neither. */
  format: FhirFormat | undefined;
  /** The client named a FHIR JSON or XML type explicitly (a raw Binary read then answers with the resource). */
  explicitFhir: boolean;
  /** The client accepts any type (a raw Binary can be sent). */
  any: boolean;
  /** The content type to answer with. */
  contentType: string;
  accept: string;
  /** The Accept ranges the client may take (q > 0), highest q first, the first named among equals; empty for _format. */
  ranges: MediaRange[];
}

/** The XML types that name FHIR XML even for Binary, where application/xml and text/xml are content (a CDA document). */
const FHIR_XML_TYPES = new Set(['application/fhir+xml', 'application/xml+fhir']);

/** FHIR versions this server speaks, as the fhirVersion media-type parameter names them (http.html#version-parameter). */
const FHIR_VERSIONS = new Set(['4.0', '4.0.1']);

export interface MediaRange {
  type: string;
  fhirVersion: string | undefined;
  q: number;
}

function mediaRange(text: string): MediaRange {
  const [type, ...params] = text.split(';');
  let fhirVersion: string | undefined;
  let q = 1;
  for (const p of params) {
    const [k, v] = p.split('=').map((s) => s.trim());
    if (k.toLowerCase() === 'fhirversion' && v) fhirVersion = v.replace(/^"|"$/g, '');
    if (k.toLowerCase() === 'q' && v !== undefined && /^[01](\.\d{0,3})?$/.test(v)) q = Number(v);
  }
  return { type: type.trim().toLowerCase(), fhirVersion, q };
}

const speaks = (r: MediaRange) => r.fhirVersion === undefined || FHIR_VERSIONS.has(r.fhirVersion);

/** The format a media type names: FHIR JSON, FHIR XML, or JSON by default for a wildcard. */
function formatOf(type: string): FhirFormat | undefined {
  if (JSON_FORMATS.has(type) || type === '*/*' || type === 'application/*') return 'json';
  if (XML_FORMATS.has(type)) return 'xml';
  return undefined;
}

/** The type to answer with: the FHIR one, unless the client named only the generic one (application/json, application/xml). */
function answerType(format: FhirFormat, types: string[]): string {
  if (format === 'json') return types.includes('application/json') && !types.includes(FHIR_JSON) ? 'application/json' : FHIR_JSON;
  return types.includes('application/xml') && !types.includes(FHIR_XML) ? 'application/xml' : FHIR_XML;
}

/** _format wins over Accept, as the specification says; in Accept, the highest q first, then the first named. */
export function negotiate(format: string | undefined, acceptHeader: string | undefined): Negotiated {
  if (format !== undefined) {
    const f = format.split(';')[0].trim().toLowerCase();
    const chosen = JSON_FORMATS.has(f) ? 'json' : XML_FORMATS.has(f) ? 'xml' : undefined;
    if (!chosen) throw new NotAcceptable(`_format "${format}" is not supported: this server answers in FHIR JSON (_format=json) or FHIR XML (_format=xml)`);
    return { format: chosen, explicitFhir: true, any: false, contentType: chosen === 'json' ? FHIR_JSON : FHIR_XML, accept: f, ranges: [] };
  }
  const accept = (acceptHeader ?? '*/*').trim() || '*/*';
  // a FHIR type for another FHIR version is not one this server can answer with; q=0 means "not this"
  const ranges = accept
    .split(',')
    .map(mediaRange)
    .filter((r) => speaks(r) && r.q > 0);
  const types = ranges.map((r) => r.type);
  const ordered = [...ranges].sort((a, b) => b.q - a.q);
  const chosen = ordered.map((r) => formatOf(r.type)).find((f) => f !== undefined);
  return {
    format: chosen,
    // A browser names application/xml below text/html: it wants a raw Binary's content, not the resource
    explicitFhir: types.some((t) => JSON_FORMATS.has(t) || FHIR_XML_TYPES.has(t)) || XML_FORMATS.has(ordered[0]?.type ?? ''),
    any: true,
    contentType: chosen ? answerType(chosen, types) : FHIR_JSON,
    accept,
    ranges: ordered,
  };
}

/** Two names of one XML content (RFC 7303): a CDA stored as text/xml is what a client asking application/xml wants. */
const XML_CONTENT = new Set(['application/xml', 'text/xml']);

/**
 * Whether a Binary read answers with the stored content rather than the Binary resource
 * (docs/decisions/011-fhir-xml.md, Binary): the content whenever the client names its own
 * type before any type that can only mean a FHIR resource — so a CDA stored as
 * application/xml comes back raw to `Accept: application/xml` or `text/xml` (ITI-68), and a
 * JSON document to `application/json`. Otherwise the rule for every Binary holds: the
 * resource when the client asked for FHIR JSON or XML, the content when it did not.
 */
export function binaryAsContent(n: Negotiated, storedContentType: string): boolean {
  const own = mediaRange(storedContentType).type;
  const isOwn = (t: string) => t === own || (XML_CONTENT.has(own) && XML_CONTENT.has(t));
  const first = n.ranges.find((r) => isOwn(r.type) || FHIR_ONLY_TYPES.has(r.type));
  if (first) return isOwn(first.type);
  return !n.explicitFhir;
}

/** Types that name nothing but a FHIR resource. */
const FHIR_ONLY_TYPES = new Set(['application/fhir+json', 'application/json+fhir', 'application/fhir+xml', 'application/xml+fhir']);

export function assertFhirAcceptable(n: Negotiated): void {
  if (!n.format) throw new NotAcceptable(`Accept "${n.accept}" cannot be served: this server answers in FHIR JSON (application/fhir+json) or FHIR XML (application/fhir+xml)`);
}

export type BodyKind = 'json' | 'xml' | 'json-patch' | 'form' | 'raw';

/** Classifies a request body's content type; other formats are refused with 415. */
export function bodyKind(contentType: string | undefined, rawAllowed: boolean): BodyKind | undefined {
  if (!contentType) return undefined;
  const range = mediaRange(contentType);
  const t = range.type;
  if (!speaks(range) && (JSON_FORMATS.has(t) || XML_FORMATS.has(t))) {
    throw new UnsupportedMediaType(`fhirVersion ${range.fhirVersion} is not supported: this server speaks FHIR R4 (fhirVersion=4.0)`);
  }
  if (t === 'application/json-patch+json') return 'json-patch';
  if (JSON_FORMATS.has(t)) return 'json';
  if (t === 'application/x-www-form-urlencoded') return 'form';
  if (FHIR_XML_TYPES.has(t) || (!rawAllowed && XML_FORMATS.has(t))) return 'xml';
  if (rawAllowed) {
    // raw content is served back with this Content-Type: refused before a byte of the body is read
    const problem = mediaTypeProblem(contentType.trim());
    if (problem) throw new BadRequest(`The Content-Type of the Binary content ${problem}`, 'invalid');
    return 'raw';
  }
  throw new UnsupportedMediaType(`Content-Type ${t} is not supported: send FHIR JSON (application/fhir+json) or FHIR XML (application/fhir+xml)`);
}
