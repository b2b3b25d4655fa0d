/**
 * The one-line explanation of a start-up failure of `podvisor serve` the user can fix (a port in use, a port below
 * 1024 without privileges, an address the host does not have, an unreadable certificate or config file); undefined
 * for anything else, which is a bug and keeps its stack.
 */
export function listenFailure(err: unknown): string | undefined {
  const e = err as NodeJS.ErrnoException & { address?: string; port?: number; path?: string };
  const where = e.address !== undefined ? `${e.address}:${e.port ?? ''}` : undefined;
  switch (e.code) {
    case 'EADDRINUSE':
      return `cannot listen on ${where ?? 'the configured address'}: address already in use (choose another with --port / --ops-port)`;
    case 'EACCES':
      return where !== undefined ? `cannot listen on ${where}: permission denied (ports below 1024 need privileges)` : `${e.path ?? 'a file'}: permission denied`;
    case 'EADDRNOTAVAIL':
      return `cannot listen on ${where ?? 'the configured address'}: address not available on this host (server.address)`;
    case 'ENOENT':
      return `${e.path ?? 'a file'}: no such file or directory`;
    case 'EISDIR':
      return `${e.path ?? 'a file'}: is a directory, expected a file`;
    default:
      return undefined;
  }
}
