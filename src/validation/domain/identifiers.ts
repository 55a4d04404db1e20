/**
 * Identifier systems and value formats of French professional and structure
 * identifiers. Sources: shared/reference/identity-ins.md §1, codes.json identifier_systems.
 */

export const SYSTEMS = {
  insNir: 'urn:oid:1.2.250.1.213.1.4.8',
  insNia: 'urn:oid:1.2.250.1.213.1.4.9',
  insNirTest: 'urn:oid:1.2.250.1.213.1.4.10',
  insNirDemo: 'urn:oid:1.2.250.1.213.1.4.11',
  /** idNatPS: "8" + RPPS or "0" + ADELI */
  idNatPs: 'urn:oid:1.2.250.1.71.4.2.1',
  /** idNatStruct: "1" + FINESS, "3" + SIRET, … */
  idNatSt: 'urn:oid:1.2.250.1.71.4.2.2',
  finess: 'http://finess.sante.gouv.fr',
  sirene: 'https://sirene.fr',
  /** older profiles spell the SIRENE system with http */
  sireneHttp: 'http://sirene.fr',
} as const;

/** INS systems whose value is a NIR (production, test, demonstration): the key is checked. */
export const NIR_SYSTEMS: ReadonlySet<string> = new Set([SYSTEMS.insNir, SYSTEMS.insNirTest, SYSTEMS.insNirDemo]);

/** idNatPS of an RPPS professional: "8" + 11-digit RPPS number. */
export function rppsIdNatPsValid(value: string): boolean {
  return /^8[0-9]{11}$/.test(value);
}

/** idNatPS of an ADELI professional: "0" + 9-digit ADELI number. */
export function adeliIdNatPsValid(value: string): boolean {
  return /^0[0-9]{9}$/.test(value);
}

/**
 * FINESS number: 9 characters — a 2-character département (digits, or 2A / 2B for
 * Corsica) and 7 digits. The last digit is a control key whose algorithm is not in our
 * facts, so only the format is checked.
 */
export function finessFormatValid(value: string): boolean {
  return /^(?:[0-9]{2}|2[AB])[0-9]{7}$/.test(value);
}

/** Luhn (mod 10) check over a string of digits. */
export function luhnValid(digits: string): boolean {
  if (!/^[0-9]+$/.test(digits)) return false;
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = digits.charCodeAt(digits.length - 1 - i) - 48;
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return sum % 10 === 0;
}

/** SIREN: 9 digits, Luhn key. */
export function sirenValid(value: string): boolean {
  return /^[0-9]{9}$/.test(value) && luhnValid(value);
}

/** La Poste's SIREN: its establishments are numbered past what a Luhn key allows. */
const LA_POSTE_SIREN = '356000000';

/**
 * SIRET: 14 digits (SIREN + 5-digit NIC) with a Luhn key over the 14 digits; the
 * establishments of La Poste (SIREN 356000000) instead have a digit sum divisible by 5.
 */
export function siretValid(value: string): boolean {
  if (!/^[0-9]{14}$/.test(value)) return false;
  if (luhnValid(value)) return true;
  if (value.startsWith(LA_POSTE_SIREN)) {
    let sum = 0;
    for (const c of value) sum += c.charCodeAt(0) - 48;
    return sum % 5 === 0;
  }
  return false;
}
