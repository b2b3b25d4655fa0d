#!/usr/bin/env node
import { readFile } from 'node:fs/promises';
import { Command, InvalidArgumentError } from 'commander';
import { ConfigError, loadConfig } from './config/load.js';
import type { Config } from './config/schema.js';
import { injectManifests, ManifestError } from './cli/inject.js';
import { checkManifests, renderVerdicts } from './cli/check.js';
import { createLogger } from './observability/logger.js';
import { findKubeConfig } from './k8s/kubeconfig.js';
import { startServer } from './server/serve.js';
import { parseWebhookUrl } from './k8s/webhook-configurations.js';

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

async function readInput(file: string): Promise<string> {
  if (file !== '-') return readFile(file, 'utf8');
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Errors the user can fix get one clear line and exit code 1; anything else is a bug and keeps its stack. */
async function run(action: () => Promise<void>): Promise<void> {
  try {
    await action();
  } catch (err) {
    if (err instanceof ConfigError || err instanceof ManifestError || (err as NodeJS.ErrnoException).code === 'ENOENT') {
      process.stderr.write(`podvisor: ${(err as Error).message}\n`);
      process.exitCode = 1;
      return;
    }
    throw err;
  }
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
  .showHelpAfterError();

program
  .command('serve', { isDefault: true })
  .description('serve POST /mutate and POST /validate over HTTPS, health and metrics over HTTP')
  .option('-c, --config <file>', 'YAML config file (default: the embedded defaults)')
  .option('--tls-cert <file>', 'serving certificate (PEM); without it one is generated into the cert dir')
  .option('--tls-key <file>', 'serving key (PEM)')
  .option('--cert-dir <dir>', 'where generated certificates are written and reused')
  .option('--port <port>', 'HTTPS port for /mutate', portOption)
  .option('--ops-port <port>', 'HTTP port for /healthz, /readyz, /metrics', portOption)
  .option('--kubeconfig <file>', 'talk to this cluster (default: $KUBECONFIG, else the in-cluster service account, else none: offline)')
  .option('--register', 'create/update the webhook configurations and their caBundle (default: on in-cluster, off otherwise)')
  .option('--no-register', 'never write the webhook configurations (they are managed elsewhere)')
  .option('--webhook-url <url>', 'dev mode: register https://HOST:PORT (this process, outside the cluster) instead of the Service; implies --register', webhookUrlOption)
  .option('--lxcfs-recovery', 'evict pods whose LXCFS mounts died with an lxcfs restart (leader-elected; off by default)')
  .action((options: ServeOptions) =>
    run(async () => {
      const config = applyServeFlags(await loadConfig(options.config), options);
      const log = createLogger(config.logLevel);
      const cluster = findKubeConfig(options.kubeconfig);
      if (options.webhookUrl !== undefined && cluster === undefined) throw new ConfigError('--webhook-url needs a cluster to register in: give --kubeconfig (or set KUBECONFIG)');
      if (options.webhookUrl !== undefined && options.register === false) throw new ConfigError('--webhook-url registers the webhook configurations: it cannot be combined with --no-register');
      if (cluster !== undefined) log.info({ origin: cluster.origin, server: cluster.kubeConfig.getCurrentCluster()?.server }, 'kubernetes API configured');
      const server = await startServer(config, log, {
        kubeConfig: cluster?.kubeConfig,
        // Registering points the cluster's admission at this Service: only by default when running inside it.
        register: options.register ?? (options.webhookUrl !== undefined || cluster?.origin === 'in-cluster'),
        webhookUrl: options.webhookUrl,
        configFile: options.config,
        applyOverrides: (reloaded) => applyServeFlags(reloaded, options),
      });
      for (const signal of ['SIGTERM', 'SIGINT'] as const) {
        process.once(signal, () => void server.shutdown(signal).then(() => process.exit(0)));
      }
    }),
  );

program
  .command('inject')
  .description('mutate manifests offline with the same code as the webhook: YAML in, YAML out')
  .requiredOption('-f, --filename <file>', 'manifest file, or - for standard input')
  .option('-c, --config <file>', 'YAML config file (default: the embedded defaults)')
  .option('-n, --namespace <ns>', 'namespace for objects that name none', 'default')
  .action((options: { filename: string; config?: string; namespace: string }) =>
    run(async () => {
      const config = await loadConfig(options.config);
      const text = await readInput(options.filename);
      const result = injectManifests(text, options.filename === '-' ? '<stdin>' : options.filename, config, options.namespace);
      for (const warning of result.warnings) process.stderr.write(`warning: ${warning}\n`);
      process.stdout.write(result.yaml);
    }),
  );

program
  .command('check')
  .description('evaluate manifests against the policy with the same code as POST /validate; exit 1 if any would be denied')
  .requiredOption('-f, --filename <file>', 'manifest file, or - for standard input')
  .option('-c, --config <file>', 'YAML config file with the policy (default: the embedded defaults)')
  .option('-n, --namespace <ns>', 'namespace for objects that name none', 'default')
  .option('-u, --user <name>', 'requesting username (for exemptions)')
  .option('-g, --group <group>', 'requesting group (for exemptions); repeatable', (g: string, all: string[]) => [...all, g], [] as string[])
  .option('--mutated', 'evaluate each object after podvisor\'s own injection, as the validating webhook sees it')
  .action((options: { filename: string; config?: string; namespace: string; user?: string; group: string[]; mutated?: boolean }) =>
    run(async () => {
      const config = await loadConfig(options.config);
      const text = await readInput(options.filename);
      const verdicts = checkManifests(text, options.filename === '-' ? '<stdin>' : options.filename, config, {
        namespace: options.namespace,
        username: options.user,
        groups: options.group,
        mutated: options.mutated,
      });
      const { text: report, denied } = renderVerdicts(verdicts);
      process.stdout.write(report);
      if (denied > 0) process.exitCode = 1;
    }),
  );

await program.parseAsync(process.argv);
