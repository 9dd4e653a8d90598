/** Where the tests find the repository. */
import { resolve } from 'node:path';

/** The repository root (the directory holding LibreQoS, lqosd, lib/, test/). */
export const repoRoot = resolve(import.meta.dirname, '../..');
