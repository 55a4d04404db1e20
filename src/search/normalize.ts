/**
 * String normalisation used for accent- and case-insensitive string search
 * (StringRow.value, TokenRow.text). Query values must go through the same
 * function before being compared with the index.
 */

const COMBINING_MARKS = /\p{M}+/gu;
const WHITESPACE = /\s+/g;

/** Printable ASCII words separated by single spaces: only lower-casing is needed. */
const SIMPLE_ASCII = /^[\x21-\x7e]+(?: [\x21-\x7e]+)*$/;

/** NFD, strip combining marks, lower case, collapse whitespace, trim. */
export function normalizeString(s: string): string {
  if (typeof s !== 'string') return '';
  if (SIMPLE_ASCII.test(s)) return s.toLowerCase();
  return s.normalize('NFD').replace(COMBINING_MARKS, '').toLowerCase().replace(WHITESPACE, ' ').trim();
}
