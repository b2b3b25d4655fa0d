import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Logger } from '../observability/logger.js';
import { ConfigError, parseConfigText } from './load.js';
import type { Config } from './schema.js';

export interface ConfigWatcher {
  /** Reads and applies the file now; true when a new config is in force. */
  reload(): Promise<boolean>;
  stop(): void;
}

export interface ConfigWatchOptions {
  /** Re-applies what command-line flags override (they win over the file on every reload too). */
  readonly applyOverrides?: (config: Config) => Config;
  /** Called with the new config; the caller swaps it in with one assignment, so each request sees the old or the new. */
  readonly onChange: (config: Config, text: string) => void;
  readonly log: Logger;
  readonly onResult?: (result: 'success' | 'failure') => void;
  readonly debounceMs?: number;
  readonly pollMs?: number;
}

/** Fields read once at start (listening sockets); a change is reported and takes effect at the next restart. */
const RESTART_ONLY = ['server'] as const;

/**
 * Watches the config file (a mounted ConfigMap: the kubelet swaps the `..data` symlink, so the DIRECTORY is watched,
 * with a debounce, plus a slow poll). A valid new config replaces the old one at once. An invalid one is rejected: an
 * error log line names each bad field (`field.path: message`, from the same schema as at start), the failure is
 * counted, and the old config stays in force.
 */
export function watchConfigFile(file: string, initial: { text: string; config: Config }, options: ConfigWatchOptions): ConfigWatcher {
  const { log } = options;
  let lastText = initial.text;
  let lastConfig = initial.config;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<boolean> | undefined;

  async function load(): Promise<boolean> {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      // Mid-swap the file may be briefly missing; the next event or poll retries.
      log.warn({ file, err: (err as NodeJS.ErrnoException).code ?? (err as Error).message }, 'config file unreadable; keeping the current config');
      return false;
    }
    if (text === lastText) return false;
    let config: Config;
    try {
      config = parseConfigText(text, `config ${file}`);
      if (options.applyOverrides !== undefined) config = options.applyOverrides(config);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      lastText = text; // report a given bad text once, not on every poll
      options.onResult?.('failure');
      log.error({ file, error: err.message }, 'config reload rejected; the previous config stays in force');
      return false;
    }
    lastText = text;
    const restart = RESTART_ONLY.filter((key) => JSON.stringify(lastConfig[key]) !== JSON.stringify(config[key]));
    if (restart.length > 0) log.warn({ fields: restart }, 'config fields changed that take effect only after a restart');
    lastConfig = config;
    options.onChange(config, text);
    options.onResult?.('success');
    log.info({ file }, 'config reloaded');
    return true;
  }

  const reload = (): Promise<boolean> => {
    // Serialised: two overlapping reads could apply an older text after a newer one.
    running = (running ?? Promise.resolve(false)).then(load, load);
    return running;
  };
  const schedule = (): void => {
    clearTimeout(timer);
    timer = setTimeout(() => void reload(), options.debounceMs ?? 250);
  };
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(dirname(file), schedule);
    watcher.on('error', (err) => log.warn({ err: err.message }, 'config directory watch failed; the periodic reload remains'));
  } catch (err) {
    log.warn({ err: (err as Error).message }, 'cannot watch the config directory; the periodic reload remains');
  }
  const poll = setInterval(() => void reload(), options.pollMs ?? 60_000);
  poll.unref();
  return {
    reload,
    stop() {
      clearTimeout(timer);
      clearInterval(poll);
      watcher?.close();
    },
  };
}
