import fs from 'node:fs';

// Child servers and temp dirs still alive. A bench stopped with Ctrl-C, or failing between a
// start and its stop, must not leave servers listening or data dirs in /tmp behind.
const live = new Set();

export function track(child, dir) {
  const entry = { child, dir };
  live.add(entry);
  return () => live.delete(entry);
}

process.on('exit', () => {
  for (const { child, dir } of live) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  }
});
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => process.exit(130));
