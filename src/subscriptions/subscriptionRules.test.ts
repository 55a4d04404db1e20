import { afterFailure, endpointRefusal, headerLine, parseCriteria, subscriptionDefect } from './subscriptionRules';

const valid = { resourceType: 'Subscription', status: 'requested', reason: 'r', criteria: 'DocumentReference?patient=Patient/1', channel: { type: 'rest-hook', endpoint: 'https://ehr.example/hook' } };

describe('criteria', () => {
  it.each([
    ['DocumentReference?patient=Patient/1', { resourceType: 'DocumentReference', query: [['patient', 'Patient/1']] }],
    ['Communication?recipient=Patient%2Fx&category=notification', { resourceType: 'Communication', query: [['recipient', 'Patient/x'], ['category', 'notification']] }],
    ['Observation', { resourceType: 'Observation', query: [] }],
    ['documentReference?x=1', undefined],
    ['/DocumentReference', undefined],
    [42, undefined],
  ])('%s', (text, expected) => expect(parseCriteria(text)).toEqual(expected));
});

describe('what a Subscription must be', () => {
  it.each([
    ['a valid one', {}, undefined],
    ['no criteria', { criteria: undefined }, 'Subscription.criteria'],
    ['the audit trail', { criteria: 'AuditEvent?patient=1' }, 'Subscription.criteria'],
    ['a result parameter', { criteria: 'DocumentReference?_count=1' }, 'Subscription.criteria'],
    ['an _id (the dispatcher adds its own)', { criteria: 'DocumentReference?_id=1' }, 'Subscription.criteria'],
    ['a websocket', { channel: { type: 'websocket' } }, 'Subscription.channel.type'],
    ['an email', { channel: { type: 'email', endpoint: 'mailto:a@b' } }, 'Subscription.channel.type'],
    ['a relative endpoint', { channel: { type: 'rest-hook', endpoint: '/hook' } }, 'Subscription.channel.endpoint'],
    ['credentials in the URL', { channel: { type: 'rest-hook', endpoint: 'https://u:p@ehr.example/' } }, 'Subscription.channel.endpoint'],
    ['an ftp endpoint', { channel: { type: 'rest-hook', endpoint: 'ftp://ehr.example/' } }, 'Subscription.channel.endpoint'],
    ['an XML payload', { channel: { type: 'rest-hook', endpoint: 'https://e/', payload: 'application/fhir+xml' } }, 'Subscription.channel.payload'],
    ['a header without a name', { channel: { type: 'rest-hook', endpoint: 'https://e/', header: ['no colon'] } }, 'Subscription.channel.header'],
    ['a Host header', { channel: { type: 'rest-hook', endpoint: 'https://e/', header: ['Host: evil'] } }, 'Subscription.channel.header'],
    ['a header with a line break', { channel: { type: 'rest-hook', endpoint: 'https://e/', header: ['A: b\r\nC: d'] } }, 'Subscription.channel.header'],
  ])('%s', (_name, change, expression) => expect(subscriptionDefect({ ...valid, ...change })?.expression).toBe(expression));
});

it('header lines', () => {
  expect(headerLine('Authorization: Bearer abc')).toEqual(['Authorization', 'Bearer abc']);
  expect(headerLine('X-Empty:')).toEqual(['X-Empty', '']);
  expect(headerLine('Content-Type: text/plain')).toBeUndefined();
});

it('http endpoints only where allowed', () => {
  expect(endpointRefusal('http://127.0.0.1/hook', true)).toBeUndefined();
  expect(endpointRefusal('http://127.0.0.1/hook', false)).toMatch(/https/);
  expect(endpointRefusal('https://ehr.example/hook', false)).toBeUndefined();
});

it('backs off exponentially, then gives up', () => {
  expect(afterFailure(1, 3, 100)).toEqual({ retryInMs: 100 });
  expect(afterFailure(2, 3, 100)).toEqual({ retryInMs: 200 });
  expect(afterFailure(3, 3, 100)).toEqual({ giveUp: true });
  expect(afterFailure(30, 100, 1000)).toEqual({ retryInMs: 3600_000 });
});
