// What the health endpoints answer, as plain data: the HTTP edge only writes it out, so the
// bodies and status codes are tested without sockets.

export interface HttpAnswer {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

/** kube-proxy's headers on /healthz, /livez and every healthCheckNodePort answer. */
export const JSON_HEADERS = { 'content-type': 'application/json', 'x-content-type-options': 'nosniff' } as const;

/** Go's time.Time in JSON (RFC 3339, trailing fractional zeros dropped; the zero time for
 *  "never"), so a client parsing kube-proxy's answers parses ours. */
export function goTime(ms: number | null): string {
  if (ms === null) return '0001-01-01T00:00:00Z';
  return new Date(ms).toISOString().replace(/\.?0+Z$/, 'Z');
}
