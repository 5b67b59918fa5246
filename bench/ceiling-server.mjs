// The ceiling: the least a Node HTTP server can do per request on this machine (a fixed 2 KB JSON
// body, no routing, no parsing). Run as its own process so it gets a core the way Muster does.
import http from 'node:http';

const port = Number(process.argv[2]);
const instances = [];
for (let i = 0; instances.length === 0 || JSON.stringify(instances).length < 1900; i++) {
  instances.push({ id: `i${i}`, host: `10.0.0.${i}`, port: 8080, weight: 100, healthy: true, metadata: { zone: 'a' } });
}
const bare = JSON.stringify({ revision: 1, instances, pad: '' });
const body = JSON.stringify({ revision: 1, instances, pad: 'x'.repeat(Math.max(0, 2048 - bare.length)) });
const bytes = Buffer.from(body);
if (bytes.length !== 2048) throw new Error(`ceiling body is ${bytes.length} bytes, wanted 2048`);
JSON.parse(body);

http.createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': bytes.length });
    res.end(bytes);
  });
}).listen(port, '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));
