#!/usr/bin/env node
/**
 * `lqusers`: the web UI's users from a root shell — list, add, passwd, role, del (the way back in
 * when no admin can log in). Only commander is loaded before the arguments are parsed; the work is in
 * lib/cli/lqusers.ts. Exit codes: 0 done, 1 refused (no such user, last admin, weak password, unusable
 * users file), 2 bad usage or an invalid/missing configuration file.
 */
import { Command } from 'commander';

const ROLE_HELP = 'admin or read_only';

const program = new Command()
  .name('lqusers')
  .description('Manage the web UI users (the users file lqosd reads; no restart needed)')
  .option('--config <path>', 'configuration file (default: $LQOS_CONFIG or /etc/lqos.conf)')
  .option('--file <path>', 'users file to edit (default: <state_directory>/lqusers.toml from the configuration)')
  .addHelpText(
    'after',
    '\nPasswords are asked for on the terminal (twice, not echoed) or read from the first line of\n' +
      'standard input with --password-stdin; never give them as arguments (other users see `ps`).',
  )
  .showHelpAfterError()
  .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2));

let action: { verb: string; username?: string; role?: string; passwordStdin?: boolean; json?: boolean } | undefined;
program
  .command('list')
  .description('list the users and their roles')
  .option('--json', 'print JSON')
  .action((o: { json?: boolean }) => { action = { verb: 'list', json: o.json }; });
program
  .command('add <username>')
  .description('add a user')
  .option('--role <role>', `${ROLE_HELP} (default: admin for the first user, else read_only)`)
  .option('--password-stdin', 'read the password from standard input')
  .action((username: string, o: { role?: string; passwordStdin?: boolean }) => { action = { verb: 'add', username, ...o }; });
program
  .command('passwd <username>')
  .description("set a user's password (that user's web sessions end)")
  .option('--password-stdin', 'read the password from standard input')
  .action((username: string, o: { passwordStdin?: boolean }) => { action = { verb: 'passwd', username, ...o }; });
program
  .command('role <username> <role>')
  .description(`change a user's role (${ROLE_HELP})`)
  .action((username: string, role: string) => { action = { verb: 'role', username, role }; });
program
  .command('del <username>')
  .description('delete a user (their web sessions end)')
  .action((username: string) => { action = { verb: 'del', username }; });

program.parse(process.argv);
if (!action) {
  program.outputHelp({ error: true });
  process.exit(2);
}
const { runLqusers } = await import('../lib/cli/lqusers.ts');
process.exit(await runLqusers({ ...program.opts<{ config?: string; file?: string }>(), ...action }));
