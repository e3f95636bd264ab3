// The kubevm API: zod schemas (runtime validation), inferred types, and resource names.
export * from './meta.js';
export * from './core.js';
export * from './kubevirt/v1/domain.js';
export * from './kubevirt/v1/volumes.js';
export * from './kubevirt/v1/virtualmachineinstance.js';
