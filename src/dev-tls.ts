/**
 * `npm run dev:tls`: the dev server over https with HTTP/2, on a self-signed certificate for
 * `localhost` and `127.0.0.1` that is made in the data directory (with the system's `openssl`)
 * the first time. The browser warns about the certificate once; accept it for localhost.
 */
import { HeraldError } from "./core/errors.ts";
import { devCertificate } from "./server/tls.ts";
import { VARIABLES } from "./server/variables.ts";

const dataDir = process.env.HERALD_DATA_DIR?.trim() || VARIABLES.HERALD_DATA_DIR.default;
try {
  const { cert, key } = await devCertificate(dataDir);
  process.env.HERALD_TLS_CERT = cert;
  process.env.HERALD_TLS_KEY = key;
} catch (error) {
  if (!(error instanceof HeraldError)) throw error;
  console.error(error.message);
  process.exit(1);
}
// Imported only now: it reads the variables as it loads.
await import("./main.ts");
