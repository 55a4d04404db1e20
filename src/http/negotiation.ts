import { NotAcceptable, UnsupportedMediaType } from './errors';

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
  /** The content type to answer JSON with. */
  contentType: string;
  accept: string;
}

/** _format wins over Accept, as the specification says. XML is not served: 406. */
export function negotiate(format: string | undefined, acceptHeader: string | undefined): Negotiated {
  if (format !== undefined) {
    const f = format.split(';')[0].trim().toLowerCase();
    if (JSON_FORMATS.has(f)) return { json: true, explicitJson: true, any: false, contentType: FHIR_JSON, accept: f };
    throw new NotAcceptable(`_format "${format}" is not supported: this server answers in FHIR JSON only (_format=json)`);
  }
  const accept = (acceptHeader ?? '*/*').trim() || '*/*';
  const types = accept.split(',').map((t) => t.split(';')[0].trim().toLowerCase());
  const explicitJson = types.some((t) => JSON_FORMATS.has(t));
  const any = types.some((t) => t === '*/*');
  const wildcardJson = types.some((t) => t === 'application/*');
  return {
    json: explicitJson || any || wildcardJson,
    explicitJson,
    any: true,
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
  const t = contentType.split(';')[0].trim().toLowerCase();
  if (t === 'application/json-patch+json') return 'json-patch';
  if (JSON_FORMATS.has(t)) return 'json';
  if (t === 'application/x-www-form-urlencoded') return 'form';
  if (rawAllowed) return 'raw';
  if (XML_FORMATS.has(t)) throw new UnsupportedMediaType(`Content-Type ${t} is not supported: send FHIR JSON (application/fhir+json)`);
  throw new UnsupportedMediaType(`Content-Type ${t} is not supported: send FHIR JSON (application/fhir+json)`);
}
