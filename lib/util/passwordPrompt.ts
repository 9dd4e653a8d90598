/**
 * Reading a password in a command: the first line of standard input (scripts), or typed on the
 * terminal without echo (raw mode; Backspace edits, Ctrl-C and Ctrl-D abort).
 */
export interface PasswordSource {
  /** Read the first line of standard input (without its line ending). */
  fromStdin?: boolean;
  /** Ask on the terminal (stderr) with this prompt. */
  prompt?: string;
}

/** Ctrl-C or Ctrl-D at the prompt. */
export class PromptAborted extends Error {}

export function readPassword(src: PasswordSource): Promise<string> {
  return src.fromStdin ? firstStdinLine() : typed(src.prompt ?? 'Password: ');
}

function firstStdinLine(): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const done = () => {
      process.stdin.off('data', onData).off('end', done).off('error', reject);
      process.stdin.pause();
      resolve(text.split(/\r?\n/, 1)[0] ?? '');
    };
    const onData = (chunk: Buffer) => {
      text += chunk.toString('utf8');
      if (text.includes('\n')) done();
    };
    process.stdin.on('data', onData).on('end', done).on('error', reject);
  });
}

function typed(prompt: string): Promise<string> {
  const stdin = process.stdin;
  // Raw (no echo) before the prompt shows: what is typed right after it must not be echoed.
  stdin.setRawMode(true);
  stdin.resume();
  process.stderr.write(prompt);
  return new Promise((resolve, reject) => {
    let pw = '';
    const finish = (err?: Error) => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write('\n');
      if (err) reject(err);
      else resolve(pw);
    };
    const onData = (chunk: Buffer) => {
      for (const ch of chunk.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return finish();
        if (ch === '\u0003' || ch === '\u0004') return finish(new PromptAborted('aborted; nothing was changed'));
        if (ch === '\u007f' || ch === '\b') pw = pw.slice(0, -1);
        else if (ch >= ' ') pw += ch;
      }
    };
    stdin.on('data', onData);
  });
}
