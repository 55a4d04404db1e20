/** @type {import('jest').Config} */
// ts-jest transpiles each file on its own (type checking is `npm run typecheck`, run before jest).
const tsJest = ['ts-jest', { diagnostics: false }];
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/src', '<rootDir>/conformance'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': tsJest },
  testTimeout: 60000,
  maxWorkers: 2,
};
