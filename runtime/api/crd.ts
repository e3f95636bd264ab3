// Derives CustomResourceDefinitions from the zod schemas: z.toJSONSchema gives OpenAPI 3.0, and
// this module reshapes it into the *structural* schema Kubernetes requires (no additionalProperties
// beside properties, every node typed, anyOf only for int-or-string, metadata as plain object).
import { z } from 'zod';
import { INT_OR_STRING, PRESERVE_UNKNOWN_FIELDS } from './meta.js';
import type { ApiResource } from './resources.js';
import { isJsonObject } from '../json.js';

/** A node of an OpenAPI v3 schema as CRDs carry it (JSONSchemaProps). */
export interface JSONSchemaProps {
  type?: 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean';
  description?: string;
  format?: string;
  pattern?: string;
  enum?: unknown[];
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  nullable?: boolean;
  properties?: Record<string, JSONSchemaProps>;
  required?: string[];
  additionalProperties?: JSONSchemaProps | boolean;
  items?: JSONSchemaProps;
  anyOf?: JSONSchemaProps[];
  'x-kubernetes-int-or-string'?: boolean;
  'x-kubernetes-preserve-unknown-fields'?: boolean;
  'x-kubernetes-list-type'?: 'atomic' | 'set' | 'map';
  'x-kubernetes-list-map-keys'?: string[];
  'x-kubernetes-map-type'?: 'atomic' | 'granular';
  [key: string]: unknown;
}

type JsonObject = Record<string, unknown>;

const SAFE_INTEGER_BOUNDS = new Set([Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER]);
const INT32_MIN = -2147483648;
const INT32_MAX = 2147483647;

// Keys passed through unchanged; anything else zod emits is a sign the schema uses a construct
// the generator does not know how to make structural, so it fails loudly.
const PASSTHROUGH_KEYS = new Set([
  'description',
  'format',
  'pattern',
  'enum',
  'minLength',
  'maxLength',
  'minItems',
  'maxItems',
  'nullable',
  'x-kubernetes-list-type',
  'x-kubernetes-list-map-keys',
  'x-kubernetes-map-type',
]);

/** Reshapes one node of z.toJSONSchema output (OpenAPI 3.0 target) into a structural node. */
function structural(node: JsonObject, path: string): JSONSchemaProps {
  if (node[INT_OR_STRING] === true) {
    const out: JSONSchemaProps = {};
    if (typeof node.description === 'string') out.description = node.description;
    out.anyOf = [{ type: 'integer' }, { type: 'string' }];
    if (typeof node.pattern === 'string') out.pattern = node.pattern;
    out[INT_OR_STRING] = true;
    return out;
  }
  if (node.anyOf !== undefined || node.oneOf !== undefined || node.allOf !== undefined) {
    throw new Error(`${path}: a union is not structural; model it as one object with optional fields and a refinement`);
  }
  const out: JSONSchemaProps = {};
  if (typeof node.description === 'string') out.description = node.description;
  const type = node.type;
  if (typeof type !== 'string') throw new Error(`${path}: no type`);
  out.type = type as JSONSchemaProps['type'];
  for (const [key, value] of Object.entries(node)) {
    if (key === 'description' || key === 'type') continue;
    if (PASSTHROUGH_KEYS.has(key)) {
      out[key] = value;
      continue;
    }
    switch (key) {
      case 'const':
        out.enum = [value];
        break;
      case 'minimum':
      case 'maximum': {
        // z.int() bounds are JavaScript's safe-integer range, meaningless to the API server;
        // z.int32() bounds become format int32.
        const bound = value as number;
        if (SAFE_INTEGER_BOUNDS.has(bound)) break;
        if ((key === 'minimum' && bound === INT32_MIN) || (key === 'maximum' && bound === INT32_MAX)) {
          out.format = 'int32';
          break;
        }
        out[key] = bound;
        break;
      }
      case 'properties': {
        const properties: Record<string, JSONSchemaProps> = {};
        for (const [name, child] of Object.entries(value as JsonObject)) {
          properties[name] = structural(child as JsonObject, `${path}.${name}`);
        }
        out.properties = properties;
        break;
      }
      case 'required':
        if ((value as string[]).length > 0) out.required = [...(value as string[])];
        break;
      case 'items':
        out.items = structural(value as JsonObject, `${path}[]`);
        break;
      case 'additionalProperties':
        // Strict objects emit `false` and loose ones `{}`; neither belongs in a structural schema
        // (unknown fields are pruned, and rejected under strict field validation). A record's
        // value schema is kept: that is a map.
        if (isJsonObject(value) && Object.keys(value).length > 0 && node.properties === undefined) {
          out.additionalProperties = structural(value, `${path}.*`);
        }
        break;
      case 'propertyNames':
        break;
      case PRESERVE_UNKNOWN_FIELDS:
        out[PRESERVE_UNKNOWN_FIELDS] = true;
        break;
      default:
        throw new Error(`${path}: unexpected JSON schema keyword ${key}`);
    }
  }
  if (out.format === 'int32' && out.type !== 'integer') delete out.format;
  return out;
}

