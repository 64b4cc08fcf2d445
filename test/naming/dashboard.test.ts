/**
 * The dashboard in a real headless Chromium: a name registered from the test
 * appears on the page (live, through server-sent events), and goes when it is
 * unregistered. Leaves a screenshot in /tmp.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NameClient } from '../../src/naming/index.js';
import { startTestServer, type TestServer } from './helpers.js';

const CHROMIUM = process.env['CHROMIUM'] ?? '/usr/bin/chromium';
export const SCREENSHOT = join(tmpdir(), 'switchboard-ns-dashboard.png');

let ts: TestServer;
before(async () => {
  ts = await startTestServer({ http: 0 });
});
after(async () => ts.close());

test('the dashboard lists names live and drops them when they go', { timeout: 90_000 }, async (t) => {
  if (!existsSync(CHROMIUM)) return t.skip(`no Chromium at ${CHROMIUM} (Debian package chromium)`);
  const { chromium } = await import('playwright-core');
  const profile = mkdtempSync(join(tmpdir(), 'sb-chromium-'));
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const c = await NameClient.connect({ address: ts.unix, clientName: 'dashboard-test' });
  try {
    assert.match(ts.server.httpUrl ?? '', /^http:\/\/127\.0\.0\.1:\d+\/$/);
    const page = browser.pages()[0] ?? (await browser.newPage());
    await page.setViewportSize({ width: 1200, height: 800 });
    await page.goto(ts.server.httpUrl as string);
    await page.locator('#conn', { hasText: 'live' }).waitFor({ timeout: 10_000 });
    await page.locator('#names td.empty').waitFor();

    await c.register('printer/floor2', { address: 'tcp://127.0.0.1:631', protocol: 'ipp', metadata: { room: '2.14' } });
    await c.register('db/primary', { address: 'unix:///run/db.sock', protocol: 'oncrpc', program: 100003, version: 3 }, { ttlMs: 60_000 });
    const row = page.locator('#names tr[data-name="printer/floor2"]');
    await row.waitFor({ timeout: 10_000 });
    assert.match(await row.innerText(), /tcp:\/\/127\.0\.0\.1:631/);
    assert.match(await row.innerText(), /dashboard-test/);
    assert.match(await row.innerText(), /held by live connection/);
    assert.match(await page.locator('#names tr[data-name="db/primary"]').innerText(), /oncrpc prog 100003 v3[\s\S]*\d+ (s|min) left/);
    await page.locator('#clients tbody tr', { hasText: 'dashboard-test' }).waitFor();
    const counters = await page.locator('#counters').innerText();
    assert.match(counters, /2\s*register/);
    await page.screenshot({ path: SCREENSHOT, fullPage: true });

    await c.unregister('printer/floor2');
    await row.waitFor({ state: 'detached', timeout: 10_000 });
    assert.equal(await page.locator('#names tr[data-name="db/primary"]').count(), 1);
    assert.match(await page.locator('#counters').innerText(), /1\s*unregister/);

    // Refuses requests whose Host is not loopback (DNS rebinding).
    const status = await new Promise<number | undefined>((resolve, reject) => {
      const req = http.get(ts.server.httpUrl as string, { headers: { host: 'evil.example:80' } }, (res) => {
        res.resume();
        resolve(res.statusCode);
      });
      req.on('error', reject);
    });
    assert.equal(status, 403);
  } finally {
    await c.close();
    await browser.close();
    rmSync(profile, { recursive: true, force: true });
  }
});
