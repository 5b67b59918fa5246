import fs from 'node:fs';

const TICKS_PER_SECOND = 100; // USER_HZ on Linux; /proc reports CPU time in these

function procCpuSeconds(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / TICKS_PER_SECOND;
  } catch {
    return undefined;
  }
}

/**
 * CPU used by the server process and by this process (autocannon runs here) over a run: on a
 * 2-core machine the two compete, and a server near 100 % of one core is CPU-bound while a
 * server well below it waits on something else (the disk, the load generator).
 */
export function cpuProbe(serverPid) {
  const t0 = performance.now();
  const s0 = procCpuSeconds(serverPid);
  const c0 = process.cpuUsage();
  return () => {
    const wall = (performance.now() - t0) / 1000;
    const s1 = procCpuSeconds(serverPid);
    const c1 = process.cpuUsage(c0);
    return {
      server: s0 === undefined || s1 === undefined ? undefined : (s1 - s0) / wall,
      loadgen: (c1.user + c1.system) / 1e6 / wall,
    };
  };
}

export const fmtCpu = (c) =>
  c
    ? `CPU server ${c.server === undefined ? '?' : Math.round(c.server * 100)} % / loadgen ${Math.round(c.loadgen * 100)} %`
    : '';
