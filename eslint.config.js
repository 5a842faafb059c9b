import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// Dependencies run one way, down the trust gradient (STYLE.md):
// only `ca` imports `keys`, only `store` imports Prisma, only `cmd` imports `http`.
const restrict = (...patterns) => ({ 'no-restricted-imports': ['error', { patterns }] });
const keysRule = { group: ['**/keys/*', '!**/keys/signing-key.js', '!**/keys/ports.js'], message: 'Only src/ca (and src/cmd wiring) may import keys.' };
const prismaRule = { group: ['@prisma/*', '**/generated/*'], message: 'Only src/store imports Prisma.' };
const httpRule = { group: ['**/http/*'], message: 'Only src/cmd imports http.' };
const cmdRule = { group: ['**/cmd/*'], message: 'Nothing imports cmd.' };

export default tseslint.config(
  { ignores: ['dist/**', 'src/generated/**', 'node_modules/**', '.tmp/**', 'trellis-data/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', URL: 'readonly', WebAssembly: 'readonly', performance: 'readonly', fetch: 'readonly', Response: 'readonly', setImmediate: 'readonly', AbortController: 'readonly', NodeJS: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-explicit-any': 'off',
      'no-empty': ['error', { allowEmptyCatch: false }],
    },
  },
  { files: ['src/**/*.ts'], ignores: ['src/ca/**', 'src/cmd/**', 'src/keys/**', 'src/store/**', 'src/http/**'], rules: restrict(keysRule, prismaRule, httpRule, cmdRule) },
  { files: ['src/ca/**/*.ts', 'src/keys/**/*.ts'], rules: restrict(prismaRule, httpRule, cmdRule) },
  { files: ['src/store/**/*.ts'], rules: restrict(keysRule, httpRule, cmdRule) },
  { files: ['src/http/**/*.ts'], rules: restrict(keysRule, prismaRule, cmdRule) },
  { files: ['src/cmd/**/*.ts'], rules: restrict(prismaRule) },
);
