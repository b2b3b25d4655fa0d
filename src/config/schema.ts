import { z } from 'zod';

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
      /** Above the apiserver's 3 MiB request cap: an UPDATE review carries object and oldObject. */
      bodyLimitBytes: z.number().int().min(3 * 1024 * 1024).default(8 * 1024 * 1024),
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
        .default('/var/lib/lxcfs'),
      files: z.array(lxcfsFile).min(1).default([...DEFAULT_LXCFS_FILES]),
    })
    .prefault({})
    .refine((l) => !(l.files.includes('/sys/devices/system/cpu') && l.files.includes('/sys/devices/system/cpu/online')), {
      message: 'mount either /sys/devices/system/cpu or /sys/devices/system/cpu/online, never both',
      path: ['files'],
    })
    .refine((l) => new Set(l.files).size === l.files.length, { message: 'duplicate file', path: ['files'] }),
});

export type Config = z.infer<typeof configSchema>;
