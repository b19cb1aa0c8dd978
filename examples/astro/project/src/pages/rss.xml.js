import rss from '@astrojs/rss';

export function GET(context) {
  return rss({
    title: 'Example site',
    description: 'A small Astro site.',
    site: context.site,
    items: [
      {
        title: 'First post',
        description: 'The first post of the blog.',
        pubDate: new Date('2024-01-15T00:00:00Z'),
        link: '/blog/first-post/',
      },
    ],
  });
}
