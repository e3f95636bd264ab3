// Jest runs the TypeScript sources directly as ESM (@kubernetes/client-node >= 1.0 is ESM-only).
// Projects split the suites by what they need:
//   unit     pure logic, colocated *.test.ts next to the code; needs nothing
//   launcher real QEMU processes, no cluster (test/launcher)
//   integration  a real cluster without kubevm installed; suites start what they test in-process
//                (test/cluster, test/integration)
//   helm     a real cluster with kubevm's images built and kubevm NOT installed: the suite
//            installs, upgrades and uninstalls it with Helm itself (test/helm)
//   e2e      a real cluster with kubevm's images built and kubevm installed (test/e2e)
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
      displayName: 'integration',
      testMatch: ['<rootDir>/test/{cluster,integration}/**/*.test.ts'],
    },
    {
      ...common,
      displayName: 'helm',
      testMatch: ['<rootDir>/test/helm/**/*.test.ts'],
    },
    {
      ...common,
      displayName: 'e2e',
      testMatch: ['<rootDir>/test/e2e/**/*.test.ts'],
    },
  ],
};
