/**
 * Serving https itself: the certificate and key files, read and checked once at start-up, and a
 * self-signed pair for development. Browsers speak HTTP/2 only over TLS, and only HTTP/2 lifts
 * their limit of six connections per host, one per tab holding a stream.
 */
import { createPrivateKey, X509Certificate } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { HeraldError } from "../core/errors.ts";

/** The PEM text of a certificate (with its chain, if any) and of its private key, as `Bun.serve({ tls })` takes them. */
export interface TlsPair {
  cert: string;
  key: string;
}

/** How the two settings are named in messages: the variables, or `createHerald`'s options. */
export interface TlsNames {
  cert: string;
  key: string;
}

/** The settings' names as environment variables (`loadConfig`, `startHerald`). */
export const TLS_VARIABLES: TlsNames = { cert: "HERALD_TLS_CERT", key: "HERALD_TLS_KEY" };
/** The settings' names as `createHerald` options. */
export const TLS_OPTIONS: TlsNames = { cert: "tlsCert", key: "tlsKey" };

function readPem(path: string, name: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (error) {
    const code = (error as { code?: string }).code ?? String(error);
    throw new HeraldError(`${name}: cannot read ${JSON.stringify(path)} (${code})`);
  }
}

/**
 * Reads and checks the certificate and key files: both or neither, each readable, a PEM
 * certificate, an unencrypted PEM private key, and the key of that certificate. Throws
 * `HeraldError` naming the setting and the file; `undefined` when neither is set.
 */
export function readTls(
  certPath: string | undefined,
  keyPath: string | undefined,
  names: TlsNames = TLS_VARIABLES,
): TlsPair | undefined {
  if (certPath === undefined && keyPath === undefined) return undefined;
  if (certPath === undefined || keyPath === undefined) {
    const [given, missing] = certPath === undefined ? [names.key, names.cert] : [names.cert, names.key];
    throw new HeraldError(`${given} is set without ${missing}: set both (https with HTTP/2) or neither`);
  }
  const cert = readPem(certPath, names.cert);
  const key = readPem(keyPath, names.key);
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(cert);
  } catch {
    throw new HeraldError(`${names.cert}: ${JSON.stringify(certPath)} holds no PEM certificate`);
  }
  let privateKey: ReturnType<typeof createPrivateKey>;
  try {
    privateKey = createPrivateKey(key);
  } catch {
    throw new HeraldError(`${names.key}: ${JSON.stringify(keyPath)} holds no unencrypted PEM private key`);
  }
  if (!certificate.checkPrivateKey(privateKey)) {
    throw new HeraldError(
      `${names.key}: ${JSON.stringify(keyPath)} is not the key of the certificate in ${JSON.stringify(certPath)}`,
    );
  }
  return { cert, key };
}

/** The self-signed pair's files in `dir`. */
function devCertificatePaths(dir: string): { cert: string; key: string } {
  return { cert: join(dir, "localhost-cert.pem"), key: join(dir, "localhost-key.pem") };
}

/**
 * A self-signed certificate for `localhost` and `127.0.0.1` (P-256, a year) and its key, made with
 * the system's `openssl` into `dir` unless both files are there already. Returns their paths.
 */
export async function devCertificate(dir: string): Promise<{ cert: string; key: string }> {
  const paths = devCertificatePaths(dir);
  if (existsSync(paths.cert) && existsSync(paths.key)) return paths;
  mkdirSync(dir, { recursive: true });
  // A leaf (CA:FALSE, serverAuth) rather than openssl's default CA certificate, so that a browser
  // told to trust it accepts it as a server's.
  const args = [
    "openssl",
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-days",
    "365",
    "-subj",
    "/CN=localhost",
    "-addext",
    "subjectAltName=DNS:localhost,IP:127.0.0.1",
    "-addext",
    "basicConstraints=critical,CA:FALSE",
    "-addext",
    "extendedKeyUsage=serverAuth",
    "-keyout",
    paths.key,
    "-out",
    paths.cert,
  ];
  let proc: ReturnType<typeof Bun.spawn>;
  try {
    proc = Bun.spawn(args, { stdout: "ignore", stderr: "pipe" });
  } catch {
    throw new HeraldError(
      "making a development certificate needs openssl (apt-get install -y openssl), or set HERALD_TLS_CERT and HERALD_TLS_KEY",
    );
  }
  const [code, errors] = await Promise.all([proc.exited, new Response(proc.stderr as ReadableStream).text()]);
  if (code !== 0) throw new HeraldError(`openssl could not make a development certificate: ${errors.trim()}`);
  chmodSync(paths.key, 0o600);
  return paths;
}
