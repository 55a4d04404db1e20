/**
 * NIR (numéro d'inscription au répertoire, "numéro de sécurité sociale") used as the
 * matricule INS, and its control key.
 *
 * Layout (15 characters): a 13-character body and a 2-digit key.
 *   pos 1      sex (1, 2; 7, 8 for temporary registrations)
 *   pos 2-3    year of birth          pos 4-5   month of birth
 *   pos 6-7    département of birth — `2A` / `2B` for Corsica, `99` when born abroad
 *   pos 8-10   commune (or country)   pos 11-13 order number
 *   pos 14-15  key = 97 − (body mod 97), zero-padded; for the key only, a `2A`
 *              département counts as `19` and `2B` as `18`.
 * Source: shared/reference/identity-ins.md §2 (test vectors there).
 *
 * A StructureDefinition can check the layout with a regular expression (our
 * dmp-patient-ins profile does), but not the key: FHIRPath has no arbitrary-precision
 * modulo over a 13-digit number, so the key is checked here.
 */

/** 13-character body (digits, with 2A / 2B allowed as département) + 2-digit key. */
export const NIR_PATTERN = /^[0-9]{5}(?:[0-9]{2}|2[AB])[0-9]{8}$/;
const BODY_PATTERN = /^[0-9]{5}(?:[0-9]{2}|2[AB])[0-9]{6}$/;

/** Is `nir` shaped like a NIR (15 characters, Corsican département allowed)? The key is not checked. */
export function nirFormatValid(nir: string): boolean {
  return typeof nir === 'string' && NIR_PATTERN.test(nir);
}

/** The body as a number, with the Corsican départements 2A → 19 and 2B → 18. */
export function nirBodyNumber(body: string): bigint {
  if (!BODY_PATTERN.test(body)) throw new RangeError(`not a NIR body: ${JSON.stringify(body)}`);
  const dept = body.slice(5, 7);
  const digits = dept === '2A' ? body.slice(0, 5) + '19' + body.slice(7) : dept === '2B' ? body.slice(0, 5) + '18' + body.slice(7) : body;
  return BigInt(digits);
}

/** The 2-digit key of a 13-character NIR body: 97 − (body mod 97), zero-padded. */
export function nirKey(body: string): string {
  const key = 97n - (nirBodyNumber(body) % 97n);
  return key.toString().padStart(2, '0');
}

/** Does the 15-character `nir` have the right shape and a key matching its body? */
export function nirKeyValid(nir: string): boolean {
  if (!nirFormatValid(nir)) return false;
  return nirKey(nir.slice(0, 13)) === nir.slice(13);
}
