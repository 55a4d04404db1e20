import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCases, summarize } from '../../scripts/conformanceValidator';
import { startTarget, Target } from '../harness';

/**
 * The runner of validator test cases (manifest format of the public HL7 cases) against
 * $validate, on a directory of cases written here: a base case, a case with a supporting
 * Questionnaire, a profile case, and cases it does not run.
 */
let t: Target;
let dir: string;
beforeAll(async () => {
  t = await startTarget();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'validator-cases-'));
  const write = (name: string, content: unknown) => fs.writeFileSync(path.join(dir, name), JSON.stringify(content));
  const div = { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml">x</div>' };
  write('patient-ok.json', { resourceType: 'Patient', text: div, gender: 'female' });
  write('patient-bad.json', { resourceType: 'Patient', text: div, gender: 'sometimes' });
  write('q.json', { resourceType: 'Questionnaire', url: 'http://example.org/fhir/Questionnaire/runner-q', status: 'active', item: [{ linkId: 'n', type: 'integer', extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/maxValue', valueInteger: 5 }] }] });
  write('qr.json', { resourceType: 'QuestionnaireResponse', text: div, questionnaire: 'http://example.org/fhir/Questionnaire/runner-q', status: 'completed', item: [{ linkId: 'n', answer: [{ valueInteger: 9 }] }] });
  write('profile.json', {
    resourceType: 'StructureDefinition',
    url: 'http://example.org/fhir/StructureDefinition/runner-patient',
    // no name and no element ids (sdf-14): a write refuses it, a validation context takes it (decision 028)
    status: 'active',
    fhirVersion: '4.0.1',
    kind: 'resource',
    abstract: false,
    type: 'Patient',
    baseDefinition: 'http://hl7.org/fhir/StructureDefinition/Patient',
    derivation: 'constraint',
    differential: { element: [{ path: 'Patient' }, { path: 'Patient.birthDate', min: 1 }] },
  });
  fs.writeFileSync(path.join(dir, 'patient-ok.xml'), '<?xml version="1.0" encoding="UTF-8"?>\n<Patient xmlns="http://hl7.org/fhir"><gender value="female"/></Patient>');
  fs.writeFileSync(path.join(dir, 'patient-bad.xml'), '<Patient xmlns="http://hl7.org/fhir"><gender value="sometimes"/></Patient>');
  // an XML case whose resource the server's reader refuses (a namespace that is not FHIR's): errors found, as the reference validator's fatal one
  fs.writeFileSync(path.join(dir, 'patient-wrong-ns.xml'), '<Patient xmlns="http://hl7.org/fhir1"><gender value="female"/></Patient>');
  write('manifest.json', {
    'test-cases': [
      { name: 'base-ok', file: 'patient-ok.json', version: '4.0', java: { errorCount: 0 } },
      { name: 'base-bad', file: 'patient-bad.json', version: '4.0', java: { errorCount: 1 } },
      // the reference validator would find an error here that this server does not (a disagreement the runner must count)
      { name: 'base-disagree', file: 'patient-ok.json', version: '4.0', java: { errorCount: 2 } },
      { name: 'qr-max', file: 'qr.json', version: '4.0', supporting: ['q.json'], java: { errorCount: 1 } },
      { name: 'profile-birthdate', file: 'patient-ok.json', version: '4.0', java: { errorCount: 0 }, profile: { source: 'profile.json', java: { errorCount: 1 } } },
      // the current manifest format: the reference validator's OperationOutcome instead of a count
      { name: 'outcome-bad', file: 'patient-bad.json', version: '4.0', java: { outcome: { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'code-invalid' }, { severity: 'warning', code: 'invalid' }] } } },
      { name: 'outcome-ok', file: 'patient-ok.json', version: '4.0', java: { outcome: { resourceType: 'OperationOutcome' } } },
      { name: 'r5-case', file: 'patient-ok.json', java: { errorCount: 0 } },
      { name: 'xml-ok', file: 'patient-ok.xml', version: '4.0', java: { errorCount: 0 } },
      { name: 'xml-bad', file: 'patient-bad.xml', version: '4.0', java: { errorCount: 1 } },
      { name: 'xml-wrong-ns', file: 'patient-wrong-ns.xml', version: '4.0', java: { errorCount: 1 } },
      // the profile (JSON) goes into the XML Parameters converted
      { name: 'xml-profile', file: 'patient-ok.xml', version: '4.0', java: { errorCount: 0 }, profile: { source: 'profile.json', java: { errorCount: 1 } } },
      { name: 'missing-file', file: 'nowhere.json', version: '4.0', java: { errorCount: 0 } },
    ],
  });
});
afterAll(async () => {
  fs.rmSync(dir, { recursive: true, force: true });
  await t.close();
});

it('runs the R4 cases per set and format, definitions sent with the validation, and counts agreement with the reference outcome', async () => {
  const results = await runCases({ base: t.base, token: t.token }, dir);
  expect(results.map((r) => [r.name, r.set, r.format, r.skipped ? 'skipped' : r.agrees])).toEqual([
    ['base-ok', 'base', 'json', true],
    ['base-bad', 'base', 'json', true],
    ['base-disagree', 'base', 'json', false],
    ['qr-max', 'supporting', 'json', true],
    ['profile-birthdate', 'profile', 'json', true],
    ['outcome-bad', 'base', 'json', true],
    ['outcome-ok', 'base', 'json', true],
    ['r5-case', 'base', 'json', 'skipped'],
    ['xml-ok', 'base', 'xml', true],
    ['xml-bad', 'base', 'xml', true],
    ['xml-wrong-ns', 'base', 'xml', true],
    ['xml-profile', 'profile', 'xml', true],
    ['missing-file', 'base', 'json', 'skipped'],
  ]);
  expect(summarize(results)).toEqual([
    { set: 'base', format: 'json', run: 5, agree: 4, exact: 4 },
    { set: 'base', format: 'xml', run: 3, agree: 3, exact: 3 },
    { set: 'supporting', format: 'json', run: 1, agree: 1, exact: 1 },
    { set: 'supporting', format: 'xml', run: 0, agree: 0, exact: 0 },
    { set: 'profile', format: 'json', run: 1, agree: 1, exact: 1 },
    { set: 'profile', format: 'xml', run: 1, agree: 1, exact: 1 },
  ]);
  // nothing was written: the definitions were the context of each validation only
  const stored = await fetch(`${t.base}/StructureDefinition?url=${encodeURIComponent('http://example.org/fhir/StructureDefinition/runner-patient')}&_summary=count`, { headers: { authorization: `Bearer ${t.token}`, accept: 'application/fhir+json' } });
  expect(((await stored.json()) as { total: number }).total).toBe(0);
});
