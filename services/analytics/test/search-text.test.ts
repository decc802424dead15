import { sampleRecord } from './fixtures';
import { call, type RunningDomain, startDomain } from './helpers';

/**
 * Free-text search matches user text as it is written, in any case: LIKE's metacharacters
 * (`%`, `_`, `\`) are plain characters (where-sql.ts matches with `contains(lower(…))`, which
 * has none; the same answers as the `ILIKE … ESCAPE` it replaced).
 */
describe('free-text search', () => {
  let d: RunningDomain;
  const ids = async (query: string) => {
    const res = await call(`${d.base}/search`, { body: { query, limit: 100 } });
    expect(res.status).toBe(200);
    return (res.body.results as { run_id: string }[]).map((r) => r.run_id).sort();
  };

  beforeAll(async () => {
    d = await startDomain('benchmark');
    const res = await call(`${d.base}/runs`, {
      body: [
        sampleRecord('benchmark', 'pct', { error_message: 'stopped at 50%_of\\base' }),
        sampleRecord('benchmark', 'under', { model: 'bert_base', tags: ['night_ly'] }),
        sampleRecord('benchmark', 'plain', { model: 'BERT-Large', error_message: 'Ärger im Gerät' }),
        sampleRecord('benchmark', 'other', { model: 'gpt2', error_message: '500 of base' }),
      ],
    });
    expect(res.status).toBe(201);
  });
  afterAll(() => d.cleanup());

  it('matches any case, in part', async () => {
    expect(await ids('bert-l')).toEqual(['plain']);
    expect(await ids('BERT')).toEqual(['pct', 'plain', 'under']); // sampleRecord's bert-base-uncased
    expect(await ids('ärger')).toEqual(['plain']);
    expect(await ids('GERÄT')).toEqual(['plain']);
  });

  it('takes % _ and \\ literally', async () => {
    expect(await ids('50%_of\\b')).toEqual(['pct']);
    expect(await ids('%')).toEqual(['pct']);
    expect(await ids('50%')).toEqual(['pct']);
    expect(await ids('5_0')).toEqual([]);
    expect(await ids('0%of')).toEqual([]);
    expect(await ids('\\')).toEqual(['pct']);
    expect(await ids('bert_')).toEqual(['under']);
    expect(await ids('_')).toEqual(['pct', 'under']);
    expect(await ids('t_l')).toEqual(['under']); // the tag night_ly
    // As a wildcard, _ would also match the `htly` of every other record's tag nightly.
    expect(await ids('ht_l')).toEqual(['under']);
  });

  it('matches ids and batch ids only whole', async () => {
    expect(await ids('pct')).toEqual(['pct']);
    expect(await ids('pc')).toEqual([]);
  });
});
