#!/usr/bin/env node
// Drives real servers (the bare node:http ceiling, then a fresh `muster server` per scenario) and
// prints one markdown table, also written to bench/results.md.
//   node bench/run.mjs                      every scenario
//   node bench/run.mjs discovery10 register  some of them
//   BENCH_DURATION=10 BENCH_CONNECTIONS=50 node bench/run.mjs
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { measureCeiling } from './ceiling.mjs';
import { SETTINGS, steadyNote } from './lib/cannon.mjs';
import { fmtCpu } from './lib/probe.mjs';
import { commandLine, fmtInt, fmtMs, markdownTable, row, writeResults } from './lib/report.mjs';
import { authCost } from './scenarios/auth.mjs';
import { CLUSTER_NOTE_TEXT, CLUSTER_SCENARIOS } from './scenarios/cluster.mjs';
import { discovery10, discovery1000 } from './scenarios/discovery.mjs';
import { GRPC_NOTE, GRPC_SCENARIOS } from './scenarios/grpc.mjs';
import { heartbeat, heartbeatBatch } from './scenarios/heartbeat.mjs';
import { longpoll } from './scenarios/longpoll.mjs';
import { grpcWake } from './scenarios/grpc-wake.mjs';
import { memory } from './scenarios/memory.mjs';
import { pick } from './scenarios/pick.mjs';
import { register } from './scenarios/register.mjs';

const ALL = [
  discovery10,
  discovery1000,
  heartbeat,
  heartbeatBatch,
  register,
  longpoll,
  grpcWake,
  memory,
  pick,
  authCost,
  ...GRPC_SCENARIOS,
  ...CLUSTER_SCENARIOS,
];
const here = path.dirname(fileURLToPath(import.meta.url));

const args = process.argv.slice(2);
if (args.includes('--help') || args.includes('-h') || args.includes('--list')) {
  console.log('usage: node bench/run.mjs [scenario ...]\n\nscenarios:');
  for (const s of ALL) console.log(`  ${s.name.padEnd(15)} ${s.describe}`);
  console.log(
    '\nenv: BENCH_DURATION (s, default 5), BENCH_WARMUP (s, default 1), BENCH_CONNECTIONS (default 100),\n' +
      '     BENCH_REPEAT (runs of each scenario compared with the ceiling, median kept; default 1),\n' +
      '     BENCH_HB_INSTANCES, BENCH_LONGPOLL_CLIENTS, BENCH_LONGPOLL_ROUNDS, BENCH_MEMORY_INSTANCES,\n' +
      '     BENCH_CPU_PROF=dir (V8 CPU profile of every server started), BENCH_MUSTER_FLAGS="--flag value ..." (extra server flags),\n' +
      '     BENCH_PICK_ROUNDS, BENCH_PICK_SECONDS, BENCH_PICK_WARMUP (pick: rounds, s per case and round, s of warm-up per case),\n' +
      '     BENCH_GRPC_INFLIGHT, BENCH_GRPC_CHANNELS, BENCH_GRPC_CLIENT=h2|grpc-js, BENCH_GRPC_STREAM_BATCH, BENCH_GRPC_STREAM_WINDOW (gRPC load),\n' +
      '     BENCH_GRPC_DRIVER_PROF=dir (V8 CPU profile of every gRPC load driver),\n' +
      '     BENCH_MYSQL (default mysql://root@127.0.0.1:3306), BENCH_REDIS (default redis://127.0.0.1:6379),\n' +
      '     BENCH_VIS_COUNT, BENCH_VIS_RATE (cluster*: server on MySQL + Redis; clusterVisibility: registrations, per s), BENCH_CLUSTER_ROUNDS (clusterRegister rounds, default 3),\n' +
      '     BENCH_RESULTS=file (where the table is written; default bench/results.md)',
  );
  process.exit(0);
}
const unknown = args.filter((a) => !ALL.some((s) => s.name.toLowerCase() === a.toLowerCase()));
if (unknown.length) {
  console.error(`unknown scenario(s): ${unknown.join(', ')}; known: ${ALL.map((s) => s.name).join(', ')}`);
  process.exit(2);
}
const selected = args.length ? ALL.filter((s) => args.some((a) => a.toLowerCase() === s.name.toLowerCase())) : ALL;

