/** Plain text from program output: what previews, warnings and status messages show. */

/* eslint-disable no-control-regex */
/** CSI (`ESC [ … final`, colours and cursor moves), OSC (`ESC ] … BEL|ESC \`), other ESC sequences, 8-bit CSI. */
const ANSI_RE = /\u001b\[[0-?]*[ -/]*[@-~]|\u001b\][^\u0007\u001b]*(?:\u0007|\u001b\\)|\u001b[@-Z\\-_]|\u009b[0-?]*[ -/]*[@-~]/g;
/** Control characters other than tab and newline (after CR/LF normalisation), and stray ESC. */
const CONTROL_RE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;
/* eslint-enable no-control-regex */

/** Text with ANSI escape sequences and control characters (except \n and \t) removed; CRLF/CR → LF. */
export function stripAnsi(text: string): string {
  return text.replace(/\r\n?/g, '\n').replace(ANSI_RE, '').replace(CONTROL_RE, '');
}
