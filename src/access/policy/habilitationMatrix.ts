/**
 * The habilitation matrix: which document classes (and, by exception, which document types)
 * each profession, specialty or device type may read and write. The data is
 * profiles/habilitation-matrix.json; this module loads it, refuses a malformed file (the
 * server must not start on a matrix it cannot trust) and answers the questions the policy
 * engine and the search filter ask. Everything but the loader is pure.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Coding } from '../actor';

export type MatrixOperation = 'read' | 'write';

/** The acting role as the matrix sees it: a profession (or a Device.type) and its specialties. */
export interface MatrixRole {
  profession: Coding;
  specialties: Coding[];
}

/** Where a decision comes from: `assumed`, or a key of the file's `_meta.sources`. */
export type Source = string;
export const ASSUMED: Source = 'assumed';

export interface MatrixCell {
  read: boolean;
  write: boolean;
  source: { read: Source; write: Source };
}

/** A document type whose rule differs from its class cell; an operation left undefined falls back to the cell. */
export interface TypeException {
  system: string;
  code: string;
  read?: boolean;
  write?: boolean;
  source: Source;
}

export interface MatrixRow {
  id: string;
  label: string;
  kind: 'professional' | 'device';
  /** TRE_G15 profession, or Device.type in the matrix's device-type system. */
  profession: { system: string; code: string };
  /** TRE_R38 codes that select this row; empty for the profession's default row. */
  specialties: readonly string[];
  emergency: { allowed: boolean; source: Source };
  /** One cell per column of `classes`. */
  cells: Readonly<Record<string, MatrixCell>>;
  types: readonly TypeException[];
}

export interface DocumentTypeClass {
  system: string;
  code: string;
  class: string;
  source: Source;
}

export interface HabilitationMatrix {
  version: string;
  systems: { profession: string; specialty: string; documentClass: string; deviceType: string };
  /** The columns: TRE_A03 class codes. A class outside them is unknown, and nobody's. */
  classes: readonly string[];
  /** The classes a patient (or their legal representative) deposits in their own record: patient-authored documents. */
  patientClasses: readonly string[];
  /** Class of each known document type, used when a document carries no category. */
  documentTypes: readonly DocumentTypeClass[];
  sources: Readonly<Record<string, { citation: string; url?: string }>>;
  /** In file order: the order matters when a role's specialties select several rows. */
  rows: readonly MatrixRow[];
}

/** What a search needs to keep only the documents a role may read (see readableTypes). */
export interface ReadableTypes {
  /** The TRE_A03 system the `classes` codes belong to. */
  classSystem: string;
  /** Classes readable through their cell (documents whose category is one of them). */
  classes: string[];
  /** Types readable whatever their class (allowed by exception). */
  types: Coding[];
  /** Types never readable, whatever their class; also any stored type with this code and no system. */
  excludedTypes: Coding[];
  /** Types readable when the document has no category: their mapped class is readable. */
  typesWithoutClass: Coding[];
}

export class HabilitationMatrixError extends Error {
  constructor(
    readonly file: string,
    readonly problems: string[],
  ) {
    super(`Invalid habilitation matrix ${file}:\n  - ${problems.join('\n  - ')}`);
    this.name = 'HabilitationMatrixError';
  }
}

// ---------------------------------------------------------------------------------------------
// Decisions

/**
 * The row that applies to a role: among the rows of its profession, the first (file order)
 * naming one of its specialties, else the profession's row without specialties. None: no right.
 */
export function matrixRowFor(matrix: HabilitationMatrix, role: MatrixRole): MatrixRow | undefined {
  const { profession } = role;
  const candidates = matrix.rows.filter((r) => r.profession.system === profession.system && r.profession.code === profession.code);
  const specialties = new Set(role.specialties.filter((s) => s.system === matrix.systems.specialty).map((s) => s.code));
  return candidates.find((r) => r.specialties.some((s) => specialties.has(s))) ?? candidates.find((r) => r.specialties.length === 0);
}

/**
 * May this role read (or write) a document of this type and class?
 * Precedence: the row's exception for the type, then the cell of the document's class, where the
 * class is the category when given and the type's mapped class only when it is not. An unknown
 * class (category outside the columns, or no category and an unmapped type) is refused.
 */
