import { type ComponentType, createElement, lazy, Suspense, useEffect } from 'react';
import { Link, Route, Switch, useLocation } from 'wouter';
import { AuthProvider, useAuth } from './lib/auth';
import { LiveProvider, useLive } from './lib/live';
import { CalibrationDetail } from './pages/calibration-detail';
import { Calibrations } from './pages/calibrations';
import { JobDetail } from './pages/job-detail';
import { Jobs } from './pages/jobs';
import { Keys } from './pages/keys';
import { Overview } from './pages/overview';
import { SignIn } from './pages/sign-in';

// The heavy pages load on first visit: Uppy, the virtualized tables and the charts of a domain
// stay out of the first page's JavaScript (budget: 300 KB gzipped).
/**
 * A page whose code loads on first visit, or earlier by `prefetch`; once loaded it renders at
 * once, without suspending (React.lazy would show the fallback for a frame even then).
 */
function lazyPage<M, P extends object>(load: () => Promise<M>, pick: (m: M) => ComponentType<P>) {
  let loaded: ComponentType<P> | undefined;
  const fetchPage = () =>
    load().then((m) => {
      loaded = pick(m);
      return { default: loaded };
    });
  const Lazy = lazy(fetchPage);
  // biome-ignore lint/correctness/noComponentHookFactories: called once per page, at module level.
  const Page = (props: P) => createElement(loaded ?? (Lazy as unknown as ComponentType<P>), props);
  return { Page, prefetch: () => fetchPage().then(() => undefined) };
}

const uploads = lazyPage(
  () => import('./pages/uploads'),
  (m) => m.Uploads,
);
const quantum = lazyPage(
  () => import('./pages/quantum'),
  (m) => m.Quantum,
);
const analytics = lazyPage(
  () => import('./pages/analytics'),
  (m) => m.Analytics,
);
const Uploads = uploads.Page;
const Quantum = quantum.Page;
const Analytics = analytics.Page;

/** Once signed in and idle, fetch the other pages' code, so a first visit does not wait for it. */
function usePrefetchPages() {
  useEffect(() => {
    const load = () => {
      for (const p of [quantum, analytics, uploads]) p.prefetch().catch(() => undefined);
    };
    const idle = window.requestIdleCallback;
    if (idle) {
      const id = idle(load, { timeout: 3000 });
      return () => window.cancelIdleCallback(id);
    }
    const t = setTimeout(load, 1000);
    return () => clearTimeout(t);
  }, []);
}

const NAV: [string, string, boolean?][] = [
  ['/', 'Overview'],
  ['/calibrations', 'Calibrations'],
  ['/uploads', 'Uploads'],
  ['/jobs', 'Jobs'],
  ['/quantum', 'Quantum'],
  ['/analytics', 'Analytics'],
  ['/keys', 'Keys', true],
];

function LiveBadge() {
  const { status, retries } = useLive();
  const text = status === 'live' ? 'live' : status === 'reconnecting' ? `reconnecting (${retries})` : status;
  return (
    <output className={`live ${status}`} aria-live="polite" title="Live updates from /api/events">
      {text}
    </output>
  );
}

function Shell() {
  const { me, signOut, can } = useAuth();
  const [path] = useLocation();
  usePrefetchPages();
  if (!me) return null;
  return (
    <>
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="top">
        <strong className="brand">qlab</strong>
        <nav aria-label="Main">
          {NAV.filter(([, , admin]) => !admin || can('admin')).map(([href, label]) => {
            const current = href === '/' ? path === '/' : path.startsWith(href);
            return (
              <Link key={href} href={href} aria-current={current ? 'page' : undefined}>
                {label}
              </Link>
            );
          })}
        </nav>
        <LiveBadge />
        <span className="who" title={`key ${me.prefix}…`}>
          {me.name} <small>({me.scopes.join(', ')})</small>
        </span>
        <button type="button" onClick={() => signOut()}>
          Sign out
        </button>
      </header>
      <main id="main">
        <Suspense fallback={<p className="muted">Loading…</p>}>
          <Switch>
            <Route path="/" component={Overview} />
            <Route path="/calibrations" component={Calibrations} />
            <Route path="/calibrations/:id">{(p) => <CalibrationDetail id={p.id} />}</Route>
            <Route path="/uploads" component={Uploads} />
            <Route path="/jobs" component={Jobs} />
            <Route path="/jobs/:id">{(p) => <JobDetail id={p.id} />}</Route>
            <Route path="/quantum" component={Quantum} />
            <Route path="/analytics">{() => <Analytics />}</Route>
            <Route path="/analytics/:domain">{(p) => <Analytics domain={p.domain} />}</Route>
            <Route path="/keys" component={Keys} />
            <Route>
              <h1>Not found</h1>
              <p>
                There is no page here. <Link href="/">Back to the overview</Link>.
              </p>
            </Route>
          </Switch>
        </Suspense>
      </main>
    </>
  );
}

function Gate() {
  const { key, me } = useAuth();
  if (!key) return <SignIn />;
  if (!me)
    return (
      <main id="main">
        <p className="muted" aria-busy="true">
          Checking the key…
        </p>
      </main>
    );
  return (
    <LiveProvider apiKey={key}>
      <Shell />
    </LiveProvider>
  );
}

export function App() {
  return (
    <AuthProvider>
      <Gate />
    </AuthProvider>
  );
}
