// Baseline for the transfer benchmark: the least a Node server can do. POST streams the body
// to a file (fsynced, like the store); GET streams that file back.
import { createReadStream, createWriteStream, statSync } from 'node:fs';
import { createServer } from 'node:http';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';

const file = path.join(process.argv[2] ?? '.', 'bare-upload.bin');
const server = createServer(async (req, res) => {
  try {
    if (req.method === 'POST') {
      await pipeline(req, createWriteStream(file, { flush: true }));
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    } else {
      res.writeHead(200, { 'content-length': statSync(file).size, 'content-type': 'application/zip' });
      await pipeline(createReadStream(file), res);
    }
  } catch (err) {
    res.destroy(err);
  }
});
server.requestTimeout = 0;
server.listen(0, '127.0.0.1', () => {
  console.log(JSON.stringify({ url: `http://127.0.0.1:${server.address().port}` }));
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
