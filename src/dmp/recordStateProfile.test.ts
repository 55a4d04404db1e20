import { RECORD_STATE_EXTENSION, withRecordState } from '../access/policy/recordState';
import { createServerValidator } from '../validation/forServer';

/** The state extension is known to the validator by its StructureDefinition (profiles/StructureDefinition/dmp-record-state.json). */
const validator = createServerValidator();
// dom-6 (no narrative) is a warning on every resource here: not what is tested
const problems = (resource: Record<string, unknown>) => validator.validate(resource).filter((i) => i.severity !== 'information' && !i.diagnostics.includes('dom-6'));

it('a Patient carrying its state validates, the extension known by its definition', () => {
  const patient = withRecordState({ resourceType: 'Patient', name: [{ family: 'Durand' }] }, { state: 'closed', since: '2026-06-01T00:00:00Z', closureMode: 'archive', retainUntil: '2036-05-29T00:00:00Z' });
  expect(problems(patient)).toEqual([]);
});

it('an extension without its state, or with a part it does not define, is refused', () => {
  const missing = { resourceType: 'Patient', extension: [{ url: RECORD_STATE_EXTENSION, extension: [{ url: 'date', valueDateTime: '2026-06-01' }] }] };
  expect(problems(missing).some((i) => i.severity === 'error')).toBe(true);
  const unknown = { resourceType: 'Patient', extension: [{ url: RECORD_STATE_EXTENSION, extension: [{ url: 'state', valueCode: 'open' }, { url: 'colour', valueString: 'blue' }] }] };
  expect(problems(unknown).some((i) => i.severity === 'error')).toBe(true);
});
