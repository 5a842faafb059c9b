import fs from 'node:fs';
import path from 'node:path';
import { expect, test } from 'vitest';
import { main } from './main.js';
import { commands, usage } from './registry.js';

const collect = () => {
  const text = { stdout: '', stderr: '' };
  const io = {
    stdout: { write: (s: string | Uint8Array) => ((text.stdout += String(s)), true) },
    stderr: { write: (s: string | Uint8Array) => ((text.stderr += String(s)), true) },
  };
  return { text, io };
};

test('trellis --help lists every command, each at the start of a line', async () => {
  const { text, io } = collect();
  expect(await main(['--help'], io)).toBe(0);
  expect(text.stdout).toBe(usage);
  const missing = Object.keys(commands).filter((name) => !new RegExp(`^  ${name}( |$)`, 'm').test(text.stdout));
  expect(missing).toEqual([]);
});

test('a command with --help prints the help without running; an unknown command is a usage error', async () => {
  const help = collect();
  expect(await main(['serve', '--help'], help.io)).toBe(0);
  expect(help.text.stdout).toBe(usage);
  const unknown = collect();
  expect(await main(['frobnicate'], unknown.io)).toBe(2);
  expect(unknown.text.stderr).toBe('trellis: unknown command "frobnicate" (see trellis --help)\n');
});

test('every file of src/cmd/commands is a registered command', () => {
  const dir = path.join(import.meta.dirname, 'commands');
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts') && f !== 'common.ts');
  expect(files.map((f) => f.replace(/\.ts$/, '')).filter((name) => !(name in commands))).toEqual([]);
});

// `trellis --help` must not load a command's module: only the loaders in the
// table import them (dynamic import()). Following the static imports of
// main.ts reaches none of the heavy libraries.
test('the static imports of main.ts reach no command module and no heavy library', () => {
  const heavy = /^(@peculiar\/x509|pkijs|asn1js|@prisma\/|express|pg$|better-sqlite3|zod|pino|prom-client)/;
  const seen = new Set<string>();
  const reached: string[] = [];
  const visit = (file: string): void => {
    if (seen.has(file)) return;
    seen.add(file);
    const text = fs.readFileSync(file, 'utf8');
    for (const m of text.matchAll(/^(?:import|export)(?!\s+type\b)[^'"]*?from\s*['"]([^'"]+)['"]/gm)) {
      const spec = m[1]!;
      if (spec.startsWith('.')) {
        const target = path.resolve(path.dirname(file), spec.replace(/\.js$/, '.ts'));
        if (target.includes(`${path.sep}commands${path.sep}`) || target.includes(`${path.sep}generated${path.sep}`)) reached.push(`${path.basename(file)} → ${spec}`);
        visit(target);
      } else if (heavy.test(spec)) reached.push(`${path.basename(file)} → ${spec}`);
    }
  };
  visit(path.join(import.meta.dirname, 'main.ts'));
  expect(reached).toEqual([]);
  expect(seen.size).toBeLessThan(6);
});
