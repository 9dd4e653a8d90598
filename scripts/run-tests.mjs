// scripts/run-tests' runner: node:test's run() on the files in the order given (the `node --test`
// command line sorts them, which would interleave the files that run alone with the shared ones),
// two at a time, with the spec reporter and node --test's exit status (1 when anything failed).
// Started as `node --import tsx --import ./test/support/gate.ts scripts/run-tests.mjs FILE...`: the
// test files' processes get the same --import flags.
import { run } from 'node:test';
import { spec } from 'node:test/reporters';

const files = process.argv.slice(2);
const stream = run({ files, concurrency: 2 });
stream.on('test:fail', () => {
  process.exitCode = 1;
});
stream.compose(new spec()).pipe(process.stdout);
