import { readFileSync } from 'node:fs';

/**
 * podvisor's release, read from the package.json next to `src/` or `dist/` (the image ships it at /app/package.json,
 * where it also carries `"type": "module"`). One source for `podvisor --version`, the `podvisor_build_info` gauge and
 * the ready log line.
 */
export const VERSION: string = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
