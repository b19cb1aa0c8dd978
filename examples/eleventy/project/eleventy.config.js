export default function (eleventyConfig) {
  eleventyConfig.addPassthroughCopy("css");
  eleventyConfig.addPassthroughCopy("images");
  eleventyConfig.addGlobalData("site", {
    title: "Example blog",
    url: "https://example.org",
  });
  // Dates for feed.xml and sitemap.xml, always in UTC.
  eleventyConfig.addFilter("isoDate", (d) => new Date(d).toISOString());
  eleventyConfig.addFilter("rfc822Date", (d) => new Date(d).toUTCString());
}

export const config = {
  dir: { input: ".", includes: "_includes", output: "_site" },
  markdownTemplateEngine: "njk",
  htmlTemplateEngine: "njk",
};
