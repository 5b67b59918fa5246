import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { api, bearer, waitFor } from '../harness.js';
import { browserMissing, launchBrowser, screenshotPath, signIn, startConsoleServer } from './browser.js';

/**
 * The console against a real server with auth on, in Debian's Chromium: what an operator sees
 * changes without a reload, and what they do lands in the registry.
 */
describe('console: live overview, service page and events', { skip: browserMissing }, () => {
  let server: Awaited<ReturnType<typeof startConsoleServer>>;
  let browser: Browser;
  let page: Page;
  const admin = () => bearer(server.admin);
  const register = async (svc: string, body: Record<string, unknown>) => {
    const r = await api(server.url, 'POST', `/v1/namespaces/default/services/${svc}/instances`, body, admin());
    assert.ok(r.status === 201 || r.status === 200, JSON.stringify(r.body));
    return r.body as { instance: { id: string }; heartbeatToken: string };
  };

  before(async () => {
    [server, browser] = await Promise.all([startConsoleServer(), launchBrowser()]);
    page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    await signIn(page, server.url, server.admin);
    await page.getByRole('heading', { name: 'Services' }).waitFor();
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  it('shows a service registered through the API without a reload', async () => {
    await page.goto(`${server.url}/console/`);
    await page.getByRole('heading', { name: 'Services' }).waitFor();
    assert.equal(await page.locator('tr[data-service="orders"]').count(), 0);
    await register('orders', { host: '10.0.0.1', port: 8080, healthCheck: { ttl: 60 }, location: { zone: 'a' } });
    await register('orders', { host: '10.0.0.2', port: 8080, healthCheck: { ttl: 60 }, location: { zone: 'b' } });
    const row = page.locator('tr[data-service="orders"]');
    await row.waitFor();
    await waitFor(
      async () => (await row.locator('[data-col="instances"]').textContent()) === '2',
      5000,
      'two instances of orders on the overview',
    );
    assert.equal(await row.locator('[data-col="healthy"]').textContent(), '2');
  });

  it('turns an instance unhealthy on screen when its heartbeats stop', async () => {
    const reg = await register('beats', { host: '10.0.1.1', port: 9000, healthCheck: { ttl: 1 } });
    await page.goto(`${server.url}/console/services/default/beats`);
    const row = page.locator(`[role=row][data-id="${reg.instance.id}"]`);
    await row.waitFor();
    assert.equal(await row.locator('[data-col="state"] .state').textContent(), 'healthy');
    // No heartbeat is sent: past 3 x ttl the sweep marks it unhealthy and the watch brings it here.
    await page.locator(`[role=row][data-id="${reg.instance.id}"] .state.bad`).waitFor({ timeout: 10_000 });
    assert.equal(await page.locator('[data-count="unhealthy"]').textContent(), '1 unhealthy');
  });

  it('isolates an instance from the service page, and discovery stops answering it', async () => {
    const reg = await register('payments', { host: '10.0.2.1', port: 7000, healthCheck: { ttl: 60 } });
    await register('payments', { host: '10.0.2.2', port: 7000, healthCheck: { ttl: 60 } });
    await page.goto(`${server.url}/console/services/default/payments`);
    const row = page.locator(`[role=row][data-id="${reg.instance.id}"]`);
    await row.getByRole('button', { name: 'Isolate' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Isolate' }).click();
    await row.locator('.tag.isolated').waitFor();
    const found = await api(server.url, 'GET', '/v1/namespaces/default/services/payments/instances');
    assert.deepEqual(
      found.body.instances.map((i: { host: string }) => i.host),
      ['10.0.2.2'],
    );
    const isolated = await api(server.url, 'GET', '/v1/namespaces/default/services/payments/instances?isolated=true');
    assert.deepEqual(
      isolated.body.instances.map((i: { id: string }) => i.id),
      [reg.instance.id],
    );
  });

  it("changes an instance's weight and deregisters one, each after a confirmation", async () => {
    const reg = await register('catalog', { host: '10.0.3.1', port: 7000, healthCheck: { ttl: 60 } });
    await page.goto(`${server.url}/console/services/default/catalog`);
    const row = page.locator(`[role=row][data-id="${reg.instance.id}"]`);
    await row.getByRole('button', { name: 'Weight' }).click();
    await page.getByRole('dialog').getByLabel('Weight').fill('250');
    await page.getByRole('dialog').getByRole('button', { name: 'Change weight' }).click();
    await waitFor(
      async () => (await row.locator('[data-col="weight"]').textContent()) === '250',
      5000,
      'weight 250 in the table',
    );
    assert.equal(
      (await api(server.url, 'GET', `/v1/instances/${reg.instance.id}`, undefined, admin())).body.weight,
      250,
    );
    await row.getByRole('button', { name: 'Deregister' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Cancel' }).click();
    assert.equal(
      (await api(server.url, 'GET', `/v1/instances/${reg.instance.id}`, undefined, admin())).status,
      200,
      'cancel changes nothing',
    );
    await row.getByRole('button', { name: 'Deregister' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Deregister' }).click();
    await row.waitFor({ state: 'detached' });
    assert.equal((await api(server.url, 'GET', `/v1/instances/${reg.instance.id}`, undefined, admin())).status, 404);
  });

  it('shows a deregistration on the events page as it happens', async () => {
    const reg = await register('inventory', { host: '10.0.4.1', port: 7000, healthCheck: { ttl: 60 } });
    await page.goto(`${server.url}/console/events`);
    await page.locator('tr[data-type="instance.registered"]').first().waitFor();
    assert.equal(await page.locator('tr[data-type="instance.deregistered"]', { hasText: reg.instance.id }).count(), 0);
    assert.equal(
      (await api(server.url, 'DELETE', `/v1/instances/${reg.instance.id}`, undefined, bearer(reg.heartbeatToken)))
        .status,
      204,
    );
    await page
      .locator('tr[data-type="instance.deregistered"]', { hasText: reg.instance.id })
      .waitFor({ timeout: 5000 });
    // The audit trail is there for this admin token.
    await page.getByLabel('Type').selectOption('audit');
    await page.locator('tr[data-type="audit"]').first().waitFor();
  });

  it('takes screenshots of the overview and of a service page', async () => {
    for (let k = 0; k < 12; k++)
      await register('checkout', {
        host: `10.1.0.${k + 1}`,
        port: 8443,
        version: k < 8 ? '2.4.1' : '2.5.0',
        protocol: 'grpc',
        healthCheck: { ttl: k < 10 ? 60 : 1 },
        location: { zone: `eu-west-${(k % 3) + 1}` },
        metadata: { env: 'prod', team: 'web' },
      });
    for (let k = 0; k < 5; k++)
      await register('search', { host: `10.2.0.${k + 1}`, port: 9200, version: '8.1', healthCheck: { ttl: 60 } });
    await page.goto(`${server.url}/console/services/default/checkout`);
    await page.locator('[data-count="unhealthy"]', { hasText: '2 unhealthy' }).waitFor({ timeout: 10_000 });
    await page.screenshot({ path: screenshotPath('console-service.png') });
    await page.goto(`${server.url}/console/`);
    await page.locator('tr[data-service="checkout"] [data-col="unhealthy"]', { hasText: '2' }).waitFor();
    await page.screenshot({ path: screenshotPath('console-overview.png') });
  });
});
