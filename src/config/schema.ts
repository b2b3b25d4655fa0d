import { z } from 'zod';
import { agentSettingProblem, CAPABILITY_MODELS } from '../features/agent-profiles.js';
import { apparmor, parseAppArmorValue } from '../features/apparmor.js';
import { policyConfigSchema } from '../policy/schema.js';

/**
 * LXCFS files podvisor may mount. Everything under /proc must be on runc's /proc overmount allowlist
 * (libcontainer/rootfs_linux.go checkProcMount), or the container fails to start; /proc/pressure/* is on no
 * runc version's list, so it is not offered at all (lxcfs.md §3).
 */
export const LXCFS_FILES = [
  '/proc/cpuinfo',
  '/proc/meminfo',
  '/proc/stat',
  '/proc/diskstats',
  '/proc/swaps',
  '/proc/uptime',
  '/proc/loadavg',
  '/proc/slabinfo',
  '/sys/devices/system/cpu/online',
  '/sys/devices/system/cpu',
] as const;
export type LxcfsFile = (typeof LXCFS_FILES)[number];

export const DEFAULT_LXCFS_FILES: readonly LxcfsFile[] = [
  '/proc/cpuinfo',
  '/proc/meminfo',
  '/proc/stat',
  '/proc/diskstats',
  '/proc/swaps',
  '/proc/uptime',
  '/proc/loadavg',
  '/sys/devices/system/cpu/online',
];

/**
 * Where lxcfs serves its files on every node: the mount root of the lxcfs DaemonSet (deploy/components/lxcfs,
 * `LXCFS_ROOT`), one level below the /var/lib/lxc directory it mounts so that it can clear a dead FUSE mount
 * (lxcfs.md §7). Offline rendering (`podvisor inject`) and the webhook use it unless `lxcfs.hostRoot` says otherwise.
 */
export const DEFAULT_LXCFS_HOST_ROOT = '/var/lib/lxc/lxcfs';

const lxcfsFile = z.enum(LXCFS_FILES, {
  error: (issue) =>
    String(issue.input).startsWith('/proc/pressure')
      ? `unsupported LXCFS file "${String(issue.input)}": runc refuses every mount under /proc/pressure, so pods could not start`
      : `unsupported LXCFS file ${JSON.stringify(issue.input)}: expected one of ${LXCFS_FILES.join(', ')}`,
});

const dns1123Label = z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'must be a DNS-1123 label').max(63);
/** 0 asks the OS for a free port (tests, and running several instances on one host). */
const port = z.number().int().min(0).max(65535);

/** Per-feature settings, used for the cluster default and for namespace defaults. */
export const featureDefaults = z.strictObject({
  lxcfs: z.boolean().optional(),
  fuse: z.boolean().optional(),
  /** Same values as `podvisor.io/apparmor`. */
  apparmor: z
    .string()
    .refine((v) => apparmor.parse(v).kind !== 'invalid', { message: 'expected runtime/default, localhost/<profile>, unconfined or false' })
    .optional(),
  /** Same values as `podvisor.io/agent`, but every feature name must be known. */
  agent: z
    .string()
    .superRefine((v, ctx) => {
      const problem = agentSettingProblem(v);
      if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
    })
    .optional(),
});
export type FeatureDefaults = z.infer<typeof featureDefaults>;

