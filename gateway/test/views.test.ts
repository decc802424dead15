import { MOUNTED } from '@qlab/registry';
import { CONTRIBUTIONS } from '../src/views/contributions';

describe('the cross-service views', () => {
  it('take from each service what the registry says it contributes, and nothing else', () => {
    for (const s of MOUNTED) {
      const c = CONTRIBUTIONS[s.id];
      const views: { overview?: string; search?: string } = 'views' in s ? s.views : {};
      expect({ id: s.id, overview: Boolean(c.overview), search: Boolean(c.search) }).toEqual({
        id: s.id,
        overview: Boolean(views.overview),
        search: Boolean(views.search),
      });
    }
  });

  it('give each service its own member of the answers', () => {
    const overview = MOUNTED.flatMap((s) => ('views' in s && s.views.overview ? [s.views.overview] : []));
    const search = MOUNTED.flatMap((s) => ('views' in s && s.views.search ? [s.views.search] : []));
    expect(new Set(overview).size).toBe(overview.length);
    expect(new Set(search).size).toBe(search.length);
    // Members the views add themselves.
    expect(overview).not.toContain('generated_at');
    expect(search).not.toContain('total');
  });
});
