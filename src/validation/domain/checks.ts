/**
 * Domain checks: business rules on French identifiers that a StructureDefinition
 * cannot express (check keys computed with arithmetic FHIRPath does not offer) or
 * that must hold for every resource, whatever profile it claims.
 *
 * They complement the profiles in profiles/StructureDefinition: the profiles check
 * cardinalities and formats (regular expressions) for resources that claim them in
 * meta.profile; these checks run on every resource of the relevant type and on the
 * resources it contains (`contained`), e.g. the source patient and author contained
 * in a DocumentReference. A Bundle is not descended into: callers validate its
 * entries one by one.
 *
 * Each issue names its check at the start of `diagnostics` and points at the value
 * with a FHIRPath `expression` (e.g. `Patient.identifier[0].value`,
 * `DocumentReference.contained[0].identifier[0].value`).
 */
import type { Issue } from '../../errors';
import { nirFormatValid, nirKey, nirKeyValid } from './nir';
import {
  NIR_SYSTEMS,
  SYSTEMS,
  adeliIdNatPsValid,
  finessFormatValid,
  rppsIdNatPsValid,
  sirenValid,
  siretValid,
} from './identifiers';

export interface DomainCheck {
  /** stable name, e.g. `ins-nir-key` */
  name: string;
  description: string;
  appliesTo(resource: any): boolean;
  check(resource: any): Issue[];
}

interface Target {
  resource: any;
  /** FHIRPath of the target within the checked resource */
  path: string;
}

/** The resource itself and its contained resources, when of one of `types`. */
function targetsOf(resource: any, types: readonly string[]): Target[] {
  const out: Target[] = [];
  if (!resource || typeof resource !== 'object') return out;
  const root = String(resource.resourceType ?? 'Resource');
  if (types.includes(resource.resourceType)) out.push({ resource, path: root });
  if (Array.isArray(resource.contained)) {
    resource.contained.forEach((c: any, i: number) => {
      if (c && types.includes(c.resourceType)) out.push({ resource: c, path: `${root}.contained[${i}]` });
    });
  }
  return out;
}

interface IdentifierAt {
  system: string;
  value: string;
  /** FHIRPath of the identifier's value */
  expression: string;
}

/** Identifiers of the targets that have both a system and a string value. */
function identifiersOf(targets: Target[]): IdentifierAt[] {
  const out: IdentifierAt[] = [];
  for (const t of targets) {
    const ids = t.resource.identifier;
    if (!Array.isArray(ids)) continue;
    ids.forEach((id: any, i: number) => {
      if (id && typeof id.system === 'string' && typeof id.value === 'string') {
        out.push({ system: id.system, value: id.value, expression: `${t.path}.identifier[${i}].value` });
      }
    });
  }
  return out;
}

function error(check: string, diagnostics: string, expression: string): Issue {
  return { severity: 'error', code: 'value', diagnostics: `${check}: ${diagnostics}`, expression: [expression] };
}

// ------------------------------------------------------------------ ins-nir-key

const INS_CHECK = 'ins-nir-key';

/** Reference elements that may hold a conditional reference to the DMP patient. */
const PATIENT_REFERENCE_ELEMENTS = ['subject', 'patient'] as const;

/** `Patient?identifier=system|value` → {system, value} (URL-decoded), else undefined. */
export function parseConditionalPatientReference(reference: unknown): { system: string; value: string } | undefined {
  if (typeof reference !== 'string' || !reference.startsWith('Patient?')) return undefined;
  for (const param of reference.slice('Patient?'.length).split('&')) {
    const eq = param.indexOf('=');
    if (eq < 0 || param.slice(0, eq) !== 'identifier') continue;
    let token: string;
    try {
      token = decodeURIComponent(param.slice(eq + 1).replace(/\+/g, ' '));
    } catch {
      return undefined;
    }
    const bar = token.indexOf('|');
    if (bar <= 0) return undefined;
    return { system: token.slice(0, bar), value: token.slice(bar + 1) };
  }
  return undefined;
}

function isInsSystem(system: string): boolean {
  return NIR_SYSTEMS.has(system) || system === SYSTEMS.insNia;
}

