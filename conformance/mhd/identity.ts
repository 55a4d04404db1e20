import crypto from 'node:crypto';

/**
 * French patient identity for the black-box suite, written here rather than imported
 * from the server: the suite must run against any server, with nothing of ours but HTTP.
 */
export const INS_NIR = 'urn:oid:1.2.250.1.213.1.4.8';

/** The NIR control key: 97 − (13-digit body mod 97), zero-padded (Corsica 2A/2B count as 19/18). */
export function nirKey(body: string): string {
  const digits = body.slice(5, 7) === '2A' ? body.slice(0, 5) + '19' + body.slice(7) : body.slice(5, 7) === '2B' ? body.slice(0, 5) + '18' + body.slice(7) : body;
  return (97n - (BigInt(digits) % 97n)).toString().padStart(2, '0');
}

/** A fresh NIR with a valid key (a server holds one Patient per INS). */
export function freshNir(): string {
  const body = `29012${String(crypto.randomInt(10 ** 8)).padStart(8, '0')}`;
  return body + nirKey(body);
}

/**
 * A Patient qualified by its INS-NIR, with the identity traits the INS profile asks for:
 * the typed official identifier, one official given name and the birth list, gender,
 * birth date, birth place with its INSEE code, identity status QUAL.
 */
export function insPatient(family: string, ins: string): Record<string, unknown> {
  return {
    resourceType: 'Patient',
    extension: [
      {
        url: 'https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-identity-reliability',
        extension: [{ url: 'identityStatus', valueCoding: { system: 'https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-identity-status', code: 'QUAL' } }],
      },
      {
        url: 'http://hl7.org/fhir/StructureDefinition/patient-birthPlace',
        valueAddress: { extension: [{ url: 'https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-address-insee-code', valueCoding: { code: '75056' } }] },
      },
    ],
    identifier: [{ use: 'official', type: { coding: [{ system: 'https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0203', code: 'INS-NIR' }] }, system: INS_NIR, value: ins }],
    name: [
      {
        use: 'official',
        family,
        given: ['CLAIRE'],
        extension: [{ url: 'https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-patient-birth-list-given-name', valueString: 'CLAIRE' }],
      },
    ],
    gender: 'female',
    birthDate: '1975-04-12',
  };
}
