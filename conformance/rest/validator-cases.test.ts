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
    name: 'RunnerPatient',
    status: 'active',
    fhirVersion: '4.0.1',
    kind: 'resource',
    abstract: false,
    type: 'Patient',
    baseDefinition: 'http://hl7.org/fhir/StructureDefinition/Patient',
    derivation: 'constraint',
    differential: { element: [{ id: 'Patient', path: 'Patient' }, { id: 'Patient.birthDate', path: 'Patient.birthDate', min: 1 }] },
  });
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
      { name: 'xml-case', file: 'patient-ok.xml', version: '4.0', java: { errorCount: 0 } },
    ],
  });
});
afterAll(async () => {
  fs.rmSync(dir, { recursive: true, force: true });
  await t.close();
});

it('runs the R4 JSON cases per set and counts agreement with the reference outcome', async () => {
  const results = await runCases({ base: t.base, token: t.token }, dir);
  expect(results.map((r) => [r.name, r.set, r.skipped ? 'skipped' : r.agrees])).toEqual([
    ['base-ok', 'base', true],
    ['base-bad', 'base', true],
    ['base-disagree', 'base', false],
    ['qr-max', 'supporting', true],
    ['profile-birthdate', 'profile', true],
    ['outcome-bad', 'base', true],
    ['outcome-ok', 'base', true],
    ['r5-case', 'base', 'skipped'],
    ['xml-case', 'base', 'skipped'],
  ]);
  expect(summarize(results)).toEqual([
    { set: 'base', run: 5, agree: 4, exact: 4 },
    { set: 'supporting', run: 1, agree: 1, exact: 1 },
    { set: 'profile', run: 1, agree: 1, exact: 1 },
  ]);
});
