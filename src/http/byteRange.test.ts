import { byteRange, rangeStillValid } from './byteRange';
import { binaryAsContent, negotiate } from './negotiation';

describe('byteRange', () => {
  it.each([
    ['bytes=0-0', 0, 0],
    ['bytes=0-', 0, 99],
    ['BYTES = 10-19', 10, 19],
    ['bytes=90-500', 90, 99],
    ['bytes=-1', 99, 99],
    ['bytes=-500', 0, 99],
  ])('%s of 100 bytes is bytes %i-%i', (header, start, end) => {
    expect(byteRange(header, 100)).toEqual({ kind: 'partial', start, end });
  });
  it.each([undefined, 'bytes=0-1,5-6', 'lines=1-2', 'bytes=5-1', 'bytes=x-', 'bytes=-', 'bytes='])('%s is the whole content', (header) => {
    expect(byteRange(header, 100)).toEqual({ kind: 'full' });
  });
  it.each([['bytes=100-', 100], ['bytes=-0', 100], ['bytes=0-', 0], ['bytes=-0', 0]])('%s of %i bytes cannot be satisfied', (header, length) => {
    expect(byteRange(header, length)).toEqual({ kind: 'unsatisfiable' });
  });
  it('a non-zero suffix of empty content is the whole (empty) content (RFC 9110 §14.1.1)', () => {
    expect(byteRange('bytes=-5', 0)).toEqual({ kind: 'full' });
  });
  it('keeps a range for If-Range with the exact Last-Modified date only', () => {
    const lastModified = new Date('2024-03-01T10:00:00.456Z');
    expect(rangeStillValid(undefined, lastModified)).toBe(true);
    expect(rangeStillValid('Fri, 01 Mar 2024 10:00:00 GMT', lastModified)).toBe(true);
    expect(rangeStillValid('Fri, 01 Mar 2024 10:00:01 GMT', lastModified)).toBe(false);
    expect(rangeStillValid('W/"1"', lastModified)).toBe(false);
    expect(rangeStillValid('"1"', lastModified)).toBe(false);
  });
});

describe('binaryAsContent', () => {
  const raw = (accept: string | undefined, stored: string, format?: string) => binaryAsContent(negotiate(format, accept), stored);
  it('sends the content when the client names its type before a FHIR type', () => {
    expect(raw('application/xml', 'application/xml')).toBe(true);
    expect(raw('text/xml', 'application/xml; charset=utf-8')).toBe(true);
    expect(raw('application/fhir+json;q=0.5, application/xml', 'application/xml')).toBe(true);
    expect(raw('application/json', 'application/json')).toBe(true);
    expect(raw(undefined, 'application/pdf')).toBe(true);
  });
  it('sends the resource when a FHIR type comes first, or _format asks for it', () => {
    expect(raw('application/fhir+xml, application/xml', 'application/xml')).toBe(false);
    expect(raw('application/xml;q=0.4, application/fhir+json', 'application/xml')).toBe(false);
    expect(raw('application/xml', 'application/xml', 'xml')).toBe(false);
    expect(raw('application/xml', 'application/pdf')).toBe(false);
    expect(raw('application/json', 'application/pdf')).toBe(false);
  });
});
