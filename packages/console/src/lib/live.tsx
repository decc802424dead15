import { useQueryClient } from '@tanstack/react-query';
import { createContext, type ReactNode, useContext, useEffect, useRef, useState } from 'react';

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

/**
 * One WebSocket to /api/events for the whole console: the key goes as the `qlab-key.` subprotocol
 * (never in the URL). "live" only after the gateway says `subscribed`. A closed socket is opened
 * again after 0.5 s, doubling up to 15 s, with jitter, so a restarted gateway is not stampeded.
 * Each event marks its service's queries stale, so open pages refetch.
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
    let socket: WebSocket | undefined;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let attempt = 0;
    let stopped = false;
    // Invalidations are batched: a burst of 500 job events is one refetch per page.
    const flush = setInterval(() => {
      for (const k of stale.current) client.invalidateQueries({ queryKey: [k] });
      stale.current.clear();
    }, 500);

    const open = () => {
      setStatus(attempt === 0 ? 'connecting' : 'reconnecting');
      const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/api/events?topic=${encodeURIComponent('qlab/#')}`;
      socket = new WebSocket(url, ['qlab', `qlab-key.${apiKey}`]);
      socket.onmessage = (m) => {
        let e: LiveEvent & { topic?: string };
        try {
          e = JSON.parse(String(m.data));
        } catch {
          return;
        }
        if (e.type === 'subscribed' && !e.source) {
          attempt = 0;
          setRetries(0);
          setStatus('live');
          // Whatever happened while we were away: refetch everything once.
          client.invalidateQueries();
          return;
        }
        setEvents((list) => [e, ...list].slice(0, FEED_SIZE));
        const service = e.source?.replace(/^\/qlab\//, '').replace(/^analytics-.*/, 'analytics') ?? '';
        for (const k of QUERIES_OF[service] ?? (service === 'analytics' ? ['analytics', 'overview'] : []))
          stale.current.add(k);
      };
      socket.onclose = () => {
        if (stopped) return;
        attempt++;
        setRetries(attempt);
        setStatus('reconnecting');
        const wait = Math.min(15_000, 500 * 2 ** (attempt - 1)) * (0.5 + Math.random() / 2);
        timer = setTimeout(open, wait);
      };
    };
    open();
    return () => {
      stopped = true;
      clearTimeout(timer);
      clearInterval(flush);
      socket?.close();
    };
  }, [apiKey, client]);

  return <LiveContext.Provider value={{ status, events, retries }}>{children}</LiveContext.Provider>;
}

export function useLive(): Live {
  return useContext(LiveContext);
}
