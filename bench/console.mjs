#!/usr/bin/env node
// The console's instance table at 5,000 instances against 50, in Debian's Chromium: time from
// navigation to the table drawn with the full count, and from an API write's ack to the change
// on screen (with the main thread's longest stall while it is applied). Alternating rounds; the
// server on core 0, Chromium on core 1.
//   npm run build && node bench/console.mjs          (BENCH_CONSOLE_ROUNDS=5, BENCH_CONSOLE_LARGE=5000)
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { repoRoot, startMuster } from './lib/server.mjs';

const ROUNDS = Number(process.env.BENCH_CONSOLE_ROUNDS ?? 5);
const LARGE = Number(process.env.BENCH_CONSOLE_LARGE ?? 5000);
const SMALL = 50;
const CHROMIUM = process.env.MUSTER_CHROMIUM ?? '/usr/bin/chromium';
const pinned = os.cpus().length > 1 && fs.existsSync('/usr/bin/taskset');

const log = (m) => process.stderr.write(`[console bench] ${m}\n`);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];

const loadAtStart = os.loadavg()[0];
const server = await startMuster({ label: 'console-bench' });
if (pinned) execFileSync('taskset', ['-a', '-cp', '0', String(server.pid)], { stdio: 'ignore' });
const admin = fs.readFileSync(path.join(server.dataDir, 'admin.token'), 'utf8').trim();
const auth = { authorization: `Bearer ${admin}`, 'content-type': 'application/json' };

async function fill(service, n) {
  const ids = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (next < n) {
        const k = next++;
        const r = await fetch(`${server.url}/v1/namespaces/default/services/${service}/instances`, {
          method: 'POST',
          headers: auth,
          body: JSON.stringify({
            host: `10.${(k >> 16) & 255}.${(k >> 8) & 255}.${k & 255}`,
            port: 8080,
            version: `1.${k % 7}`,
            healthCheck: { ttl: 60 },
            location: { zone: `zone-${k % 4}` },
            metadata: { env: 'prod', shard: String(k % 16) },
          }),
        });
        if (r.status !== 201) throw new Error(`registration ${k}: ${r.status} ${await r.text()}`);
        ids.push((await r.json()).instance.id);
      }
    }),
  );
  return ids;
}

log(`registering ${SMALL} + ${LARGE} instances`);
const t0 = Date.now();
const ids = { small: await fill('small', SMALL), large: await fill('large', LARGE) };
log(`registered in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

// Chromium on the other core: a wrapper that pins it and everything it starts.
let executablePath = CHROMIUM;
if (pinned) {
  executablePath = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'muster-chromium-')), 'chromium');
  fs.writeFileSync(executablePath, `#!/bin/sh\nexec taskset -c 1 ${CHROMIUM} "$@"\n`, { mode: 0o755 });
}
const browser = await chromium.launch({
  executablePath,
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--no-first-run',
  ],
});
const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
await context.addInitScript((token) => sessionStorage.setItem('muster.token', token), admin);
const page = await context.newPage();

async function round(service) {
  const n = service === 'small' ? SMALL : LARGE;
  await page.goto(`${server.url}/console/services/default/${service}`);
  const renderMs = await page
    .waitForFunction(
      (count) => {
        const el = document.querySelector('[data-count="instances"]');
        return el?.textContent === `${count} instances` && document.querySelector('[role=row][data-id]')
          ? performance.now()
          : false;
      },
      n,
      { polling: 'raf', timeout: 60_000 },
    )
    .then((h) => h.jsonValue());
  const rowsInDom = await page.locator('[role=row][data-id]').count();

  // One write through the API; the page sees it through its watch.
  await page.evaluate(() => {
    const w = window;
    w.__longest = 0;
    w.__seen = new Promise((resolve) => {
      const el = document.querySelector('[data-count="isolated"]');
      new MutationObserver(() => resolve(Date.now())).observe(el, {
        childList: true,
        characterData: true,
        subtree: true,
      });
    });
    // The main thread's longest stall: the largest gap between ticks of a 5 ms timer, less 5 ms.
    let last = performance.now();
    w.__probe = setInterval(() => {
      const now = performance.now();
      w.__longest = Math.max(w.__longest, now - last - 5);
      last = now;
    }, 5);
  });
  const id = ids[service][Math.floor(n / 2)];
  const patch = (isolate) =>
    fetch(`${server.url}/v1/instances/${id}`, { method: 'PATCH', headers: auth, body: JSON.stringify({ isolate }) });
  const r = await patch(true);
  const ackAt = Date.now();
  if (r.status !== 200) throw new Error(`isolate: ${r.status}`);
  const seenAt = await page.evaluate(() => window.__seen);
  await page.waitForTimeout(100); // the probe's tick after the stall, if there was one
  const longestTaskMs = await page.evaluate(() => (clearInterval(window.__probe), window.__longest));
  await patch(false);
  return { renderMs, updateMs: seenAt - ackAt, longestTaskMs, rowsInDom };
}

const results = { small: [], large: [] };
await round('small'); // warm-up: the first load compiles the bundle
for (let k = 0; k < ROUNDS; k++) {
  for (const s of k % 2 === 0 ? ['small', 'large'] : ['large', 'small']) {
    const r = await round(s);
    results[s].push(r);
    log(
      `round ${k + 1} ${s}: render ${r.renderMs.toFixed(0)} ms, update ${r.updateMs} ms, longest stall ${r.longestTaskMs.toFixed(0)} ms, ${r.rowsInDom} rows in the DOM`,
    );
  }
}
await browser.close();
await server.stop();

const pick = (s, k) => median(results[s].map((r) => r[k]));
const lines = [
  `# Console: the instance table at ${LARGE.toLocaleString('en')} instances`,
  '',
  `\`node bench/console.mjs\` on ${new Date().toISOString().slice(0, 10)}, ${os.cpus().length} cores, node ${process.version}, ${ROUNDS} alternating rounds (median), ${pinned ? 'server on core 0, Chromium on core 1' : 'not pinned'}; load average ${loadAtStart.toFixed(1)} at the start (other work on the machine).`,
  "Render: from navigation to the table drawn with the full count (login kept in session storage; the watch's first snapshot included).",
  "Update: from the ack of `PATCH /v1/instances/{id}` (isolate) to the change on screen, through the SSE watch; longest stall: the largest gap between ticks of a 5 ms timer on the page's main thread meanwhile (how long the page could not answer a key or a click).",
  '',
  `| | ${SMALL} instances | ${LARGE.toLocaleString('en')} instances | ratio |`,
  '| --- | ---: | ---: | ---: |',
  `| render | ${pick('small', 'renderMs').toFixed(0)} ms | ${pick('large', 'renderMs').toFixed(0)} ms | ${(pick('large', 'renderMs') / pick('small', 'renderMs')).toFixed(2)}x |`,
  `| apply an update | ${pick('small', 'updateMs')} ms | ${pick('large', 'updateMs')} ms | ${(pick('large', 'updateMs') / Math.max(1, pick('small', 'updateMs'))).toFixed(2)}x |`,
  `| longest main-thread stall while applying it | ${pick('small', 'longestTaskMs').toFixed(0)} ms | ${pick('large', 'longestTaskMs').toFixed(0)} ms | |`,
  `| instance rows in the DOM | ${pick('small', 'rowsInDom')} | ${pick('large', 'rowsInDom')} | |`,
  '',
];
const out = process.env.BENCH_RESULTS ?? path.join(repoRoot, 'bench', 'results-console.md');
fs.writeFileSync(out, lines.join('\n'));
process.stdout.write(lines.join('\n'));
