/**
 * The lqosd web API's wire types: what the server sends and the web UI reads (routes and websocket
 * channels). Pure types and a few shared rules; no Node imports, so webui/ can import it.
 */
export type * from './auth.ts';
export { PASSWORD_MAX, PASSWORD_MIN, USERNAME_RE } from './auth.ts';
export type * from './channels.ts';
export type * from './circuit.ts';
export type * from './config.ts';
export type * from './executive.ts';
export type * from './flows.ts';
export type * from './inputs.ts';
export type * from './plan.ts';
export type * from './scheduler.ts';
export type * from './status.ts';
export type * from './telemetry.ts';
export type * from './urgent.ts';
export type * from './reload.ts';
