import type { Container, ContainerPort, PodSpec, Volume } from 'kubernetes-types/core/v1.js';
import { isRecord } from '../json-value.js';

/**
 * The apiserver defaults every object before admission (k8s.io/kubernetes pkg/apis/core/v1/defaults.go), so the
 * webhook judges defaulted objects; `podvisor check` reads manifests as written. These are the defaults that change
 * a Pod Security verdict, applied the same way on every path: a no-op on an object that came through the apiserver.
 * - SetDefaults_Volume: a volume with no source becomes `emptyDir: {}` (allowed at restricted; no source is not).
 * - SetDefaults_Pod: on a hostNetwork Pod, a port without hostPort gets hostPort = containerPort (hostPorts check).
 *   Not on pod templates: the DefaultHostNetworkHostPortsInPodTemplates gate is off since v1.28.
 * Copy on write: the spec is returned as it is when nothing is defaulted.
 */
export function withApiDefaults(spec: PodSpec, isPod: boolean): PodSpec {
  let out = spec;
  const volumes = spec.volumes;
  if (Array.isArray(volumes) && volumes.some(hasNoSource)) {
    out = { ...out, volumes: volumes.map((v) => (hasNoSource(v) ? { ...v, emptyDir: {} } : v)) };
  }
  if (isPod && spec.hostNetwork === true) {
    for (const list of ['containers', 'initContainers'] as const) {
      const containers = out[list];
      if (Array.isArray(containers) && containers.some((c) => portsOf(c).some(needsHostPort))) {
        out = { ...out, [list]: containers.map((c) => (portsOf(c).some(needsHostPort) ? { ...c, ports: portsOf(c).map(withHostPort) } : c)) };
      }
    }
  }
  return out;
}

/** util.AllPtrFieldsNil(&VolumeSource): no key but `name` holds a value. */
function hasNoSource(volume: Volume): boolean {
  return isRecord(volume) && Object.entries(volume).every(([key, value]) => key === 'name' || value === undefined || value === null);
}

function portsOf(container: Container): ContainerPort[] {
  return isRecord(container) && Array.isArray(container.ports) ? container.ports : [];
}

function needsHostPort(port: ContainerPort): boolean {
  return isRecord(port) && (port.hostPort === undefined || port.hostPort === null || port.hostPort === 0) && typeof port.containerPort === 'number';
}

function withHostPort(port: ContainerPort): ContainerPort {
  return needsHostPort(port) ? { ...port, hostPort: port.containerPort } : port;
}
