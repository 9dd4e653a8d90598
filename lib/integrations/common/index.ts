/** The shared integration toolkit. See lib/integrations/README.md. */
export * from './errors.ts';
export * from './log.ts';
export * from './http.ts';
export * from './ip.ts';
export * from './rates.ts';
export * from './graphModel.ts';
export * from './graph.ts';
export * from './graphql.ts';
export * from './options.ts';
export * from './output.ts';
export * from './payload.ts';
export * from './run.ts';