function checkIns(system: string, value: string, expression: string): Issue[] {
  if (system === SYSTEMS.insNia) {
    return nirFormatValid(value)
      ? []
      : [error(INS_CHECK, `INS-NIA "${value}" is not 15 characters (13-character body and 2-digit key)`, expression)];
  }
  if (!nirFormatValid(value)) {
    return [
      error(
        INS_CHECK,
        `INS (NIR) "${value}" is not 15 characters: a 13-character body (digits; 2A or 2B as the département in positions 6-7) followed by a 2-digit key`,
        expression,
      ),
    ];
  }
  if (!nirKeyValid(value)) {
    return [
      error(
        INS_CHECK,
        `INS (NIR) "${value}" has key ${value.slice(13)}, but 97 - (body mod 97) gives ${nirKey(value.slice(0, 13))} (2A counts as 19, 2B as 18): the NIR is mistyped or not a real NIR`,
        expression,
      ),
    ];
  }
  return [];
}

/**
 * Every INS carried by a Patient (itself or contained) and every conditional reference
 * `Patient?identifier=<INS system>|<value>` in `subject` / `patient`: a NIR (production,
 * test or demo OID) must have 15 characters and a valid key; a NIA is format-checked only
 * (its key rule is not in our facts). The profile dmp-patient-ins checks the format with a
 * regular expression; the key needs a modulo 97 over a 13-digit number, which FHIRPath
 * cannot compute — hence this check. Source: shared/reference/identity-ins.md §2.
 */
const insNirKey: DomainCheck = {
  name: INS_CHECK,
  description:
    'INS identifiers (INS-NIR, INS-NIR-TEST, INS-NIR-DEMO) have 15 characters and a key equal to 97 - (body mod 97), Corsica 2A/2B counted as 19/18; INS-NIA is format-checked. Applies to Patients, contained Patients and conditional patient references.',
  appliesTo(resource) {
    if (targetsOf(resource, ['Patient']).length > 0) return true;
    return PATIENT_REFERENCE_ELEMENTS.some((e) => {
      const c = parseConditionalPatientReference(resource?.[e]?.reference);
      return !!c && isInsSystem(c.system);
    });
  },
  check(resource) {
    const issues: Issue[] = [];
    for (const id of identifiersOf(targetsOf(resource, ['Patient']))) {
      if (isInsSystem(id.system)) issues.push(...checkIns(id.system, id.value, id.expression));
    }
    for (const e of PATIENT_REFERENCE_ELEMENTS) {
      const c = parseConditionalPatientReference(resource?.[e]?.reference);
      if (c && isInsSystem(c.system)) issues.push(...checkIns(c.system, c.value, `${resource.resourceType}.${e}.reference`));
    }
    return issues;
  },
};

// ------------------------------------------------------------------ idNatPS

const PROFESSIONAL_TYPES = ['Practitioner', 'PractitionerRole'] as const;

/**
 * idNatPS (urn:oid:1.2.250.1.71.4.2.1) values starting with "8" are "8" + an 11-digit RPPS
 * number; values starting with anything other than "8" or "0" (ADELI) are refused here too.
 * The profile dmp-practitioner checks the same formats for resources claiming it; this
 * check applies to every Practitioner / PractitionerRole and to contained ones (document
 * authors). The RPPS key is not checked (its algorithm is not in our facts).
 */
const rppsFormat: DomainCheck = {
  name: 'rpps-format',
  description:
    'idNatPS identifiers (urn:oid:1.2.250.1.71.4.2.1) of an RPPS professional are "8" + 11 digits; an idNatPS must start with 8 (RPPS) or 0 (ADELI).',
  appliesTo: (resource) => targetsOf(resource, PROFESSIONAL_TYPES).length > 0,
  check(resource) {
    const issues: Issue[] = [];
    for (const id of identifiersOf(targetsOf(resource, PROFESSIONAL_TYPES))) {
      if (id.system !== SYSTEMS.idNatPs || id.value.startsWith('0')) continue;
      if (!id.value.startsWith('8')) {
        issues.push(
          error('rpps-format', `idNatPS "${id.value}" must start with 8 (followed by the RPPS number) or 0 (followed by the ADELI number)`, id.expression),
        );
      } else if (!rppsIdNatPsValid(id.value)) {
        issues.push(error('rpps-format', `idNatPS "${id.value}" must be 8 followed by the 11-digit RPPS number (12 digits)`, id.expression));
      }
    }
    return issues;
  },
};

/** idNatPS values starting with "0" are "0" + a 9-digit ADELI number. Same scope as rpps-format. */
const adeliFormat: DomainCheck = {
  name: 'adeli-format',
  description: 'idNatPS identifiers (urn:oid:1.2.250.1.71.4.2.1) of an ADELI professional are "0" + 9 digits.',
  appliesTo: (resource) => targetsOf(resource, PROFESSIONAL_TYPES).length > 0,
  check(resource) {
    const issues: Issue[] = [];
    for (const id of identifiersOf(targetsOf(resource, PROFESSIONAL_TYPES))) {
      if (id.system === SYSTEMS.idNatPs && id.value.startsWith('0') && !adeliIdNatPsValid(id.value)) {
        issues.push(error('adeli-format', `idNatPS "${id.value}" must be 0 followed by the 9-digit ADELI number (10 digits)`, id.expression));
      }
    }
    return issues;
  },
};

