import type { DecimalTexts } from '../json/decimals';
import type { BinaryStream, StoredContent } from '../store/binaryContent';
import type { Logger } from 'pino';
import type { Config } from '../config/config';
import type { Issue } from '../errors';
import type { Registry } from '../registry/registry';
import type { AuthSetup } from '../pipeline/authenticate';
import type { Database } from '../store/database';

export interface Prefer {
  return?: 'minimal' | 'representation' | 'OperationOutcome';
  handling?: 'strict' | 'lenient';
}

/** A FHIR request, independent of HTTP: what the router parsed, or a transaction entry. */
export interface FhirRequest {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'HEAD';
  resourceType?: string;
  id?: string;
  versionId?: string;
  /** Query parameters in order, repeated names kept. */
  query: [string, string][];
  /** Lower-case header names. */
  headers: Record<string, string | undefined>;
  /** Parsed JSON body (resource, Bundle or JSON Patch). */
  body?: unknown;
  /** Raw Binary content, spooled to a file and written to the database in chunks. */
  rawBody?: { contentType: string; stream: BinaryStream };
  prefer: Prefer;
  /** Decimals of the body whose text a JavaScript number would change (72.10, 1e2), by JSON Pointer. */
  decimals?: DecimalTexts;
  /** The network address of the client (for the audit trail); absent for internal requests. */
  clientAddress?: string;
  /** Set on transaction entries: the Bundle's conditional references are already resolved. */
  /**
   * The id a transaction drew for this conditional update before running it (its urn:uuid
   * fullUrl had to name it): used when nothing matches and the body has no id, which keeps
   * the write a create at an id the server drew (docs/decisions/012-update-as-create.md).
   */
  drawnId?: string;
  referencesResolved?: boolean;
  /**
   * Set on the DocumentReference entries of an MHD submission: the server supersedes the
   * documents they replace, but for those the Bundle changes itself (listed here).
   */
  replacement?: { changedByBundle: Set<string> };
  /**
   * Set on the DocumentReference and List entries of an MHD submission: they meet the PDSm
   * profiles when their patient is a national record (docs/decisions/029-dmp-submissions.md).
   * `records` remembers, for the submission, which Patients are.
   */
  submission?: { records: Map<string, SubmissionProfileSet | undefined> };
  /** Set on a Binary entry of an MHD submission: its base64 `data` as already decoded to measure it, not decoded again. */
  decodedData?: DecodedBase64;
}

/** Base64 text and its bytes. */
export interface DecodedBase64 {
  text: string;
  bytes: Buffer;
}

/** Our PDSm profiles, by what a submission carries (profiles/profile-map.json `submissions`). */
export interface SubmissionProfileSet {
  submissionSet: string;
  documentReference: string;
  folder: string;
}

export interface FhirResponse {
  status: number;
  /** A resource or Bundle to serialise. */
  resource?: Record<string, unknown>;
  /** A stored resource already serialised (read fast path, no parse/serialise round trip). */
  resourceText?: string;
  /** A non-FHIR answer sent as is, whatever the client negotiated: a bulk export's manifest or NDJSON file. */
  raw?: { contentType: string; text: string };
  /**
   * A Binary's content, read from the database as it is sent: raw when the client accepts
   * it, else as base64 `data` added to `resource`/`resourceText` (which do not carry it).
   */
  binary?: StoredContent;
  /** Relative location `Type/id/_history/n` of the resource written or read. */
  location?: string;
  versionId?: number;
  lastModified?: Date;
  /** `lastModified` is the date of an earlier content too (src/interactions/read.ts): it keeps no range. */
  lastModifiedIsWeak?: boolean;
  /** The client asked for a FHIR Binary but also accepts raw bytes. */
  headers?: Record<string, string>;
}

/** What the server needs of the validator (src/validation): checks, conformance resources, terminology. */
export interface ResourceValidator {
  validate(resource: unknown, options?: { profiles?: string[]; mode?: 'create' | 'update' | 'delete'; unknownExtensions?: 'warning' | 'error' }): Issue[];
  addConformanceResource(resource: unknown): Issue[];
  /** What addConformanceResource would answer, without registering the resource. */
  checkConformanceResource(resource: unknown): Issue[];
  removeConformanceResource(resourceType: string, url: string): void;
  hasProfile(url: string): boolean;
  /** A validator for one call whose context adds the supplied definitions, never stored (decision 028); issues: refused ones. */
  withDefinitions?(definitions: unknown[]): { validator?: ResourceValidator; issues: Issue[] };
  /** Our profiles that apply whether or not a resource claims them, by type, and when (profiles/profile-map.json); absent: none. */
  defaultProfiles?(): { resourceType: string; profile: string; when?: unknown }[];
  /** The profiles an MHD submission for this Patient meets whether or not it claims them (docs/decisions/029-dmp-submissions.md); none when it is no national record. */
  submissionProfiles?(patient: Record<string, unknown>): SubmissionProfileSet | undefined;
  /** Whether R4 defines a resource type of this name. */
  isResourceType(name: string): boolean;
  conformanceResources(resourceType: 'StructureDefinition' | 'ValueSet' | 'CodeSystem' | 'Questionnaire'): unknown[];
  expandValueSet(url: string, options?: { filter?: string; count?: number; offset?: number }): unknown | undefined;
  validateCode(args: { url?: string; system?: string; code: string; display?: string; codeSystemUrl?: string }): { result: boolean; message?: string; display?: string };
}

export interface InteractionContext {
  config: Config;
  registry: Registry;
  db: Database;
  log: Logger;
  /** HMAC secret for page tokens, shared by every worker through the database. */
  pageTokenSecret: string;
  /** Validates every write; absent only in narrow unit tests. */
  validator?: ResourceValidator;
  /** Trusted issuers and the access policy; absent only in scripts that serve no HTTP. */
  auth?: AuthSetup;
  /** Expands a ValueSet to its codes (for :in / :not-in), when terminology is available. */
  expandValueSet?: (url: string) => { system?: string; code: string }[] | undefined;
  /**
   * Set only by `startServer(config, log, { audit: false })`, for measuring what the audit
   * trail costs (scripts/bench-audit.ts): the pipeline then writes no AuditEvent and no
   * notice. No configuration or environment variable sets it (docs/decisions/009-audit.md).
   */
  withoutAudit?: true;
}
