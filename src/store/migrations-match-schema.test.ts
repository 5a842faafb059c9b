/**
 * prisma/models.prisma and the committed migrations must agree for both
 * flavours: a model change without `npm run db:migration -- new <name>`
 * would only show at run time, as a missing column.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect, test } from 'vitest';

test('the migrations of both flavours produce exactly prisma/models.prisma', async () => {
  const root = path.resolve(import.meta.dirname, '../..');
  const { stdout } = await promisify(execFile)(process.execPath, [path.join(root, 'scripts/db-migration.mjs'), 'check'], { cwd: root });
  expect(stdout).toMatch(/migrations match the schema/);
}, 120_000);
