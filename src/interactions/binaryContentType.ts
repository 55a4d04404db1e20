/**
 * The content type of a Binary. It is sent back as a Content-Type header, so it
 * must be a media type by the grammar of RFC 9110 §8.3.1, in ASCII and of
 * bounded length: anything else cannot be a header (the answer would fail) or
 * lets a client choose the header lines of other clients' answers.
 */

/** RFC 6838 §4.2 bounds type and subtype names at 127 characters; parameters (charset, profile …) are short. */
export const MEDIA_TYPE_MAX_LENGTH = 256;

const TOKEN = "[!#$%&'*+.^_`|~0-9A-Za-z-]+";
/** quoted-string without obs-text: ASCII only. */
const QUOTED = '"(?:[\\t \\x21\\x23-\\x5b\\x5d-\\x7e]|\\\\[\\t\\x20-\\x7e])*"';
const MEDIA_TYPE = new RegExp(`^${TOKEN}/${TOKEN}(?:[ \\t]*;[ \\t]*(?:${TOKEN}=(?:${TOKEN}|${QUOTED}))?)*$`);

export function isMediaType(value: string): boolean {
  return value.length <= MEDIA_TYPE_MAX_LENGTH && MEDIA_TYPE.test(value);
}

/** Why a content type is refused, for the OperationOutcome (the value itself is not echoed: it may be huge). */
export function mediaTypeProblem(value: string): string | undefined {
  if (value.length > MEDIA_TYPE_MAX_LENGTH) return `is ${value.length} characters long: a media type has at most ${MEDIA_TYPE_MAX_LENGTH}`;
  if (!MEDIA_TYPE.test(value)) return 'is not a media type (type/subtype, then ;name=value parameters, in ASCII: RFC 9110 §8.3.1)';
  return undefined;
}

/** The Content-Type a stored Binary is served with: a value stored before the check is served as opaque bytes. */
export function servedContentType(stored: string): string {
  return isMediaType(stored) ? stored : 'application/octet-stream';
}
