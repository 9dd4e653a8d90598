/** Where the tests find the repository, and the optional ../shared checkout of upstream's fixtures. */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** The repository root (the directory holding LibreQoS, lqosd, lib/, test/). */
export const repoRoot = resolve(import.meta.dirname, '../..');

/**
 * ../shared: upstream's specs and sample files (reference only). It sits next to the development
 * checkout and is absent from a plain clone; LQOS_TEST_SHARED points elsewhere (a missing
 * directory shows the skips). Tests that need it skip with the reason instead of failing.
 */
export const sharedRoot = resolve(process.env.LQOS_TEST_SHARED || join(repoRoot, '..', 'shared'));

/** upstream's sample inputs and config (../shared/fixtures/upstream). */
export const upstreamFixturesDir = join(sharedRoot, 'fixtures', 'upstream');

export function upstreamFixturePath(name: string): string {
  return join(upstreamFixturesDir, name);
}

/**
 * For a test's `skip` option: false when every named upstream fixture exists, else the reason
 * (`test('…', { skip: needsUpstream('network.example.json') }, …)`).
 */
export function needsUpstream(...names: string[]): false | string {
  const missing = names.map(upstreamFixturePath).filter((p) => !existsSync(p));
  if (missing.length === 0) return false;
  return `needs ../shared (upstream fixtures), absent here: ${missing[0]} not found${missing.length > 1 ? ` (and ${missing.length - 1} more)` : ''}`;
}

/** An upstream fixture's text; the test must be guarded with needsUpstream(name). */
export function readUpstreamFixture(name: string): string {
  const path = upstreamFixturePath(name);
  if (!existsSync(path)) throw new Error(`${path} not found: guard this test with { skip: needsUpstream(${JSON.stringify(name)}) }`);
  return readFileSync(path, 'utf8');
}
