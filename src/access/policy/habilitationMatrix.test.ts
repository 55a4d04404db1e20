import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import type { Coding } from '../actor';
import {
  patientMayWrite,
  ASSUMED,
  classOf,
  emergencyAllowed,
  HabilitationMatrix,
  HabilitationMatrixError,
  loadHabilitationMatrix,
  matrixAllows,
  MatrixRole,
  matrixRowFor,
  readableTypes,
} from './habilitationMatrix';

const PROFILES = path.resolve(__dirname, '../../../profiles');
const MATRIX_FILE = path.join(PROFILES, 'habilitation-matrix.json');

const G15 = 'https://mos.esante.gouv.fr/NOS/TRE_G15-ProfessionSante/FHIR/TRE-G15-ProfessionSante';
const R38 = 'https://mos.esante.gouv.fr/NOS/TRE_R38-SpecialiteOrdinale/FHIR/TRE-R38-SpecialiteOrdinale';
const A03 = 'https://mos.esante.gouv.fr/NOS/TRE_A03-ClasseDocument/FHIR/TRE-A03-ClasseDocument';
const A05 = 'https://mos.esante.gouv.fr/NOS/TRE_A05-TypeDocComplementaire/FHIR/TRE-A05-TypeDocComplementaire';
const LOINC = 'http://loinc.org';
const DEVICE = 'https://fhir.dmp.esante.example/CodeSystem/dmp-device-type';
const COLUMNS = ['10', '11', '31', '42', '43', '44', '45', '52', '60', '90', '95'];

const matrix = loadHabilitationMatrix(MATRIX_FILE);

const professional = (code: string, ...specialties: string[]): MatrixRole => ({
  profession: { system: G15, code },
  specialties: specialties.map((s) => ({ system: R38, code: s })),
});
const device = (code: string): MatrixRole => ({ profession: { system: DEVICE, code }, specialties: [] });
const cls = (code: string): Coding => ({ system: A03, code });
const loinc = (code: string): Coding => ({ system: LOINC, code });
const a05 = (code: string): Coding => ({ system: A05, code });

/**
 * What each row grants, restated by hand (not read from the file): a change to the file that is
 * not also made here fails, and so does a row added without its expectation.
 */
const EXPECTED: Record<string, { role: MatrixRole; read: string; write: string; emergency: boolean }> = {
  'medecin-du-travail': { role: professional('10', 'SM25'), read: '10 11 31 42 43 44 45 52 90', write: '10', emergency: false },
  'medecin-biologiste': { role: professional('10', 'SM03'), read: '10 11 31 42 43 44 45 52 90 95', write: '10', emergency: false },
  'medecin-generaliste': { role: professional('10', 'SM26'), read: '10 11 31 42 43 44 45 52 60 90 95', write: '10 11 31 42 44 45 52 95', emergency: true },
  'medecin-specialiste': { role: professional('10', 'SM04'), read: '10 11 31 42 43 44 45 52 60 90 95', write: '10 11 31 42 44 45 52 95', emergency: true },
  pharmacien: { role: professional('21'), read: '10 11 31 42 43 44 45 52 90 95', write: '43 45', emergency: false },
  'chirurgien-dentiste': { role: professional('40'), read: '10 11 31 42 43 44 45 52 90 95', write: '10 31 42 44 45 52', emergency: false },
  'sage-femme': { role: professional('50'), read: '10 11 31 42 43 44 45 52 90 95', write: '10 11 42 44 45 52', emergency: true },
  infirmier: { role: professional('60'), read: '10 11 31 42 43 44 45 52 90 95', write: '10 44 45', emergency: true },
  'infirmier-psychiatrique': { role: professional('69'), read: '10 11 31 42 43 44 45 52 90 95', write: '10 44 45', emergency: true },
  'masseur-kinesitherapeute': { role: professional('70'), read: '10 11 31 42 44 45 90 95', write: '10 44 45', emergency: false },
  'pedicure-podologue': { role: professional('80'), read: '10 11 31 42 44 45 90 95', write: '10 44 45', emergency: false },
  orthophoniste: { role: professional('91'), read: '10 11 42 44 45 90 95', write: '10 44', emergency: false },
  orthoptiste: { role: professional('92'), read: '10 11 31 42 44 45 90 95', write: '10 44', emergency: false },
  ergotherapeute: { role: professional('94'), read: '10 11 42 44 45 90 95', write: '10 44', emergency: false },
  dieteticien: { role: professional('95'), read: '10 11 42 44 45 90 95', write: '10 44', emergency: false },
  psychomotricien: { role: professional('96'), read: '10 11 42 44 45 90 95', write: '10 44', emergency: false },
  'manipulateur-erm': { role: professional('98'), read: '10 11 31 42 90', write: '31', emergency: false },
  audioprothesiste: { role: professional('26'), read: '10 42 90', write: '10', emergency: false },
  'opticien-lunetier': { role: professional('28'), read: '10 42 90', write: '10', emergency: false },
  orthoprothesiste: { role: professional('81'), read: '10 42 90', write: '10', emergency: false },
  'podo-orthesiste': { role: professional('82'), read: '10 42 90', write: '10', emergency: false },
  'orthopediste-orthesiste': { role: professional('83'), read: '10 42 90', write: '10', emergency: false },
  oculariste: { role: professional('84'), read: '10 42 90', write: '10', emergency: false },
  epithesiste: { role: professional('85'), read: '10 42 90', write: '10', emergency: false },
  'assurance-maladie': { role: device('health-insurer'), read: '', write: '60', emergency: false },
  'moteur-integration': { role: device('integration-engine'), read: '', write: '10 11 31 42 43 44 45 52 95', emergency: false },
  'application-catalogue': { role: device('catalogue-application'), read: '', write: '', emergency: false },
};

