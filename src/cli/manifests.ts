import { readdir, readFile, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { KubeObject } from '../admission/types.js';
import { isRecord } from '../json-value.js';
import { findWorkloadKind, splitApiVersion } from '../workload/kinds.js';

/** A mistake in the user's input (a manifest, a file name): one line, exit code 2. */
export class ManifestError extends Error {
  override readonly name = 'ManifestError';
}

/** What kubectl reads from a directory given to `-f` (`-R` descends into subdirectories). */
const MANIFEST_EXTENSIONS = new Set(['.yaml', '.yml', '.json']);

export interface ManifestSource {
  /** The file name, or `<stdin>`. */
  readonly name: string;
  readonly text: string;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function unreadable(path: string, err: unknown): ManifestError {
  const code = (err as NodeJS.ErrnoException).code;
  const reason = code === 'ENOENT' ? 'no such file or directory' : code === 'EACCES' ? 'permission denied' : (err as Error).message;
  return new ManifestError(`${path}: cannot read: ${reason}`);
}

async function manifestFiles(dir: string, recursive: boolean): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  const files: string[] = [];
  for (const entry of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (recursive) files.push(...(await manifestFiles(path, true)));
    } else if (MANIFEST_EXTENSIONS.has(extname(entry.name).toLowerCase())) files.push(path);
  }
  return files;
}

/**
 * The inputs of `-f`, in order, as kubectl reads them: a file, a directory (its .yaml, .yml and .json files in name
 * order; with `recursive` also those of its subdirectories), or `-` for standard input (at most once).
 */
export async function readManifestSources(filenames: readonly string[], recursive: boolean): Promise<ManifestSource[]> {
  if (filenames.filter((f) => f === '-').length > 1) throw new ManifestError('-f -: standard input can be read only once');
  const sources: ManifestSource[] = [];
  for (const filename of filenames) {
    if (filename === '-') {
      sources.push({ name: '<stdin>', text: await readStdin() });
      continue;
    }
    let files = [filename];
    try {
      if ((await stat(filename)).isDirectory()) {
        files = await manifestFiles(filename, recursive);
        if (files.length === 0) throw new ManifestError(`${filename}: directory has no .yaml, .yml or .json files${recursive ? '' : ' (-R reads subdirectories)'}`);
      }
      for (const file of files) sources.push({ name: file, text: await readFile(file, 'utf8') });
    } catch (err) {
      if (err instanceof ManifestError) throw err;
      throw unreadable(files.length === 1 ? files[0]! : filename, err);
    }
  }
  return sources;
}

/** One Kubernetes object of the input. */
export interface ManifestObject {
  readonly object: KubeObject;
  /** `file: document N` (`, item M` inside a List), for messages. */
  readonly where: string;
  readonly apiVersion: string;
  readonly kind: string;
  readonly name: string;
  /** The object's namespace, else the default given on the command line. */
  readonly namespace: string;
  /** Whether podvisor handles this kind (Pods and the workloads with a pod template). */
  readonly handled: boolean;
}

/** One YAML document: a single object, or a `kind: List` and its items. */
export interface ManifestDocument {
  readonly list?: KubeObject;
  readonly objects: readonly ManifestObject[];
}

function manifestObject(value: unknown, where: string, defaultNamespace: string): ManifestObject {
  if (!isRecord(value)) throw new ManifestError(`${where}: expected a Kubernetes object (a mapping), got ${Array.isArray(value) ? 'a list' : typeof value}`);
  const { apiVersion, kind } = value;
  if (typeof apiVersion !== 'string' || typeof kind !== 'string') throw new ManifestError(`${where}: apiVersion and kind must be strings`);
  const meta = isRecord(value['metadata']) ? value['metadata'] : {};
  const { group, version } = splitApiVersion(apiVersion);
  return {
    object: value,
    where,
    apiVersion,
    kind,
    name: typeof meta['name'] === 'string' ? meta['name'] : typeof meta['generateName'] === 'string' ? `${meta['generateName']}*` : '?',
    namespace: typeof meta['namespace'] === 'string' ? meta['namespace'] : defaultNamespace,
    handled: findWorkloadKind(group, version, kind) !== undefined,
  };
}

/** Every document of every source; empty documents are dropped, and input without a single object is an error. */
export function parseManifests(sources: readonly ManifestSource[], defaultNamespace: string): ManifestDocument[] {
  const documents: ManifestDocument[] = [];
  for (const source of sources) {
    parseAllDocuments(source.text).forEach((document, index) => {
      const where = `${source.name}: document ${index}`;
      if (document.errors.length > 0) throw new ManifestError(`${where}: invalid YAML: ${document.errors[0]!.message.split('\n')[0]}`);
      const value: unknown = document.toJS();
      if (value === null || value === undefined) return;
      if (isRecord(value) && value['kind'] === 'List' && Array.isArray(value['items'])) {
        documents.push({ list: value, objects: value['items'].map((item, i) => manifestObject(item, `${where}, item ${i}`, defaultNamespace)) });
      } else documents.push({ objects: [manifestObject(value, where, defaultNamespace)] });
    });
  }
  if (documents.every((d) => d.objects.length === 0)) throw new ManifestError(`${sources.map((s) => s.name).join(', ')}: no Kubernetes objects in the input`);
  return documents;
}

/** `Kind/name`, with the namespace for the kinds podvisor handles: how every CLI message names an object. */
export function objectLabel(o: ManifestObject): string {
  return o.handled ? `${o.kind}/${o.name} (namespace ${o.namespace})` : `${o.kind}/${o.name}`;
}
