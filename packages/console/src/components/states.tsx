import type { UseQueryResult } from '@tanstack/react-query';
import type { ReactNode } from 'react';
import { ApiError } from '../lib/api';

/** The problem+json detail of a failed call, as an alert screen readers announce. */
export function ErrorBox({ error }: { error: unknown }) {
  const message = error instanceof ApiError || error instanceof Error ? error.message : String(error);
  return (
    <div role="alert" className="error">
      {message}
    </div>
  );
}

/**
 * Loading, error and empty states for one query, then `children(data)`. Every page draws its
 * data through this, so none shows a blank area while it waits or after it failed.
 */
export function QueryView<T>({
  q,
  empty,
  isEmpty,
  children,
}: {
  q: UseQueryResult<T>;
  empty?: string;
  isEmpty?: (data: T) => boolean;
  children: (data: T) => ReactNode;
}) {
  if (q.isPending)
    return (
      <p className="muted" aria-busy="true">
        Loading…
      </p>
    );
  if (q.isError) return <ErrorBox error={q.error} />;
  if (isEmpty?.(q.data)) return <p className="empty">{empty ?? 'Nothing here yet.'}</p>;
  return <>{children(q.data)}</>;
}

export function Card({ title, children, wide }: { title: string; children: ReactNode; wide?: boolean }) {
  return (
    <section className={wide ? 'card wide' : 'card'} aria-label={title}>
      <h2>{title}</h2>
      {children}
    </section>
  );
}

/** Label/value pairs (a definition list). */
export function Facts({ items }: { items: [string, ReactNode][] }) {
  return (
    <dl className="facts">
      {items.map(([k, v]) => (
        <div key={k}>
          <dt>{k}</dt>
          <dd>{v}</dd>
        </div>
      ))}
    </dl>
  );
}

export function Pager({
  offset,
  limit,
  total,
  onChange,
}: {
  offset: number;
  limit: number;
  total: number;
  onChange: (offset: number) => void;
}) {
  const last = Math.max(0, total - 1);
  return (
    <nav className="pager" aria-label="Pages">
      <button type="button" disabled={offset === 0} onClick={() => onChange(Math.max(0, offset - limit))}>
        Previous
      </button>
      <span>
        {(total === 0 ? 0 : offset + 1).toLocaleString()}–{Math.min(offset + limit, total).toLocaleString()}{' '}
        of {total.toLocaleString()}
      </span>
      <button type="button" disabled={offset + limit > last} onClick={() => onChange(offset + limit)}>
        Next
      </button>
    </nav>
  );
}
