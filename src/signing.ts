import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * What the signature checks share. Comparisons are constant-time, so a
 * forger cannot learn a valid signature byte by byte from response times;
 * lengths are not secret (every valid signature of a scheme has the same).
 */
export function safeEqual(expected: string, actual: string): boolean {
  const a = Buffer.from(expected, 'utf8');
  const b = Buffer.from(actual, 'utf8');
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Hex HMAC-SHA256 of the raw body: the body is signed as sent, never re-serialized. */
export function hmacSha256Hex(secret: string, body: string | Buffer): string {
  return createHmac('sha256', secret).update(body).digest('hex');
}