export function matrixAllows(
  matrix: HabilitationMatrix,
  role: MatrixRole,
  documentType: Coding | undefined,
  documentClass: Coding | undefined,
  operation: MatrixOperation,
): boolean {
  const row = matrixRowFor(matrix, role);
  if (!row) return false;
  if (documentType) {
    const exception = exceptionFor(row, documentType, operation);
    if (exception !== undefined) return exception;
  }
  const cls = classOf(matrix, documentType, documentClass);
  return cls !== undefined && row.cells[cls][operation];
}

/**
 * The row's rule for a type, if it has one for this operation. A type without a system cannot be
 * told apart from a denied type of the same code, so it takes the denial and never an allowance.
 */
function exceptionFor(row: MatrixRow, type: Coding, operation: MatrixOperation): boolean | undefined {
  if (type.system === undefined) {
    return row.types.some((t) => t.code === type.code && t[operation] === false) ? false : undefined;
  }
  return row.types.find((t) => t.system === type.system && t.code === type.code)?.[operation];
}

/** The class a document belongs to for the matrix, or undefined when it is unknown. */
export function classOf(matrix: HabilitationMatrix, documentType: Coding | undefined, documentClass: Coding | undefined): string | undefined {
  if (documentClass) {
    return documentClass.system === matrix.systems.documentClass && matrix.classes.includes(documentClass.code) ? documentClass.code : undefined;
  }
  if (!documentType || documentType.system === undefined) return undefined;
  return matrix.documentTypes.find((t) => t.system === documentType.system && t.code === documentType.code)?.class;
}

/**
 * May a patient (or their legal representative) deposit a document of this type and class in
 * their own record? Only patient-authored documents: a class of `patientClasses`, found as
 * the matrix finds any document's class.
 */
export function patientMayWrite(matrix: HabilitationMatrix, documentType: Coding | undefined, documentClass: Coding | undefined): boolean {
  const cls = classOf(matrix, documentType, documentClass);
  return cls !== undefined && matrix.patientClasses.includes(cls);
}

/**
 * The read constraint of a role as sets a SQL filter can use. A document is readable exactly when
 *   type ∉ excludedTypes (nor its code, for a type stored without system)
 *   and (type ∈ types or category ∈ classes (system classSystem) or (no category and type ∈ typesWithoutClass)),
 * which is what matrixAllows(…, 'read') answers for the same document.
 */
export function readableTypes(matrix: HabilitationMatrix, role: MatrixRole): ReadableTypes {
  const row = matrixRowFor(matrix, role);
  const result: ReadableTypes = { classSystem: matrix.systems.documentClass, classes: [], types: [], excludedTypes: [], typesWithoutClass: [] };
  if (!row) return result;
  result.classes = matrix.classes.filter((c) => row.cells[c].read);
  for (const t of row.types) {
    if (t.read === true) result.types.push({ system: t.system, code: t.code });
    if (t.read === false) result.excludedTypes.push({ system: t.system, code: t.code });
  }
  const hasException = (t: DocumentTypeClass) => row.types.some((e) => e.system === t.system && e.code === t.code && e.read !== undefined);
  result.typesWithoutClass = matrix.documentTypes
    .filter((t) => row.cells[t.class].read && !hasException(t))
    .map((t) => ({ system: t.system, code: t.code }));
  return result;
}

/** May this role use emergency (break-glass) access? No row: no. */
export function emergencyAllowed(matrix: HabilitationMatrix, role: MatrixRole): boolean {
  return matrixRowFor(matrix, role)?.emergency.allowed ?? false;
}

// ---------------------------------------------------------------------------------------------
// Loading and checking

/** The code data a matrix is checked against, read from the profiles directory. */
interface CodeData {
  professions: { url: string; codes: Set<string> };
  specialties: { url: string; codes: Set<string> };
  classes: { url: string; codes: Set<string> };
  /** Document types by system (DocumentReference.type value set). */
  documentTypes: Map<string, Set<string>>;
}

export interface LoadOptions {
  /** Where CodeSystem/ and ValueSet/ are; defaults to the directory of the matrix file. */
  profilesDir?: string;
}

/** Read and check the matrix file; throws HabilitationMatrixError listing every problem found. */
export function loadHabilitationMatrix(file: string, options: LoadOptions = {}): HabilitationMatrix {
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new HabilitationMatrixError(file, [`cannot be read as JSON: ${(e as Error).message}`]);
  }
  const codes = readCodeData(options.profilesDir ?? path.dirname(file));
  const problems: string[] = [];
  const matrix = checkMatrix(raw, codes, problems);
  if (problems.length > 0 || !matrix) throw new HabilitationMatrixError(file, problems);
  return deepFreeze(matrix);
}

