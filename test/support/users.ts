/** The web UI's test users: an admin and a read-only viewer, created through the API, and logging in. */
import { readFileSync } from 'node:fs';
import type { Page } from 'playwright-core';
import { setupTokenPath } from '../../lib/web/setupToken.ts';
import { Client } from './http.ts';

export interface Credentials {
  username: string;
  password: string;
}

export const ADMIN: Credentials = { username: 'admin', password: 'correct-horse-1' };
export const VIEWER: Credentials = { username: 'viewer', password: 'viewer-pass-1' };

/** A web server under test: its address and its users file (the setup token lives next to it). */
export interface UsersServer {
  base: string;
  usersFile: string;
}

/** The first-run setup token the server wrote (what the operator reads with `sudo cat`). */
export function readSetupToken(server: Pick<UsersServer, 'usersFile'>): string {
  return readFileSync(setupTokenPath(server.usersFile), 'utf8').trim();
}

/** POST /api/auth/first-run with `who` and the server's setup token, on `client` (a new one by default). */
export function firstRun(server: UsersServer, who: Credentials = ADMIN, client = new Client(server.base)) {
  return client.post('/api/auth/first-run', { ...who, token: readSetupToken(server) });
}

/** First run creates ADMIN, who adds VIEWER (read-only); returns ADMIN's logged-in client. */
export async function seedUsers(server: UsersServer): Promise<Client> {
  const admin = new Client(server.base);
  const r = await firstRun(server, ADMIN, admin);
  if (r.status !== 201) throw new Error(`first-run failed: ${r.status} ${r.text}`);
  const r2 = await admin.post('/api/users', { ...VIEWER, role: 'read_only' });
  if (r2.status !== 201) throw new Error(`add user failed: ${r2.status} ${r2.text}`);
  return admin;
}

/** seedUsers, then VIEWER logs in too; returns both clients. */
export async function setupUsers(server: UsersServer): Promise<{ admin: Client; viewer: Client }> {
  const admin = await seedUsers(server);
  const viewer = new Client(server.base);
  const r = await viewer.post('/api/auth/login', VIEWER);
  if (r.status !== 200) throw new Error(`viewer login failed: ${r.status} ${r.text}`);
  return { admin, viewer };
}

/** Logs in through the login page; resolves when the UI shows the current user. */
export async function login(page: Page, base: string, who: Credentials): Promise<void> {
  await page.goto(`${base}/login`);
  await page.fill('input[name=username]', who.username);
  await page.fill('input[name=password]', who.password);
  await page.click('button[type=submit]');
  await page.waitForSelector('[data-testid=current-user]');
}
