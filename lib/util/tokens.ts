/** Comparing a presented secret token (setup token, metrics bearer token) with the expected one. */
import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * Constant-time: both sides are hashed first, so different lengths take the same path. An empty
 * expected token never matches (a token that was never set must not be "guessed" as "").
 */
export function tokenMatches(expected: string, given: string): boolean {
  const a = createHash('sha256').update(expected).digest();
  const b = createHash('sha256').update(given).digest();
  return timingSafeEqual(a, b) && expected.length > 0;
}
