/** One upload, whichever protocol brought it. Offsets count bytes durably on disk. */
export interface Upload {
  id: string;
  protocol: 'indexedcp' | 'tus';
  /** Which API key created it (its index-based id), or "open" when no keys are configured. */
  keyId: string;
  clientFilename: string;
  /** IndexedCP X-Upload-Id, when the client sent one. */
  clientUploadId: string | null;
  /** Relative path under the upload dir where the finished file lands (null for tus partial uploads). */
  targetPath: string | null;
  /** Relative path under the service's data dir of the bytes while they arrive. */
  dataPath: string;
  offset: number;
  /** Total bytes, when known (tus Upload-Length). */
  length: number | null;
  metadata: Record<string, string>;
  status: UploadStatus;
  /** tus concatenation: "partial", "final", or null. */
  concat: 'partial' | 'final' | null;
  concatParts: string[];
  /** IndexedCP: total chunk count when the client said it (X-Chunk-Total). */
  totalChunks: number | null;
  /** IndexedCP: the next chunk index that can be appended. */
  nextChunk: number;
  createdAt: number;
  updatedAt: number;
  expiresAt: number;
  completedAt: number | null;
}

export type UploadStatus = 'active' | 'complete' | 'terminated' | 'expired';

export interface ChunkRecord {
  uploadId: string;
  index: number;
  size: number;
  sha256: string;
  /** "written" when appended to the data file, "buffered" while waiting for earlier chunks. */
  state: 'written' | 'buffered';
}
