import type jsonpatch from 'fast-json-patch';

export type PatchOperation = jsonpatch.Operation;

function escapeKey(key: string): string {
  return key.includes('~') || key.includes('/') ? key.replaceAll('~', '~0').replaceAll('/', '~1') : key;
}

/** JSON Pointer for a path of plain keys (RFC 6901: `~` → `~0`, `/` → `~1`). */
export function pointer(path: readonly string[]): string {
  return path.map((key) => `/${escapeKey(key)}`).join('');
}

function isContainer(value: unknown): value is Record<string, unknown> | unknown[] {
  return typeof value === 'object' && value !== null;
}

function diffValue(a: unknown, b: unknown, path: string, ops: PatchOperation[]): void {
  if (a === b) return; // shared with the original (src/mutation/draft.ts): nothing changed below
  if (isContainer(a) && isContainer(b) && Array.isArray(a) === Array.isArray(b)) {
    if (Array.isArray(a)) diffArray(a, b as unknown[], path, ops);
    else diffObject(a, b as Record<string, unknown>, path, ops);
  } else if (a !== b) {
    ops.push({ op: 'replace', path, value: b });
  }
}

/**
 * A member's own value: `toString`, `constructor` or `__proto__` are valid label and annotation keys, not inherited.
 * A JSON object inherits only Object.prototype's members, which are functions or `__proto__`: checking for those is
 * cheaper on the hot path than Object.hasOwn on every key.
 */
function member(object: Record<string, unknown>, key: string): unknown {
  const value = object[key];
  if (typeof value === 'function') return undefined;
  return key === '__proto__' && !Object.hasOwn(object, key) ? undefined : value;
}

/** Object members: removed, added (a whole value), or diffed in place. An undefined member counts as absent. */
function diffObject(a: Record<string, unknown>, b: Record<string, unknown>, path: string, ops: PatchOperation[]): void {
  for (const key of Object.keys(a)) {
    if (a[key] !== undefined && member(b, key) === undefined) ops.push({ op: 'remove', path: `${path}/${escapeKey(key)}` });
  }
  for (const key of Object.keys(b)) {
    const before = member(a, key);
    const after = b[key];
    // Most members are shared with the original: compare before building a path.
    if (after === undefined || before === after) continue;
    const at = `${path}/${escapeKey(key)}`;
    if (before === undefined) ops.push({ op: 'add', path: at, value: after });
    else diffValue(before, after, at, ops);
  }
}

/** Arrays element by element: appends as `add .../N` in ascending order, removals from the end backwards. */
function diffArray(a: unknown[], b: unknown[], path: string, ops: PatchOperation[]): void {
  const common = Math.min(a.length, b.length);
  for (let i = 0; i < common; i += 1) if (a[i] !== b[i]) diffValue(a[i], b[i], `${path}/${i}`, ops);
  for (let i = common; i < b.length; i += 1) ops.push({ op: 'add', path: `${path}/${i}`, value: b[i] });
  for (let i = a.length - 1; i >= b.length; i -= 1) ops.push({ op: 'remove', path: `${path}/${i}` });
}

/**
 * RFC 6902 operations turning `original` into `draft`, both found at `at` inside the object being patched. Keys are
 * escaped, a whole map is added only where the parent is missing, and arrays get `add .../N` appends, so an owner's
 * annotations or volumes are never replaced wholesale. This replaces fast-json-patch's `compare`, which deep-copies
 * every added value through JSON (a fifth of the handler's time, measured); the values here are serialized at once.
 * Applying the result with fast-json-patch is what every test and property test checks.
 */
export function diff(original: unknown, draft: unknown, at: readonly string[]): PatchOperation[] {
  const ops: PatchOperation[] = [];
  diffValue(original, draft, pointer(at), ops);
  return ops;
}

/** The JSON of each constant value (see `constantValue`). */
const constantJson = new WeakMap<object, string>();

function deepFreeze(value: unknown): void {
  if (typeof value !== 'object' || value === null || Object.isFrozen(value)) return;
  Object.freeze(value);
  for (const member of Object.values(value)) deepFreeze(member);
}

/**
 * A value that is the same in every review that adds it (built once from the config, like LXCFS's volumes and
 * mounts): deep-frozen, since drafts and patched objects share it, and serialized once, so that a patch adding it
 * copies its JSON instead of serializing it again (they are most of an LXCFS patch).
 */
export function constantValue<T extends object>(value: T): T {
  deepFreeze(value);
  constantJson.set(value, JSON.stringify(value));
  return value;
}

function valueJson(value: unknown): string | undefined {
  return (typeof value === 'object' && value !== null && constantJson.get(value)) || JSON.stringify(value);
}

/** JSON.stringify(operations), the same text for the operations diff() makes ({ op, path[, value] }). */
function patchJson(operations: readonly PatchOperation[]): string {
  let json = '[';
  for (let i = 0; i < operations.length; i += 1) {
    const operation = operations[i]!;
    if (i > 0) json += ',';
    if (!(operation.op === 'add' || operation.op === 'replace' || operation.op === 'remove')) {
      json += JSON.stringify(operation);
      continue;
    }
    json += `{"op":"${operation.op}","path":${JSON.stringify(operation.path)}`;
    const value = operation.op === 'remove' ? undefined : valueJson(operation.value);
    json += value === undefined ? '}' : `,"value":${value}}`;
  }
  return `${json}]`;
}

/** The base64 of the patch's UTF-8 JSON (AdmissionResponse.patch). */
export function encodePatch(operations: readonly PatchOperation[]): string {
  const json = patchJson(operations);
  // ASCII only (the usual case: a byte per character), btoa encodes it at once; it would take other text as Latin-1.
  return Buffer.byteLength(json) === json.length ? btoa(json) : Buffer.from(json).toString('base64');
}
