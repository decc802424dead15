import { chmodSync, existsSync, mkdirSync } from 'node:fs';

/**
 * A service's data folder, readable by its own user only (0700), also when an older version
 * made it 0755. New files inside are private too: runMain sets the umask to 077.
 */
export function privateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
}

/** Makes existing files private (0600): databases and their WAL files from older versions. */
export function privateFiles(...files: string[]): void {
  for (const f of files) if (existsSync(f)) chmodSync(f, 0o600);
}
