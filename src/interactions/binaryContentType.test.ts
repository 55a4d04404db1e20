import { isMediaType, MEDIA_TYPE_MAX_LENGTH, mediaTypeProblem, servedContentType } from './binaryContentType';

describe('isMediaType (RFC 9110 media-type)', () => {
  it.each([
    'application/pdf',
    'text/plain',
    'text/plain; charset=utf-8',
    'text/plain;charset="utf-8"',
    'application/fhir+json; fhirVersion=4.0',
    'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
    'multipart/related; type="text/xml"; boundary="a\\"b"',
    'image/svg+xml',
    'text/html',
    'application/octet-stream;',
  ])('accepts %s', (value) => expect(isMediaType(value)).toBe(true));

  it.each([
    ['empty', ''],
    ['no subtype', 'text'],
    ['empty subtype', 'text/'],
    ['two slashes', 'text/html/x'],
    ['non-ASCII', 'text/html€'],
    ['Latin-1', 'text/h\u00e9'],
    ['a space inside the type', 'text /html'],
    ['leading space', ' text/html'],
    ['CR LF (header injection)', 'text/html\r\nSet-Cookie: a=b'],
    ['NUL', 'text/html\u0000'],
    ['parameter without value', 'text/plain; charset'],
    ['unterminated quoted string', 'text/plain; a="b'],
    ['a comma (two types)', 'text/plain, text/html'],
  ])('refuses %s', (_name, value) => expect(isMediaType(value)).toBe(false));

  it('bounds the length', () => {
    const long = `application/${'x'.repeat(MEDIA_TYPE_MAX_LENGTH)}`;
    expect(isMediaType(long)).toBe(false);
    expect(mediaTypeProblem(long)).toContain('at most');
    expect(isMediaType(`application/${'x'.repeat(MEDIA_TYPE_MAX_LENGTH - 12)}`)).toBe(true);
  });

  it('serves a stored value that is not a media type as opaque bytes', () => {
    expect(servedContentType('image/png')).toBe('image/png');
    expect(servedContentType('text/html€')).toBe('application/octet-stream');
    expect(servedContentType('x'.repeat(100_000))).toBe('application/octet-stream');
  });
});