function readCodeData(profilesDir: string): CodeData {
  const read = (relative: string): any => {
    const p = path.join(profilesDir, relative);
    try {
      return JSON.parse(fs.readFileSync(p, 'utf8'));
    } catch (e) {
      throw new Error(`Habilitation matrix: cannot read the code data it is checked against (${p}): ${(e as Error).message}`);
    }
  };
  const codeSystem = (relative: string) => {
    const cs = read(relative);
    return { url: String(cs.url), codes: new Set<string>((cs.concept ?? []).map((c: { code: string }) => c.code)) };
  };
  const documentTypes = new Map<string, Set<string>>();
  for (const include of read('ValueSet/dmp-vs-document-type.json').compose?.include ?? []) {
    const set = documentTypes.get(include.system) ?? new Set<string>();
    for (const c of include.concept ?? []) set.add(c.code);
    documentTypes.set(include.system, set);
  }
  return {
    professions: codeSystem('CodeSystem/tre-g15-profession-sante.json'),
    specialties: codeSystem('CodeSystem/tre-r38-specialite-ordinale.json'),
    classes: codeSystem('CodeSystem/tre-a03-classe-document.json'),
    documentTypes,
  };
}

const TOP_KEYS = ['id', 'version', 'date', '_meta', 'systems', 'classes', 'deviceTypes', 'patientClasses', 'documentTypes', 'rows'];
const ROW_KEYS = ['id', 'label', 'kind', 'profession', 'specialties', 'emergency', 'note', 'cells', 'types'];
const CELL_KEYS = ['read', 'write', 'source'];
const TYPE_KEYS = ['system', 'code', 'display', 'read', 'write', 'source'];
const OPERATIONS: MatrixOperation[] = ['read', 'write'];

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const isText = (v: unknown): v is string => typeof v === 'string' && v.trim() !== '';
const show = (v: unknown) => (v === undefined ? 'nothing' : JSON.stringify(v));

function unknownKeys(where: string, value: Json, allowed: string[], problems: string[]): void {
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) problems.push(`${where}: unknown property "${key}" (allowed: ${allowed.join(', ')})`);
  }
}

function checkMatrix(raw: unknown, codes: CodeData, problems: string[]): HabilitationMatrix | undefined {
  if (!isObject(raw)) {
    problems.push('the file must hold a JSON object');
    return undefined;
  }
  unknownKeys('top level', raw, TOP_KEYS, problems);
  if (typeof raw.version !== 'string' || !/^\d+\.\d+\.\d+$/.test(raw.version)) {
    problems.push(`version must be a "major.minor.patch" string, got ${show(raw.version)}`);
  }
  const sources = checkSources(raw._meta, problems);
  const systems = checkSystems(raw.systems, codes, problems);
  const classes = checkClasses(raw.classes, codes, problems);
  const deviceTypes = checkDeviceTypes(raw.deviceTypes, problems);
  const checkSource = (where: string, value: unknown): Source => {
    if (value === ASSUMED || (typeof value === 'string' && value in sources)) return value;
    problems.push(`${where}: source must be "${ASSUMED}" or one of the _meta.sources keys (${Object.keys(sources).join(', ') || 'none'}), got ${show(value)}`);
    return ASSUMED;
  };
  const patientClasses = checkPatientClasses(raw.patientClasses, classes, problems);
  const documentTypes = checkDocumentTypes(raw.documentTypes, codes, classes, checkSource, problems);
  const rows = checkRows(raw.rows, { codes, systems, classes, deviceTypes, checkSource }, problems);
  if (!systems) return undefined;
  return { version: String(raw.version), systems, classes, patientClasses, documentTypes, sources, rows };
}

function checkSources(meta: unknown, problems: string[]): Record<string, { citation: string; url?: string }> {
  const sources: Record<string, { citation: string; url?: string }> = {};
  if (!isObject(meta) || !isObject(meta.sources)) {
    problems.push('_meta.sources must be an object: each documented source, by key');
    return sources;
  }
  for (const [key, value] of Object.entries(meta.sources)) {
    if (key === ASSUMED) problems.push(`_meta.sources: "${ASSUMED}" is reserved for cells without a source`);
    else if (!isObject(value) || !isText(value.citation) || (value.url !== undefined && !isText(value.url))) {
      problems.push(`_meta.sources.${key}: needs a "citation" (and optionally a "url") string`);
    } else sources[key] = { citation: value.citation, ...(value.url !== undefined ? { url: value.url as string } : {}) };
  }
  return sources;
}