const started = new Date();
const log = (msg) =>
  process.stderr.write(`[bench ${((Date.now() - started.getTime()) / 1000).toFixed(0).padStart(3)} s] ${msg}\n`);
log(
  `${os.cpus().length} CPUs, node ${process.version}; ${SETTINGS.connections} connections, pipelining ${SETTINGS.pipelining}, ${SETTINGS.duration} s per run after ${SETTINGS.warmup} s warm-up`,
);

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];

// The machine is shared and noisy: a ceiling taken minutes earlier can be off by 2x. So the
// ceiling is measured right before and right after every scenario compared with it, and that
// scenario's ratio uses the mean of the two.
const ceilings = [];
async function ceilingNow() {
  log('ceiling: bare node:http, fixed 2 KB JSON');
  const c = await measureCeiling();
  ceilings.push(c);
  log(`ceiling: ${fmtInt(c.rps)} req/s, p99 ${fmtMs(c.p99)} ms, ${fmtCpu(c.cpu)}`);
  return c;
}

// BENCH_REPEAT=n runs every scenario compared with the ceiling n times, each between two ceiling
// runs, and keeps the run with the median ratio: one noisy minute then moves nothing.
const REPEAT = Math.max(1, Math.floor(Number(process.env.BENCH_REPEAT ?? 1)));

async function runOnce(s) {
  try {
    return [await s.run()].flat();
  } catch (err) {
    log(`${s.name} failed: ${err.stack ?? err}`);
    return [row({ scenario: s.name, note: `FAILED: ${String(err.message ?? err).split('\n')[0]}` })];
  }
}

const rows = [];
let lastCeiling;
for (const s of selected) {
  const reps = s.needsCeiling ? REPEAT : 1;
  const runs = [];
  for (let rep = 0; rep < reps; rep++) {
    const before = s.needsCeiling ? (lastCeiling ?? (await ceilingNow())) : undefined;
    log(`${s.name}${reps > 1 ? ` (run ${rep + 1} of ${reps})` : ''}: ${s.describe}`);
    const result = await runOnce(s);
    const after = s.needsCeiling ? await ceilingNow() : undefined;
    lastCeiling = after; // after a scenario without one, time has passed: the next takes a fresh ceiling
    for (const r of result) {
      if (after) {
        const ceilingRps = (before.rps + after.rps) / 2;
        if (r.rps !== undefined) {
          r.ratio = r.rps / ceilingRps;
          if (r.ratioTarget !== undefined)
            r.target = { text: `≥ ${r.ratioTarget * 100} % of ceiling`, met: r.ratio >= r.ratioTarget };
        }
        r.note = [r.note, `ceiling around this run ${fmtInt(before.rps)} / ${fmtInt(after.rps)} req/s`]
          .filter(Boolean)
          .join('; ');
      }
      log(
        `${r.scenario}: ${fmtInt(r.rps)} req/s, p99 ${fmtMs(r.p99)} ms${r.ratio !== undefined ? `, ${(r.ratio * 100).toFixed(0)} % of ceiling` : ''}${r.target?.met === false ? ' (target missed)' : ''}`,
      );
    }
    runs.push(result);
  }
  for (let i = 0; i < runs[0].length; i++) {
    const candidates = runs.map((r) => r[i]).filter(Boolean);
    if (candidates.length === 1) {
      rows.push(candidates[0]);
      continue;
    }
    const key = (r) => r.ratio ?? r.rps ?? -Infinity;
    const chosen = [...candidates].sort((a, b) => key(a) - key(b))[Math.floor((candidates.length - 1) / 2)];
    chosen.note = `median of ${candidates.length} runs (ratios ${candidates.map((r) => (r.ratio === undefined ? '—' : `${(r.ratio * 100).toFixed(0)} %`)).join(', ')}; req/s ${candidates.map((r) => fmtInt(r.rps)).join(', ')}); ${chosen.note}`;
    rows.push(chosen);
  }
}

