// Certificates made at test time with the openssl CLI (Node can sign data but cannot issue X.509
// certificates). EC P-256 keys: fast to generate, accepted by Go (registry, Docker) and Node alike.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { exec } from './docker.ts';

export interface CertificateFiles {
  /** PEM certificate file. */
  certPath: string;
  /** PEM private key file (PKCS#8). */
  keyPath: string;
  certPem: string;
  keyPem: string;
}

async function openssl(args: string[], cwd: string): Promise<void> {
  const result = await exec('openssl', args, { cwd, timeoutMs: 30_000 });
  if (result.code !== 0) throw new Error(`openssl ${args[0]} failed (${result.code}): ${result.stderr.trim()}`);
}

function read(certPath: string, keyPath: string): CertificateFiles {
  return { certPath, keyPath, certPem: readFileSync(certPath, 'utf8'), keyPem: readFileSync(keyPath, 'utf8') };
}

const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** A self-signed CA in `dir` as `<name>.crt` / `<name>.key`. */
export async function makeCa(dir: string, name: string, commonName = `function-image-builder test CA ${name}`): Promise<CertificateFiles> {
  const certPath = join(dir, `${name}.crt`);
  const keyPath = join(dir, `${name}.key`);
  await openssl(
    [
      'req', '-x509', ...EC_KEY, '-keyout', keyPath, '-out', certPath, '-days', '2', '-subj', `/CN=${commonName}`,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign,digitalSignature',
    ],
    dir,
  );
  return read(certPath, keyPath);
}

export interface LeafOptions {
  commonName: string;
  /** 'server' gets SAN IP:127.0.0.1 and DNS:localhost; 'client' is for TLS client authentication. */
  usage: 'server' | 'client';
}

/** A certificate signed by `ca`, in `dir` as `<name>.crt` / `<name>.key`. */
export async function makeLeaf(dir: string, name: string, ca: CertificateFiles, options: LeafOptions): Promise<CertificateFiles> {
  const certPath = join(dir, `${name}.crt`);
  const keyPath = join(dir, `${name}.key`);
  const csrPath = join(dir, `${name}.csr`);
  const extPath = join(dir, `${name}.ext`);
  const extensions = ['basicConstraints=CA:FALSE', 'keyUsage=critical,digitalSignature,keyEncipherment'];
  if (options.usage === 'server') {
    extensions.push('extendedKeyUsage=serverAuth', 'subjectAltName=IP:127.0.0.1,DNS:localhost');
  } else {
    extensions.push('extendedKeyUsage=clientAuth');
  }
  writeFileSync(extPath, extensions.join('\n') + '\n');
  await openssl(['req', '-new', ...EC_KEY, '-keyout', keyPath, '-out', csrPath, '-subj', `/CN=${options.commonName}`], dir);
  await openssl(
    [
      'x509', '-req', '-in', csrPath, '-CA', ca.certPath, '-CAkey', ca.keyPath, '-set_serial',
      `0x${BigInt(Date.now()).toString(16)}${Math.floor(Math.random() * 0xffff).toString(16)}`,
      '-days', '2', '-extfile', extPath, '-out', certPath,
    ],
    dir,
  );
  return read(certPath, keyPath);
}
