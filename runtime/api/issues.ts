// Turns zod issues into messages a user can act on: the field path, and what is wrong with it.
// The admission webhooks and the controllers' pre-reconcile checks print these.
import type { z } from 'zod';
import { NO_CHOICE_SET } from './kubevirt/v1/domain.js';
import { UNSUPPORTED_FIELDS } from './unsupported.js';

type PathSegment = PropertyKey;

/** `spec.template.spec.domain.devices.disks[0].cache` */
export function formatFieldPath(path: readonly PathSegment[]): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else out += out === '' ? String(segment) : `.${String(segment)}`;
  }
  return out === '' ? '<root>' : out;
}

/** The same path with indices erased, `spec.volumes[].dataVolume`, to look up unsupported fields. */
function patternOf(path: readonly PathSegment[]): string {
  return formatFieldPath(path.map((segment) => (typeof segment === 'number' ? -1 : segment))).replace(/\[-1\]/g, '[]');
}

function quoteAll(values: readonly unknown[]): string {
  return values.map((value) => JSON.stringify(value)).join(', ');
}

/**
 * One message per problem. Unknown keys give one message each, naming the full path of the key:
 * `spec.template.spec.domain.foo: unknown field "foo"`. When `kind` is given, a KubeVirt field
 * that kubevm does not implement says so instead of "unknown".
 */
export function formatIssues(issues: readonly z.core.$ZodIssue[], kind?: string): string[] {
  const unsupported = new Set(kind ? (UNSUPPORTED_FIELDS[kind] ?? []) : []);
  const withUnknownKeys = new Set(issues.filter((issue) => issue.code === 'unrecognized_keys').map((issue) => formatFieldPath(issue.path)));
  const messages: string[] = [];
  for (const issue of issues) {
    if (issue.code === 'custom' && issue.params?.['reason'] === NO_CHOICE_SET && withUnknownKeys.has(formatFieldPath(issue.path))) continue;
    const at = formatFieldPath(issue.path);
    switch (issue.code) {
      case 'unrecognized_keys':
        for (const key of issue.keys) {
          const fieldPath = [...issue.path, key];
          const where = formatFieldPath(fieldPath);
          messages.push(
            unsupported.has(patternOf(fieldPath))
              ? `${where}: field "${key}" is a KubeVirt field that kubevm does not support`
              : `${where}: unknown field "${key}"`,
          );
        }
        break;
      case 'invalid_value':
        messages.push(
          'input' in issue
            ? `${at}: unsupported value ${formatReceived(issue.input)}; supported values: ${quoteAll(issue.values)}`
            : `${at}: supported values: ${quoteAll(issue.values)}`,
        );
        break;
      case 'invalid_type':
        // Without reportInput zod omits the input; its message still ends in "received <type>".
        if ('input' in issue ? issue.input === undefined : /received undefined$/.test(issue.message)) {
          messages.push(`${at}: required field is missing`);
        } else {
          messages.push(`${at}: expected ${issue.expected}${'input' in issue ? `, got ${typeName(issue.input)}` : ''}`);
        }
        break;
      case 'invalid_union':
        messages.push(`${at}: ${issue.message}`);
        break;
      default:
        messages.push(`${at}: ${issue.message}`);
    }
  }
  return messages;
}

function formatReceived(input: unknown): string {
  return input === undefined ? 'undefined' : JSON.stringify(input);
}

function typeName(input: unknown): string {
  if (input === null) return 'null';
  if (Array.isArray(input)) return 'array';
  return typeof input;
}

/** All messages joined, for an admission response or a condition message. */
export function formatError(error: z.ZodError, kind?: string): string {
  return formatIssues(error.issues, kind).join('; ');
}
