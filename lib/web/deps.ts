/** What every route plugin of the web server is handed (built once in ./server.ts). */
import type { ShapingMetrics } from '../telemetry/metrics.ts';
import type { ChannelHub, ChannelRegistry } from './channels.ts';
import type { WebContext } from './context.ts';
import type { LoginLimiter, SessionStore, VerifyGate } from './sessions.ts';
import type { SetupToken } from './setupToken.ts';
import type { UserStore } from './users.ts';

export interface WebDeps {
  ctx: WebContext;
  users: UserStore;
  usersFile: string;
  sessions: SessionStore;
  limiter: LoginLimiter;
  /** Caps concurrent password verifications. */
  gate: VerifyGate;
  /** The first-run setup token (`<state_directory>/first-run.token`). */
  setupToken: SetupToken;
  channels: ChannelRegistry;
  hub: ChannelHub;
  metrics: ShapingMetrics;
  /** Runs writes of the config and input files one after another. */
  serialized<T>(fn: () => Promise<T> | T): Promise<T>;
}

/** Route parameter `:id` (urgent issues, circuits). */
export const idParams = { type: 'object', required: ['id'], properties: { id: { type: 'string', minLength: 1, maxLength: 256 } } };
