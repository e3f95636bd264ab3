// The API types the api-server handles, narrowed to what the runtime's clients take (their
// metadata shape). The source of truth is runtime/api; nothing is redefined here.
import type * as api from '../runtime/api/index.js';
import type { KubeObject } from '../runtime/kube.js';

export type VirtualMachine = api.VirtualMachine & KubeObject;
export type VirtualMachineInstance = api.VirtualMachineInstance & KubeObject;
export type VirtualMachineInstanceMigration = Omit<api.VirtualMachineInstanceMigration, 'metadata'> & KubeObject;
