/**
 * The web UI in a browser: builds webui/dist when it is older than its sources and drives Debian's
 * chromium through playwright-core (never a downloaded browser).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { repoRoot } from './paths.ts';
import { tempDir } from './workspace.ts';

const WEBUI = join(repoRoot, 'webui');
export const DIST = join(WEBUI, 'dist');
const SHOTS = join(repoRoot, 'test-output', 'webui');
const CHROMIUM = '/usr/bin/chromium';

function newestMtime(path: string): number {
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  let max = st.mtimeMs;
  for (const e of readdirSync(path)) max = Math.max(max, newestMtime(join(path, e)));
  return max;
}

/** Builds webui/dist unless it is newer than every source file (one build at a time). */
export function ensureBuilt(): void {
  const sources = [join(WEBUI, 'src'), join(WEBUI, 'index.html'), join(WEBUI, 'public'), join(WEBUI, 'vite.config.ts'), join(repoRoot, 'lib', 'api')];
  const lock = join(tmpdir(), 'lqos-webui-build.lock');
  const deadline = Date.now() + 120_000;
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      // Another test process builds; a lock older than 2 min is stale.
      // (The holder may have removed it since mkdirSync failed: then simply try again.)
      const held = statSync(lock, { throwIfNoEntry: false });
      if (held && (Date.now() - held.mtimeMs > 120_000 || Date.now() > deadline)) rmSync(lock, { recursive: true, force: true });
      else if (held) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200);
    }
  }
  try {
    const built = join(DIST, 'index.html');
    const srcTime = Math.max(...sources.map(newestMtime));
    if (existsSync(built) && statSync(built).mtimeMs > srcTime && existsSync(join(DIST, '.vite', 'manifest.json'))) return;
    execFileSync('npx', ['vite', 'build', '--config', 'webui/vite.config.ts'], { cwd: repoRoot, stdio: ['ignore', 'ignore', 'inherit'] });
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

export interface Browser {
  context: BrowserContext;
  page: Page;
  /** Uncaught exceptions in the page. */
  errors: string[];
  close(): Promise<void>;
}

/** Debian's chromium, headless, with a fresh profile. */
export async function launchBrowser(): Promise<Browser> {
  const profile = tempDir('lqos-chromium-');
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-background-networking', '--disable-gpu', '--no-first-run', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1400, height: 900 },
  });
  context.setDefaultTimeout(10_000);
  const page = context.pages()[0] ?? (await context.newPage());
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  return {
    context,
    page,
    errors,
    close: async () => {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** A full-page screenshot in test-output/webui/<name>.png; returns its path. */
export async function shot(page: Page, name: string): Promise<string> {
  mkdirSync(SHOTS, { recursive: true });
  const file = join(SHOTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

/** The page's visible text. */
export async function bodyText(page: Page): Promise<string> {
  return page.evaluate(() => document.body.innerText);
}
