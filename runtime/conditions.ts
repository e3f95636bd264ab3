// Status conditions as Cluster API's util/conditions does them, in KubeVirt's condition shape
// (type, status, reason, message, lastTransitionTime, lastProbeTime: null):
// - lastTransitionTime moves only when status flips, so it means "since when";
// - times are RFC 3339 truncated to seconds, as the API server stores metav1.Time, so an object
//   read back compares equal to the one we computed and a no-op pass writes nothing;
// - conditions are kept in a fixed order, for the same reason;
// - every setter reports whether anything changed.
import { redactText } from './redact.js';

import type { Condition, ConditionStatus } from './api/meta.js';

export type { Condition, ConditionStatus };

/** What a caller states about a condition; times are the helpers' business. */
export interface ConditionInput {
  type: string;
  status: ConditionStatus;
  reason?: string;
  message?: string;
}

export interface ConditionOptions {
  /** The time to stamp on a transition; defaults to now. */
  now?: Date;
  /** Condition types in the order they are kept; others follow alphabetically. Default: Ready first. */
  order?: readonly string[];
}

export interface ConditionsResult {
  conditions: Condition[];
  changed: boolean;
}

const defaultOrder: readonly string[] = ['Ready'];

/** RFC 3339 in UTC with whole seconds: 2026-01-02T03:04:05Z. */
export function formatConditionTime(date: Date): string {
  return `${date.toISOString().slice(0, 19)}Z`;
}

/** Truncate an RFC 3339 time (any precision, any offset) to seconds in UTC; junk is kept as is. */
export function truncateTime(value: string | null | undefined): string | null | undefined {
  if (value === null || value === undefined) return value;
  const parsed = new Date(value);
  return Number.isNaN(parsed.getTime()) ? value : formatConditionTime(parsed);
}

export function getCondition(conditions: readonly Condition[] | undefined, type: string): Condition | undefined {
  return conditions?.find((condition) => condition.type === type);
}

export function isConditionTrue(conditions: readonly Condition[] | undefined, type: string): boolean {
  return getCondition(conditions, type)?.status === 'True';
}

/** Sort conditions: types named in `order` first, in that order; the rest alphabetically. */
export function sortConditions(conditions: readonly Condition[], order: readonly string[] = defaultOrder): Condition[] {
  const rank = (type: string): number => {
    const index = order.indexOf(type);
    return index === -1 ? order.length : index;
  };
  return [...conditions].sort((a, b) => rank(a.type) - rank(b.type) || (a.type < b.type ? -1 : a.type > b.type ? 1 : 0));
}

function normalise(condition: Condition): Condition {
  const out: Condition = { type: condition.type, status: condition.status };
  if (condition.reason) out.reason = condition.reason;
  if (condition.message) out.message = condition.message;
  out.lastProbeTime = truncateTime(condition.lastProbeTime) ?? null;
  const transition = truncateTime(condition.lastTransitionTime);
  if (transition !== undefined) out.lastTransitionTime = transition;
  return out;
}

function sameCondition(a: Condition, b: Condition): boolean {
  return (
    a.type === b.type &&
    a.status === b.status &&
    (a.reason ?? '') === (b.reason ?? '') &&
    (a.message ?? '') === (b.message ?? '') &&
    (a.lastTransitionTime ?? null) === (b.lastTransitionTime ?? null) &&
    (a.lastProbeTime ?? null) === (b.lastProbeTime ?? null)
  );
}

function sameList(a: readonly Condition[], b: readonly Condition[]): boolean {
  if (a.length !== b.length) return false;
  return a.every((condition, index) => {
    const other = b[index];
    return other !== undefined && sameCondition(condition, other);
  });
}

/**
 * Set a condition. Its lastTransitionTime is kept unless the status flips (or it is new); reason
 * and message are replaced. Returns a new, normalised and sorted list, and whether it differs
 * from the input.
 */
export function setCondition(
  conditions: readonly Condition[] | undefined,
  input: ConditionInput,
  options: ConditionOptions = {},
): ConditionsResult {
  const current = conditions ?? [];
  const existing = getCondition(current, input.type);
  const flipped = existing === undefined || existing.status !== input.status;
  const next: Condition = normalise({
    type: input.type,
    status: input.status,
    ...(input.reason !== undefined ? { reason: input.reason } : {}),
    // Messages quote launchers' and pods' last lines: nothing secret may ride along into a status.
    ...(input.message !== undefined ? { message: redactText(input.message) } : {}),
    lastProbeTime: null,
    lastTransitionTime: flipped
      ? formatConditionTime(options.now ?? new Date())
      : (existing?.lastTransitionTime ?? formatConditionTime(options.now ?? new Date())),
  });
  const others = current.filter((condition) => condition.type !== input.type).map(normalise);
  const result = sortConditions([...others, next], options.order);
  return { conditions: result, changed: !sameList(current, result) };
}

/** Remove a condition type. */
export function removeCondition(
  conditions: readonly Condition[] | undefined,
  type: string,
  options: Pick<ConditionOptions, 'order'> = {},
): ConditionsResult {
  const current = conditions ?? [];
  const result = sortConditions(
    current.filter((condition) => condition.type !== type).map(normalise),
    options.order,
  );
  return { conditions: result, changed: !sameList(current, result) };
}

/** An object whose status may carry conditions (VM, VMI, migration, KubeVirt CR). */
export interface WithStatusConditions {
  status?: { conditions?: Condition[] | undefined } | undefined;
}

/** setCondition on `obj.status.conditions`, in place; returns whether anything changed. */
export function setStatusCondition(obj: WithStatusConditions, input: ConditionInput, options: ConditionOptions = {}): boolean {
  const { conditions, changed } = setCondition(obj.status?.conditions, input, options);
  if (!changed) return false;
  if (obj.status) obj.status.conditions = conditions;
  else obj.status = { conditions };
  return true;
}

/** removeCondition on `obj.status.conditions`, in place; returns whether anything changed. */
export function removeStatusCondition(
  obj: WithStatusConditions,
  type: string,
  options: Pick<ConditionOptions, 'order'> = {},
): boolean {
  const { conditions, changed } = removeCondition(obj.status?.conditions, type, options);
  if (!changed) return false;
  if (obj.status) obj.status.conditions = conditions;
  else obj.status = { conditions };
  return true;
}