/** The only cells backed by a documented source: the nurse row's read of these classes (press summary). */
const DOCUMENTED_CELLS = ['infirmier 10 read', 'infirmier 11 read', 'infirmier 44 read', 'infirmier 90 read'];
const NURSE_READ_ALLOWED = [loinc('83981-1'), loinc('11502-2'), loinc('15507-7'), loinc('47420-5'), loinc('56445-0'), a05('PROT_ALD'), a05('DOCPAT06')];
const NURSE_READ_DENIED = [loinc('75496-0'), loinc('68599-0'), loinc('83901-9'), loinc('68817-6'), loinc('89601-9')];

describe('the shipped matrix, row by class', () => {
  it('has exactly the rows of the expectation table, over the 11 classes of the arrêté', () => {
    expect(matrix.rows.map((r) => r.id).sort()).toEqual(Object.keys(EXPECTED).sort());
    expect(matrix.classes).toEqual(COLUMNS);
  });

  const cases = Object.entries(EXPECTED).flatMap(([id, e]) =>
    COLUMNS.flatMap((c) => (['read', 'write'] as const).map((op) => [id, c, op, e[op].split(' ').includes(c)] as const)),
  );
  it.each(cases)('%s, class %s, %s → %s', (id, c, op, allowed) => {
    const { role } = EXPECTED[id];
    expect(matrixRowFor(matrix, role)?.id).toBe(id);
    expect(matrixAllows(matrix, role, undefined, cls(c), op)).toBe(allowed);
  });

  it.each(Object.entries(EXPECTED))('%s: emergency access', (id, e) => {
    expect(emergencyAllowed(matrix, e.role)).toBe(e.emergency);
  });

  it('marks as documented only the nurse cells of the press summary; every other cell says assumed', () => {
    const documented: string[] = [];
    for (const row of matrix.rows) {
      for (const c of COLUMNS) {
        for (const op of ['read', 'write'] as const) {
          const source = row.cells[c].source[op];
          if (source !== ASSUMED) {
            expect(source).toBe('infirmiers-com');
            documented.push(`${row.id} ${c} ${op}`);
          }
        }
      }
      expect(row.emergency.source).toBe(ASSUMED);
    }
    expect(documented.sort()).toEqual([...DOCUMENTED_CELLS].sort());
    expect(matrix.sources['infirmiers-com'].url).toMatch(/^https:\/\/static1\.infirmiers\.com\//);
  });

  it('maps every document type it knows to one of the columns, all as our assumption', () => {
    expect(matrix.documentTypes.length).toBe(70);
    for (const t of matrix.documentTypes) {
      expect(COLUMNS).toContain(t.class);
      expect(t.source).toBe(ASSUMED);
    }
    expect(classOf(matrix, loinc('11502-2'), undefined)).toBe('10');
    expect(classOf(matrix, a05('REMB'), undefined)).toBe('60');
    expect(classOf(matrix, a05('PROT_ALD'), undefined)).toBe('44');
    expect(classOf(matrix, loinc('89601-9'), undefined)).toBe('52');
  });
});

describe('document types overriding their class', () => {
  const nurse = professional('60');

  it.each(NURSE_READ_ALLOWED)('a nurse reads $code (documented), whatever the category', (type) => {
    expect(matrixAllows(matrix, nurse, type, cls('60'), 'read')).toBe(true);
    expect(matrixAllows(matrix, nurse, type, undefined, 'read')).toBe(true);
  });

  it.each(NURSE_READ_DENIED)('a nurse does not read $code (documented), whatever the category', (type) => {
    for (const c of COLUMNS) expect(matrixAllows(matrix, nurse, type, cls(c), 'read')).toBe(false);
    expect(matrixAllows(matrix, nurse, type, undefined, 'read')).toBe(false);
  });

  it('carries the press summary as the source of every nurse exception', () => {
    const row = matrixRowFor(matrix, nurse)!;
    expect(row.types.map((t) => `${t.code}:${t.read}:${t.source}`).sort()).toEqual(
      [...NURSE_READ_ALLOWED.map((t) => `${t.code}:true:infirmiers-com`), ...NURSE_READ_DENIED.map((t) => `${t.code}:false:infirmiers-com`)].sort(),
    );
  });

  it('leaves the other operation to the class cell', () => {
    // 68599-0 is denied to the nurse for reading only; writing follows cell 11 (no)
    expect(matrixAllows(matrix, nurse, loinc('68599-0'), cls('11'), 'write')).toBe(false);
    // 83901-9 (class 10 by our mapping): reading denied, writing follows cell 10 (yes)
    expect(matrixAllows(matrix, nurse, loinc('83901-9'), cls('10'), 'write')).toBe(true);
  });

  it('lets a pharmacist write a medication review and a renewal though classes 11 and 42 are read-only for them', () => {
    const pharmacist = professional('21');
    expect(matrixAllows(matrix, pharmacist, loinc('56445-0'), cls('11'), 'write')).toBe(true);
    expect(matrixAllows(matrix, pharmacist, loinc('75468-9'), cls('42'), 'write')).toBe(true);
    expect(matrixAllows(matrix, pharmacist, loinc('60591-5'), cls('11'), 'write')).toBe(false);
  });

  it('keeps medical certificates from every non-physician who reads class 52 (assumed), not from physicians', () => {
    for (const code of ['21', '40', '50', '60', '69']) {
      expect(matrixAllows(matrix, professional(code), loinc('89601-9'), cls('52'), 'read')).toBe(false);
      expect(matrixAllows(matrix, professional(code), a05('CERT_DECL'), cls('52'), 'read')).toBe(true);
    }
    expect(matrixAllows(matrix, professional('10', 'SM26'), loinc('89601-9'), cls('52'), 'read')).toBe(true);
    expect(matrixAllows(matrix, professional('10', 'SM42'), loinc('89601-9'), cls('52'), 'read')).toBe(true);
  });

  it('applies a denial to a type stored without system, but never an allowance', () => {
    expect(matrixAllows(matrix, nurse, { code: '68599-0' }, cls('11'), 'read')).toBe(false);
    expect(matrixAllows(matrix, professional('21'), { code: '56445-0' }, cls('11'), 'write')).toBe(false);
    // no exception for that code: the class cell decides
    expect(matrixAllows(matrix, nurse, { code: '60591-5' }, cls('11'), 'read')).toBe(true);
  });
});

describe('the class of a document', () => {
  const gp = professional('10', 'SM26');

  it('is the category when there is one, even if the type maps elsewhere', () => {
    // 11502-2 maps to 10, but the document says 60: the insurer's class, not writable by a GP
    expect(matrixAllows(matrix, gp, loinc('11502-2'), cls('60'), 'write')).toBe(false);
    expect(matrixAllows(matrix, gp, loinc('11502-2'), cls('10'), 'write')).toBe(true);
  });

  it('comes from the type when there is no category', () => {
    expect(matrixAllows(matrix, gp, a05('REMB'), undefined, 'read')).toBe(true);
    expect(matrixAllows(matrix, gp, a05('REMB'), undefined, 'write')).toBe(false);
    expect(matrixAllows(matrix, device('health-insurer'), a05('REMB'), undefined, 'write')).toBe(true);
  });

  it('lets a patient deposit the patient-authored class only, whether given as category or found from the type', () => {
    expect(patientMayWrite(matrix, a05('DOCPAT03'), cls('90'))).toBe(true);
    expect(patientMayWrite(matrix, a05('EXPPAT_3'), undefined)).toBe(true);
    expect(patientMayWrite(matrix, loinc('11488-4'), cls('10'))).toBe(false);
    expect(patientMayWrite(matrix, loinc('11488-4'), undefined)).toBe(false);
    // the category says what the document is: a patient type filed in a professional class is not the patient's
    expect(patientMayWrite(matrix, a05('DOCPAT03'), cls('10'))).toBe(false);
    expect(patientMayWrite(matrix, undefined, undefined)).toBe(false);
  });

  it("lets the insurer deposit vaccination certificates by type exception, and nothing else of their class", () => {
    const insurer = device('health-insurer');
    expect(matrixAllows(matrix, insurer, loinc('11369-6'), cls('45'), 'write')).toBe(true);
    expect(matrixAllows(matrix, insurer, loinc('87273-9'), undefined, 'write')).toBe(true);
    expect(matrixAllows(matrix, insurer, loinc('80565-5'), cls('45'), 'write')).toBe(false);
    expect(matrixAllows(matrix, insurer, loinc('11369-6'), cls('45'), 'read')).toBe(false);
    expect(matrixAllows(matrix, insurer, loinc('11488-4'), cls('10'), 'write')).toBe(false);
  });

  it('is unknown, and nobody may read or write the document (save a type exception), for class 99, another system or an unmapped type', () => {
    for (const { role } of Object.values(EXPECTED)) {
      for (const op of ['read', 'write'] as const) {
        expect(matrixAllows(matrix, role, undefined, cls('99'), op)).toBe(false);
        expect(matrixAllows(matrix, role, loinc('34112-3'), cls('99'), op)).toBe(false);
        expect(matrixAllows(matrix, role, undefined, { system: 'urn:other', code: '10' }, op)).toBe(false);
        expect(matrixAllows(matrix, role, undefined, { code: '10' }, op)).toBe(false);
        expect(matrixAllows(matrix, role, loinc('00000-0'), undefined, op)).toBe(false);
        expect(matrixAllows(matrix, role, { code: '11502-2' }, undefined, op)).toBe(false);
        expect(matrixAllows(matrix, role, undefined, undefined, op)).toBe(false);
      }
    }
    // a type the row allows by exception stays readable in an unknown class
    expect(matrixAllows(matrix, professional('60'), loinc('11502-2'), cls('99'), 'read')).toBe(true);
  });
});

describe('which row applies', () => {
  it('picks the specialty row, else the profession default', () => {
    expect(matrixRowFor(matrix, professional('10', 'SM54'))?.id).toBe('medecin-generaliste');
    expect(matrixRowFor(matrix, professional('10', 'SM65'))?.id).toBe('medecin-biologiste');
    expect(matrixRowFor(matrix, professional('10', 'SM42'))?.id).toBe('medecin-specialiste');
    expect(matrixRowFor(matrix, professional('10'))?.id).toBe('medecin-specialiste');
  });

  it('gives the first (narrower) row in file order when several specialties match', () => {
    expect(matrixRowFor(matrix, professional('10', 'SM26', 'SM25'))?.id).toBe('medecin-du-travail');
    expect(matrixRowFor(matrix, professional('10', 'SM26', 'SM03'))?.id).toBe('medecin-biologiste');
  });

  it('ignores a specialty coded in another system', () => {
    const role = { profession: { system: G15, code: '10' }, specialties: [{ system: 'urn:other', code: 'SM25' }] };
    expect(matrixRowFor(matrix, role)?.id).toBe('medecin-specialiste');
  });

  it('grants nothing to a profession without a row, a profession without system, or a device type as a profession', () => {
    const roles: MatrixRole[] = [
      professional('31'),
      professional('86'),
      professional('35'),
      { profession: { code: '10' }, specialties: [] },
      { profession: { system: G15, code: 'health-insurer' }, specialties: [] },
      { profession: { system: DEVICE, code: '60' }, specialties: [] },
    ];
    for (const role of roles) {
      expect(matrixRowFor(matrix, role)).toBeUndefined();
      expect(emergencyAllowed(matrix, role)).toBe(false);
      for (const c of COLUMNS) expect(matrixAllows(matrix, role, undefined, cls(c), 'read')).toBe(false);
      expect(readableTypes(matrix, role)).toEqual({ classSystem: A03, classes: [], types: [], excludedTypes: [], typesWithoutClass: [] });
    }
  });
});

describe('readableTypes', () => {
  it('gives the nurse its classes, its documented allowed types and its documented exclusions', () => {
    const r = readableTypes(matrix, professional('60'));
    expect(r.classSystem).toBe(A03);
    expect(r.classes).toEqual(['10', '11', '31', '42', '43', '44', '45', '52', '90', '95']);
    expect(r.types).toEqual(NURSE_READ_ALLOWED);
    expect(r.excludedTypes).toEqual(NURSE_READ_DENIED);
    expect(r.typesWithoutClass).toContainEqual(loinc('60591-5'));
    expect(r.typesWithoutClass).not.toContainEqual(a05('REMB'));
    expect(r.typesWithoutClass).not.toContainEqual(loinc('68599-0'));
  });

  it('gives a device nothing to read', () => {
    for (const code of ['health-insurer', 'integration-engine', 'catalogue-application']) {
      const r = readableTypes(matrix, device(code));
      expect([r.classes, r.types, r.excludedTypes, r.typesWithoutClass]).toEqual([[], [], [], []]);
    }
  });

  /** The filter as SQL will apply it, evaluated in memory. */
  function filterKeeps(r: ReturnType<typeof readableTypes>, type: Coding | undefined, category: Coding | undefined): boolean {
    const same = (a: Coding, b: Coding | undefined) => b !== undefined && a.code === b.code && (b.system === undefined || a.system === b.system);
    const exact = (a: Coding, b: Coding | undefined) => b !== undefined && a.code === b.code && a.system === b.system;
    if (r.excludedTypes.some((t) => same(t, type))) return false;
    if (r.types.some((t) => exact(t, type))) return true;
    if (category) return category.system === r.classSystem && r.classes.includes(category.code);
    return r.typesWithoutClass.some((t) => exact(t, type));
  }

  it('keeps exactly the documents matrixAllows lets the role read', () => {
    const knownTypes: Coding[] = [
      ...matrix.documentTypes.map((t) => ({ system: t.system, code: t.code })),
      ...matrix.rows.flatMap((r) => r.types.map((t) => ({ system: t.system, code: t.code }))),
    ];
    const type = fc.oneof(
      fc.constantFrom(...knownTypes),
      fc.constantFrom(...knownTypes).map((t) => ({ code: t.code })),
      fc.constant(loinc('00000-0')),
      fc.constant(undefined),
    );
    const category = fc.oneof(
      fc.constantFrom(...[...COLUMNS, '99'].map(cls)),
      fc.constant({ system: 'urn:other', code: '10' }),
      fc.constant(undefined),
    );
    const role = fc.oneof(fc.constantFrom(...Object.values(EXPECTED).map((e) => e.role)), fc.constant(professional('31')));
    fc.assert(
      fc.property(role, type, category, (ro, t, c) => {
        expect(filterKeeps(readableTypes(matrix, ro), t, c)).toBe(matrixAllows(matrix, ro, t, c, 'read'));
      }),
      { numRuns: 5000 },
    );
  });
});

describe('the loaded matrix', () => {
  it('is frozen: no code path can widen a right at run time', () => {
    const m = matrix as { rows: HabilitationMatrix['rows'] };
    expect(() => {
      (m.rows[0].cells['60'] as { read: boolean }).read = true;
    }).toThrow(TypeError);
    expect(() => (m.rows as unknown[]).push({})).toThrow(TypeError);
  });
});

describe('loadHabilitationMatrix refuses a malformed file', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'habilitation-matrix-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  const original = JSON.parse(fs.readFileSync(MATRIX_FILE, 'utf8'));
  const rowOf = (m: any, id: string) => m.rows.find((r: any) => r.id === id);
  let n = 0;
  /** Write the shipped file as changed by `change` and return the loader's complaint. */
  function refusal(change: (m: any) => unknown, text?: string): string {
    const m = structuredClone(original);
    change(m);
    const file = path.join(dir, `matrix-${n++}.json`);
    fs.writeFileSync(file, text ?? JSON.stringify(m));
    try {
      loadHabilitationMatrix(file, { profilesDir: PROFILES });
    } catch (e) {
      expect(e).toBeInstanceOf(HabilitationMatrixError);
      return (e as Error).message;
    }
    throw new Error('the matrix was accepted');
  }

  it('accepts an unchanged copy (the cases below fail for their own reason)', () => {
    const file = path.join(dir, 'copy.json');
    fs.writeFileSync(file, JSON.stringify(original));
    expect(loadHabilitationMatrix(file, { profilesDir: PROFILES }).rows.length).toBe(matrix.rows.length);
  });

  const cases: [string, (m: any) => unknown, string][] = [
    ['an unknown top-level property', (m) => (m.row = []), 'top level: unknown property "row"'],
    ['a bad version', (m) => (m.version = '1'), 'version must be a "major.minor.patch" string, got "1"'],
    ['no sources', (m) => delete m._meta.sources, '_meta.sources must be an object'],
    ['a source without citation', (m) => (m._meta.sources['infirmiers-com'] = { url: 'https://x' }), '_meta.sources.infirmiers-com: needs a "citation"'],
    ['"assumed" declared as a source', (m) => (m._meta.sources.assumed = { citation: 'x' }), '"assumed" is reserved'],
    ['a wrong profession system', (m) => (m.systems.profession = 'urn:oid:1.2.250.1.71.1.2.7'), 'systems.profession must be https://mos.esante.gouv.fr/NOS/TRE_G15'],
    ['a device-type system borrowed from TRE_G15', (m) => (m.systems.deviceType = G15), 'systems.deviceType must be a system of its own'],
    ['an unknown class column', (m) => m.classes.push('77'), 'classes: "77" is not a TRE_A03 class code'],
    ['a class column twice', (m) => m.classes.push('10'), 'classes: 10 is listed twice'],
    ['no class column', (m) => (m.classes = []), 'classes must be a non-empty array'],
    ['a device type twice', (m) => m.deviceTypes.push({ code: 'health-insurer', display: 'x' }), 'deviceTypes[3]: health-insurer is listed twice'],
    ['no patientClasses', (m) => delete m.patientClasses, 'patientClasses must be an array'],
    ['a patient class outside the columns', (m) => m.patientClasses.push('99'), 'patientClasses: "99" is not one of the classes'],
    ['a patient class twice', (m) => m.patientClasses.push('90'), 'patientClasses: 90 is listed twice'],
    ['a document type of an unknown system', (m) => (m.documentTypes[0].system = 'urn:x'), 'documentTypes[0]: system "urn:x" is not a document-type system'],
    ['an unknown document type', (m) => (m.documentTypes[30].code = '99999-9'), 'documentTypes[30]: "99999-9" is not a document type of http://loinc.org'],
    ['a document type mapped to a class that is not a column', (m) => (m.documentTypes[0].class = '99'), 'documentTypes[0] ("SYNTH"): class "99" is not one of the columns'],
    ['a document type mapped twice', (m) => m.documentTypes.push({ ...m.documentTypes[0], class: '10' }), 'documentTypes[70]: type SYNTH is mapped twice'],
    ['a mapping with an unknown source', (m) => (m.documentTypes[1].source = 'hearsay'), 'documentTypes[1]: source must be "assumed" or one of the _meta.sources keys (infirmiers-com), got "hearsay"'],
    ['no rows', (m) => (m.rows = []), 'rows must be a non-empty array'],
    ['a misspelt row property', (m) => (rowOf(m, 'infirmier').raed = true), 'row "infirmier" (rows[7]): unknown property "raed"'],
    ['a row id used twice', (m) => (rowOf(m, 'sage-femme').id = 'infirmier'), 'row "infirmier" (rows[7]): id "infirmier" is used by another row'],
    ['a malformed row id', (m) => (m.rows[0].id = 'Médecin du travail'), 'row (rows[0]): id must be a lower-case identifier'],
    ['an unknown profession', (m) => (rowOf(m, 'orthophoniste').profession = '99'), 'row "orthophoniste" (rows[11]): profession "99" is not a TRE_G15 code'],
    ['an unknown device type', (m) => (rowOf(m, 'assurance-maladie').profession = 'insurer'), 'row "assurance-maladie" (rows[24]): profession "insurer" is not one of the deviceTypes'],
    ['a device type used as a profession', (m) => (rowOf(m, 'assurance-maladie').kind = 'professional'), 'row "assurance-maladie" (rows[24]): profession "health-insurer" is not a TRE_G15 code'],
    ['a bad row kind', (m) => (rowOf(m, 'pharmacien').kind = 'person'), 'row "pharmacien" (rows[4]): kind must be "professional" or "device"'],
    ['an unknown specialty', (m) => rowOf(m, 'medecin-generaliste').specialties.push('SM99'), 'row "medecin-generaliste" (rows[2]): specialty "SM99" is not a TRE_R38 code'],
    ['an empty specialty list', (m) => (rowOf(m, 'pharmacien').specialties = []), 'row "pharmacien" (rows[4]): specialties must be a non-empty array'],
    ['specialties on a device row', (m) => (rowOf(m, 'moteur-integration').specialties = ['SM26']), 'row "moteur-integration" (rows[25]): a device row has no specialties'],
    ['a specialty selecting two rows', (m) => rowOf(m, 'medecin-biologiste').specialties.push('SM26'), 'row "medecin-generaliste" (rows[2]): specialty SM26 of profession 10 is already selected by row "medecin-biologiste"'],
    ['two default rows for a profession', (m) => delete rowOf(m, 'medecin-generaliste').specialties, 'row "medecin-specialiste" (rows[3]): profession 10 already has a row without specialties ("medecin-generaliste")'],
    ['no emergency decision', (m) => delete rowOf(m, 'sage-femme').emergency, 'row "sage-femme" (rows[6]): emergency must be {"allowed": true|false'],
    ['emergency as text', (m) => (rowOf(m, 'sage-femme').emergency.allowed = 'yes'), 'row "sage-femme" (rows[6]): emergency must be'],
    ['a device allowed emergency access', (m) => (rowOf(m, 'application-catalogue').emergency.allowed = true), 'row "application-catalogue" (rows[26]): a device cannot use emergency access'],
    ['a missing cell', (m) => delete rowOf(m, 'infirmier').cells['52'], 'row "infirmier" (rows[7]) cell 52: missing'],
    ['a cell for a class that is not a column', (m) => (rowOf(m, 'infirmier').cells['99'] = { read: true, write: false, source: 'assumed' }), 'row "infirmier" (rows[7]) cell 99: unknown class code'],
    ['a cell value that is not a boolean', (m) => (rowOf(m, 'infirmier').cells['10'].read = 'yes'), 'row "infirmier" (rows[7]) cell 10: read must be true or false, got "yes"'],
    ['a cell without write', (m) => delete rowOf(m, 'dieteticien').cells['44'].write, 'row "dieteticien" (rows[14]) cell 44: write must be true or false, got nothing'],
    ['a misspelt cell property', (m) => (rowOf(m, 'infirmier').cells['10'].raed = true), 'row "infirmier" (rows[7]) cell 10: unknown property "raed"'],
    ['a cell with an unknown source', (m) => (rowOf(m, 'oculariste').cells['42'].source = 'press'), 'row "oculariste" (rows[22]) cell 42: source must be "assumed" or one of the _meta.sources keys'],
    ['a cell without source', (m) => delete rowOf(m, 'oculariste').cells['42'].source, 'row "oculariste" (rows[22]) cell 42: source must be'],
    ['a per-operation source with an unknown operation', (m) => (rowOf(m, 'infirmier').cells['10'].source.delete = 'assumed'), 'row "infirmier" (rows[7]) cell 10 source: unknown property "delete"'],
    ['a per-operation source naming an unknown key', (m) => (rowOf(m, 'infirmier').cells['10'].source.read = 'press'), 'row "infirmier" (rows[7]) cell 10 read: source must be'],
    ['a type exception on an unknown type', (m) => (rowOf(m, 'infirmier').types[0].code = '1-1'), 'row "infirmier" (rows[7]) types[0]: "1-1" is not a document type of http://loinc.org'],
    ['a type exception that decides nothing', (m) => delete rowOf(m, 'infirmier').types[8].read, 'row "infirmier" (rows[7]) types[8] ("68599-0"): says neither read nor write'],
    ['a type exception with a text value', (m) => (rowOf(m, 'infirmier').types[8].read = 'no'), 'row "infirmier" (rows[7]) types[8] ("68599-0"): read must be true or false, got "no"'],
    ['a type twice in a row', (m) => rowOf(m, 'infirmier').types.push({ ...rowOf(m, 'infirmier').types[0] }), 'row "infirmier" (rows[7]) types[12]: type 83981-1 appears twice in this row'],
    ['a type exception with an unknown source', (m) => (rowOf(m, 'infirmier').types[0].source = 'press'), 'row "infirmier" (rows[7]) types[0]: source must be'],
    ['type exceptions that are not a list', (m) => (rowOf(m, 'pharmacien').types = {}), 'row "pharmacien" (rows[4]): types must be an array'],
  ];

  it.each(cases)('%s', (_name, change, message) => {
    expect(refusal(change)).toContain(message);
  });

  it('names the file and lists every problem at once', () => {
    const message = refusal((m) => {
      m.version = 'x';
      rowOf(m, 'infirmier').cells['10'].read = 'yes';
      rowOf(m, 'pharmacien').profession = '99';
    });
    expect(message).toMatch(/^Invalid habilitation matrix .*matrix-\d+\.json:\n/);
    expect(message).toContain('version must be');
    expect(message).toContain('row "infirmier" (rows[7]) cell 10: read must be true or false');
    expect(message).toContain('row "pharmacien" (rows[4]): profession "99" is not a TRE_G15 code');
  });

  it('refuses a file that does not hold an object', () => {
    expect(refusal(() => undefined, '[]')).toContain('the file must hold a JSON object');
  });

  it('refuses a file that is not JSON, and a missing file', () => {
    expect(refusal(() => undefined, '{ "version": ')).toContain('cannot be read as JSON');
    expect(() => loadHabilitationMatrix(path.join(dir, 'absent.json'), { profilesDir: PROFILES })).toThrow(/absent\.json:\n.*cannot be read as JSON/);
  });

  it('refuses to check against code data it cannot find', () => {
    const file = path.join(dir, 'alone.json');
    fs.writeFileSync(file, JSON.stringify(original));
    expect(() => loadHabilitationMatrix(file)).toThrow(/cannot read the code data it is checked against/);
  });
});
