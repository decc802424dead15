// Baseline for the upload benchmark: @tus/server with its file store, default options.
import { createServer } from 'node:http';
import { FileStore } from '@tus/file-store';
import { Server } from '@tus/server';

const tus = new Server({
  path: '/files',
  datastore: new FileStore({ directory: process.argv[2] ?? './tus-files' }),
});
const server = createServer((req, res) => tus.handle(req, res));
server.requestTimeout = 0;
server.listen(0, '127.0.0.1', () => {
  console.log(JSON.stringify({ url: `http://127.0.0.1:${server.address().port}` }));
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
