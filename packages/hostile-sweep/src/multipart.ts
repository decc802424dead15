/** One part of a multipart/form-data body; `filename` makes it a file part. */
export interface Part {
  name: string;
  /** Raw bytes of the file name, so hostile names (NUL, invalid UTF-8) go out as they are. */
  filename?: string | Buffer;
  contentType?: string;
  data: Buffer;
}

export const BOUNDARY = 'hostile-sweep-boundary-7MA4YWxkTrZu0gW';

/** The body of a multipart/form-data request; `closed: false` leaves off the final boundary. */
export function multipartBody(parts: Part[], options: { closed?: boolean } = {}): Buffer {
  const out: Buffer[] = [];
  for (const p of parts) {
    const disposition =
      p.filename === undefined
        ? Buffer.from(`Content-Disposition: form-data; name="${p.name}"\r\n`)
        : Buffer.concat([
            Buffer.from(`Content-Disposition: form-data; name="${p.name}"; filename="`),
            Buffer.from(p.filename),
            Buffer.from('"\r\n'),
          ]);
    out.push(Buffer.from(`--${BOUNDARY}\r\n`), disposition);
    if (p.contentType) out.push(Buffer.from(`Content-Type: ${p.contentType}\r\n`));
    out.push(Buffer.from('\r\n'), p.data, Buffer.from('\r\n'));
  }
  if (options.closed !== false) out.push(Buffer.from(`--${BOUNDARY}--\r\n`));
  return Buffer.concat(out);
}

export const MULTIPART_TYPE = `multipart/form-data; boundary=${BOUNDARY}`;
