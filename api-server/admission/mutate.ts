// The mutating webhook (ADR 0009): kubevm's defaults (runtime/vmi-defaults.ts, the function the
// controller renders VMIs with) written into each VMI as it is created, as a JSONPatch. Only VMIs:
// a VirtualMachine is never mutated, so what a GitOps tool applied is what it reads back.
// Never denies: an object that does not parse is left as it is for the validating webhook, which
// runs after this one and names what is wrong.
import { VirtualMachineInstanceSchema } from '../../runtime/api/index.js';
import { jsonEqual } from '../../runtime/json.js';
import { applyVMIDefaults } from '../../runtime/vmi-defaults.js';
import type { AdmissionRequest, AdmissionResponse } from './admit.js';
import { AdmissionReview, allow } from './admit.js';

export interface JsonPatchOperation {
  op: 'add' | 'replace';
  path: string;
  value: unknown;
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const pointerToken = (key: string): string => key.replace(/~/g, '~0').replace(/\//g, '~1');

/** The operations that turn `before` into `after` where `after` only adds or changes (defaults never remove). */
export function additionsPatch(before: unknown, after: unknown, path = ''): JsonPatchOperation[] {
  if (jsonEqual(before, after)) return [];
  if (!isPlainObject(before) || !isPlainObject(after)) return [{ op: 'replace', path, value: after }];
  return Object.entries(after).flatMap(([key, value]) => {
    const at = `${path}/${pointerToken(key)}`;
    return key in before ? additionsPatch(before[key], value, at) : [{ op: 'add' as const, path: at, value }];
  });
}

/** The defaults for a VMI being created, as a JSONPatch; every other request passes unchanged. */
export function mutate(request: AdmissionRequest): AdmissionResponse {
  const uid = request.uid;
  if (request.operation !== 'CREATE' || request.kind.kind !== 'VirtualMachineInstance') return allow(uid);
  const object = isPlainObject(request.object) ? request.object : {};
  const { status: _status, ...withoutStatus } = object;
  const parsed = VirtualMachineInstanceSchema.safeParse(withoutStatus);
  if (!parsed.success) return allow(uid);
  // Under generateName the name may not be known yet: then no firmware UUID (the prefix would repeat).
  const defaulted = applyVMIDefaults(parsed.data.spec, parsed.data.metadata?.name || request.name || undefined);
  const patch = additionsPatch(parsed.data.spec, defaulted, '/spec');
  if (patch.length === 0) return allow(uid);
  return { ...allow(uid), patchType: 'JSONPatch', patch: Buffer.from(JSON.stringify(patch)).toString('base64') };
}

/** The mutating endpoint's logic: any JSON in, an AdmissionReview out (a malformed review is refused). */
export function handleMutationReview(body: unknown): { apiVersion: 'admission.k8s.io/v1'; kind: 'AdmissionReview'; response: AdmissionResponse } {
  const parsed = AdmissionReview.safeParse(body);
  const wrap = (response: AdmissionResponse) => ({ apiVersion: 'admission.k8s.io/v1' as const, kind: 'AdmissionReview' as const, response });
  if (!parsed.success) {
    const sentUid = isPlainObject(body) && isPlainObject(body['request']) ? body['request']['uid'] : undefined;
    return wrap({ uid: typeof sentUid === 'string' ? sentUid : '', allowed: false, status: { code: 400, reason: 'BadRequest', message: 'not an admission.k8s.io/v1 AdmissionReview' } });
  }
  return wrap(mutate(parsed.data.request));
}