/** The structural OpenAPI v3 schema of a kind, as a CRD version's `schema.openAPIV3Schema`. */
export function crdSchema(resource: ApiResource): JSONSchemaProps {
  const json = z.toJSONSchema(resource.schema, {
    target: 'openapi-3.0',
    io: 'input',
    unrepresentable: 'throw',
    reused: 'inline',
    cycles: 'throw',
  }) as JsonObject;
  delete json.$schema;
  // Replaced below: the API server validates metadata itself.
  delete (json.properties as JsonObject).metadata;
  const root = structural(json, resource.names.kind);
  const { apiVersion, kind, ...rest } = root.properties ?? {};
  // The API server sets apiVersion and kind itself and validates metadata itself; a CRD only
  // declares them (KubeVirt's CRDs do the same).
  root.properties = {
    apiVersion: { description: apiVersion?.description ?? '', type: 'string' },
    kind: { description: kind?.description ?? '', type: 'string' },
    metadata: { type: 'object' },
    ...rest,
  };
  root.required = (root.required ?? []).filter((name) => name !== 'apiVersion' && name !== 'kind');
  if (root.required.length === 0) delete root.required;
  return root;
}

/** A CustomResourceDefinition (apiextensions.k8s.io/v1) for a kind. */
export function renderCustomResourceDefinition(resource: ApiResource): JsonObject {
  const { names } = resource;
  const version: JsonObject = {
    name: names.version,
    served: true,
    storage: true,
    schema: { openAPIV3Schema: crdSchema(resource) },
  };
  if (resource.statusSubresource) version.subresources = { status: {} };
  if (resource.printerColumns.length > 0) version.additionalPrinterColumns = resource.printerColumns.map((column) => ({ ...column }));
  if (resource.selectableFields?.length) version.selectableFields = resource.selectableFields.map((jsonPath) => ({ jsonPath }));
  const crdNames: JsonObject = { kind: names.kind, listKind: `${names.kind}List`, plural: names.plural, singular: names.singular };
  if (names.shortNames.length > 0) crdNames.shortNames = [...names.shortNames];
  if (names.categories.length > 0) crdNames.categories = [...names.categories];
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: `${names.plural}.${names.group}`,
      labels: { 'app.kubernetes.io/part-of': 'kubevm' },
    },
    spec: {
      group: names.group,
      names: crdNames,
      scope: names.scope,
      versions: [version],
    },
  };
}

/**
 * The ways a schema breaks Kubernetes' structural-schema rules (empty when it is structural).
 * Checked by the tests on every generated CRD, independently of how `structural()` built it.
 */
export function structuralViolations(schema: JSONSchemaProps, path = '', inAnyOf = false): string[] {
  const at = path === '' ? '<root>' : path;
  const problems: string[] = [];
  const intOrString = schema['x-kubernetes-int-or-string'] === true;
  const preserve = schema['x-kubernetes-preserve-unknown-fields'] === true;
  if (!inAnyOf && schema.type === undefined && !intOrString && !preserve) problems.push(`${at}: no type`);
  // Inside anyOf only value validations may appear; `type` is allowed because the parent check
  // below admits no anyOf but the int-or-string one.
  if (inAnyOf) {
    for (const key of ['description', 'default', 'additionalProperties', 'nullable', 'properties', 'items'] as const) {
      if (schema[key] !== undefined) problems.push(`${at}: ${key} inside anyOf`);
    }
  }
  if (schema.anyOf !== undefined) {
    const isIntOrString =
      intOrString &&
      schema.anyOf.length === 2 &&
      schema.anyOf.some((branch) => branch.type === 'integer') &&
      schema.anyOf.some((branch) => branch.type === 'string');
    if (!isIntOrString) problems.push(`${at}: anyOf other than the int-or-string form`);
  }
  for (const key of ['$ref', 'oneOf', 'allOf', 'not', 'const', 'definitions', '$defs']) {
    if (schema[key] !== undefined) problems.push(`${at}: ${key} is not allowed`);
  }
  if (schema.properties !== undefined && schema.additionalProperties !== undefined) {
    problems.push(`${at}: additionalProperties beside properties`);
  }
  if (schema.additionalProperties === false || schema.additionalProperties === true) {
    problems.push(`${at}: additionalProperties must be a schema`);
  }
  if (schema.type === 'object' && schema.items !== undefined) problems.push(`${at}: items on an object`);
  if (schema.type === 'array' && schema.items === undefined) problems.push(`${at}: array without items`);
  if (schema.properties !== undefined && schema.type !== 'object') problems.push(`${at}: properties on a non-object`);
  for (const name of schema.required ?? []) {
    if (schema.properties?.[name] === undefined) problems.push(`${at}: required field ${name} is not declared`);
  }
  if (schema['x-kubernetes-list-type'] === 'map') {
    const keys = schema['x-kubernetes-list-map-keys'] ?? [];
    if (keys.length === 0) problems.push(`${at}: list-type map without list-map-keys`);
    for (const key of keys) {
      const item = schema.items;
      if (item?.properties?.[key] === undefined || !(item.required ?? []).includes(key)) {
        problems.push(`${at}: list-map key ${key} must be a required field of the items`);
      }
    }
  }
  for (const [name, child] of Object.entries(schema.properties ?? {})) {
    problems.push(...structuralViolations(child, path === '' ? name : `${path}.${name}`));
  }
  if (schema.items !== undefined) problems.push(...structuralViolations(schema.items, `${path}[]`));
  if (typeof schema.additionalProperties === 'object') problems.push(...structuralViolations(schema.additionalProperties, `${path}.*`));
  for (const branch of schema.anyOf ?? []) problems.push(...structuralViolations(branch, path, true));
  return problems;
}