function checkSystems(value: unknown, codes: CodeData, problems: string[]): HabilitationMatrix['systems'] | undefined {
  if (!isObject(value)) {
    problems.push('systems must be an object naming the profession, specialty, documentClass and deviceType systems');
    return undefined;
  }
  unknownKeys('systems', value, ['profession', 'specialty', 'documentClass', 'deviceType'], problems);
  const expect = (key: string, url: string) => {
    if (value[key] !== url) problems.push(`systems.${key} must be ${url} (the code system it is checked against), got ${show(value[key])}`);
  };
  expect('profession', codes.professions.url);
  expect('specialty', codes.specialties.url);
  expect('documentClass', codes.classes.url);
  const taken = [codes.professions.url, codes.specialties.url, codes.classes.url, ...codes.documentTypes.keys()];
  if (!isText(value.deviceType) || taken.includes(value.deviceType)) {
    problems.push(`systems.deviceType must be a system of its own, got ${show(value.deviceType)}`);
  }
  return {
    profession: codes.professions.url,
    specialty: codes.specialties.url,
    documentClass: codes.classes.url,
    deviceType: String(value.deviceType),
  };
}

function checkClasses(value: unknown, codes: CodeData, problems: string[]): string[] {
  if (!Array.isArray(value) || value.length === 0) {
    problems.push('classes must be a non-empty array of TRE_A03 class codes (the columns)');
    return [];
  }
  const classes: string[] = [];
  for (const code of value) {
    if (typeof code !== 'string' || !codes.classes.codes.has(code)) problems.push(`classes: ${show(code)} is not a TRE_A03 class code`);
    else if (classes.includes(code)) problems.push(`classes: ${code} is listed twice`);
    else classes.push(code);
  }
  return classes;
}

function checkPatientClasses(value: unknown, classes: string[], problems: string[]): string[] {
  if (!Array.isArray(value)) {
    problems.push('patientClasses must be an array of the class codes (columns) a patient deposits');
    return [];
  }
  const out: string[] = [];
  for (const code of value) {
    if (typeof code !== 'string' || !classes.includes(code)) problems.push(`patientClasses: ${show(code)} is not one of the classes`);
    else if (out.includes(code)) problems.push(`patientClasses: ${code} is listed twice`);
    else out.push(code);
  }
  return out;
}

function checkDeviceTypes(value: unknown, problems: string[]): Set<string> {
  const types = new Set<string>();
  if (!Array.isArray(value)) {
    problems.push('deviceTypes must be an array of {code, display}');
    return types;
  }
  value.forEach((t, i) => {
    if (!isObject(t) || typeof t.code !== 'string' || !/^[a-z][a-z0-9-]*$/.test(t.code) || !isText(t.display)) {
      problems.push(`deviceTypes[${i}]: needs a lower-case "code" and a "display"`);
    } else if (types.has(t.code)) problems.push(`deviceTypes[${i}]: ${t.code} is listed twice`);
    else types.add(t.code);
  });
  return types;
}

function checkDocumentType(where: string, system: unknown, code: unknown, codes: CodeData, problems: string[]): boolean {
  const known = typeof system === 'string' ? codes.documentTypes.get(system) : undefined;
  if (!known) {
    problems.push(`${where}: system ${show(system)} is not a document-type system (${[...codes.documentTypes.keys()].join(', ')})`);
    return false;
  }
  if (typeof code !== 'string' || !known.has(code)) {
    problems.push(`${where}: ${show(code)} is not a document type of ${system} in ValueSet dmp-vs-document-type`);
    return false;
  }
  return true;
}

