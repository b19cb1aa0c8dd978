/**
 * Changelog widget. Loaded on demand with a dynamic import() from app.js when the user clicks
 * "Show what's new", so it stays out of the critical path.
 */
import { greet } from './greet.js';

const RELEASES = [
  { version: '2.4.0', date: '2024-05-02', notes: 'Self-lubricating bearings, 30% quieter.' },
  { version: '2.3.1', date: '2024-03-18', notes: 'Fixed a sprocket that occasionally spun backwards.' },
  { version: '2.3.0', date: '2024-02-07', notes: 'Café mode: keeps your coffee at 63 °C.' },
];

/**
 * Renders the release list into `target`.
 * @param {HTMLElement} target
 */
export function renderChangelog(target) {
  const list = document.createElement('ol');
  list.className = 'changelog';
  for (const release of RELEASES) {
    const item = document.createElement('li');
    const heading = document.createElement('strong');
    heading.textContent = `v${release.version}`;
    const date = document.createElement('time');
    date.dateTime = release.date;
    date.textContent = ` (${release.date}) `;
    item.append(heading, date, release.notes);
    list.append(item);
  }
  const intro = document.createElement('p');
  intro.textContent = `${greet()} Here is what changed recently:`;
  target.replaceChildren(intro, list);
}
