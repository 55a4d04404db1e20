import crypto from 'node:crypto';
import { nirKey } from '../src/validation/domain/nir';

/**
 * A Patient carrying an INS is checked against our INS profile whatever it claims
 * (profiles/profile-map.json): fixtures that carry one carry the INS traits too.
 */
const RELIABILITY = 'https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-identity-reliability';
const BIRTH_PLACE = 'http://hl7.org/fhir/StructureDefinition/patient-birthPlace';
const INSEE = 'https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-address-insee-code';
const BIRTH_LIST = 'https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-patient-birth-list-given-name';
const TYPE_CODES: Record<string, string> = {
  'urn:oid:1.2.250.1.213.1.4.8': 'INS-NIR',
  'urn:oid:1.2.250.1.213.1.4.9': 'INS-NIA',
  'urn:oid:1.2.250.1.213.1.4.10': 'INS-NIR-TEST',
  'urn:oid:1.2.250.1.213.1.4.11': 'INS-NIR-DEMO',
};

/** A NIR with its key, fresh on each call (a shared database holds one Patient per INS). */
export function freshNir(): string {
  const body = `29012${String(crypto.randomInt(10 ** 8)).padStart(8, '0')}`;
  return body + nirKey(body);
}

type Json = Record<string, any>;

/**
 * `patient` with the INS `system|value` as its qualified identity: the INS identifier
 * (official, typed), an official name with one given name and the birth list, gender,
 * birth date, birth place with its INSEE code, identity status QUAL. What the fixture
 * already has (names, identifiers, gender, birth date) is kept.
 */
export function withIns(patient: Json, system: string, value: string): Json {
  const names: Json[] = Array.isArray(patient.name) ? patient.name : [];
  const first = names[0] ?? {};
  const official = names.some((n) => n.use === 'official')
    ? names.map((n) => (n.use === 'official' ? { ...n, given: [(n.given ?? ['INCONNU'])[0]], extension: [{ url: BIRTH_LIST, valueString: (n.given ?? ['INCONNU']).join(' ') }] } : n))
    : [...names, { use: 'official', family: first.family ?? 'INCONNU', given: [(first.given ?? ['INCONNU'])[0]], extension: [{ url: BIRTH_LIST, valueString: (first.given ?? ['INCONNU']).join(' ') }] }];
  const others = (patient.identifier ?? []).filter((i: Json) => !(i.system === system && i.value === value));
  return {
    ...patient,
    extension: [
      ...(patient.extension ?? []),
      { url: RELIABILITY, extension: [{ url: 'identityStatus', valueCoding: { system: 'https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-identity-status', code: 'QUAL' } }] },
      { url: BIRTH_PLACE, valueAddress: { extension: [{ url: INSEE, valueCoding: { code: '75056' } }] } },
    ],
    identifier: [
      { use: system === 'urn:oid:1.2.250.1.213.1.4.9' ? 'temp' : 'official', type: { coding: [{ system: 'https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0203', code: TYPE_CODES[system] }] }, system, value },
      ...others,
    ],
    name: official,
    gender: patient.gender ?? 'unknown',
    birthDate: patient.birthDate ?? '1970-01-01',
  };
}

/**
 * The type and class every DocumentReference of the record carries (our dmp-document-entry
 * profile applies by default): a consultation report, class 10.
 */
export const DOCUMENT_CODES = Object.freeze({
  type: { coding: [{ system: 'http://loinc.org', code: '11488-4' }] },
  category: [{ coding: [{ system: 'https://mos.esante.gouv.fr/NOS/TRE_A03-ClasseDocument/FHIR/TRE-A03-ClasseDocument', code: '10' }] }],
});
