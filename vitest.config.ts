import { defineConfig } from 'vitest/config';

// Two projects: unit tests beside the code, integration tests that run real
// servers, OpenSSL and databases under test/integration.
export default defineConfig({
  test: {
    // Two files at a time: most integration time is spent waiting on child processes (servers, OpenSSL, the CLI), not on this process.
    maxWorkers: 2,
    reporters: process.env.CI ? ['default', 'json'] : ['default'],
    outputFile: { json: '.tmp/vitest-report.json' },
    // Captures every log line of the run and fails it if one carries a test secret.
    globalSetup: ['test/log-capture.global.ts'],
    projects: [
      {
        test: {
          name: 'unit',
          include: ['src/**/*.test.ts', 'test/*.test.ts'],
          testTimeout: 30_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.int.test.ts'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
