/**
 * Acme Widgets — site entry point (ES module).
 *
 * - greets the visitor in the hero,
 * - lazy-loads the changelog widget on demand,
 * - swaps the header logo for a freshly resolved URL (exercises new URL(..., import.meta.url)),
 * - keeps the sticky header in sync with the scroll position (debounced).
 */
import { greet } from './lib/greet.js';
import { debounce, throttle } from './vendor/chunk-BdtEMBbM.js';

// Resolved relative to this module, not the page, so it works from every page depth.
const logoUrl = new URL('../img/logo.svg', import.meta.url);

const STATUS_ENDPOINT = 'https://status.acme-widgets.example/api/v1/summary.json';

function initGreeting() {
  const el = document.querySelector('[data-greeting]');
  if (el) el.textContent = greet(el.dataset.greeting || undefined);
}

function initLogo() {
  for (const img of document.querySelectorAll('img[data-acme-logo]')) {
    img.src = logoUrl.href;
  }
}

function initChangelog() {
  const button = document.querySelector('[data-load-changelog]');
  const target = document.getElementById('changelog');
  if (!button || !target) return;
  button.addEventListener('click', async () => {
    button.disabled = true;
    const { renderChangelog } = await import('./lib/lazy.js');
    renderChangelog(target);
  });
}

function initStickyHeader() {
  const header = document.querySelector('.site-header');
  if (!header) return;
  const update = throttle(() => {
    header.classList.toggle('is-scrolled', window.scrollY > 24);
  }, 50);
  window.addEventListener('scroll', update, { passive: true });
  window.addEventListener('resize', debounce(update, 150));
}

async function initStatus() {
  const badge = document.querySelector('[data-status]');
  if (!badge) return;
  try {
    const res = await fetch(STATUS_ENDPOINT, { mode: 'cors' });
    const { indicator } = await res.json();
    badge.dataset.status = indicator;
  } catch {
    badge.hidden = true;
  }
}

initGreeting();
initLogo();
initChangelog();
initStickyHeader();
initStatus();
//# sourceMappingURL=app.js.map
