import { BadRequest, NotAcceptable, UnsupportedMediaType } from '../errors';
import { mediaTypeProblem } from '../interactions/binaryContentType';

export const FHIR_JSON = 'application/fhir+json';

const JSON_FORMATS = new Set(['json', 'application/json', 'application/fhir+json', 'application/json+fhir', 'text/json']);
const XML_FORMATS = new Set(['xml', 'application/xml', 'application/fhir+xml', 'application/xml+fhir', 'text/xml']);

/** What the client will take back: FHIR JSON (the only format served), or any type at all (for raw Binary). */
export interface Negotiated {
  /** The client accepts FHIR JSON (explicitly or through a wildcard). */
  json: boolean;
  /** The client named FHIR JSON or application/json explicitly (a raw Binary read then answers with the resource). */
  explicitJson: boolean;
  /** The client accepts any type (a raw Binary can be sent). */
  any: boolean;
  /** The client named a FHIR XML type and no JSON: a raw Binary is not what it asked for either. */
  xmlOnly: boolean;
  /** The content type to answer JSON with. */
  contentType: string;
  accept: string;
}

/** FHIR versions this server speaks, as the fhirVersion media-type parameter names them (http.html#version-parameter). */
const FHIR_VERSIONS = new Set(['4.0', '4.0.1']);

interface MediaRange {
  type: string;
  fhirVersion: string | undefined;
}

function mediaRange(text: string): MediaRange {
  const [type, ...params] = text.split(';');
  let fhirVersion: string | undefined;
  for (const p of params) {
    const [k, v] = p.split('=').map((s) => s.trim());
    if (k.toLowerCase() === 'fhirversion' && v) fhirVersion = v.replace(/^"|"$/g, '');
  }
  return { type: type.trim().toLowerCase(), fhirVersion };
}

const speaks = (r: MediaRange) => r.fhirVersion === undefined || FHIR_VERSIONS.has(r.fhirVersion);

/** _format wins over Accept, as the specification says. XML is not served: 406. */
export function negotiate(format: string | undefined, acceptHeader: string | undefined): Negotiated {
  if (format !== undefined) {
    const f = format.split(';')[0].trim().toLowerCase();
    if (JSON_FORMATS.has(f)) return { json: true, explicitJson: true, any: false, xmlOnly: false, contentType: FHIR_JSON, accept: f };
    throw new NotAcceptable(`_format "${format}" is not supported: this server answers in FHIR JSON only (_format=json)`);
  }
  const accept = (acceptHeader ?? '*/*').trim() || '*/*';
  const ranges = accept.split(',').map(mediaRange);
  // a FHIR type for another FHIR version is not one this server can answer with
  const types = ranges.filter(speaks).map((r) => r.type);
  const explicitJson = types.some((t) => JSON_FORMATS.has(t));
  const xmlOnly = !explicitJson && ranges.some((r) => XML_FORMATS.has(r.type)) && !types.some((t) => t === '*/*' || t === 'application/*');
  const any = types.some((t) => t === '*/*');
  const wildcardJson = types.some((t) => t === 'application/*');
  return {
    json: explicitJson || any || wildcardJson,
    explicitJson,
    any: true,
    xmlOnly,
    contentType: types.includes('application/json') && !types.includes(FHIR_JSON) ? 'application/json' : FHIR_JSON,
    accept,
  };
}

export function assertJsonAcceptable(n: Negotiated): void {
  if (!n.json) throw new NotAcceptable(`Accept "${n.accept}" cannot be served: this server answers in FHIR JSON only (application/fhir+json)`);
}

export type BodyKind = 'json' | 'json-patch' | 'form' | 'raw';

/** Classifies a request body's content type; FHIR XML and other formats are refused with 415. */
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
  if (rawAllowed) {
    // raw content is served back with this Content-Type: refused before a byte of the body is read
    const problem = mediaTypeProblem(contentType.trim());
    if (problem) throw new BadRequest(`The Content-Type of the Binary content ${problem}`, 'invalid');
    return 'raw';
  }
  if (XML_FORMATS.has(t)) throw new UnsupportedMediaType(`Content-Type ${t} is not supported: send FHIR JSON (application/fhir+json)`);
  throw new UnsupportedMediaType(`Content-Type ${t} is not supported: send FHIR JSON (application/fhir+json)`);
}
