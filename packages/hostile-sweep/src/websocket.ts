import { readFileSync } from 'node:fs';
import net from 'node:net';
import { ANSWER_DEADLINE_MS, type RawRequest, requestHead } from './raw-http';
import type { Runner } from './runner';
import { type HostileStack, KEYS, serviceToken } from './stack';

interface UpgradeResult {
  status: number | undefined;
  contentType?: string;
  /** ms until the server closed the connection after answering; undefined if it stayed open. */
  closedAfter?: number;
  ms: number;
  socket?: net.Socket;
}

const UPGRADE_HEADERS: [string, string][] = [
  ['Upgrade', 'websocket'],
  ['Connection', 'Upgrade'],
  ['Sec-WebSocket-Key', 'dGhlIHNhbXBsZSBub25jZQ=='],
  ['Sec-WebSocket-Version', '13'],
];

/**
 * Sends an upgrade request; keeps the socket open on 101 (the caller closes it). Any other
 * answer resolves at once, or, with `waitClose`, when the server closes the connection.
 */
function upgrade(port: number, req: RawRequest, waitClose = false): Promise<UpgradeResult> {
  const started = Date.now();
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    let head: { status: number; contentType?: string; at: number } | undefined;
    const done = (r: UpgradeResult) => {
      clearTimeout(timer);
      resolve(r);
    };
    const timer = setTimeout(() => {
      socket.destroy();
      done({ status: head?.status, contentType: head?.contentType, ms: Date.now() - started });
    }, ANSWER_DEADLINE_MS);
    socket.on('connect', () => socket.write(requestHead(req, `127.0.0.1:${port}`)));
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (head) return;
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const text = buf.subarray(0, end).toString('latin1');
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1] ?? 0);
      const contentType = /\r\ncontent-type:\s*([^\r\n]+)/i.exec(text)?.[1];
      head = { status, contentType, at: Date.now() };
      if (status === 101) {
        socket.removeAllListeners('close');
        done({ status, ms: Date.now() - started, socket });
      } else if (!waitClose) {
        socket.removeAllListeners('close');
        socket.destroy();
        done({ status, contentType, ms: Date.now() - started });
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () =>
      done({
        status: head?.status,
        contentType: head?.contentType,
        closedAfter: head ? Date.now() - head.at : undefined,
        ms: Date.now() - started,
      }),
    );
  });
}

/** Server-side sockets of established connections to `port` (Linux /proc/net/tcp). */
function established(port: number): number {
  return connections(port).size;
}

/** The established connections to a local port, by the peer's address and port. */
function connections(port: number): Set<string> {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  const n = new Set<string>();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols[1]?.endsWith(`:${hex}`) && cols[3] === '01') n.add(cols[2]!);
    }
  }
  return n;
}

const settle = () => new Promise((r) => setTimeout(r, 150));

/**
 * WebSocket upgrades: through the gateway without a valid key they are refused (401
 * problem+json), the connection closes, and no socket to the tracker stays behind; a valid
 * key gets through (so the measure is known to see a socket). An upgrade on a path that is
 * no WebSocket is answered, or closed, within 10 s on every service.
 */
