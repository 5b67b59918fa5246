import crypto from 'node:crypto';
import fs from 'node:fs';
import type { MusterConfig } from './config.js';
import { ConfigError } from './config.js';

/** The PEM contents of the tls.* files, read once at start; HTTP and gRPC serve the same ones. */
export interface ServerTls {
  cert: Buffer;
  key: Buffer;
  /** Set: clients must present a certificate this CA signed. */
  ca: Buffer | undefined;
}

/**
 * Reads and checks the files of tls.cert, tls.key and tls.ca; undefined when TLS is off. A file
 * that is missing, unreadable, not PEM, or a key that does not belong to the certificate is a
 * ConfigError naming the option and the path, raised before any port is bound (the TLS stacks
 * of Fastify and grpc-js would otherwise report it as a bare OpenSSL code, or at the first
 * handshake).
 */
export function readTlsFiles(tls: MusterConfig['tls']): ServerTls | undefined {
  if (tls.cert === '') return undefined;
  const cert = read('tls.cert', tls.cert);
  const key = read('tls.key', tls.key);
  const x509 = certificate('tls.cert', tls.cert, cert);
  let privateKey: crypto.KeyObject;
  try {
    privateKey = crypto.createPrivateKey(key);
  } catch (err) {
    throw new ConfigError(
      `tls.key ${tls.key} is not a PEM private key (or it is encrypted, which is not supported): ${(err as Error).message}`,
    );
  }
  if (!x509.checkPrivateKey(privateKey))
    throw new ConfigError(`tls.key ${tls.key} is not the private key of the certificate in tls.cert ${tls.cert}`);
  let ca: Buffer | undefined;
  if (tls.ca !== '') {
    ca = read('tls.ca', tls.ca);
    certificate('tls.ca', tls.ca, ca);
  }
  return { cert, key, ca };
}

function read(option: string, file: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (err) {
    throw new ConfigError(`cannot read the ${option} file ${file}: ${(err as Error).message}`);
  }
}

function certificate(option: string, file: string, pem: Buffer): crypto.X509Certificate {
  try {
    return new crypto.X509Certificate(pem);
  } catch (err) {
    throw new ConfigError(`${option} ${file} is not a PEM certificate: ${(err as Error).message}`);
  }
}
