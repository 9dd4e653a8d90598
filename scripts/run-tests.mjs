// scripts/run-tests' runner: node:test's run() on the files, the gate's shared ones first (see
// test/support/gate.ts; the `node --test` command line sorts its files, which would interleave the
// files that run alone with the shared ones), two at a time, with the spec reporter and node --test's
// exit status (1 when anything failed).
// Started as `node --import tsx --import ./test/support/gate.ts scripts/run-tests.mjs FILE...`: the
// test files' processes get the same --import flags.
import { readFileSync } from 'node:fs';
import { run } from 'node:test';
import { spec } from 'node:test/reporters';
import { SHARED_MARKER } from '../test/support/gate.ts';

const shared = [];
const alone = [];
for (const f of process.argv.slice(2)) (SHARED_MARKER.test(readFileSync(f, 'utf8')) ? shared : alone).push(f);
const stream = run({ files: [...shared, ...alone], concurrency: 2 });
stream.on('test:fail', () => {
  process.exitCode = 1;
});
stream.compose(new spec()).pipe(process.stdout);
