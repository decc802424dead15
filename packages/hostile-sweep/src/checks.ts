import type { Case } from './cases';
import type { RawResult } from './raw-http';

/** One thing wrong with an answer. `cause` groups wrong answers in the report; `detail` says exactly what came. */
export interface Problem {
  cause: string;
  detail: string;
}

const isProblemJson = (headers: Record<string, string>) =>
  /^application\/problem\+json\b/i.test(headers['content-type'] ?? '');

/** Node's own refusal of a request it could not parse: no body type, and the connection closes. */
const isBareParserRefusal = (r: Extract<RawResult, { kind: 'answer' }>) =>
  r.headers['content-type'] === undefined && /close/i.test(r.headers.connection ?? '');

/** A short description of what came back. */
export function describeResult(r: RawResult): string {
  switch (r.kind) {
    case 'answer': {
      const type = r.headers['content-type'] ?? 'no Content-Type';
      const body = r.body.toString('utf8', 0, 200).replace(/\s+/g, ' ');
      return `${r.status} (${type}) after ${r.ms} ms${r.incomplete ? ', body cut off' : ''}${body ? `: ${body}` : ''}`;
    }
    case 'closed':
      return `connection closed without an answer after ${r.ms} ms${r.error ? ` (${r.error})` : ''}`;
    case 'timeout':
      return `no answer within ${r.ms} ms${r.partial ? `; got only: ${r.partial.slice(0, 120)}` : ''}`;
    case 'refused':
      return 'connection refused (nothing listens: the service is down)';
  }
}

/** What is wrong with one answer to one input, judged against the input's expectation. */
export function judge(c: Case, r: RawResult): Problem[] {
  const e = c.expect;
  const got = describeResult(r);
  if (r.kind === 'timeout') return [{ cause: 'no answer within 10 s', detail: got }];
  if (r.kind === 'refused') return [{ cause: 'connection refused', detail: got }];
  if (r.kind === 'closed') return e.closeOk ? [] : [{ cause: 'closed without an answer', detail: got }];

  const s = r.status;
  const problems: Problem[] = [];
  const expected = e.exact
    ? e.exact.join(' or ')
    : e.forbid
      ? `anything but ${e.forbid.join('/')}`
      : e.accept2xx
        ? '2xx or a 4xx problem'
        : 'a 4xx problem';
  const wrong = (cause: string) => problems.push({ cause, detail: `expected ${expected}, got ${got}` });

  if (s === 101) wrong('switched protocols');
  else if (s >= 500) wrong(`${s}`);
  else if (e.exact && !e.exact.includes(s)) wrong(`${s} instead of ${e.exact.join('/')}`);
  else if (e.forbid?.includes(s)) wrong(`${s} although the key has the scope`);
  else if (!e.authOnly && s >= 200 && s < 300 && !e.accept2xx) wrong(`${s} for an invalid input`);
  else if (!e.authOnly && s >= 300 && s < 400) wrong(`${s} redirect`);
  else if (s < 200) wrong(`${s} interim answer only`);

  if (s >= 400 && s < 500 && (!e.authOnly || s === 401 || s === 403)) {
    if (!isProblemJson(r.headers)) {
      const bare = isBareParserRefusal(r);
      if (!(bare && e.bareOk))
        problems.push({
          cause: bare ? `bare ${s} from the HTTP parser, not problem+json` : `${s} that is not problem+json`,
          detail: got,
        });
    } else if (c.request.method !== 'HEAD' && !r.incomplete) {
      try {
        const doc = JSON.parse(r.body.toString('utf8')) as { status?: unknown };
        if (doc.status !== s) problems.push({ cause: 'problem document with the wrong status', detail: got });
      } catch {
        problems.push({ cause: 'problem+json body that is not JSON', detail: got });
      }
    }
  }
  // Fewer body bytes than its Content-Length said (e.g. a HEAD-style answer to another method).
  if (r.incomplete && !e.closeOk) problems.push({ cause: 'answer cut off', detail: got });
  return problems;
}
