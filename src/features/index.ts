import { agent } from './agent.js';
import { apparmor } from './apparmor.js';
import type { Feature } from './feature.js';
import { fuse } from './fuse.js';
import { lxcfs } from './lxcfs.js';

/**
 * Every feature, in the order the pipeline applies them. The order matters where features share a field:
 * - agent before fuse: the agent replaces `capabilities.add` with exactly its computed set (and counts FUSE's
 *   SYS_ADMIN in it when fuse is enabled); fuse then only adds SYS_ADMIN, which is already there, so neither undoes
 *   the other and a re-run removes nothing.
 * - apparmor before fuse: an explicit `podvisor.io/apparmor` wins over FUSE's default profile. FUSE writes its
 *   default only for containers that have no profile yet, and warns when the one they have is RuntimeDefault.
 * - lxcfs touches only volumes and mounts, so its place is free; first keeps its patch positions stable.
 */
export const FEATURES: readonly Feature[] = [lxcfs, agent, apparmor, fuse];
