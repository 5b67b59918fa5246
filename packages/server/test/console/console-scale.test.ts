import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { api, bearer } from '../harness.js';
import { browserMissing, launchBrowser, startConsoleServer } from './browser.js';

const COUNT = 5000;

/**
 * 5,000 instances in one service: the table holds only the rows in view, follows a change and
 * scrolls to the last row. How long that takes is measured by bench/console.mjs, not here.
 */
describe(`console: a service of ${COUNT} instances`, { skip: browserMissing }, () => {
  let server: Awaited<ReturnType<typeof startConsoleServer>>;
  let browser: Browser;
  let page: Page;
  const ids: string[] = [];

  before(async () => {
    // The memory store: what is tested is the console, and 5,000 durable commits would only add time.
    [server, browser] = await Promise.all([startConsoleServer({ 'store.type': 'memory' }), launchBrowser()]);
    let next = 0;
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        while (next < COUNT) {
          const k = next++;
          const r = await api(server.url, 'POST', '/v1/namespaces/default/services/big/instances', {
            host: `10.0.${k >> 8}.${k & 255}`,
            port: 8080,
            healthCheck: { ttl: 60 },
            location: { zone: `z${k % 4}` },
          });
          assert.equal(r.status, 201);
          ids[k] = r.body.instance.id;
        }
      }),
    );
    const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
    await context.addInitScript((token) => sessionStorage.setItem('muster.token', token), server.admin);
    page = await context.newPage();
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  it('draws only the rows in view, follows a change, and scrolls to the last row', async () => {
    await page.goto(`${server.url}/console/services/default/big`);
    await page.locator('[data-count="instances"]', { hasText: `${COUNT} instances` }).waitFor({ timeout: 30_000 });
    const drawn = await page.locator('[role=row][data-id]').count();
    assert.ok(drawn > 0 && drawn < 100, `${drawn} rows in the DOM`);

    await api(server.url, 'PATCH', `/v1/instances/${ids[2500]}`, { isolate: true }, bearer(server.admin));
    await page.locator('[data-count="isolated"]', { hasText: '1 isolated' }).waitFor();
    await page.getByLabel('Isolated').selectOption('yes');
    await page.locator(`[role=row][data-id="${ids[2500]}"] .tag.isolated`).waitFor();
    assert.equal(await page.locator('[role=row][data-id]').count(), 1);

    await page.getByLabel('Isolated').selectOption('all');
    // Sorted by address: 10.0.19.135 (the 5,000th) comes last.
    await page.locator('.instance-table .tbody').evaluate((el) => el.scrollTo(0, el.scrollHeight));
    await page.locator(`[role=row][data-id="${ids[COUNT - 1]}"]`).waitFor();
    assert.ok((await page.locator('[role=row][data-id]').count()) < 100);
  });
});
