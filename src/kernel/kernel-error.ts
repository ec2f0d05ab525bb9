import { constants } from 'node:os';

const NAMES = new Map<number, string>();
for (const [name, value] of Object.entries(constants.errno)) {
  if (!NAMES.has(value)) NAMES.set(value, name);
}
// Kernel-internal codes that leak through bpf(2) and are not in userspace errno.h.
NAMES.set(524, 'ENOTSUPP');

/** Symbolic name for a positive errno ('ENOENT'), or 'E<n>' when unknown. */
export function errnoCode(errno: number): string {
  return NAMES.get(errno) ?? `E${errno}`;
}

/** A kernel or libbpf call that returned -errno. `target` is the caller's label (map name,
 * pin path, interface); `detail` is what libbpf logged during the call, if anything. */
export class KernelError extends Error {
  readonly op: string;
  readonly target: string;
  readonly errno: number;
  readonly code: string;
  readonly detail: string | null;

  constructor(op: string, target: string, errno: number, detail: string | null = null) {
    const code = errnoCode(errno);
    super(`${op}(${target}): ${code} (errno ${errno})${detail ? `\n${detail}` : ''}`);
    this.name = 'KernelError';
    this.op = op;
    this.target = target;
    this.errno = errno;
    this.code = code;
    this.detail = detail;
  }
}
