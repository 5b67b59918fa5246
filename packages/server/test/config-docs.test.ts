import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, describe, it } from 'node:test';
import { loadConfig } from '../src/config/config.js';
import { OPTIONS, envName, flagName } from '../src/config/options.js';
import { musterBin, tempDir } from './harness.js';

/** docs/configuration.md is generated from the option table; these tests fail when it drifts. */

const repoRoot = path.resolve(path.dirname(musterBin), '..');
const script = path.join(repoRoot, 'scripts', 'gen-config-docs.mjs');
const docsFile = path.join(repoRoot, 'docs', 'configuration.md');
// A plain .mjs script has no types; its exports are checked by what the tests do with them.
const gen = (await import(pathToFileURL(script).href)) as { renderConfigDocs(): string; exampleYaml(): string };

const dir = tempDir('muster-docs-test-');
after(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('docs/configuration.md', () => {
  it('is what scripts/gen-config-docs.mjs generates from the option table (run npm run docs)', () => {
    assert.equal(
      fs.readFileSync(docsFile, 'utf8'),
      gen.renderConfigDocs(),
      'docs/configuration.md is out of date: run npm run docs',
    );
  });

  it('has a row for every option with its YAML key, variable, flag and default', () => {
    const text = gen.renderConfigDocs();
    for (const o of OPTIONS) {
      const row = text.split('\n').find((l) => l.startsWith(`| \`${o.key}\` |`));
      assert.ok(row, `a row for ${o.key}`);
      assert.ok(row.includes(`\`${envName(o.key)}\``) && row.includes(`\`${flagName(o.key)}\``), row);
      assert.ok(row.includes(`\`${o.default}\``), `the default of ${o.key}: ${row}`);
    }
  });

  it('shows YAML that the server accepts; the full example is exactly the defaults', () => {
    const blocks = [...gen.renderConfigDocs().matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!);
    assert.ok(blocks.length >= 2);
    blocks.forEach((yaml, i) => {
      const file = path.join(dir, `block-${i}.yaml`);
      fs.writeFileSync(file, yaml);
      assert.doesNotThrow(() => loadConfig({ file }), `yaml block ${i} loads:\n${yaml}`);
    });
    const file = path.join(dir, 'example.yaml');
    fs.writeFileSync(file, gen.exampleYaml());
    assert.deepEqual(loadConfig({ file }), loadConfig());
    for (const o of OPTIONS)
      assert.ok(gen.exampleYaml().includes(`# ${o.description}`), `the example explains ${o.key}`);
  });

  it('the script writes the same page to a given path, and --check passes on the committed page', () => {
    const out = path.join(dir, 'configuration.md');
    const r = spawnSync(process.execPath, [script, out], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(fs.readFileSync(out, 'utf8'), gen.renderConfigDocs());
    const check = spawnSync(process.execPath, [script, '--check'], { encoding: 'utf8' });
    assert.equal(check.status, 0, check.stderr);
  });
});
