import type { Feature } from './feature.js';
import { lxcfs } from './lxcfs.js';

/** Every feature, in the order the pipeline applies them. */
export const FEATURES: readonly Feature[] = [lxcfs];
