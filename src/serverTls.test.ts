import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError } from './config/config';
import { tlsOptions } from './server';
import { issueCertificate } from '../conformance/testCertificates';

describe('tlsOptions', () => {
  let dir: string;
  const file = (name: string, text: string) => {
    const p = path.join(dir, name);
    fs.writeFileSync(p, text);
    return p;
  };
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tls-options-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('asks for client certificates without requiring them when a client CA is set', () => {
    const ca = issueCertificate({ subject: [{ shortName: 'CN', value: 'TEST CA' }], ca: true });
    const server = issueCertificate({ subject: [{ shortName: 'CN', value: 'localhost' }], issuer: ca, serverNames: ['localhost'] });
    const cert = file('server.pem', server.pem);
    const key = file('server.key', server.keyPem);
    expect(tlsOptions({ cert, key, clientCa: file('ca.pem', ca.pem) })).toMatchObject({ requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.2' });
    const plain = tlsOptions({ cert, key, clientCa: undefined });
    expect(plain.requestCert).toBeUndefined();
    expect(plain.ca).toBeUndefined();
  });

  it('stops on a file it cannot read, naming the variable', () => {
    expect(() => tlsOptions({ cert: path.join(dir, 'missing.pem'), key: path.join(dir, 'missing.key'), clientCa: undefined })).toThrow(ConfigError);
    expect(() => tlsOptions({ cert: path.join(dir, 'missing.pem'), key: path.join(dir, 'missing.key'), clientCa: undefined })).toThrow(/TLS_CERT: cannot read .*ENOENT/);
  });

  it('stops on a key that is not the certificate\'s', () => {
    const one = issueCertificate({ subject: [{ shortName: 'CN', value: 'one' }] });
    const other = issueCertificate({ subject: [{ shortName: 'CN', value: 'other' }] });
    expect(() => tlsOptions({ cert: file('one.pem', one.pem), key: file('other.key', other.keyPem), clientCa: undefined })).toThrow(/not a usable certificate, key and CA bundle/);
  });
});
