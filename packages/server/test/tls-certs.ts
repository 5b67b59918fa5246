import fs from 'node:fs';
import path from 'node:path';
import selfsigned from 'selfsigned';
import { tempDir, type Flags } from './harness.js';

/** PEM files made for one test run: paths for the server and CLI, contents for the SDK. */
export interface TestCerts {
  dir: string;
  /** The test CA: it signs the server's certificate and the trusted client's. */
  caFile: string;
  serverCertFile: string;
  serverKeyFile: string;
  clientCertFile: string;
  clientKeyFile: string;
  /** A client certificate signed by another CA, which the server must not accept. */
  rogueCertFile: string;
  rogueKeyFile: string;
  ca: string;
  client: { cert: string; key: string };
  rogue: { cert: string; key: string };
}

// EC keys: generating them takes milliseconds, RSA ones up to a second each.
const KEY = { keyType: 'ec', algorithm: 'sha256' } as const;
const validFor = () => ({
  notBeforeDate: new Date(Date.now() - 60_000),
  notAfterDate: new Date(Date.now() + 86_400_000),
});

async function makeCa(name: string): Promise<{ cert: string; key: string }> {
  const ca = await selfsigned.generate([{ name: 'commonName', value: name }], {
    ...KEY,
    ...validFor(),
    extensions: [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    ],
  });
  return { cert: ca.cert, key: ca.private };
}

async function makeLeaf(
  name: string,
  ca: { cert: string; key: string },
  usage: 'server' | 'client',
): Promise<{ cert: string; key: string }> {
  const leaf = await selfsigned.generate([{ name: 'commonName', value: name }], {
    ...KEY,
    ...validFor(),
    ca,
    extensions: [
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      usage === 'server' ? { name: 'extKeyUsage', serverAuth: true } : { name: 'extKeyUsage', clientAuth: true },
      ...(usage === 'server'
        ? [
            {
              name: 'subjectAltName' as const,
              altNames: [
                { type: 2 as const, value: 'localhost' },
                { type: 7 as const, ip: '127.0.0.1' },
              ],
            },
          ]
        : []),
    ],
  });
  return { cert: leaf.cert, key: leaf.private };
}

/**
 * Makes a CA, a server certificate for 127.0.0.1 and localhost, a client certificate it signed,
 * and a client certificate of a second, untrusted CA; writes them as PEM files into `dir`.
 * Made at test time in pure JavaScript, so the tests need no openssl binary.
 */
export async function makeCerts(dir = tempDir('muster-tls-')): Promise<TestCerts> {
  const ca = await makeCa('Muster test CA');
  const server = await makeLeaf('localhost', ca, 'server');
  const client = await makeLeaf('muster-test-client', ca, 'client');
  const rogue = await makeLeaf('rogue-client', await makeCa('Some other CA'), 'client');
  const write = (name: string, pem: string) => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, pem, { mode: 0o600 });
    return file;
  };
  return {
    dir,
    caFile: write('ca.pem', ca.cert),
    serverCertFile: write('server.pem', server.cert),
    serverKeyFile: write('server-key.pem', server.key),
    clientCertFile: write('client.pem', client.cert),
    clientKeyFile: write('client-key.pem', client.key),
    rogueCertFile: write('rogue.pem', rogue.cert),
    rogueKeyFile: write('rogue-key.pem', rogue.key),
    ca: ca.cert,
    client,
    rogue,
  };
}

/** The server flags of a TLS server; `clientCerts` also requires client certificates. */
export function tlsFlags(certs: TestCerts, opts: { clientCerts?: boolean } = {}): Flags {
  return {
    'tls.cert': certs.serverCertFile,
    'tls.key': certs.serverKeyFile,
    ...(opts.clientCerts ? { 'tls.ca': certs.caFile } : {}),
  };
}
