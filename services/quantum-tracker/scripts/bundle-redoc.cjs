// After the build: ReDoc's standalone bundle (a dev dependency) goes into dist/, so /redoc is
// served from this service with no CDN and the production image carries one file, not the
// package and its React tree.
const { copyFileSync } = require('node:fs');
const path = require('node:path');

const bundles = path.dirname(require.resolve('redoc/bundles/redoc.standalone.js'));
const dist = path.join(__dirname, '..', 'dist');
for (const name of ['redoc.standalone.js', 'redoc.standalone.js.LICENSE.txt'])
  copyFileSync(path.join(bundles, name), path.join(dist, name));
