/**
 * The console's files: read once when the handler is made, served from
 * memory by name. Only the files found under static/ at start exist; a path
 * is a key in a map, never joined to a directory, so nothing else on disk can
 * be reached through the console.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** One file to serve. */
export interface Asset {
  body: Buffer;
  contentType: string;
}

const types: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.html': 'text/html; charset=utf-8',
};

// The same path from src/console (tests) and from dist/console (the build):
// the files stay in src/console/static, as ca-profiles/ stay at the top, and
// docker/Dockerfile copies them into the image beside dist/.
const staticDir = fileURLToPath(new URL('../../src/console/static/', import.meta.url));

/** Every file under static/ by its path there ("js/main.js"); HTML templates included. */
export function loadAssets(dir = staticDir): Map<string, Asset> {
  const out = new Map<string, Asset>();
  const walk = (sub: string) => {
    for (const entry of fs.readdirSync(path.join(dir, sub), { withFileTypes: true })) {
      const rel = sub ? `${sub}/${entry.name}` : entry.name;
      if (entry.isDirectory()) walk(rel);
      else if (entry.isFile() && types[path.extname(entry.name)]) {
        out.set(rel, { body: fs.readFileSync(path.join(dir, rel)), contentType: types[path.extname(entry.name)]! });
      }
    }
  };
  walk('');
  return out;
}

/** The pages of the console; a page's name is its module, static/js/pages/<name>.js, and <body data-page> in its shell. */
export const pages = {
  overview: { title: 'Overview' },
  certificates: { title: 'Certificates' },
  certificate: { title: 'Certificate' },
  devices: { title: 'Devices' },
  audit: { title: 'Audit log' },
  acme: { title: 'ACME' },
  ca: { title: 'Certificate authority' },
} as const;

export type PageName = keyof typeof pages;

/** The page a path under /console/ shows, or undefined (404). */
export function pageFor(pathname: string): PageName | undefined {
  if (pathname === '/console/') return 'overview';
  // CA ids as the front's /ca/{id}.cer takes them.
  if (/^\/console\/cas\/[a-z0-9][a-z0-9-]{0,62}$/.test(pathname)) return 'ca';
  const m = /^\/console\/(certificates|devices|audit|acme)(?:\/([0-9A-Fa-f]{1,40}))?$/.exec(pathname);
  if (!m) return undefined;
  if (m[2] === undefined) return m[1] as PageName;
  return m[1] === 'certificates' ? 'certificate' : undefined;
}

const escapes: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Text made safe inside HTML text and quoted attributes. */
export const escapeHtml = (text: string): string => text.replace(/[&<>"']/g, (c) => escapes[c]!);

/** Fills `{{name}}` slots of a template with escaped values; a slot without a value is an error, not an empty string. */
export function fill(template: string, values: Record<string, string>): string {
  return template.replace(/\{\{([a-z]+)\}\}/g, (_m, name: string) => {
    if (!Object.hasOwn(values, name)) throw new Error(`console template slot {{${name}}} has no value`);
    return escapeHtml(values[name]!);
  });
}
