/**
 * Preloaded into a server child process (NODE_OPTIONS=--import) to give its machine a wrong wall
 * clock: Date.now() runs MUSTER_TEST_CLOCK_SKEW_MS ahead (or behind, when negative). Not a test
 * file; see the clock tests in cluster-faults.test.ts.
 */
const skewMs = Number(process.env['MUSTER_TEST_CLOCK_SKEW_MS'] ?? 0);
const realNow = Date.now.bind(Date);
Date.now = () => realNow() + skewMs;

export {};
