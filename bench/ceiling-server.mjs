// The ceiling: the least a Node HTTP server can do per request on this machine (a fixed 2 KB JSON
// body, no routing, no parsing). Run as its own process so it gets a core the way Muster does.
import http from 'node:http';

const port = Number(process.argv[2]);
// The body size may be changed for what-if runs (Muster's 10-instance answer is ~4.3 KB).
const size = Number(process.argv[3] ?? 2048);
const instances = [];
for (let i = 0; instances.length === 0 || JSON.stringify(instances).length < size - 148; i++) {
  instances.push({ id: `i${i}`, host: `10.0.0.${i}`, port: 8080, weight: 100, healthy: true, metadata: { zone: 'a' } });
}
const bare = JSON.stringify({ revision: 1, instances, pad: '' });
const body = JSON.stringify({ revision: 1, instances, pad: 'x'.repeat(Math.max(0, size - bare.length)) });
const bytes = Buffer.from(body);
if (bytes.length !== size) throw new Error(`ceiling body is ${bytes.length} bytes, wanted ${size}`);
JSON.parse(body);

const answer = (res) => {
  res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': bytes.length });
  res.end(bytes);
};

// The long-poll floor: /hold parks a request, /release answers every parked one and then
// itself, the order Muster wakes watchers and acknowledges the write in.
const parked = [];
http
  .createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      if (req.url === '/hold') parked.push(res);
      else if (req.url === '/parked') res.end(String(parked.length));
      else if (req.url === '/release') {
        for (const r of parked.splice(0)) answer(r);
        answer(res);
      } else answer(res);
    });
  })
  .listen(port, '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));
