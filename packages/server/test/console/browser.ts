import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startAuthServer } from '../auth-server.js';
import { repoRoot, tempDir, type Flags } from '../harness.js';

/** Debian's Chromium (apt-get install chromium): the console tests drive it with playwright-core. */
export const CHROMIUM = process.env['MUSTER_CHROMIUM'] ?? '/usr/bin/chromium';

const missing = fs.existsSync(CHROMIUM) ? undefined : `no Chromium at ${CHROMIUM} (apt-get install chromium)`;
if (missing && process.env['CI'] === 'true') throw new Error(`the console tests need Chromium on CI: ${missing}`);
/** Why the console tests skip here, or undefined. */
export const browserMissing = missing;

export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    // As root in a container, without a GPU, and on a machine whose network is closed.
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--disable-quic',
    ],
  });
}

/** A server with auth on and a fast sweep, and its admin token. */
export const startConsoleServer = (flags: Flags = {}) => startAuthServer({ 'health.sweepInterval': '100ms', ...flags });

/** Opens the console and signs in with `token` through its login form. */
export async function signIn(page: Page, url: string, token: string): Promise<void> {
  await page.goto(`${url}/console/`);
  await page.getByLabel('Access token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

/**
 * Where screenshots go: docs/images when UPDATE_SCREENSHOTS=1 (how the README's were made),
 * else a temporary folder, so a test run leaves the work tree as it was.
 */
export function screenshotPath(name: string): string {
  const dir =
    process.env['UPDATE_SCREENSHOTS'] === '1' ? path.join(repoRoot, 'docs', 'images') : tempDir('muster-screens-');
  fs.mkdirSync(dir, { recursive: true });
  return path.join(dir, name);
}
