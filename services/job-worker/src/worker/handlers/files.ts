import { readdir } from 'node:fs/promises';
import path from 'node:path';

/** Every file under a folder, absolute paths, sorted (so outputs do not depend on readdir order). */
export async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (!e.name.endsWith('.part')) out.push(p);
    }
  };
  await walk(dir);
  return out.sort();
}
