/**
 * What must never appear in a log line, and a scan of the lines a test run
 * captured (TRELLIS_LOG_CAPTURE_DIR, see test/log-capture.global.ts).
 * test/log-scan.test.ts checks that each pattern still matches the secrets
 * the helpers hand out, so a renamed passphrase cannot slip past.
 */
import fs from 'node:fs';
import path from 'node:path';

/** One secret a log line must not carry: a name for the report and its pattern. */
export interface LogSecret {
  readonly name: string;
  readonly pattern: RegExp;
}

export const logSecrets: readonly LogSecret[] = [
  // test/helpers/test-pki.ts: testPassphrase, testRootPassphrase.
  { name: 'test passphrase', pattern: /correct horse battery staple/ },
  { name: 'test root passphrase', pattern: /root of trust kept offline/ },
  // test/helpers/softhsm.ts: softHsmToken(label) PINs are `${label}-pin-4711` and `${label}-so-8642`.
  { name: 'SoftHSM PIN', pattern: /-pin-4711|-so-8642/ },
  // PEM "-----BEGIN PRIVATE KEY-----", "…ENCRYPTED PRIVATE KEY…", "…EC PRIVATE KEY…", JSON-escaped or not.
  { name: 'PEM private key', pattern: /PRIVATE KEY-----/ },
  // src/tokens/tokens.ts: "trellis_" and 32 random bytes in base64url (43 characters).
  { name: 'API bearer token', pattern: /trellis_[A-Za-z0-9_-]{43}/ },
];

/** A captured line that carries a secret. */
export interface LogFinding {
  readonly file: string;
  /** 1-based. */
  readonly line: number;
  readonly secret: string;
}

/** Names of the secrets in `text` (empty when none). */
export function secretsIn(text: string): string[] {
  return logSecrets.filter((s) => s.pattern.test(text)).map((s) => s.name);
}

/** Every line of every file in `dir` that carries a secret, and how many lines and files were read. */
export function scanLogs(dir: string): { findings: LogFinding[]; lines: number; files: number } {
  const findings: LogFinding[] = [];
  const names = fs.readdirSync(dir).sort();
  let lines = 0;
  for (const name of names) {
    const file = path.join(dir, name);
    const texts = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean);
    lines += texts.length;
    texts.forEach((text, i) => {
      for (const secret of secretsIn(text)) findings.push({ file, line: i + 1, secret });
    });
  }
  return { findings, lines, files: names.length };
}
