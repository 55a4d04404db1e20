import crypto from 'node:crypto';
import { base64Length, base64Pieces, binaryJsonPieces } from './sendContent';
import { contentInMemory } from '../store/binaryContent';

async function text(pieces: AsyncIterable<Buffer | string>): Promise<string> {
  let out = '';
  for await (const p of pieces) out += p.toString();
  return out;
}

async function* split(data: Buffer, sizes: number[]): AsyncGenerator<Buffer> {
  let at = 0;
  for (const n of sizes) {
    yield data.subarray(at, at + n);
    at += n;
  }
  if (at < data.length) yield data.subarray(at);
}

describe('base64Pieces', () => {
  const data = crypto.randomBytes(1000);
  it.each([
    ['one piece', [1000]],
    ['pieces not multiple of three', [1, 2, 4, 5, 7, 100, 262]],
    ['empty pieces among others', [0, 3, 0, 1, 0]],
    ['one byte at a time', Array.from({ length: 1000 }, () => 1)],
  ])('gives the base64 of the whole from %s', async (_what, sizes) => {
    expect(await text(base64Pieces(split(data, sizes)))).toBe(data.toString('base64'));
  });

  it.each([0, 1, 2, 3, 4, 5])('predicts the length of %i bytes', (n) => {
    expect(base64Length(n)).toBe(Buffer.alloc(n).toString('base64').length);
  });
});

describe('binaryJsonPieces', () => {
  it('adds data to the stored resource text, with the length it announces', async () => {
    const data = crypto.randomBytes(700);
    const json = binaryJsonPieces('{"resourceType":"Binary","id":"x","contentType":"application/pdf","meta":{"versionId":"1"}}', contentInMemory('application/pdf', data));
    const out = await text(json.pieces);
    expect(Buffer.byteLength(out)).toBe(json.length);
    expect(JSON.parse(out)).toEqual({ resourceType: 'Binary', id: 'x', contentType: 'application/pdf', meta: { versionId: '1' }, data: data.toString('base64') });
  });
});