export const configSchema = z.strictObject({
  /** podvisor's own namespace and Service: certificate SANs, and always excluded from mutation. */
  namespace: dns1123Label.default('podvisor-system'),
  service: dns1123Label.default('podvisor'),
  logLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
  server: z
    .strictObject({
      address: z.string().min(1).default('0.0.0.0'),
      port: port.default(8443),
      opsAddress: z.string().min(1).default('0.0.0.0'),
      opsPort: port.default(8080),
      /**
       * One review body; larger is a 413. The apiserver accepts request bodies up to 3 MiB (MaxRequestBodyBytes): a
       * review of an object that size is 3 MiB plus the envelope. An UPDATE review carries object and oldObject as
       * well: raise this for objects over ~1.5 MiB (etcd's default request limit). Memory is bounded by the
       * in-flight limits below, not by this one.
       */
      bodyLimitBytes: z.number().int().min(64 * 1024).default(4 * 1024 * 1024),
      /** Open connections; past this new ones are closed at once (docs/network-hardening.md). */
      maxConnections: z.number().int().min(16).default(512),
      /** Bodies being received at once, and the bytes they may hold together (declared lengths); past either the oldest is shed. */
      maxInFlightBodies: z.number().int().min(4).default(64),
      maxInFlightBodyBytes: z.number().int().min(4 * 1024 * 1024).default(48 * 1024 * 1024),
      /** Time to send the headers (and finish the TLS handshake), and the whole request: well below the webhook timeout. */
      headersTimeoutMs: z.number().int().min(100).default(2_000),
      bodyTimeoutMs: z.number().int().min(100).default(3_000),
      /** Above client-go's 90 s idle timeout, so the server never closes a connection the apiserver reuses. */
      keepAliveTimeoutMs: z.number().int().min(91_000).default(100_000),
      /** On SIGTERM: report not-ready, keep serving this long, then close. */
      drainSeconds: z.number().min(0).max(120).default(5),
    })
    .prefault({}),
  tls: z
    .strictObject({
      certFile: z.string().min(1).optional(),
      keyFile: z.string().min(1).optional(),
      /** Where generated certificates are written and reused from. */
      certDir: z.string().min(1).default('certs'),
    })
    .prefault({})
    .refine((t) => (t.certFile === undefined) === (t.keyFile === undefined), {
      message: 'certFile and keyFile must be given together',
    }),
  /** Never mutated; podvisor's own namespace is added to this list. */
  excludedNamespaces: z.array(dns1123Label).default(['kube-system', 'kube-public', 'kube-node-lease']),
  /** Cluster-wide defaults, below namespace defaults and explicit object annotations. */
  defaults: featureDefaults.prefault({}),
  /**
   * Per namespace: feature defaults, and labels that apply as if the namespace carried them (for offline use and the
   * CLI; in a cluster the live labels from the namespace cache win).
   */
  namespaces: z.record(dns1123Label, featureDefaults.extend({ labels: z.record(z.string(), z.string()).optional() })).default({}),
  lxcfs: z
    .strictObject({
      hostRoot: z
        .string()
        .regex(/^\/[^\0]*$/, 'must be an absolute path')
        .refine((p) => !p.split('/').includes('..'), 'must not contain ".."')
        .default(DEFAULT_LXCFS_HOST_ROOT),
      files: z.array(lxcfsFile).min(1).default([...DEFAULT_LXCFS_FILES]),
    })
    .prefault({})
    .refine((l) => !(l.files.includes('/sys/devices/system/cpu') && l.files.includes('/sys/devices/system/cpu/online')), {
      message: 'mount either /sys/devices/system/cpu or /sys/devices/system/cpu/online, never both',
      path: ['files'],
    })
    .refine((l) => new Set(l.files).size === l.files.length, { message: 'duplicate file', path: ['files'] }),
  /**
   * The target apiserver's version, "1.<minor>". It selects the AppArmor form: the `appArmorProfile` field from 1.30,
   * the `container.apparmor.security.beta.kubernetes.io/<container>` annotation before (kubernetes-rules.md §6).
   */
  kubernetesVersion: z
    .string()
    .regex(/^v?1\.\d+(\.\d+)?$/, 'expected a Kubernetes version like "1.32"')
    .default('1.32'),
  fuse: z
    .strictObject({
      /** The device plugin's extended resource for /dev/fuse (smarter-devices/fuse, squat.ai/fuse, github.com/fuse, ...). */
      resourceName: z
        .string()
        .regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?\/[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/, 'expected an extended resource name like smarter-devices/fuse')
        .refine((r) => !/(^|\.)kubernetes\.io\//.test(r), 'the kubernetes.io domain is reserved, not an extended resource')
        .default('smarter-devices/fuse'),
      /** The AppArmor profile given to FUSE containers whose owner set none; it must allow `mount fstype=fuse*`. */
      appArmorProfile: z
        .string()
        .refine((v) => parseAppArmorValue(v) !== undefined, 'expected runtime/default, localhost/<profile> or unconfined')
        .default('localhost/podvisor-fuse'),
    })
    .prefault({}),
  agent: z
    .strictObject({
      /** modern: BPF + PERFMON (kernel ≥ 5.8, runc ≥ 1.0.0-rc93, containerd ≥ 1.6.9); legacy: SYS_ADMIN based. */
      capabilityModel: z.enum(CAPABILITY_MODELS).default('modern'),
      /** BPF memory is charged to RLIMIT_MEMLOCK (kernels < 5.11), so eBPF features get SYS_RESOURCE. false: all nodes ≥ 5.11. */
      bpfMemlock: z.boolean().default(true),
    })
    .prefault({}),
  /** Pod Security levels, agent allowances and the privileged-agent rule (src/policy/schema.ts). */
  policy: policyConfigSchema,
  /** Self-registration (`podvisor serve --register`): settings of the webhook configurations (kubernetes-rules.md §2). */
  webhook: z
    .strictObject({
      /** The apiserver allows 1–30 s; ≤ 5 s for the mutating webhook keeps pod creation fast when podvisor is slow. */
      timeoutSeconds: z.number().int().min(1).max(30).default(5),
      failurePolicy: z
        .strictObject({
          /** Ignore: an unreachable podvisor never blocks pod creation (the pod just runs without injection). */
          mutating: z.enum(['Ignore', 'Fail']).default('Ignore'),
          /** Fail: the policy cannot be bypassed by making podvisor unreachable. */
          validating: z.enum(['Ignore', 'Fail']).default('Fail'),
        })
        .prefault({}),
    })
    .prefault({}),
  /** Certificates podvisor generates into the shared Secret (anchors.md §4: CA 10 years, serving 1 year). */
  certificates: z
    .strictObject({
      caDays: z.number().int().min(2).default(3650),
      /** A new CA is introduced this long before the current one expires (longer than a serving certificate's life). */
      caRenewBeforeDays: z.number().int().min(1).default(400),
      leafDays: z.number().int().min(1).default(365),
      leafRenewBeforeDays: z.number().int().min(1).default(30),
      /** How often every replica re-reads the Secret and checks expiry. */
      checkIntervalSeconds: z.number().int().min(1).default(60),
    })
    .prefault({})
    .refine((c) => c.leafRenewBeforeDays < c.leafDays, { message: 'leafRenewBeforeDays must be less than leafDays', path: ['leafRenewBeforeDays'] })
    .refine((c) => c.caRenewBeforeDays < c.caDays, { message: 'caRenewBeforeDays must be less than caDays', path: ['caRenewBeforeDays'] }),
  /** lxcfs restart recovery (src/recovery/): evicts pods whose LXCFS mounts died with lxcfs. Off by default. */
  lxcfsRecovery: z
    .strictObject({
      /** Also `serve --lxcfs-recovery`. */
      enabled: z.boolean().default(false),
      /** Evictions per minute across the cluster, and how many may go at once. */
      evictionsPerMinute: z.number().positive().max(6000).default(10),
      evictionBurst: z.number().int().min(1).max(100).default(2),
      /** Label selector of the lxcfs DaemonSet's pods in podvisor's namespace (deploy/components/lxcfs). */
      lxcfsSelector: z.string().regex(/^[A-Za-z0-9./_-]+=[A-Za-z0-9._-]*$/, 'must be key=value').default('app.kubernetes.io/name=lxcfs'),
    })
    .prefault({}),
});

export type Config = z.infer<typeof configSchema>;
