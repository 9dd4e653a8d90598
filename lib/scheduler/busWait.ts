/**
 * How long the scheduler waits for lqosd's bus at start unless told (--bus-wait,
 * LQOS_SCHEDULER_BUS_WAIT_SECS). Its own module without imports, so `scheduler --help` names it
 * without loading the scheduler (bin/scheduler.ts).
 */
export const DEFAULT_BUS_WAIT_MS = 120_000;