function checkDocumentTypes(
  value: unknown,
  codes: CodeData,
  classes: string[],
  checkSource: (where: string, v: unknown) => Source,
  problems: string[],
): DocumentTypeClass[] {
  const result: DocumentTypeClass[] = [];
  if (!Array.isArray(value)) {
    problems.push('documentTypes must be an array of {system, code, class, source}');
    return result;
  }
  const seen = new Set<string>();
  value.forEach((t, i) => {
    const where = `documentTypes[${i}]`;
    if (!isObject(t)) {
      problems.push(`${where}: must be an object`);
      return;
    }
    unknownKeys(where, t, ['system', 'code', 'display', 'class', 'source'], problems);
    const known = checkDocumentType(where, t.system, t.code, codes, problems);
    const source = checkSource(where, t.source);
    if (typeof t.class !== 'string' || !classes.includes(t.class)) {
      problems.push(`${where} (${show(t.code)}): class ${show(t.class)} is not one of the columns (${classes.join(', ')})`);
      return;
    }
    if (!known) return;
    const key = `${t.system}|${t.code}`;
    if (seen.has(key)) problems.push(`${where}: type ${t.code} is mapped twice`);
    seen.add(key);
    result.push({ system: t.system as string, code: t.code as string, class: t.class, source });
  });
  return result;
}

interface RowContext {
  codes: CodeData;
  systems: HabilitationMatrix['systems'] | undefined;
  classes: string[];
  deviceTypes: Set<string>;
  checkSource: (where: string, v: unknown) => Source;
}

function checkRows(value: unknown, ctx: RowContext, problems: string[]): MatrixRow[] {
  if (!Array.isArray(value) || value.length === 0) {
    problems.push('rows must be a non-empty array');
    return [];
  }
  const rows: MatrixRow[] = [];
  const ids = new Set<string>();
  // profession → specialty (or '' for the default row) → id of the row that claims it
  const claimed = new Map<string, Map<string, string>>();
  value.forEach((r, i) => {
    const row = checkRow(r, i, ctx, problems);
    if (!row) return;
    const where = `row "${row.id}" (rows[${i}])`;
    if (ids.has(row.id)) problems.push(`${where}: id "${row.id}" is used by another row`);
    ids.add(row.id);
    const byProfession = claimed.get(`${row.kind}|${row.profession.code}`) ?? new Map<string, string>();
    claimed.set(`${row.kind}|${row.profession.code}`, byProfession);
    for (const s of row.specialties.length ? row.specialties : ['']) {
      const other = byProfession.get(s);
      if (other) {
        problems.push(
          s
            ? `${where}: specialty ${s} of profession ${row.profession.code} is already selected by row "${other}"`
            : `${where}: profession ${row.profession.code} already has a row without specialties ("${other}")`,
        );
      } else byProfession.set(s, row.id);
    }
    rows.push(row);
  });
  return rows;
}

function checkRow(r: unknown, i: number, ctx: RowContext, problems: string[]): MatrixRow | undefined {
  if (!isObject(r)) {
    problems.push(`rows[${i}]: must be an object`);
    return undefined;
  }
  const id = typeof r.id === 'string' && /^[a-z][a-z0-9-]*$/.test(r.id) ? r.id : undefined;
  const where = `row ${id ? `"${id}" ` : ''}(rows[${i}])`;
  if (!id) problems.push(`${where}: id must be a lower-case identifier, got ${show(r.id)}`);
  unknownKeys(where, r, ROW_KEYS, problems);
  if (!isText(r.label)) problems.push(`${where}: label is required`);
  if (r.note !== undefined && !isText(r.note)) problems.push(`${where}: note must be text`);

  const kind = r.kind;
  let system: string | undefined;
  if (kind === 'professional') {
    system = ctx.systems?.profession;
    if (typeof r.profession !== 'string' || !ctx.codes.professions.codes.has(r.profession)) {
      problems.push(`${where}: profession ${show(r.profession)} is not a TRE_G15 code`);
    }
  } else if (kind === 'device') {
    system = ctx.systems?.deviceType;
    if (typeof r.profession !== 'string' || !ctx.deviceTypes.has(r.profession)) {
      problems.push(`${where}: profession ${show(r.profession)} is not one of the deviceTypes`);
    }
  } else problems.push(`${where}: kind must be "professional" or "device", got ${show(kind)}`);

  const specialties: string[] = [];
  if (r.specialties !== undefined) {
    if (kind === 'device') problems.push(`${where}: a device row has no specialties`);
    if (!Array.isArray(r.specialties) || r.specialties.length === 0) {
      problems.push(`${where}: specialties must be a non-empty array of TRE_R38 codes (omit it for the profession's default row)`);
    } else {
      for (const s of r.specialties) {
        if (typeof s !== 'string' || !ctx.codes.specialties.codes.has(s)) problems.push(`${where}: specialty ${show(s)} is not a TRE_R38 code`);
        else if (specialties.includes(s)) problems.push(`${where}: specialty ${s} is listed twice`);
        else specialties.push(s);
      }
    }
  }

  let emergency = { allowed: false, source: ASSUMED };
  if (!isObject(r.emergency) || typeof r.emergency.allowed !== 'boolean') {
    problems.push(`${where}: emergency must be {"allowed": true|false, "source": …}, got ${show(r.emergency)}`);
  } else {
    unknownKeys(`${where} emergency`, r.emergency, ['allowed', 'source'], problems);
    emergency = { allowed: r.emergency.allowed, source: ctx.checkSource(`${where} emergency`, r.emergency.source) };
    if (kind === 'device' && emergency.allowed) problems.push(`${where}: a device cannot use emergency access`);
  }

  const cells = checkCells(r.cells, where, ctx, problems);
  const types = checkTypeExceptions(r.types, where, ctx, problems);
  if (!id || !system || typeof r.profession !== 'string' || (kind !== 'professional' && kind !== 'device')) return undefined;
  return { id, label: String(r.label), kind, profession: { system, code: r.profession }, specialties, emergency, cells, types };
}

