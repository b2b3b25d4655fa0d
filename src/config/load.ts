import { readFile } from 'node:fs/promises';
import { parse } from 'yaml';

import { configSchema, type Config } from './schema.js';

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** Validates parsed YAML/JSON. Every problem is reported as `field.path: message`. */
export function parseConfig(raw: unknown, source = 'config'): Config {
  const result = configSchema.safeParse(raw ?? {});
  if (!result.success) {
    const lines = result.error.issues.map((issue) => `${issue.path.length > 0 ? issue.path.join('.') : '(root)'}: ${issue.message}`);
    throw new ConfigError(`invalid ${source}:\n  ${lines.join('\n  ')}`);
  }
  const config = result.data;
  if (!config.excludedNamespaces.includes(config.namespace)) config.excludedNamespaces.push(config.namespace);
  return config;
}

export function parseConfigText(text: string, source = 'config'): Config {
  let raw: unknown;
  try {
    raw = parse(text);
  } catch (err) {
    throw new ConfigError(`invalid ${source}: not valid YAML: ${(err as Error).message}`);
  }
  if (raw !== null && raw !== undefined && (typeof raw !== 'object' || Array.isArray(raw))) {
    throw new ConfigError(`invalid ${source}: the top level must be a mapping`);
  }
  return parseConfig(raw, source);
}

/** Without a file, the embedded defaults apply (every field of the schema has one). */
export async function loadConfig(file: string | undefined): Promise<Config> {
  if (file === undefined) return parseConfig({}, 'embedded default config');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return parseConfigText(text, `config ${file}`);
}

