import { randomBytes } from 'node:crypto';

export interface StreamedFilePart {
  field: string;
  filename: string;
  contentType: string;
  data: AsyncIterable<Uint8Array>;
}

function quote(value: string): string {
  // RFC 7578: escape quotes and line breaks in names; clients must not inject headers.
  return value.replace(/"/g, '%22').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}

/**
 * A multipart/form-data body produced as a stream: text fields first, then the file's bytes as
 * they come, so an archive being zipped is sent while it is made and never held whole.
 */
export function multipartBody(fields: Record<string, string>, file: StreamedFilePart) {
  const boundary = `----qlab${randomBytes(12).toString('hex')}`;
  async function* body(): AsyncGenerator<Uint8Array> {
    for (const [name, value] of Object.entries(fields)) {
      yield Buffer.from(
        `--${boundary}\r\nContent-Disposition: form-data; name="${quote(name)}"\r\n\r\n${value}\r\n`,
      );
    }
    yield Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="${quote(file.field)}"; filename="${quote(file.filename)}"\r\nContent-Type: ${file.contentType}\r\n\r\n`,
    );
    for await (const chunk of file.data) yield chunk;
    yield Buffer.from(`\r\n--${boundary}--\r\n`);
  }
  return { contentType: `multipart/form-data; boundary=${boundary}`, body: body() };
}
