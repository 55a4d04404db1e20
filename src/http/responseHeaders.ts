import type { ServerResponse } from 'node:http';
import { servedContentType } from '../interactions/binaryContentType';

/**
 * Headers every answer carries, whatever its path or status
 * (docs/decisions/006-content-on-the-api-origin.md):
 * - no cache keeps a copy: nearly every answer carries patient data, and the few
 *   that do not (CapabilityStatement) are cheap to fetch again;
 * - no browser guesses a type other than the one sent;
 * - no URL of this server (ids, search parameters) leaks to another site through Referer;
 * - nothing served from this origin runs, loads anything, or is framed.
 */
export const EVERY_ANSWER: readonly (readonly [string, string])[] = [
  ['Cache-Control', 'no-store'],
  ['X-Content-Type-Options', 'nosniff'],
  ['Referrer-Policy', 'no-referrer'],
  ['Content-Security-Policy', "default-src 'none'; frame-ancestors 'none'; sandbox"],
];

export function setEveryAnswerHeaders(res: ServerResponse): void {
  for (const [name, value] of EVERY_ANSWER) res.setHeader(name, value);
}

/**
 * Raw Binary content is whatever a client uploaded (HTML, SVG, PDF …): served
 * from the API's own origin, a browser that renders it would run its scripts with
 * this origin's rights. It is therefore always a download, never rendered: a
 * program reading it (fetch, a FHIR client) is not affected by Content-Disposition.
 * The sandbox policy of every answer applies too, should a browser render it anyway.
 */
export function binaryHeaders(storedContentType: string): [string, string][] {
  return [
    ['Content-Type', servedContentType(storedContentType)],
    ['Content-Disposition', 'attachment'],
  ];
}
