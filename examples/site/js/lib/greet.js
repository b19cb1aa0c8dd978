/**
 * Time-of-day greeting shown in the hero ("Good morning, tinkerer!").
 * Kept dependency-free so it can be modulepreloaded and shared by app.js and lazy.js.
 */

const PERIODS = [
  [5, 'Good morning'],
  [12, 'Good afternoon'],
  [18, 'Good evening'],
];

/**
 * @param {string} [name]
 * @param {Date} [now]
 * @returns {string}
 */
export function greet(name = 'tinkerer', now = new Date()) {
  const hour = now.getHours();
  let salutation = 'Hello';
  for (const [from, text] of PERIODS) {
    if (hour >= from) salutation = text;
  }
  return `${salutation}, ${name}!`;
}

export default greet;
