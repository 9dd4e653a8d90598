/**
 * What lqosd hands its parts: the web server's context (lib/web/context.ts) plus the bus path and
 * a way to shape the configured files once. ./daemon.ts builds the concrete object.
 */
import type { ShapingStatus } from '../api/status.ts';
import type { ShapingOutcome } from '../shaping/service.ts';
import type { WebContext } from '../web/context.ts';

export type { ShapingStatus };

export interface DaemonContext extends WebContext {
  /** Path of the bus socket lqosd listens on. */
  busPath: string;
  /** Shapes the configured input files once (as bus `refresh`); rejects with `busy` while another run goes. */
  refresh(): Promise<ShapingOutcome>;
}
