import jsonpatch from 'fast-json-patch';

export type PatchOperation = jsonpatch.Operation;

/** JSON Pointer for a path of plain keys (RFC 6901: `~` → `~0`, `/` → `~1`). */
export function pointer(path: readonly string[]): string {
  return path.map((key) => `/${key.replaceAll('~', '~0').replaceAll('/', '~1')}`).join('');
}

/**
 * RFC 6902 operations turning `original` into `draft`, both found at `at` inside the object being patched.
 * fast-json-patch escapes keys, emits `add` of a whole map only when the parent is missing, and appends to arrays
 * with `add .../N`, so an owner's annotations or volumes are never replaced wholesale.
 */
export function diff(original: unknown, draft: unknown, at: readonly string[]): PatchOperation[] {
  // The package is CommonJS without an exports map: only the default import works at run time.
  const operations = jsonpatch.compare(original as object, draft as object);
  const prefix = pointer(at);
  return prefix === '' ? operations : operations.map((op) => ({ ...op, path: prefix + op.path }));
}

export function encodePatch(operations: readonly PatchOperation[]): string {
  return Buffer.from(JSON.stringify(operations)).toString('base64');
}
