// Shared by the entry chunk (App) and the lazy About chunk, so the About chunk imports it back from the
// entry chunk (as it does React's jsx runtime).
export const siteName = 'Staleguard Vite fixture'

export function pageTitle(page: string): string {
  return `${page} | ${siteName}`
}
