import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser, BrowserContext } from 'playwright-core';
import { api, bearer } from '../harness.js';
import { browserMissing, launchBrowser, signIn, startConsoleServer } from './browser.js';

/** With auth on, the console asks for a token, refuses a wrong one, and offers only what a token may do. */
describe('console: tokens and rights', { skip: browserMissing }, () => {
  let server: Awaited<ReturnType<typeof startConsoleServer>>;
  let browser: Browser;
  let context: BrowserContext;
  let instanceId: string;

  before(async () => {
    [server, browser] = await Promise.all([startConsoleServer(), launchBrowser()]);
    const r = await api(server.url, 'POST', '/v1/namespaces/default/services/orders/instances', {
      host: '10.0.0.1',
      port: 80,
      healthCheck: { ttl: 60 },
    });
    instanceId = r.body.instance.id;
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
  });
  // Each test in a fresh context: its own session storage, as a new tab would have.
  const newPage = async () => {
    await context?.close();
    context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    return context.newPage();
  };

  it('asks for a token before showing anything', async () => {
    const page = await newPage();
    await page.goto(`${server.url}/`); // redirected to /console/
    assert.match(page.url(), /\/console\/$/);
    await page.getByLabel('Access token').waitFor();
    assert.equal(await page.getByRole('heading', { name: 'Services' }).count(), 0);
  });

  it('refuses a wrong token and says so', async () => {
    const page = await newPage();
    await signIn(page, server.url, `mst_0123456789ab_${'x'.repeat(43)}`);
    await page.getByRole('alert').filter({ hasText: 'unknown or revoked' }).waitFor();
    assert.equal(await page.getByRole('heading', { name: 'Services' }).count(), 0);
    assert.equal(
      await page.evaluate(() => sessionStorage.getItem('muster.token')),
      null,
      'a refused token is not kept',
    );
  });

  it('shows a read-only token no write actions, no tokens page and no settings changes', async () => {
    const created = await api(
      server.url,
      'POST',
      '/v1/tokens',
      { name: 'viewer', rules: ['read:*/*'] },
      bearer(server.admin),
    );
    assert.equal(created.status, 201);
    const page = await newPage();
    await signIn(page, server.url, created.body.secret);
    await page.locator('tr[data-service="orders"]').waitFor();
    assert.equal(await page.getByRole('link', { name: 'Tokens' }).count(), 0);
    await page.getByRole('link', { name: 'orders' }).click();
    await page.locator(`[role=row][data-id="${instanceId}"]`).waitFor();
    await page.getByText('This token can read this service but not change it.').waitFor();
    const rows = page.locator('.instance-table .tbody'); // the header's sort buttons are named after columns
    for (const name of ['Isolate', 'Weight', 'Deregister'])
      assert.equal(await rows.getByRole('button', { name }).count(), 0, `no ${name} button`);
    assert.equal(await page.getByRole('button', { name: 'Turn on' }).count(), 0, 'no verification setting');
    // The token stays in this tab's session storage only.
    assert.equal(await page.evaluate(() => sessionStorage.getItem('muster.token')), created.body.secret);
    assert.equal(await page.evaluate(() => localStorage.length), 0);
  });

  it('offers the write actions to a token with write on the service only', async () => {
    const created = await api(
      server.url,
      'POST',
      '/v1/tokens',
      { name: 'orders-ops', rules: ['write:default/orders'] },
      bearer(server.admin),
    );
    const page = await newPage();
    await signIn(page, server.url, created.body.secret);
    await page.goto(`${server.url}/console/services/default/orders`);
    const row = page.locator(`[role=row][data-id="${instanceId}"]`);
    await row.getByRole('button', { name: 'Isolate' }).waitFor();
    // Settings (verification) need admin on the service: not offered.
    assert.equal(await page.getByRole('button', { name: 'Turn on' }).count(), 0);
  });

  it('ends the session when the token is revoked, and says why', async () => {
    const created = await api(
      server.url,
      'POST',
      '/v1/tokens',
      { name: 'shortlived', rules: ['read:*/*'] },
      bearer(server.admin),
    );
    const page = await newPage();
    await signIn(page, server.url, created.body.secret);
    await page.locator('tr[data-service="orders"]').waitFor();
    assert.equal(
      (await api(server.url, 'DELETE', `/v1/tokens/${created.body.token.id}`, undefined, bearer(server.admin))).status,
      200,
    );
    // The overview polls: its next call is refused and the login form comes back with the reason.
    await page.getByRole('alert').filter({ hasText: 'refused' }).waitFor({ timeout: 10_000 });
    await page.getByLabel('Access token').waitFor();
  });

  it('lets an admin create a token, shows its secret once, and revoke it', async () => {
    const page = await newPage();
    await signIn(page, server.url, server.admin);
    await page.getByRole('link', { name: 'Tokens' }).click();
    await page.getByLabel('Name').fill('ci-deploy');
    await page.getByLabel('Rules, one per line').fill('write:default/orders\nread:default/*');
    await page.getByRole('button', { name: 'Create' }).click();
    const secret = await page.getByLabel('New token secret').inputValue();
    assert.match(secret, /^mst_[0-9a-f]{12}_/);
    const self = await api(
      server.url,
      'GET',
      '/v1/tokens/self?namespace=default&service=orders',
      undefined,
      bearer(secret),
    );
    assert.deepEqual(self.body.rights, ['read', 'write']);
    await page.getByRole('button', { name: 'Done' }).click();
    assert.equal(await page.getByLabel('New token secret').count(), 0, 'the secret is not shown again');
    await page.locator('tr[data-token="ci-deploy"]').getByRole('button', { name: 'Revoke' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Revoke' }).click();
    await page.locator('tr[data-token="ci-deploy"]').waitFor({ state: 'detached' });
    assert.equal((await api(server.url, 'GET', '/v1/tokens/self', undefined, bearer(secret))).status, 401);
  });
});
