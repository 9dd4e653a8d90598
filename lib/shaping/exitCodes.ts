/** Exit codes of the LibreQoS command (documented in README.md). */
export const EXIT = {
  ok: 0,
  invalidInput: 1,
  config: 2,
  plan: 3,
  apply: 4,
  locked: 5,
  lqosdDown: 6,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];
