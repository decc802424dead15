/** Every failure the SDK reports: a message meant for a person, plus the HTTP status when there was one. */
export class QlabClientError extends Error {
  constructor(
    message: string,
    readonly status?: number,
    readonly problem?: Record<string, unknown>,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'QlabClientError';
  }
}

/** Turns fetch's network errors into something a user can act on. */
export function networkError(serverUrl: string, err: unknown): QlabClientError {
  const cause = (err as { cause?: { code?: string } }).cause;
  const code = cause?.code ?? (err as { code?: string }).code;
  if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EHOSTUNREACH') {
    return new QlabClientError(
      `cannot reach the server at ${serverUrl} (${code}); is it running? Set another with \`qlab config set-server URL\``,
      undefined,
      undefined,
      { cause: err },
    );
  }
  const why = (cause as { message?: string } | undefined)?.message;
  return new QlabClientError(
    `request to ${serverUrl} failed: ${(err as Error).message}${why ? ` (${why})` : ''}`,
    undefined,
    undefined,
    {
      cause: err,
    },
  );
}

/** Reads a non-2xx response (problem+json or not) into a QlabClientError. */
export async function responseError(res: Response, serverUrl: string): Promise<QlabClientError> {
  let problem: Record<string, unknown> | undefined;
  const text = await res.text().catch(() => '');
  try {
    problem = JSON.parse(text) as Record<string, unknown>;
  } catch {
    problem = undefined;
  }
  const detail = typeof problem?.detail === 'string' ? problem.detail : text.slice(0, 200) || res.statusText;
  if (res.status === 401) {
    return new QlabClientError(
      `the server at ${serverUrl} refused the API token (${detail}); pass --token or run \`qlab config set-server URL --token TOKEN\``,
      401,
      problem,
    );
  }
  if (res.status === 403) return new QlabClientError(`not allowed: ${detail}`, 403, problem);
  return new QlabClientError(`${res.status} ${res.statusText}: ${detail}`, res.status, problem);
}
