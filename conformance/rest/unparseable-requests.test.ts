import net from 'node:net';
import { startTarget, Target } from '../harness';

/**
 * Bytes that are not an HTTP request the server can parse get an OperationOutcome with the
 * status Node's parser gives them (src/http/clientError.ts), then the connection closes.
 */
let t: Target;
beforeAll(async () => {
  t = await startTarget();
});
afterAll(async () => {
  await t.close();
});

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Sends `bytes` as they are and reads every response until the server closes the connection. */
function exchange(bytes: Buffer | string): Promise<RawResponse[]> {
  const url = new URL(t.base);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(url.port), url.hostname, () => socket.write(bytes));
    const chunks: Buffer[] = [];
    socket.on('data', (d) => chunks.push(d));
    socket.on('error', reject);
    socket.on('close', () => {
      let text = Buffer.concat(chunks).toString('latin1');
      const out: RawResponse[] = [];
      while (text.startsWith('HTTP/1.1 ')) {
        const end = text.indexOf('\r\n\r\n');
        const [statusLine, ...lines] = text.slice(0, end).split('\r\n');
        const headers: Record<string, string> = {};
        for (const l of lines) headers[l.slice(0, l.indexOf(':')).toLowerCase()] = l.slice(l.indexOf(':') + 1).trim();
        const length = Number(headers['content-length'] ?? 0);
        out.push({ status: Number(statusLine.split(' ')[1]), headers, body: text.slice(end + 4, end + 4 + length) });
        text = text.slice(end + 4 + length);
      }
      resolve(out);
    });
  });
}

const path = () => new URL(t.base).pathname;
const host = () => new URL(t.base).host;

function expectOutcome(res: RawResponse, status: number, code: string): void {
  expect(res.status).toBe(status);
  expect(res.headers['content-type']).toBe('application/fhir+json; charset=utf-8');
  expect(res.headers.connection).toBe('close');
  const outcome = JSON.parse(res.body);
  expect(outcome.resourceType).toBe('OperationOutcome');
  expect(outcome.issue[0]).toMatchObject({ severity: 'error', code });
}

describe('a request the server cannot parse', () => {
  it('a header with a control character: 400 with an OperationOutcome', async () => {
    const [res] = await exchange(`GET ${path()}/metadata HTTP/1.1\r\nHost: ${host()}\r\nX-Bad: a\x01b\r\n\r\n`);
    expectOutcome(res, 400, 'structure');
  });

  it('headers over the limit: 431 with an OperationOutcome', async () => {
    const [res] = await exchange(`GET ${path()}/metadata HTTP/1.1\r\nHost: ${host()}\r\nX-Big: ${'a'.repeat(20 * 1024)}\r\n\r\n`);
    expectOutcome(res, 431, 'too-costly');
  });

  it('a body longer than its Content-Length: the rest, read as a next request, is refused with an OperationOutcome, then closed', async () => {
    const body = '{"resourceType":"Basic"}';
    const responses = await exchange(`POST ${path()}/Basic HTTP/1.1\r\nHost: ${host()}\r\nContent-Type: application/fhir+json\r\nContent-Length: 10\r\n\r\n${body}`);
    // the parser fails on the rest at once: the first request, still being served, may get no answer before the close
    expect(responses.length).toBeGreaterThanOrEqual(1);
    for (const res of responses) expect(JSON.parse(res.body).resourceType).toBe('OperationOutcome');
    expectOutcome(responses[responses.length - 1], 400, 'structure');
  });

  it('a request line that is not HTTP: 400 with an OperationOutcome', async () => {
    const [res] = await exchange('HELLO THERE\r\n\r\n');
    expectOutcome(res, 400, 'structure');
  });
});
