// Runs after `npm install` / `npm ci`: generate both Prisma clients (offline),
// compile TypeScript to dist/, and link bin/trellis.js into node_modules/.bin so
// `npx trellis` runs this checkout instead of trying to install a package.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
// `npx trellis` links this checkout into npm's npx cache, which runs this
// script again: nothing to redo when the build is already there.
if (process.env.npm_command === 'exec' && fs.existsSync(path.join(root, 'dist', 'cmd', 'main.js'))) process.exit(0);

const run = (cmd, args) => execFileSync(cmd, args, { cwd: root, stdio: 'inherit' });
const bin = (name) => path.join(root, 'node_modules', '.bin', name);

for (const flavour of ['sqlite', 'pg']) run(bin('prisma'), ['generate', '--config', `prisma/${flavour}.config.ts`]);
run(bin('tsc'), ['-p', 'tsconfig.build.json']);
// Type declarations of the `trellis-pki/verify` export.
run(bin('tsc'), ['-p', 'tsconfig.verify.json']);

const link = bin('trellis');
fs.rmSync(link, { force: true });
fs.symlinkSync(path.relative(path.dirname(link), path.join(root, 'bin', 'trellis.js')), link);
