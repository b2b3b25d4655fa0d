/**
 * Kubernetes timestamps as milliseconds. Objects from client-node list calls carry `Date` instances (its
 * deserializer converts `date-time` fields), watch events carry the raw RFC 3339 strings: accept both.
 */
export function timestampMillis(value: string | Date | undefined | null): number | undefined {
  if (value === undefined || value === null) return undefined;
  const ms = value instanceof Date ? value.getTime() : Date.parse(value);
  return Number.isNaN(ms) ? undefined : ms;
}
