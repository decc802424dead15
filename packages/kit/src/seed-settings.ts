/**
 * The settings of the systems qlab replaces, read as qlab's own: a lab's existing `.env` keeps
 * working, and the start log says what was taken from where.
 */

/** A seed variable and what it becomes: a qlab variable, or a function of the environment. */
export type SeedAlias =
  | [seed: string, qlab: string]
  | [seed: string, qlab: string, convert: (value: string, env: NodeJS.ProcessEnv) => string | undefined];

/**
 * Copies each set seed variable to its qlab name unless that is set too (the qlab name wins,
 * also given as `QLAB_FILE`, a Docker secret; an empty qlab value counts as unset, as an empty
 * seed value does). Returns the merged environment and what was used, as "SEED → QLAB" lines
 * for the start log.
 */
export function applySeedAliases(
  environment: NodeJS.ProcessEnv,
  aliases: SeedAlias[],
): { merged: NodeJS.ProcessEnv; used: string[] } {
  const merged = { ...environment };
  const used: string[] = [];
  for (const [seed, qlab, convert] of aliases) {
    const value = environment[seed];
    const isSet = (name: string) => merged[name] !== undefined && merged[name] !== '';
    if (value === undefined || value === '' || isSet(qlab) || isSet(`${qlab}_FILE`)) continue;
    const converted = convert ? convert(value, environment) : value;
    if (converted === undefined) continue;
    merged[qlab] = converted;
    used.push(`${seed} → ${qlab}`);
  }
  return { merged, used };
}

/**
 * Variables that look like settings of this service (they start with one of `prefixes`) but
 * that nothing reads: a typo, or a seed setting qlab has no use for. They are named at start,
 * so a setting never silently does nothing.
 */
export function unreadSettings(
  environment: NodeJS.ProcessEnv,
  prefixes: string[],
  read: Iterable<string>,
): string[] {
  const known = new Set(read);
  return Object.keys(environment)
    .filter(
      (k) => prefixes.some((p) => k.startsWith(p)) && !known.has(k) && !known.has(k.replace(/_FILE$/, '')),
    )
    .sort();
}
