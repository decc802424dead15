// Runs s3rver (a local S3-compatible server, test code only) in its own process: argv are the
// folder and the bucket; prints the port once listening. Its continuation tokens use a cipher
// OpenSSL 3 keeps in the legacy provider, so the parent starts this with --openssl-legacy-provider.
const S3rver = require('s3rver');

const [directory, bucket] = process.argv.slice(2);
const server = new S3rver({
  address: process.env.S3RVER_ADDRESS || '127.0.0.1',
  port: 0,
  silent: process.env.S3RVER_LOG !== '1',
  directory,
  configureBuckets: [{ name: bucket }],
});
server.run().then(
  (address) => process.stdout.write(`port ${address.port}\n`),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
process.on('SIGTERM', () => server.close(() => process.exit(0)));
