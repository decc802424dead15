// Baseline for the upload benchmark: the least a Node server can do with an upload, piping the
// body to a file (fsynced at the end, as our server does before acknowledging).
import { createWriteStream } from 'node:fs';
import { createServer } from 'node:http';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';

const dir = process.argv[2] ?? '.';
let n = 0;
const server = createServer(async (req, res) => {
  try {
    await pipeline(req, createWriteStream(path.join(dir, `bare-${n++}.bin`), { flush: true }));
    res.writeHead(204).end();
  } catch (err) {
    res.destroy(err);
  }
});
server.requestTimeout = 0;
server.listen(0, '127.0.0.1', () => {
  console.log(JSON.stringify({ url: `http://127.0.0.1:${server.address().port}` }));
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