// ------------------------------------------------------------------ structures

const STRUCTURE_TYPES = ['Organization'] as const;

/**
 * FINESS numbers (http://finess.sante.gouv.fr, and idNatStruct "1" + FINESS) have 9
 * characters: a 2-character département (digits or 2A/2B) and 7 digits. Format only: the
 * FINESS key algorithm is not in our facts. Complements the dmp-organization regular
 * expressions, for every Organization whatever its profile, and contained ones.
 */
const finessFormat: DomainCheck = {
  name: 'finess-format',
  description:
    'FINESS identifiers (http://finess.sante.gouv.fr, or idNatStruct urn:oid:1.2.250.1.71.4.2.2 with prefix 1) are 9 characters: département (2 digits or 2A/2B) + 7 digits. Format only.',
  appliesTo: (resource) => targetsOf(resource, STRUCTURE_TYPES).length > 0,
  check(resource) {
    const issues: Issue[] = [];
    for (const id of identifiersOf(targetsOf(resource, STRUCTURE_TYPES))) {
      if (id.system === SYSTEMS.finess && !finessFormatValid(id.value)) {
        issues.push(error('finess-format', `FINESS "${id.value}" must be 9 characters: département (2 digits, or 2A/2B) then 7 digits`, id.expression));
      } else if (id.system === SYSTEMS.idNatSt && id.value.startsWith('1') && !finessFormatValid(id.value.slice(1))) {
        issues.push(
          error('finess-format', `idNatStruct "${id.value}" (prefix 1 = FINESS) must be 1 followed by a 9-character FINESS number`, id.expression),
        );
      }
    }
    return issues;
  },
};

/**
 * SIRET numbers (https://sirene.fr, http://sirene.fr, and idNatStruct "3" + SIRET) are 14
 * digits with a Luhn key (La Poste's establishments, SIREN 356000000: digit sum divisible by
 * 5); a 9-digit value in the SIRENE system is a SIREN and must pass Luhn. A Luhn key cannot
 * be computed in FHIRPath, so the profile only checks the digit count.
 */
const siretFormat: DomainCheck = {
  name: 'siret-format',
  description:
    'SIRET identifiers (https://sirene.fr, or idNatStruct urn:oid:1.2.250.1.71.4.2.2 with prefix 3) are 14 digits with a valid Luhn key (La Poste exception); a 9-digit SIREN must pass Luhn.',
  appliesTo: (resource) => targetsOf(resource, STRUCTURE_TYPES).length > 0,
  check(resource) {
    const issues: Issue[] = [];
    for (const id of identifiersOf(targetsOf(resource, STRUCTURE_TYPES))) {
      if (id.system === SYSTEMS.sirene || id.system === SYSTEMS.sireneHttp) {
        if (/^[0-9]{9}$/.test(id.value)) {
          if (!sirenValid(id.value)) issues.push(error('siret-format', `SIREN "${id.value}" has an invalid Luhn key`, id.expression));
        } else if (!/^[0-9]{14}$/.test(id.value)) {
          issues.push(error('siret-format', `SIRET "${id.value}" must be 14 digits (or a 9-digit SIREN)`, id.expression));
        } else if (!siretValid(id.value)) {
          issues.push(error('siret-format', `SIRET "${id.value}" has an invalid Luhn key`, id.expression));
        }
      } else if (id.system === SYSTEMS.idNatSt && id.value.startsWith('3')) {
        const siret = id.value.slice(1);
        if (!/^[0-9]{14}$/.test(siret)) {
          issues.push(error('siret-format', `idNatStruct "${id.value}" (prefix 3 = SIRET) must be 3 followed by a 14-digit SIRET`, id.expression));
        } else if (!siretValid(siret)) {
          issues.push(error('siret-format', `idNatStruct "${id.value}" (prefix 3 = SIRET) carries a SIRET with an invalid Luhn key`, id.expression));
        }
      }
    }
    return issues;
  },
};

export const domainChecks: DomainCheck[] = [insNirKey, rppsFormat, adeliFormat, finessFormat, siretFormat];

/** Run every applicable domain check on a resource. */
export function runDomainChecks(resource: any): Issue[] {
  const issues: Issue[] = [];
  for (const c of domainChecks) if (c.appliesTo(resource)) issues.push(...c.check(resource));
  return issues;
}
