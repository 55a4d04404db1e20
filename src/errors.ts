import type { OperationOutcome, OperationOutcomeIssue } from 'fhir/r4';

/**
 * Domain errors. Interactions throw these; the HTTP layer turns them into an
 * OperationOutcome and a status in one place (src/http/app.ts (sendError)).
 */
export type IssueCode = OperationOutcomeIssue['code'];

export interface Issue {
  severity: 'fatal' | 'error' | 'warning' | 'information';
  code: IssueCode;
  diagnostics: string;
  expression?: string[];
  /**
   * A code a client acts on (issue.details): one of ours in `coding`, e.g. a record refused
   * because opposed; or, for an MHD submission, the XDS error code in `text`.
   */
  details?: { coding?: { system: string; code: string }[]; text?: string };
}

export class FhirError extends Error {
  readonly issues: Issue[];

  constructor(
    readonly status: number,
    issues: Issue[],
    readonly headers: Record<string, string> = {},
  ) {
    const kept = capIssues(issues);
    super(kept.map((i) => i.diagnostics).join('; '));
    this.issues = kept;
    this.name = new.target.name;
  }
}

/**
 * Most issues one OperationOutcome carries. The validator reports every element it
 * refuses: a body of a few hundred kilobytes of empty objects made an outcome of 170 MB.
 */
export const MAX_OUTCOME_ISSUES = 100;

const SEVERITY_RANK: Record<Issue['severity'], number> = { fatal: 0, error: 1, warning: 2, information: 3 };

/**
 * At most MAX_OUTCOME_ISSUES issues: past that, the most severe first (in their order
 * otherwise), so that an outcome that has an error shows one, and a last issue that says
 * how many were left out. A list already capped is returned as it is.
 */
export function capIssues(issues: Issue[]): Issue[] {
  if (issues.length <= MAX_OUTCOME_ISSUES) return issues;
  const ranked = issues.map((issue, index) => ({ issue, index }));
  ranked.sort((a, b) => SEVERITY_RANK[a.issue.severity] - SEVERITY_RANK[b.issue.severity] || a.index - b.index);
  const kept = ranked.slice(0, MAX_OUTCOME_ISSUES - 1).map((r) => r.issue);
  const left = issues.length - kept.length;
  return [...kept, { severity: 'information', code: 'informational', diagnostics: `and ${left} more issues (an OperationOutcome here carries at most ${MAX_OUTCOME_ISSUES})` }];
}

const single = (code: IssueCode, diagnostics: string, expression?: string[]): Issue[] => [
  { severity: 'error', code, diagnostics, ...(expression ? { expression } : {}) },
];

export class BadRequest extends FhirError {
  constructor(diagnostics: string, code: IssueCode = 'invalid', expression?: string[]) {
    super(400, single(code, diagnostics, expression));
  }
}
export class NotFound extends FhirError {
  constructor(diagnostics: string) {
    super(404, single('not-found', diagnostics));
  }
}
export class Gone extends FhirError {
  constructor(diagnostics: string, headers: Record<string, string> = {}) {
    super(410, single('deleted', diagnostics), headers);
  }
}
export class MethodNotAllowed extends FhirError {
  /** `allow`: the methods the target does accept (RFC 9110 §15.5.6: a 405 carries Allow). */
  constructor(diagnostics: string, allow?: string[]) {
    super(405, single('not-supported', diagnostics), allow ? { Allow: allow.join(', ') } : {});
  }
}
/** A single byte range past the end of a Binary's content (RFC 9110 §15.5.17). */
export class RangeNotSatisfiable extends FhirError {
  constructor(length: number) {
    super(416, single('invalid', `The requested range is not within the content's ${length} bytes`), { 'Content-Range': `bytes */${length}` });
  }
}

export class NotAcceptable extends FhirError {
  constructor(diagnostics: string) {
    super(406, single('not-supported', diagnostics));
  }
}
export class PreconditionFailed extends FhirError {
  constructor(diagnostics: string) {
    super(412, single('conflict', diagnostics));
  }
}
export class Conflict extends FhirError {
  constructor(diagnostics: string) {
    super(409, single('conflict', diagnostics));
  }
}
export class PayloadTooLarge extends FhirError {
  constructor(diagnostics: string) {
    super(413, single('too-costly', diagnostics));
  }
}
export class UnsupportedMediaType extends FhirError {
  constructor(diagnostics: string) {
    super(415, single('not-supported', diagnostics));
  }
}
export class Unprocessable extends FhirError {
  constructor(issues: Issue[]) {
    super(422, issues);
  }
}
/**
 * RFC 6750 §3: an error_description is a quoted-string limited to printable ASCII without
 * `"` or `\`. Anything else is replaced, so a message can never break the header.
 */
function challengeText(text: string): string {
  return text.replace(/[^\x20\x21\x23-\x5b\x5d-\x7e]/g, ' ').slice(0, 300);
}

/**
 * 401: no credentials, or credentials refused. `tokenSent` says whether the request carried
 * a bearer token: without one the challenge carries no error code (RFC 6750 §3.1).
 */
export class Unauthorized extends FhirError {
  constructor(diagnostics: string, tokenSent = true) {
    super(
      401,
      single('login', diagnostics),
      {
        'WWW-Authenticate': tokenSent
          ? `Bearer error="invalid_token", error_description="${challengeText(diagnostics)}"`
          : 'Bearer',
      },
    );
  }
}

/**
 * 403: the caller is known and not allowed. `missingScope` names the scope a request would
 * need when the token's scopes are what refused it (RFC 6750 §3.1 insufficient_scope).
 */
export class Forbidden extends FhirError {
  constructor(diagnostics: string, missingScope?: string) {
    super(
      403,
      single('forbidden', diagnostics),
      missingScope
        ? { 'WWW-Authenticate': `Bearer error="insufficient_scope", scope="${challengeText(missingScope)}"` }
        : {},
    );
  }
}
/**
 * 403 for a whole record, with the code of why in issue.details (opposed, closed, of age:
 * docs/decisions/017-record-lifecycle.md), so that a sending software can act on it.
 */
export class RecordForbidden extends Forbidden {
  constructor(diagnostics: string, system: string, code: string) {
    super(diagnostics);
    (this.issues as Issue[])[0] = { ...this.issues[0], details: { coding: [{ system, code }] } };
  }
}

export function operationOutcome(issues: Issue[]): OperationOutcome {
  return {
    resourceType: 'OperationOutcome',
    issue: capIssues(issues).map((i) => ({
      severity: i.severity,
      code: i.code,
      ...(i.details ? { details: i.details } : {}),
      diagnostics: i.diagnostics,
      ...(i.expression ? { expression: i.expression } : {}),
    })),
  };
}

/**
 * SQLSTATEs a client's value can cause, with what to tell the client (never the database's
 * own message: it carries the SQL text). Any other database error is the server's own.
 */
const DATA_EXCEPTIONS: Record<string, string> = {
  '22P02': 'a value is not valid for its type',
  '22003': 'a number is out of range',
  '22007': 'a date or time is not valid',
  '22008': 'a date or time is out of range',
  '22021': 'a character cannot be stored (NUL, or not valid UTF-8)',
  '22P05': 'a character cannot be stored (NUL, or not valid UTF-8)',
};

/** A database error caused by a value the client sent, as the 400 it is; undefined otherwise. */
export function dataException(e: unknown): FhirError | undefined {
  const code = (e as { code?: unknown })?.code;
  const what = typeof code === 'string' ? DATA_EXCEPTIONS[code] : undefined;
  return what ? new BadRequest(`A value cannot be stored or searched: ${what}`, 'invalid') : undefined;
}
