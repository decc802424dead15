import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { AppError, badRequest } from './errors';

/**
 * One spelling per route. The gateway decides scope on the path and method computed here, and
 * every service routes on the same (case-sensitive routing, see http-app.ts), so a path that
 * the gateway judges one way can never be routed another way by a service.
 *
 * Refused (400 NON_CANONICAL_PATH) rather than normalised, because two spellings of one
 * resource are how scope checks are bypassed:
 * - asterisk-form and anything not starting with "/" (RFC 9112 §3.2);
 * - empty segments ("//"), except one trailing slash;
 * - dot segments "." and "..", also percent-encoded (RFC 3986 §5.2.4 would remove them);
 * - encoded "/", "\" and NUL (%2F, %5C, %00), raw "\" and control characters;
 * - percent-encoded unreserved characters (RFC 3986 §6.2.2.2: "should be decoded"; we refuse);
 * - percent-escapes that are malformed or not UTF-8, in the path or the query.
 * An absolute-form target (`GET http://host/path`, RFC 9112 §3.2.2) is reduced to its path and query.
 */
export function canonicalTarget(url: string): string {
  let target = url;
  const absolute = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i.exec(target);
  if (absolute) target = target.slice(absolute[0].length) || '/';
  if (target.startsWith('?')) target = `/${target}`;
  if (!target.startsWith('/')) throw nonCanonical('the request target must be a path starting with /');
  // Bytes the HTTP parser lets through but no route needs: controls, DEL, "\", "#", non-ASCII.
  if (/[^\x21-\x7e]|[\\#]/.test(target))
    throw nonCanonical('the request target contains a byte that is not allowed in a URL');
  const q = target.indexOf('?');
  const path = q === -1 ? target : target.slice(0, q);
  const query = q === -1 ? '' : target.slice(q + 1);
  const segments = path.slice(1).split('/');
  segments.forEach((segment, i) => {
    if (segment === '' && i < segments.length - 1 && path !== '/')
      throw nonCanonical('the path has an empty segment (//)');
    if (/%(2f|5c|00)/i.test(segment)) throw nonCanonical('the path has an encoded /, \\ or NUL');
    if (/%(2[d-e]|3[0-9]|[46][1-9a-f]|[57][0-9a]|5f|7e)/i.test(segment))
      throw nonCanonical('the path percent-encodes a character that needs no encoding');
    const decoded = decodeStrict(segment, 'path');
    if (decoded === '.' || decoded === '..') throw nonCanonical('the path has a "." or ".." segment');
  });
  for (const part of query.split('&')) decodeStrict(part.replace(/\+/g, ' '), 'query string');
  return target;
}

function decodeStrict(text: string, where: string): string {
  try {
    // decodeURIComponent throws on malformed escapes and on escapes that are not UTF-8.
    return decodeURIComponent(text);
  } catch {
    throw nonCanonical(`the ${where} has a malformed or non-UTF-8 percent-escape`);
  }
}

function nonCanonical(detail: string): AppError {
  return new AppError(400, 'NON_CANONICAL_PATH', detail);
}

/** The overrides clients send when their platform cannot send the method itself (tus §X-HTTP-Method-Override). */
const OVERRIDABLE = ['PATCH', 'DELETE'];

/**
 * The method a request acts with. tus 1.0: "X-HTTP-Method-Override: ... the server MUST
 * interpret the request as if it was sent with the method in this header". Clients that use
 * it (tus-js-client's overridePatchMethod) send POST, so only a POST may be overridden, and
 * only to PATCH or DELETE; anything else is a 400, never silently another method. The gateway
 * judges scope on this method and every service acts on it (http-app.ts applies it first).
 */
export function effectiveMethod(method: string, headers: IncomingHttpHeaders): string {
  const override = headers['x-http-method-override'];
  if (override === undefined) return method;
  if (typeof override !== 'string') throw badRequest('X-HTTP-Method-Override is sent more than once');
  const wanted = override.trim().toUpperCase();
  if (method !== 'POST') throw badRequest('X-HTTP-Method-Override is honoured on POST requests only');
  if (!OVERRIDABLE.includes(wanted))
    throw badRequest(`X-HTTP-Method-Override must be ${OVERRIDABLE.join(' or ')}`);
  return wanted;
}

/**
 * A CORS preflight (Fetch standard §3.2.2): OPTIONS with Origin and Access-Control-Request-Method,
 * and no body. It is the only request served without a key; any other OPTIONS (tus discovery)
 * is an ordinary request and needs one.
 */
export function isCorsPreflight(req: Pick<IncomingMessage, 'method' | 'headers'>): boolean {
  const h = req.headers;
  const hasBody =
    (h['content-length'] !== undefined && h['content-length'] !== '0') || h['transfer-encoding'];
  return (
    req.method === 'OPTIONS' &&
    typeof h.origin === 'string' &&
    typeof h['access-control-request-method'] === 'string' &&
    !hasBody &&
    h['x-http-method-override'] === undefined
  );
}