export async function websocketChecks(stack: HostileStack, runner: Runner): Promise<number> {
  let inputs = 0;
  const gateway = stack.get('gateway');
  const tracker = stack.get('quantum-tracker');
  const flag = (where: string, cause: string, detail: string, req: RawRequest) =>
    runner.flagRun(where, cause, detail, 'websocket', req);
  // The state a gateway is in once anyone used the tracker through it (the sweep did, but a
  // HOSTILE_ONLY run may not have): one ordinary proxied call first.
  await fetch(`${gateway.url}/api/v1/queue`, {
    headers: { 'X-API-Key': KEYS.read },
    signal: AbortSignal.timeout(10_000),
  });

  const refusals: {
    path: string;
    label: string;
    headers: [string, string][];
    query: string;
    direct?: boolean;
  }[] = [
    { path: '/api/v1/ws/queue', label: 'tracker directly, no token', headers: [], query: '', direct: true },
    {
      path: '/api/v1/ws/jobs',
      label: 'tracker directly, wrong ?token=',
      headers: [],
      query: '?token=hostile-wrong',
      direct: true,
    },
  ];
  for (const path of ['/api/v1/ws/queue', '/api/events']) {
    refusals.push(
      { path, label: 'no key', headers: [], query: '' },
      {
        path,
        label: 'wrong X-API-Key',
        headers: [['X-API-Key', 'hostile-unknown-key-0123456789']],
        query: '',
      },
      {
        path,
        label: 'wrong Bearer',
        headers: [['Authorization', 'Bearer hostile-unknown-key-0123456789']],
        query: '',
      },
      { path, label: 'wrong ?api_key=', headers: [], query: '?api_key=hostile-unknown-key-0123456789' },
      { path, label: 'empty ?api_key=', headers: [], query: '?api_key=' },
      {
        path,
        label: '?api_key= twice, wrong then right',
        headers: [],
        query: `?api_key=hostile-unknown-key-0123456789&api_key=${KEYS.read}`,
      },
      {
        path,
        label: 'tracker token as ?token=',
        headers: [],
        query: `?token=${serviceToken('quantum-tracker')}`,
      },
    );
  }
  for (const r of refusals) {
    const req: RawRequest = {
      method: 'GET',
      target: r.path + r.query,
      headers: [...UPGRADE_HEADERS, ...r.headers],
    };
    await settle();
    const before = established(tracker.port);
    const got = await upgrade(r.direct ? tracker.port : gateway.port, req, true);
    inputs++;
    got.socket?.destroy();
    await settle();
    const after = established(tracker.port);
    const where = `${r.direct ? 'quantum-tracker' : 'gateway'} GET ${r.path} (upgrade, ${r.label})`;
    if (got.status !== 401 || !/problem\+json/.test(got.contentType ?? ''))
      flag(
        where,
        got.status === 101
          ? 'upgrade accepted without a valid key'
          : `upgrade answered ${got.status ?? 'nothing'}`,
        `expected 401 problem+json, got ${got.status ?? 'no answer'} (${got.contentType ?? 'no Content-Type'}) after ${got.ms} ms`,
        req,
      );
    else if (got.closedAfter === undefined)
      flag(
        where,
        'refused upgrade left the connection open',
        `no close within ${ANSWER_DEADLINE_MS} ms of the 401`,
        req,
      );
    if (!r.direct && after > before)
      flag(
        where,
        'refused upgrade left a socket to the tracker',
        `established connections to the tracker: ${before} before, ${after} after (after one ordinary GET /api/v1/queue through the gateway)`,
        req,
      );
  }

  // The measure must see a socket when one is opened; otherwise its silence above means nothing.
  // Two at once: the gateway's keep-alive agent may hand its idle socket to one of them (an
  // upgrade can reuse it), so only the second is sure to be a new connection.
  const valid: RawRequest = {
    method: 'GET',
    target: `/api/v1/ws/queue?api_key=${KEYS.read}`,
    headers: UPGRADE_HEADERS,
  };
  await settle();
  const before = connections(tracker.port);
  const [ok, second] = await Promise.all([upgrade(gateway.port, valid), upgrade(gateway.port, valid)]);
  inputs += 2;
  await settle();
  // A connection that was not there before (an idle keep-alive one may close meanwhile).
  const opened = [...connections(tracker.port)].filter((c) => !before.has(c)).length;
  ok.socket?.destroy();
  second.socket?.destroy();
  if (ok.status !== 101 || second.status !== 101)
    flag(
      'gateway GET /api/v1/ws/queue (upgrade, read key in ?api_key=)',
      `valid upgrade answered ${ok.status ?? 'nothing'} and ${second.status ?? 'nothing'}`,
      'a browser-style upgrade with a read key must be accepted (101)',
      valid,
    );
  else if (opened === 0)
    throw new Error(
      'harness: an accepted upgrade opened no socket to the tracker, so the socket check cannot be trusted',
    );

  // Upgrades on paths that are no WebSocket: answered (refused) or closed within 10 s. All at once:
  // a service that ignores them costs the 10 s once.
  const probes: { where: string; port: number; req: RawRequest }[] = [];
  for (const p of stack.services.values()) {
    const token = serviceToken(p.name);
    const targets: [string, [string, string][]][] = [
      ['/health', []],
      [
        p.name === 'gateway' ? '/api/db/overview' : '/metrics',
        p.name === 'gateway' ? [['X-API-Key', KEYS.read]] : [],
      ],
    ];
    if (p.name === 'quantum-tracker')
      targets.push(['/api/v1/ws/nothing', [['Authorization', `Bearer ${token}`]]]);
    for (const [target, auth] of targets)
      probes.push({
        where: `${p.name} GET ${target} (upgrade on a path that is no WebSocket)`,
        port: p.port,
        req: { method: 'GET', target, headers: [...UPGRADE_HEADERS, ...auth] },
      });
  }
  await Promise.all(
    probes.map(async ({ where, port, req }) => {
      const got = await upgrade(port, req);
      inputs++;
      got.socket?.destroy();
      if (got.status === 101)
        flag(where, 'upgrade accepted on a path that is no WebSocket', `101 after ${got.ms} ms`, req);
      else if (got.status === undefined && got.closedAfter === undefined && got.ms >= ANSWER_DEADLINE_MS)
        flag(
          where,
          'upgrade on a path that is no WebSocket: no answer within 10 s',
          `nothing came back in ${got.ms} ms`,
          req,
        );
    }),
  );
  return inputs;
}
