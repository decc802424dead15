import { useQueryClient } from '@tanstack/react-query';
import { createContext, type ReactNode, useContext, useEffect, useRef, useState } from 'react';
import { storedKey } from './api';

/** A CloudEvent as the gateway's /api/events relays it from MQTT. */
export interface LiveEvent {
  id: string;
  type: string;
  source: string;
  subject?: string;
  time: string;
  data?: Record<string, unknown>;
}

export type LiveStatus = 'connecting' | 'live' | 'reconnecting' | 'offline';

/** qlab/<service>/<type>: the MQTT topic an event was published on (source is /qlab/<service>). */
export function topicOf(e: LiveEvent): string {
  return `${e.source.replace(/^\//, '')}/${e.type}`;
}

/** MQTT filter match (+ one level, # the rest), as the gateway applies it. */
export function topicMatches(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true;
    if (i >= t.length) return false;
    if (f[i] !== '+' && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}

/** Which cached queries an event makes stale, by the service that sent it. */
const QUERIES_OF: Record<string, string[]> = {
  'job-worker': ['jobs', 'overview'],
  'calibration-store': ['calibrations', 'overview'],
  'chunked-upload': ['uploads', 'overview'],
  'quantum-tracker': ['quantum', 'overview'],
};

const FEED_SIZE = 300;

interface Live {
  status: LiveStatus;
  events: LiveEvent[];
  /** Attempts since the last good connection; the next wait grows with it. */
  retries: number;
}

const LiveContext = createContext<Live>({ status: 'offline', events: [], retries: 0 });

/** The socket URL of a gateway path on this page's own origin. */
function socketUrl(pathAndQuery: string): string {
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${pathAndQuery}`;
}

interface SocketHandlers {
  /** A message; answers true when it proves the socket is live (then backoff starts over). */
  onMessage(data: unknown): boolean;
  onStatus(status: LiveStatus, retries: number): void;
}

/**
 * A WebSocket through the gateway that keeps itself open: the key goes as the `qlab-key.`
 * subprotocol (never in the URL); a closed socket is opened again after 0.5 s, doubling up to
 * 15 s, with jitter, so a restarted gateway is not stampeded. Returns its stop function.
 */
export function keepSocketOpen(pathAndQuery: string, apiKey: string, handlers: SocketHandlers): () => void {
  let socket: WebSocket | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let attempt = 0;
  let stopped = false;
  const open = () => {
    handlers.onStatus(attempt === 0 ? 'connecting' : 'reconnecting', attempt);
    socket = new WebSocket(socketUrl(pathAndQuery), ['qlab', `qlab-key.${apiKey}`]);
    socket.onmessage = (m) => {
      let data: unknown;
      try {
        data = JSON.parse(String(m.data));
      } catch {
        return;
      }
      if (handlers.onMessage(data)) {
        attempt = 0;
        handlers.onStatus('live', 0);
      }
    };
    socket.onclose = () => {
      if (stopped) return;
      attempt++;
      handlers.onStatus('reconnecting', attempt);
      const wait = Math.min(15_000, 500 * 2 ** (attempt - 1)) * (0.5 + Math.random() / 2);
      timer = setTimeout(open, wait);
    };
  };
  open();
  return () => {
    stopped = true;
    clearTimeout(timer);
    socket?.close();
  };
}

/**
 * One WebSocket to /api/events for the whole console: "live" only after the gateway says
 * `subscribed`. Each event marks its service's queries stale, so open pages refetch.
 */
export function LiveProvider({ apiKey, children }: { apiKey: string | null; children: ReactNode }) {
  const client = useQueryClient();
  const [status, setStatus] = useState<LiveStatus>('offline');
  const [events, setEvents] = useState<LiveEvent[]>([]);
  const [retries, setRetries] = useState(0);
  const stale = useRef(new Set<string>());

  useEffect(() => {
    if (!apiKey) {
      setStatus('offline');
      return;
    }
    // Invalidations are batched: a burst of 500 job events is one refetch per page.
    const flush = setInterval(() => {
      for (const k of stale.current) client.invalidateQueries({ queryKey: [k] });
      stale.current.clear();
    }, 500);
    const stop = keepSocketOpen(`/api/events?topic=${encodeURIComponent('qlab/#')}`, apiKey, {
      onStatus(s, n) {
        setStatus(s);
        setRetries(n);
      },
      onMessage(data) {
        const e = data as LiveEvent;
        if (e.type === 'subscribed' && !e.source) {
          // Whatever happened while we were away: refetch everything once.
          client.invalidateQueries();
          return true;
        }
        setEvents((list) => [e, ...list].slice(0, FEED_SIZE));
        const service = e.source?.replace(/^\/qlab\//, '').replace(/^analytics-.*/, 'analytics') ?? '';
        for (const k of QUERIES_OF[service] ?? (service === 'analytics' ? ['analytics', 'overview'] : []))
          stale.current.add(k);
        return false;
      },
    });
    return () => {
      clearInterval(flush);
      stop();
    };
  }, [apiKey, client]);

  return <LiveContext.Provider value={{ status, events, retries }}>{children}</LiveContext.Provider>;
}

/**
 * The tracker's own channel (/api/v1/ws/dashboard, jobs or queue, the seed's dashboard sockets)
 * through the gateway: every message marks `queryKey` stale (at most once a second). Answers the
 * channel's live state for the page to show.
 */
export function useTrackerChannel(channel: 'dashboard' | 'jobs' | 'queue', queryKey: string[]): LiveStatus {
  const client = useQueryClient();
  const [status, setStatus] = useState<LiveStatus>('connecting');
  const apiKey = storedKey.get();
  const key = queryKey.join('\u0000');
  useEffect(() => {
    if (!apiKey) return;
    let dirty = false;
    const flush = setInterval(() => {
      if (dirty) client.invalidateQueries({ queryKey: key.split('\u0000') });
      dirty = false;
    }, 1000);
    const stop = keepSocketOpen(`/api/v1/ws/${channel}`, apiKey, {
      onStatus: (s) => setStatus(s),
      onMessage(data) {
        // The tracker greets each client with `welcome`; everything after is a change.
        if ((data as { type?: string }).type === 'welcome') return true;
        dirty = true;
        return false;
      },
    });
    return () => {
      clearInterval(flush);
      stop();
    };
  }, [apiKey, channel, client, key]);
  return status;
}

export function useLive(): Live {
  return useContext(LiveContext);
}
