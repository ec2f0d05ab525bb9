// Retry delays: exponential from baseMs, capped at maxMs, with "equal jitter" (half fixed, half
// random) so that every node's proxy does not hit a recovering API server in the same instant.
export interface BackoffOptions {
  readonly baseMs: number;
  readonly maxMs: number;
}

/** Delay before retry number `attempt` (1 = first retry); `random` in [0, 1). */
export function backoffDelay(attempt: number, opts: BackoffOptions, random: number): number {
  const ceiling = Math.min(opts.maxMs, opts.baseMs * 2 ** Math.max(0, attempt - 1));
  return ceiling / 2 + (ceiling / 2) * random;
}
