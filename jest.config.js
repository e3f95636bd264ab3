// Jest runs the TypeScript sources directly as ESM (@kubernetes/client-node >= 1.0 is ESM-only).
// Projects split the suites by what they need:
//   unit     pure logic, colocated *.test.ts next to the code; needs nothing
//   launcher real QEMU processes, no cluster (test/launcher)
//   cluster  a real API server (and, for e2e, a real kubelet): test/cluster, test/integration, test/e2e
const transform = {
  '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: '<rootDir>/tsconfig.json' }],
};
const common = {
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform,
  testEnvironment: 'node',
};

export default {
  projects: [
    {
      ...common,
      displayName: 'unit',
      testMatch: ['<rootDir>/{runtime,operator,api-server,controller,node-handler,launcher,kubectl-virt,scripts}/**/*.test.ts', '<rootDir>/test/unit/**/*.test.ts'],
    },
    {
      ...common,
      displayName: 'launcher',
      testMatch: ['<rootDir>/test/launcher/**/*.test.ts'],
    },
    {
      ...common,
      displayName: 'cluster',
      testMatch: ['<rootDir>/test/{cluster,integration,e2e}/**/*.test.ts'],
    },
  ],
};
