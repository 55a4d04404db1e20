import crypto from 'node:crypto';
import { CopyOutReader } from './embeddedCopyOut';

/** Every byte value, then random bytes: `size` in all. */
function content(size: number): Buffer {
  const data = crypto.randomBytes(size);
  for (let i = 0; i < 256; i++) data[i] = i;
  return data;
}

/** Protocol messages: a type byte, a length that counts itself, the body. */
function message(type: string, body: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.write(type, 0, 'latin1');
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

describe('CopyOutReader', () => {
  const data = [Buffer.from('PGCOPY'), Buffer.alloc(0), content(300)];
  const output = Buffer.concat([
    message('H', Buffer.from([0, 0, 1, 0, 0])),
    ...data.map((d) => message('d', d)),
    message('c', Buffer.alloc(0)),
    message('C', Buffer.from('COPY 1\0')),
    message('Z', Buffer.from('I')),
  ]);

  it('gathers the CopyData, however the output is cut', () => {
    for (let cut = 0; cut <= output.length; cut++) {
      const reader = new CopyOutReader();
      reader.push(output.subarray(0, cut));
      reader.push(output.subarray(cut));
      expect(reader.result()).toEqual(Buffer.concat(data));
    }
    const byByte = new CopyOutReader();
    for (let i = 0; i < output.length; i++) byByte.push(output.subarray(i, i + 1));
    expect(byByte.result()).toEqual(Buffer.concat(data));
  });

  it('keeps nothing of the pieces it was given (they are reused memory)', () => {
    const reader = new CopyOutReader();
    const piece = Buffer.from(output);
    reader.push(piece);
    piece.fill(0);
    expect(reader.result()).toEqual(Buffer.concat(data));
  });

  it('throws the ErrorResponse, and refuses an output that ends inside a message', () => {
    const reader = new CopyOutReader();
    reader.push(message('E', Buffer.from('SERROR\0C42703\0Mcolumn "x" does not exist\0\0')));
    expect(() => reader.result()).toThrow(expect.objectContaining({ message: 'column "x" does not exist', code: '42703' }));
    const cut = new CopyOutReader();
    cut.push(output.subarray(0, 12));
    expect(() => cut.result()).toThrow('inside a protocol message');
  });
});
