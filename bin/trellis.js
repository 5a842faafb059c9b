#!/usr/bin/env node
// Entry point: the compiled CLI lives in dist/ (built by `npm install`).
import('../dist/cmd/main.js').then(
  async ({ main }) => {
    process.exitCode = await main(process.argv.slice(2));
  },
  (err) => {
    if (err && err.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist/cmd/main.js')) {
      process.stderr.write('trellis: dist/ is missing; run `npm run build` (npm install does it for you)\n');
      process.exit(1);
    }
    throw err;
  },
);