function checkCells(value: unknown, where: string, ctx: RowContext, problems: string[]): Record<string, MatrixCell> {
  const cells: Record<string, MatrixCell> = {};
  if (!isObject(value)) {
    problems.push(`${where}: cells must be an object with one cell per class (${ctx.classes.join(', ')})`);
    return cells;
  }
  for (const key of Object.keys(value)) {
    if (!ctx.classes.includes(key)) problems.push(`${where} cell ${key}: unknown class code (the columns are ${ctx.classes.join(', ')})`);
  }
  for (const cls of ctx.classes) {
    const at = `${where} cell ${cls}`;
    const cell = value[cls];
    if (!isObject(cell)) {
      // a missing cell would be a silent default: every cell must be a decision
      problems.push(`${at}: missing (every class needs an explicit {"read", "write", "source"})`);
      continue;
    }
    unknownKeys(at, cell, CELL_KEYS, problems);
    for (const op of OPERATIONS) {
      if (typeof cell[op] !== 'boolean') problems.push(`${at}: ${op} must be true or false, got ${show(cell[op])}`);
    }
    cells[cls] = { read: cell.read === true, write: cell.write === true, source: checkCellSource(at, cell.source, ctx, problems) };
  }
  return cells;
}

function checkCellSource(at: string, value: unknown, ctx: RowContext, problems: string[]): MatrixCell['source'] {
  if (isObject(value)) {
    unknownKeys(`${at} source`, value, OPERATIONS, problems);
    return { read: ctx.checkSource(`${at} read`, value.read), write: ctx.checkSource(`${at} write`, value.write) };
  }
  const source = ctx.checkSource(at, value);
  return { read: source, write: source };
}

function checkTypeExceptions(value: unknown, where: string, ctx: RowContext, problems: string[]): TypeException[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) {
    problems.push(`${where}: types must be an array of {system, code, read?, write?, source}`);
    return [];
  }
  const result: TypeException[] = [];
  value.forEach((t, j) => {
    const at = `${where} types[${j}]`;
    if (!isObject(t)) {
      problems.push(`${at}: must be an object`);
      return;
    }
    unknownKeys(at, t, TYPE_KEYS, problems);
    const known = checkDocumentType(at, t.system, t.code, ctx.codes, problems);
    for (const op of OPERATIONS) {
      if (t[op] !== undefined && typeof t[op] !== 'boolean') problems.push(`${at} (${show(t.code)}): ${op} must be true or false, got ${show(t[op])}`);
    }
    if (t.read === undefined && t.write === undefined) problems.push(`${at} (${show(t.code)}): says neither read nor write`);
    const source = ctx.checkSource(at, t.source);
    if (!known) return;
    if (result.some((e) => e.system === t.system && e.code === t.code)) problems.push(`${at}: type ${t.code} appears twice in this row`);
    result.push({
      system: t.system as string,
      code: t.code as string,
      ...(typeof t.read === 'boolean' ? { read: t.read } : {}),
      ...(typeof t.write === 'boolean' ? { write: t.write } : {}),
      source,
    });
  });
  return result;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