let ceiling;
if (ceilings.length) {
  ceiling = { rps: median(ceilings.map((c) => c.rps)), p99: median(ceilings.map((c) => c.p99)) };
  const spread = ceilings.map((c) => fmtInt(c.rps)).join(', ');
  rows.unshift(
    row({
      scenario: `ceiling: bare node:http, 2 KB JSON (median of ${ceilings.length})`,
      rps: ceiling.rps,
      p99: ceiling.p99,
      ratio: 1,
      note: [
        `runs: ${spread} req/s`,
        steadyNote(ceilings[0]) + ' (first run)',
        fmtCpu(ceilings[0].cpu) + ' (first run)',
        ceilings.some((c) => c.non2xx || c.errors) ? 'WARNING non-2xx or errors in a ceiling run' : '',
      ]
        .filter(Boolean)
        .join('; '),
    }),
  );
}

const notes = [
  'The load generator (autocannon, one thread in the bench process) runs on the same 2-core machine as the server and competes with it for CPU; the CPU figures in the notes say how much each took (100 % = one core). Ratios to the ceiling share that handicap; absolute figures on a dedicated client machine would be higher.',
  'Each scenario runs against a fresh `muster server` child process (own free loopback port, own temp data dir, --log-level warn, all other options at their defaults: SQLite synchronous=full, batch.maxSize 512, batch.maxWaitMs 0). Setup registrations happen before the measured run; instances use ttl 60 s so none expires during a scenario.',
  "Ratios to the ceiling divide by the mean of the ceiling runs taken just before and just after that scenario, because the shared machine's capacity drifts between minutes.",
  'req/s counts 2xx answers only; non-2xx answers and socket errors are flagged in the note. The p99 column is autocannon\'s (HdrHistogram, ms, every request); "steady p99" leaves out each connection\'s first request, because a saturated Node server admits about one new connection per event-loop turn and the last connections of a short run wait seconds for their first answer (a property of Node, reproduced with a bare server).',
  'Long-poll rows: the p99 column is the wake latency, from the moment the write\'s acknowledgement had been read by the bench to the first byte of each long-poll answer; the "floor" is the same harness against a bare node:http server that answers all parked requests at once, i.e. what this machine and client cost with no registry at all.',
  'Memory row: heap used (muster_nodejs_heap_size_used_bytes) after a full GC forced through a bench-only preload (node --expose-gc --import bench/lib/gc-hook.mjs, SIGUSR2), before and after the fill, divided by the instances added; the settled figure without forced GC and resident memory (muster_process_resident_memory_bytes) are given beside it.',
  'Pick rows (SDK load balancers, packages/client/dist/balance): pick() calls per second in the bench process itself, no I/O (the MusterClient.pick row keeps its view from a real server over gRPC); the req/s column holds picks/s and the ratio column is to the baseline row measured in the same run (a bare `arr[(Math.random() * n) | 0]` loop), not to the HTTP ceiling. Every case runs in its own compiled loop, the cases interleaved over the rounds, median of the rounds kept. Instances have uneven weights (1..1000) over 3 regions × 3 zones unless the row says otherwise; ring-hash keys cycle through 4,096 strings.',
  'Registrations use autocannon setupRequest to give every request a new host, so each is a 201 that inserts rows (durable: acknowledged after the SQLite transaction committed with synchronous=full).',
  GRPC_NOTE,
  ...(selected.some((s) => CLUSTER_SCENARIOS.includes(s)) ? [CLUSTER_NOTE_TEXT] : []),
];
const table = markdownTable(rows);
console.log(`\n${table}\n`);
console.log(`command: ${commandLine()}`);
// BENCH_RESULTS=file keeps what-if runs (other flags, other sizes) from replacing the record.
const out = path.resolve(process.env.BENCH_RESULTS ?? path.join(here, 'results.md'));
writeResults(out, { rows, ceiling, started, scenarios: selected.map((s) => s.name), notes });
log(`written ${path.relative(process.cwd(), out)}`);
