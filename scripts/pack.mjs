#!/usr/bin/env node
// `npm run pack [DIR]`: the three publishable packages as tarballs in DIR (default ./packed), built
// first. A project outside this repository installs them with npm (docs/sdk.md): the SDK is
// @muster/api + @muster/client, the server and the `muster` command @muster/server on top.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const root = path.resolve(new URL('..', import.meta.url).pathname);
const dest = path.resolve(process.argv[2] ?? path.join(root, 'packed'));
fs.mkdirSync(dest, { recursive: true });
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const out = execFileSync(
  npm,
  [
    'pack',
    '--json',
    '--pack-destination',
    dest,
    '-w',
    'packages/api',
    '-w',
    'packages/client',
    '-w',
    'packages/server',
  ],
  { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] },
);
for (const p of JSON.parse(out)) console.log(path.join(dest, p.filename));
