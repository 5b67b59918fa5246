import type { Registration } from './registration.js';

const SIGNALS = ['SIGTERM', 'SIGINT'] as const;
const registrations = new Set<Registration>();
let installed = false;

/**
 * Deregisters `reg` when the process gets SIGTERM or SIGINT. The signal then goes on as if
 * we had not been there: the application's own handlers run, and with none the process ends
 * the way Node ends it by default.
 */
export function deregisterOnExit(reg: Registration, timeoutMs: number): void {
  registrations.add(reg);
  reg.once('deregistered', () => registrations.delete(reg));
  if (installed) return;
  installed = true;
  const onSignal = (signal: NodeJS.Signals) => {
    for (const s of SIGNALS) process.removeListener(s, onSignal);
    installed = false;
    const done = Promise.all([...registrations].map((r) => r.deregister()));
    const timer = new Promise((resolve) => setTimeout(resolve, timeoutMs).unref());
    void Promise.race([done, timer]).then(() => {
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    });
  };
  for (const s of SIGNALS) process.on(s, onSignal);
}
