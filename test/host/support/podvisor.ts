import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Container, Pod } from 'kubernetes-types/core/v1.js';
import { parse, stringify } from 'yaml';
import { must } from './host.js';

const CLI = join(import.meta.dirname, '../../../dist/cli.js');

/**
 * The Pod as podvisor's own shipped CLI renders it (`podvisor inject`, the same code as the webhook): the host suites
 * take every capability, mount and device from this output, never from a table of their own.
 */
export function inject(pod: Pod, options: { config?: object; dir: string }): Pod {
  const args = [CLI, 'inject', '-f', '-'];
  if (options.config !== undefined) {
    const file = join(options.dir, `config-${Math.random().toString(36).slice(2, 8)}.yaml`);
    writeFileSync(file, stringify(options.config));
    args.push('-c', file);
  }
  return parse(must(process.execPath, args, { input: stringify(pod) })) as Pod;
}

export function onlyContainer(pod: Pod): Container {
  const [container, ...rest] = pod.spec?.containers ?? [];
  if (container === undefined || rest.length > 0) throw new Error('expected a Pod with exactly one container');
  return container;
}

/** A one-container Pod with the given annotations and resources. */
export function podWith(annotations: Record<string, string>, limits: Record<string, string> = {}): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'host-proof', namespace: 'default', annotations },
    spec: { containers: [{ name: 'main', image: 'example.invalid/main:1', resources: { limits } }] },
  };
}
