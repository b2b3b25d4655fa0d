#!/usr/bin/env node
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { stringify } from 'yaml';
import { ConfigError, loadConfig } from './config/load.js';
import type { Config } from './config/schema.js';
import { checkManifests, countDenied, renderVerdicts, verdictsJson } from './cli/check.js';
import { injectManifests, renderInjectSummary } from './cli/inject.js';
import { ManifestError, parseManifests, readManifestSources, type ManifestDocument } from './cli/manifests.js';
import { listenFailure } from './cli/listen-failure.js';
import { createLogger } from './observability/logger.js';
import { findKubeConfig } from './k8s/kubeconfig.js';
import { startServer } from './server/serve.js';
import { VERSION } from './version.js';
import { parseWebhookUrl } from './k8s/webhook-configurations.js';

/**
 * Exit codes, as kubectl-style tools use them: 0 done, 1 an object would be denied (check, inject), 2 the command
 * could not do its job (usage, unreadable input, bad config, a port in use). Errors are one line without a stack;
 * only an unexpected error (a bug) keeps its stack.
 */
const EXIT = { denied: 1, failed: 2 } as const;

function webhookUrlOption(value: string): URL {
  try {
    return parseWebhookUrl(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

function portOption(value: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new InvalidArgumentError('expected a port number (0-65535)');
  return port;
}

const repeatable = (value: string, all: string[]) => [...all, value];

interface InputOptions {
  filename: string[];
  recursive?: boolean;
  config?: string;
  namespace: string;
}

async function readInput(options: InputOptions): Promise<{ config: Config; documents: ManifestDocument[] }> {
  if (options.filename.length === 0) throw new ManifestError("no input: give -f FILE, -f DIR or -f - (standard input)");
  const config = await loadConfig(options.config);
  const documents = parseManifests(await readManifestSources(options.filename, options.recursive === true), options.namespace);
  return { config, documents };
}

function fail(message: string): void {
  process.stderr.write(`podvisor: ${message}\n`);
  process.exitCode = EXIT.failed;
}

interface ServeOptions {
  config?: string;
  tlsCert?: string;
  tlsKey?: string;
  certDir?: string;
  port?: number;
  opsPort?: number;
  lxcfsRecovery?: boolean;
  kubeconfig?: string;
  register?: boolean;
  webhookUrl?: URL;
}

function applyServeFlags(config: Config, options: ServeOptions): Config {
  if ((options.tlsCert === undefined) !== (options.tlsKey === undefined)) throw new ConfigError('--tls-cert and --tls-key must be given together');
  if (options.tlsCert !== undefined) config.tls.certFile = options.tlsCert;
  if (options.tlsKey !== undefined) config.tls.keyFile = options.tlsKey;
  if (options.certDir !== undefined) config.tls.certDir = options.certDir;
  if (options.port !== undefined) config.server.port = options.port;
  if (options.opsPort !== undefined) config.server.opsPort = options.opsPort;
  if (options.lxcfsRecovery === true) config.lxcfsRecovery.enabled = true;
  return config;
}

const program = new Command('podvisor')
  .description('Kubernetes admission webhook: LXCFS, FUSE, AppArmor and minimal-capability injection, and pod security policy')
  .version(`podvisor ${VERSION}`, '-v, --version', 'print the version')
  .exitOverride()
  .showSuggestionAfterError()
  .showHelpAfterError("(run 'podvisor --help' or 'podvisor <command> --help' for usage)");

const inputOptions = (command: Command) =>
  command
    .option('-f, --filename <file>', 'manifest file, directory of manifests, or - for standard input; repeatable', repeatable, [] as string[])
    .option('-R, --recursive', 'read the directories given with -f recursively')
    .option('-c, --config <file>', 'YAML config file (default: the embedded defaults)')
    .option('-n, --namespace <ns>', 'namespace for objects that name none', 'default');

program
  .command('serve')
  .description('serve POST /mutate and POST /validate over HTTPS, health and metrics over HTTP')
  .option('-c, --config <file>', 'YAML config file (default: the embedded defaults)')
  .option('--tls-cert <file>', 'serving certificate (PEM); without it one is generated into the cert dir')
  .option('--tls-key <file>', 'serving key (PEM)')
  .option('--cert-dir <dir>', 'where generated certificates are written and reused')
  .option('--port <port>', 'HTTPS port for /mutate and /validate', portOption)
  .option('--ops-port <port>', 'HTTP port for /healthz, /readyz, /metrics', portOption)
  .option('--kubeconfig <file>', 'talk to this cluster (default: $KUBECONFIG, else the in-cluster service account, else none: offline)')
  .option('--register', 'create/update the webhook configurations and their caBundle (default: on in-cluster, off otherwise)')
  .option('--no-register', 'never write the webhook configurations (they are managed elsewhere)')
  .option('--webhook-url <url>', 'dev mode: register https://HOST:PORT (this process, outside the cluster) instead of the Service; implies --register', webhookUrlOption)
  .option('--lxcfs-recovery', 'evict pods whose LXCFS mounts died with an lxcfs restart (leader-elected; off by default)')
  .action(async (options: ServeOptions) => {
    const config = applyServeFlags(await loadConfig(options.config), options);
    const log = createLogger(config.logLevel);
    const cluster = findKubeConfig(options.kubeconfig);
    if (options.webhookUrl !== undefined && cluster === undefined) throw new ConfigError('--webhook-url needs a cluster to register in: give --kubeconfig (or set KUBECONFIG)');
    if (options.webhookUrl !== undefined && options.register === false) throw new ConfigError('--webhook-url registers the webhook configurations: it cannot be combined with --no-register');
    if (cluster !== undefined) log.info({ origin: cluster.origin, server: cluster.kubeConfig.getCurrentCluster()?.server }, 'kubernetes API configured');
    let server;
    try {
      server = await startServer(config, log, {
        kubeConfig: cluster?.kubeConfig,
        // Registering points the cluster's admission at this Service: only by default when running inside it.
        register: options.register ?? (options.webhookUrl !== undefined || cluster?.origin === 'in-cluster'),
        webhookUrl: options.webhookUrl,
        configFile: options.config,
        applyOverrides: (reloaded) => applyServeFlags(reloaded, options),
      });
    } catch (err) {
      const message = listenFailure(err);
      if (message === undefined) throw err;
      // Whatever had started (the ops listener, watchers) must not keep the process alive.
      fail(message);
      process.exit(EXIT.failed);
    }
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      process.once(signal, () => void server.shutdown(signal).then(() => process.exit(0)));
    }
  });

inputOptions(program.command('inject'))
  .description('mutate manifests offline with the same code as the webhook; a per-object summary goes to stderr')
  .addOption(new Option('-o, --output <format>', 'output format').choices(['yaml', 'json']).default('yaml'))
  .action(async (options: InputOptions & { output: 'yaml' | 'json' }) => {
    const { config, documents } = await readInput(options);
    const result = injectManifests(documents, config);
    process.stderr.write(renderInjectSummary(result.reports));
    if (result.denied > 0) {
      process.exitCode = EXIT.denied;
      return;
    }
    if (options.output === 'json') {
      const single = result.documents.length === 1 ? result.documents[0] : { apiVersion: 'v1', kind: 'List', items: result.documents };
      process.stdout.write(`${JSON.stringify(single, null, 2)}\n`);
    } else process.stdout.write(result.documents.map((o) => stringify(o, { lineWidth: 0 })).join('---\n'));
  });

inputOptions(program.command('check'))
  .description('judge manifests against the policy with the same code as POST /validate, after podvisor\'s own injection; exit 1 if any would be denied')
  .option('-u, --user <name>', 'requesting username (for exemptions)')
  .option('-g, --group <group>', 'requesting group (for exemptions); repeatable', repeatable, [] as string[])
  .option('--no-mutate', 'judge the manifests as written, without podvisor\'s injection')
  .addOption(new Option('-o, --output <format>', 'report format').choices(['text', 'json']).default('text'))
  .action(async (options: InputOptions & { user?: string; group: string[]; mutate: boolean; output: 'text' | 'json' }) => {
    const { config, documents } = await readInput(options);
    const verdicts = checkManifests(documents, config, { username: options.user, groups: options.group, mutate: options.mutate });
    for (const { object, injectionWarnings } of verdicts) {
      for (const warning of injectionWarnings) process.stderr.write(`warning: ${object.kind}/${object.name}: ${warning}\n`);
    }
    process.stdout.write(options.output === 'json' ? `${JSON.stringify(verdictsJson(verdicts), null, 2)}\n` : renderVerdicts(verdicts));
    if (countDenied(verdicts) > 0) process.exitCode = EXIT.denied;
  });

program
  .command('version')
  .description('print the version')
  .action(() => {
    process.stdout.write(`podvisor ${VERSION}\n`);
  });

async function main(argv: readonly string[]): Promise<void> {
  // `podvisor inject ... | head`: a reader that stops early is not an error.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
  // No default command: a bare `podvisor` explains itself instead of starting a server.
  if (argv.length <= 2) {
    process.stdout.write(program.helpInformation());
    return;
  }
  try {
    await program.parseAsync(argv);
  } catch (err) {
    // Commander has already printed its message (and the suggestion); help and --version exit 0.
    if (err instanceof CommanderError) process.exitCode = err.exitCode === 0 ? 0 : EXIT.failed;
    else if (err instanceof ConfigError || err instanceof ManifestError) fail(err.message);
    else throw err;
  }
}

await main(process.argv);
