/** @type {import('jest').Config} */
const swc = ['@swc/jest', { jsc: { parser: { syntax: 'typescript' }, target: 'es2022' }, module: { type: 'commonjs' } }];
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/src', '<rootDir>/conformance'],
  testMatch: ['**/*.test.ts'],
  // fhir-kit-client ships as an ES module: compiled to CommonJS for jest like our own code.
  transform: { '^.+\\.ts$': swc, '^.+/fhir-kit-client/.+\\.js$': swc },
  moduleNameMapper: { '^fhir-kit-client$': '<rootDir>/node_modules/fhir-kit-client/dist/index.js' },
  transformIgnorePatterns: ['/node_modules/(?!fhir-kit-client/)'],
  testTimeout: 60000,
  maxWorkers: 2,
};
