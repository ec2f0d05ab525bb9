// Go's fmt "%0.Nf" for kube-proxy's `--probability` text. Go rounds the exact binary value half
// to even; Number#toFixed rounds exact ties up (1/2048 → Go "0.0004882812", toFixed "…813").

/** Go's strconv formatting of `x` with `digits` decimals (digits ≥ 1, x finite). */
export function formatGoFixed(x: number, digits: number): string {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  const raw = view.getBigUint64(0);
  const negative = raw >> 63n === 1n;
  const expBits = Number((raw >> 52n) & 0x7ffn);
  let mantissa = raw & ((1n << 52n) - 1n);
  let exp = -1074;
  if (expBits !== 0) {
    mantissa |= 1n << 52n;
    exp = expBits - 1075;
  }
  // x * 10^digits = num / den exactly.
  let num = mantissa * 10n ** BigInt(digits);
  let den = 1n;
  if (exp >= 0) num <<= BigInt(exp);
  else den <<= BigInt(-exp);
  let q = num / den;
  const twice = 2n * (num % den);
  if (twice > den || (twice === den && (q & 1n) === 1n)) q += 1n;
  const s = q.toString().padStart(digits + 1, '0');
  return `${negative ? '-' : ''}${s.slice(0, -digits)}.${s.slice(-digits)}`;
}

/** kube-proxy's computeProbability(n): `%0.10f` of 1/n. */
export function probability(n: number): string {
  return formatGoFixed(1 / n, 10);
}
