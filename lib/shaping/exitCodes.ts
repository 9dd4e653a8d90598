/** Exit codes of the LibreQoS command (documented in README.md). */
export const EXIT = {
  ok: 0,
  invalidInput: 1,
  config: 2,
  plan: 3,
  apply: 4,
  locked: 5,
  lqosdDown: 6,
  /** Refused: more than [safety] max_removed_percent of the shaped circuits would go (./massRemoval.ts). */
  massRemoval: 7,
  /** A file could not be written (disk full, I/O error): the files in place are unchanged (lib/util/atomicFile.ts). */
  write: 8,
  /** An unexpected failure (a bug): the log line `unexpected failure: …` has the stack (sysexits EX_SOFTWARE). */
  unexpected: 70,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];
