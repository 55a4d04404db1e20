/** @type {import('jest').Config} */
// ts-jest transpiles each file on its own (type checking is `npm run typecheck`, run before jest).
const tsJest = ['ts-jest', { diagnostics: false }];
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/src', '<rootDir>/conformance'],
  testMatch: ['**/*.test.ts'],
  // jose is published as ES modules only: transform it like our own code (CommonJS under jest).
  transform: { '^.+\\.ts$': tsJest, '/node_modules/jose/.+\\.js$': ['ts-jest', { diagnostics: false, tsconfig: { allowJs: true } }] },
  transformIgnorePatterns: ['/node_modules/(?!jose/)'],
  testTimeout: 60000,
  maxWorkers: 2,
};
