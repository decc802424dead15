import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { Parser } from '@asyncapi/parser';
import { type AsyncApiDocument, asyncApiDocument, type EventCatalogue, eventTable } from '@qlab/events';
import { analyticsDomains } from '@qlab/registry';
import { analyticsEvents, startDomain } from 'analytics/testing';
import { calibrationEvents, startStore } from 'calibration-store/testing';
import { startUploads, uploadEvents } from 'chunked-upload/testing';
import { jobEvents, startQueue } from 'job-worker/testing';
import { startTracker, trackerEvents } from 'quantum-tracker/testing';
import { startGateway } from './helpers';

const ROOT = path.resolve(__dirname, '../..');

/** Every service's catalogue, with the README that documents its events. */
const CATALOGUES: { catalogue: EventCatalogue; readme: string }[] = [
  { catalogue: calibrationEvents, readme: 'services/calibration-store/README.md' },
  { catalogue: uploadEvents, readme: 'services/chunked-upload/README.md' },
  { catalogue: jobEvents, readme: 'services/job-worker/README.md' },
  { catalogue: trackerEvents, readme: 'services/quantum-tracker/README.md' },
  ...analyticsDomains.map((d) => ({ catalogue: analyticsEvents(d), readme: 'services/analytics/README.md' })),
];

/** The AsyncAPI parser's errors for a document (warnings and hints are not failures). */
async function asyncApiErrors(doc: unknown): Promise<string[]> {
  const { diagnostics } = await new Parser().parse(JSON.stringify(doc));
  // Spectral severities: 0 error, 1 warning, 2 info, 3 hint.
  return diagnostics.filter((d) => d.severity === 0).map((d) => `${d.path.join('.')}: ${d.message}`);
}

/** A README's "## Events" section. */
function eventsSection(readme: string): string {
  const text = readFileSync(path.join(ROOT, readme), 'utf8');
  return text.split(/^## Events$/m)[1]?.split(/^## /m)[0] ?? '';
}

describe('the event catalogues', () => {
  it('make one valid AsyncAPI 3.0 document', async () => {
    const doc = asyncApiDocument(
      CATALOGUES.map((c) => c.catalogue),
      { title: 'qlab events', description: 'every event' },
    );
    expect(await asyncApiErrors(doc)).toEqual([]);
    // The parser does refuse: a channel pointing at a message that is not there is an error.
    const broken = structuredClone(doc);
    delete broken.components.messages['job-worker.job.completed'];
    expect(await asyncApiErrors(broken)).not.toEqual([]);
    expect(Object.keys(doc.channels).length).toBe(
      CATALOGUES.reduce((n, c) => n + Object.keys(c.catalogue.events).length, 0),
    );
    expect(doc.channels['job-worker.job.completed']).toMatchObject({
      address: 'qlab/job-worker/job.completed',
    });
  });

  it("are each README's event table, row for row", () => {
    const byReadme = new Map<string, EventCatalogue[]>();
    for (const { catalogue, readme } of CATALOGUES)
      byReadme.set(readme, [...(byReadme.get(readme) ?? []), catalogue]);
    for (const [readme, catalogues] of byReadme) {
      // On a failure the expected table is printed: paste it into the README.
      const table = eventsSection(readme)
        .split('\n')
        .filter((line) => line.startsWith('|'))
        .join('\n');
      expect({ readme, table }).toEqual({ readme, table: eventTable(catalogues) });
    }
  });

  it('refuse an undeclared type or data that does not match, before anything is written', () => {
    expect(() => uploadEvents.check('upload.started', {})).toThrow(/declares no event "upload.started"/);
    expect(() => uploadEvents.check('upload.completed', { id: 'x' })).toThrow(/does not match/);
    expect(() =>
      jobEvents.check('job.started', {
        job_id: 'a',
        task_type: 't',
        status: 'processing',
        progress: 0,
        attempt: 1,
      }),
    ).toThrow(/worker_id/);
    // Not a way in: inherited names are not declarations.
    expect(() => uploadEvents.check('constructor', {})).toThrow(/declares no event/);
  });
});

describe('GET /asyncapi.json on the gateway', () => {
  it('merges every running service into one valid document, naming those that are down', async () => {
    const store = await startStore();
    const uploads = await startUploads();
    const queue = await startQueue();
    const tracker = await startTracker();
    const domain = await startDomain('benchmark');
    const gw = await startGateway({
      keys: [],
      services: {
        'calibration-store': { url: store.url },
        'chunked-upload': { url: uploads.url },
        'job-worker': { url: queue.url },
        'quantum-tracker': { url: tracker.url },
        'analytics-benchmark': { url: domain.url },
      },
    });
    try {
      // Open, like /openapi.json: it describes the system, it does not reveal data.
      const res = await fetch(`${gw.url}/asyncapi.json`);
      expect(res.status).toBe(200);
      const doc = (await res.json()) as AsyncApiDocument & { 'x-qlab-missing-services'?: string[] };
      expect(await asyncApiErrors(doc)).toEqual([]);
      const services = new Set(Object.keys(doc.channels).map((k) => k.split('.')[0]));
      expect([...services].sort()).toEqual([
        'analytics-benchmark',
        'calibration-store',
        'chunked-upload',
        'job-worker',
        'quantum-tracker',
      ]);
      // The two analytics domains not started are named, not silently left out.
      expect(doc['x-qlab-missing-services']?.sort()).toEqual(['analytics-generator', 'analytics-test']);
      expect(doc.info.description).toMatch(/unreachable when this was built: .*analytics-test/);
    } finally {
      await gw.close();
      await Promise.all([store.close(), uploads.close(), queue.close(), tracker.close(), domain.cleanup()]);
    }
  });

  it('names a service whose answer is not its AsyncAPI document as missing', async () => {
    const odd = createServer((_req, res) =>
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}'),
    );
    await new Promise<void>((r) => odd.listen(0, '127.0.0.1', r));
    const gw = await startGateway({
      keys: [],
      services: { 'job-worker': { url: `http://127.0.0.1:${(odd.address() as AddressInfo).port}` } },
    });
    try {
      const doc = (await (await fetch(`${gw.url}/asyncapi.json`)).json()) as {
        'x-qlab-missing-services': string[];
      };
      expect(doc['x-qlab-missing-services']).toContain('job-worker');
      expect(await asyncApiErrors(doc)).toEqual([]);
    } finally {
      await gw.close();
      odd.close();
    }
  });

  it('is also served by each service for its own events', async () => {
    const uploads = await startUploads();
    try {
      const doc = (await (await fetch(`${uploads.url}/asyncapi.json`)).json()) as AsyncApiDocument;
      expect(await asyncApiErrors(doc)).toEqual([]);
      expect(Object.keys(doc.channels)).toEqual(['chunked-upload.upload.completed']);
    } finally {
      await uploads.close();
    }
  });
});
