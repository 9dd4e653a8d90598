// scripts/build's esbuild step (the JavaScript API, for the plugin below): node scripts/bundle.mjs OUTDIR
//
// Bundled in: the ES-module libraries of schemas, TOML and CSV that a run loads. From node_modules they
// cost a module resolution and load per file (zod alone is ~100 files: 55–60 ms of a run's start;
// bundled 30–40 ms). Every other dependency stays external: native addons, CommonJS packages (a
// bundle of them would need require() in every module), pino's worker transports, the web server's
// plugins.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import * as esbuild from 'esbuild';

const outdir = process.argv[2];
if (!outdir) {
  console.error('usage: node scripts/bundle.mjs OUTDIR');
  process.exit(64);
}
const BUNDLED = new Set(['zod', 'smol-toml', 'csv-parse', 'csv-stringify']);
const deps = Object.keys(JSON.parse(readFileSync('package.json', 'utf8')).dependencies);
const external = deps.filter((d) => !BUNDLED.has(d)).flatMap((d) => [d, `${d}/*`]);

/**
 * zod's `z.locales` namespace re-exports the messages of ~50 languages: 370 kB, half of the bundled
 * zod, parsed by every command that validates anything (~18 ms of each start). lqos-ts only uses
 * the English messages, which zod registers itself (classic/schemas.js imports locales/en.js
 * directly), so the namespace is built with `en` alone.
 */
const zodEnglishOnly = {
  name: 'zod-english-only',
  setup(build) {
    build.onResolve({ filter: /^\.\.\/locales\/index\.js$/ }, (args) =>
      args.importer.includes('/node_modules/zod/') ? { path: join(dirname(args.importer), '../locales/index.js'), namespace: 'zod-english-only' } : undefined,
    );
    build.onLoad({ filter: /.*/, namespace: 'zod-english-only' }, (args) => ({
      contents: `export { default as en } from ${JSON.stringify(join(dirname(args.path), 'en.js'))};\n`,
      resolveDir: dirname(args.path),
    }));
  },
};

await esbuild.build({
  entryPoints: ['LibreQoS', 'lqosd', 'scheduler', 'integration', 'lqusers', 'lqtop', 'supportBundle'].map((n) => `bin/${n}.ts`),
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external,
  plugins: [zodEnglishOnly],
  sourcemap: true,
  sourcesContent: false,
  outdir,
  outExtension: { '.js': '.mjs' },
  logLevel: 'warning',
});
