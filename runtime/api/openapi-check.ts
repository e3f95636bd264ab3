// A small validator for structural CRD schemas, covering what kubevm's schemas use: type,
// properties (unknown fields are errors, as under strict field validation), required, enum,
// pattern, bounds, int-or-string, nullable, maps, arrays and list-map key uniqueness.
// It lets the unit tests check that a manifest is judged the same by the generated CRD and by zod,
// without an API server (the integration suite checks the real one).
import type { JSONSchemaProps } from './crd.js';
import { isJsonObject } from '../json.js';

function typeMatches(type: JSONSchemaProps['type'], value: unknown): boolean {
  switch (type) {
    case 'object':
      return isJsonObject(value);
    case 'array':
      return Array.isArray(value);
    case 'string':
      return typeof value === 'string';
    case 'integer':
      return Number.isInteger(value);
    case 'number':
      return typeof value === 'number';
    case 'boolean':
      return typeof value === 'boolean';
    default:
      return true;
  }
}

/** Field errors, `path: problem`, in the API server's path style (`spec.volumes[0].name`). */
export function checkAgainstCrdSchema(schema: JSONSchemaProps, value: unknown, path = ''): string[] {
  const at = path === '' ? '<root>' : path;
  if (value === null) return schema.nullable ? [] : [`${at}: must not be null`];
  if (schema['x-kubernetes-int-or-string']) {
    if (typeof value === 'string') return schema.pattern && !new RegExp(schema.pattern).test(value) ? [`${at}: does not match ${schema.pattern}`] : [];
    return Number.isInteger(value) ? [] : [`${at}: must be an integer or a string`];
  }
  if (!typeMatches(schema.type, value)) return [`${at}: must be of type ${schema.type}`];
  const errors: string[] = [];
  if (schema.enum && !schema.enum.includes(value)) errors.push(`${at}: unsupported value ${JSON.stringify(value)}`);
  if (typeof value === 'string') {
    if (schema.pattern && !new RegExp(schema.pattern).test(value)) errors.push(`${at}: does not match ${schema.pattern}`);
    if (schema.minLength !== undefined && value.length < schema.minLength) errors.push(`${at}: shorter than ${schema.minLength}`);
  }
  if (typeof value === 'number') {
    if (schema.minimum !== undefined && value < schema.minimum) errors.push(`${at}: less than ${schema.minimum}`);
    if (schema.maximum !== undefined && value > schema.maximum) errors.push(`${at}: greater than ${schema.maximum}`);
  }
  if (Array.isArray(value)) {
    value.forEach((item, index) => errors.push(...checkAgainstCrdSchema(schema.items ?? {}, item, `${path}[${index}]`)));
    if (schema['x-kubernetes-list-type'] === 'map') {
      const keys = schema['x-kubernetes-list-map-keys'] ?? [];
      const seen = new Set<string>();
      value.forEach((item, index) => {
        const key = JSON.stringify(keys.map((name) => (item as Record<string, unknown>)[name]));
        if (seen.has(key)) errors.push(`${path}[${index}]: duplicate entry for key ${key}`);
        seen.add(key);
      });
    }
  } else if (typeof value === 'object') {
    const object = value as Record<string, unknown>;
    for (const name of schema.required ?? []) {
      if (object[name] === undefined) errors.push(`${path === '' ? name : `${path}.${name}`}: required value`);
    }
    for (const [name, child] of Object.entries(object)) {
      // The API server validates metadata itself; the CRD declares it as a bare object.
      if (path === '' && name === 'metadata') continue;
      const childPath = path === '' ? name : `${path}.${name}`;
      const childSchema = schema.properties?.[name] ?? (typeof schema.additionalProperties === 'object' ? schema.additionalProperties : undefined);
      if (childSchema) errors.push(...checkAgainstCrdSchema(childSchema, child, childPath));
      else if (!schema['x-kubernetes-preserve-unknown-fields']) errors.push(`${childPath}: unknown field "${name}"`);
    }
  }
  return errors;
}
