// ESLint with typescript-eslint's type-aware rules (recommended-type-checked): promises that are
// neither awaited nor handled (no-floating-promises), promises passed where a void callback is
// expected (no-misused-promises), assertions the types already guarantee
// (no-unnecessary-type-assertion), values of type any flowing into typed code. Run by
// `npm run lint` and by the static stage of test/run-all.sh.
import eslint from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', 'local-cluster/', 'charts/', 'crds/', 'deploy/', '**/*.js'] },
  eslint.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // Turned off: an async function without await is how a stub or a handler implements an
      // interface that returns a promise (launcher and client stand-ins in tests, fastify
      // handlers); rewriting them as Promise.resolve(...) adds nothing. The hazards around
      // promises are what no-floating-promises and no-misused-promises check, and they stay on.
      '@typescript-eslint/require-await': 'off',
      // A variable that a closure reads before its one assignment (a readiness check registered
      // before the informer exists) cannot be const.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
      // Unused arguments are allowed when named _like_this (a callback's shape is fixed).
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
    },
  },
  {
    // The manifest corpus and the suites that judge it build invalid objects by mutating copies
    // at arbitrary paths (vm.spec.template.spec.domain.foo = ...): typing every mutation would
    // restate the schema under test. Values of type any are allowed in these files only.
    files: [
      'test/support/api-manifests.ts',
      'runtime/api/crd.test.ts',
      'runtime/api/manifests.test.ts',
      'test/integration/crds.test.ts',
      'api-server/admission/admit.test.ts',
    ],
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
    },
  },
);
