import { parseBinaryCopy, sqlLiteral } from './copyBinary';

/** A one-column binary COPY file as PostgreSQL writes it. */
function copyFile(values: Buffer[]): Buffer {
  const parts: Buffer[] = [Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1'), Buffer.alloc(8)];
  for (const v of values) {
    const head = Buffer.alloc(6);
    head.writeInt16BE(1, 0);
    head.writeInt32BE(v.length, 2);
    parts.push(head, v);
  }
  parts.push(Buffer.from([0xff, 0xff]));
  return Buffer.concat(parts);
}

describe('parseBinaryCopy', () => {
  it('gives the values in order, empty ones included', () => {
    const values = [Buffer.from('abc'), Buffer.alloc(0), Buffer.from([0, 255, 10, 13])];
    expect(parseBinaryCopy(copyFile(values))).toEqual(values);
  });
  it('refuses what is not a binary COPY file', () => {
    expect(() => parseBinaryCopy(Buffer.from('id,data\n1,abc\n'))).toThrow('not a binary COPY file');
  });
});

describe('sqlLiteral', () => {
  it.each([
    ['abc', "'abc'"],
    ["o'brien", "'o''brien'"],
    ['', "''"],
    ['back\\slash', "'back\\slash'"],
  ])('quotes %s', (value, literal) => expect(sqlLiteral(value)).toBe(literal));
  it('refuses a NUL character', () => expect(() => sqlLiteral('a\0b')).toThrow());
});
