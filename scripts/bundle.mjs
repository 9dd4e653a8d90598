// scripts/build's esbuild step (the JavaScript API, for the plugin below):
//   node scripts/bundle.mjs OUTDIR [SNAPSHOT_DIR]
// SNAPSHOT_DIR gets LibreQoS.cjs, the one-file bundle scripts/snapshot turns into a start-up snapshot.
//
// Bundled in: the ES-module libraries of schemas, TOML and CSV that a run loads. From node_modules they
// cost a module resolution and load per file (zod alone is ~100 files: 55–60 ms of a run's start;
// bundled 30–40 ms). Every other dependency stays external: native addons, CommonJS packages (a
// bundle of them would need require() in every module), pino's worker transports, the web server's
// plugins.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import * as esbuild from 'esbuild';

const [outdir, snapshotDir] = process.argv.slice(2);
if (!outdir) {
  console.error('usage: node scripts/bundle.mjs OUTDIR [SNAPSHOT_DIR]');
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

/**
 * The start-up snapshot's script (bin/LibreQoS.snapshot.ts): one CommonJS file with every JavaScript
 * dependency in it (node can snapshot a single script only); the native addons stay external.
 * Node's snapshot builder gives the script a `require` that only knows built-in modules, so the
 * banner replaces it with a real one for this file's location (koffi, pino-pretty… load on demand
 * at run time). `import.meta` becomes this file's location: build/snapshot/ is two levels below the
 * root, like lib/util/ and build/bin/ (REPO_ROOT).
 */
if (snapshotDir) {
  const native = ['koffi', 'better-sqlite3', 'argon2'];
  await esbuild.build({
    entryPoints: { LibreQoS: 'bin/LibreQoS.snapshot.ts' },
    bundle: true,
    format: 'cjs',
    platform: 'node',
    target: 'node20',
    external: native.flatMap((d) => [d, `${d}/*`]),
    plugins: [zodEnglishOnly],
    banner: {
      js: "var require = require('node:module').createRequire(__filename);\nvar __import_meta_url = require('node:url').pathToFileURL(__filename).href;",
    },
    define: { 'import.meta.url': '__import_meta_url', 'import.meta.dirname': '__dirname' },
    sourcemap: true,
    sourcesContent: false,
    outdir: snapshotDir,
    outExtension: { '.js': '.cjs' },
    // The script's text stays in the blob (V8 compiles functions lazily from it), and node keeps the
    // blob in memory: without whitespace it is 7.2 MB instead of 9.1 (names kept for stack traces).
    minifyWhitespace: true,
    minifySyntax: true,
    logLevel: 'warning',
  });
}
