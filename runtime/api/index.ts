// The kubevm API: zod schemas (runtime validation), inferred types, resource names, and the
// helpers that validate objects and format errors with their field paths.
export * from './meta.js';
export * from './names.js';
export * from './core.js';
export * from './kubevirt/v1/domain.js';
export * from './kubevirt/v1/volumes.js';
export * from './kubevirt/v1/virtualmachineinstance.js';
export * from './kubevirt/v1/virtualmachine.js';
export * from './kubevirt/v1/virtualmachineinstancemigration.js';
export * from './kubevirt/v1/kubevirt.js';
export * from './kubevirt/v1/subresources.js';
export * from './instancetype.js';
export * from './migrations.js';
export * from './unsupported.js';
export * from './issues.js';
export * from './resources.js';
export * from './crd.js';
