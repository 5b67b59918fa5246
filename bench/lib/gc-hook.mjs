// Preloaded into the server by the memory scenario only (node --expose-gc --import this): the
// server has no way to ask for a full collection, and heap used without one counts garbage.
// SIGUSR2 is unused by Node and Muster (SIGUSR1 would start the inspector).
process.on('SIGUSR2', () => {
  globalThis.gc();
  globalThis.gc();
  process.stderr.write('bench-gc-done\n');
});
