/**
 * `trellis crl publish`: writes every current CRL to files for offline
 * distribution, in the same layout as the URLs (`<dir>/<caId>/<n>.crl`), so
 * the directory can be copied to any web server under `/crl/`.
 *
 * Files are private (0600, directories 0700) unless the caller asks for
 * `access: 'public'`: the default target is the data directory, where
 * everything Trellis writes is private; a directory a web server reads from
 * wants 0644 files and 0755 directories.
 */
import fs from 'node:fs';
import path from 'node:path';
import { makePrivateDir, privateFileMode } from '../config/file-permissions.js';
import { PkiError } from '../errors/pki-error.js';
import type { CrlPublisher } from './crl-publisher.js';
import { scopesOf } from './generator.js';
import { fileOfScope } from './scope.js';

/** One CRL written: DER at `derPath`, PEM (RFC 7468 "X509 CRL") at `pemPath`. */
export interface PublishedCrlFile {
  caId: string;
  scope: string;
  crlNumber: bigint;
  entries: number;
  thisUpdate: Date;
  nextUpdate: Date;
  derPath: string;
  pemPath: string;
}

/** Who may read the files `publishCrlFiles` writes: their owner only, or everyone (a web server's directory). */
export type CrlFileAccess = 'private' | 'public';

const fileModes = { private: privateFileMode, public: 0o644 } as const;

/** Opens a new file for writing with exactly `mode` (the umask may only have taken bits away). */
function openExact(file: string, mode: number): number {
  const fd = fs.openSync(file, 'w', mode);
  if (process.platform !== 'win32') fs.fchmodSync(fd, mode);
  return fd;
}

/** PEM without building one string per line (a million-entry CRL is 49 MB of DER). */
function writePem(file: string, der: Buffer, mode: number): void {
  const fd = openExact(file, mode);
  try {
    fs.writeSync(fd, '-----BEGIN X509 CRL-----\n');
    const step = 48 * 1024; // 48 octets = one 64-character line
    for (let i = 0; i < der.length; i += step) {
      const b64 = der.subarray(i, Math.min(der.length, i + step)).toString('base64');
      let text = '';
      for (let j = 0; j < b64.length; j += 64) text += `${b64.slice(j, j + 64)}\n`;
      fs.writeSync(fd, text);
    }
    fs.writeSync(fd, '-----END X509 CRL-----\n');
  } finally {
    fs.closeSync(fd);
  }
}

/** Writes through a temporary file and a rename, so a reader never sees half a CRL. */
function writeAtomically(file: string, write: (tmp: string) => void): void {
  const tmp = `${file}.${process.pid}.tmp`;
  write(tmp);
  fs.renameSync(tmp, file);
}

/**
 * Writes every CRL of every CA the publisher knows: first, with `regenerate`,
 * a new CRL of every scope of each CA whose key is unlocked here (throws if
 * one fails); then the newest of each scope from the database. Files are
 * replaced (a newer CRL supersedes the older one). Returns what was written.
 */
export async function publishCrlFiles(
  publisher: CrlPublisher,
  outDir: string,
  opts: { regenerate?: boolean; access?: CrlFileAccess; onProgress?: (done: number, total: number, what: string) => void } = {},
): Promise<PublishedCrlFile[]> {
  const access = opts.access ?? 'private';
  const mode = fileModes[access];
  if (opts.regenerate) {
    const work = publisher.cas().flatMap((ca) => (ca.signer ? scopesOf(ca).map((scope) => ({ ca: ca.id, scope })) : []));
    for (const [i, { ca, scope }] of work.entries()) {
      opts.onProgress?.(i, work.length, `${ca} ${scope}`);
      await publisher.generate(ca, scope);
    }
    opts.onProgress?.(work.length, work.length, '');
  }
  await publisher.refresh();
  const written: PublishedCrlFile[] = [];
  const held = publisher.held().sort((a, b) => a.caId.localeCompare(b.caId) || a.scope.localeCompare(b.scope, 'en', { numeric: true }));
  // The DER of CRLs not in memory is read here, a page per query (src/crl/held.ts); one pruned meanwhile, its successor's.
  for await (let [crl, der] of publisher.withDers(held)) {
    if (!der) {
      await publisher.refresh();
      crl = publisher.get(crl.caId, crl.scope) ?? crl;
      der = await publisher.derOf(crl);
      if (!der) throw new PkiError('conflict', `CRL ${crl.caId}/${crl.scope} was superseded while being written; publish again`);
    }
    const dir = path.join(outDir, crl.caId);
    if (access === 'private') makePrivateDir(dir);
    else fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
    const derPath = path.join(dir, fileOfScope(crl.scope));
    const pemPath = derPath.replace(/\.crl$/, '.pem');
    writeAtomically(derPath, (tmp) => {
      const fd = openExact(tmp, mode);
      try {
        fs.writeFileSync(fd, der);
      } finally {
        fs.closeSync(fd);
      }
    });
    writeAtomically(pemPath, (tmp) => writePem(tmp, der, mode));
    written.push({ caId: crl.caId, scope: crl.scope, crlNumber: crl.crlNumber, entries: crl.entries, thisUpdate: crl.thisUpdate, nextUpdate: crl.nextUpdate, derPath, pemPath });
  }
  return written;
}
