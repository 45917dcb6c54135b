// Time formatting, always in the viewer's local time zone. A `ts` comes from a shared
// folder and may be absurd (beyond JS's Date range): such times show as '' rather than throw.

const pad = (n) => String(n).padStart(2, '0');

/** Unix ms -> a Date, or null when JS cannot represent it. */
function toDate(ms) {
  if (typeof ms !== 'number') return null;
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? null : d;
}

/** Unix ms -> "YYYY-MM-DD HH:MM:SS" (local, zero padded), or '' for an invalid time. */
export function formatTime(ms) {
  const d = toDate(ms);
  if (!d) return '';
  return `${formatDay(d)} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** Unix ms -> ISO 8601 for a <time dateTime>, or undefined (el() then omits it). */
export function isoTime(ms) {
  return toDate(ms)?.toISOString();
}

function formatDay(d) {
  return `${String(d.getFullYear()).padStart(4, '0')}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

/** Compact time for the chat list: "HH:MM" today, else "YYYY-MM-DD"; '' when none or invalid. */
export function formatListTime(ms, now = new Date()) {
  const d = toDate(ms);
  if (!d) return '';
  if (formatDay(d) === formatDay(now)) return `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  return formatDay(d);
}

const WEEKDAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August',
  'September', 'October', 'November', 'December'];

/** Unix ms -> "HH:MM" (local), as a bubble shows it; '' for an invalid time. */
export function formatShortTime(ms) {
  const d = toDate(ms);
  if (!d) return '';
  return `${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** Unix ms -> "Monday 7 December 2026, 20:19:07" (local), for hover; '' when invalid. */
export function formatLongTime(ms) {
  const d = toDate(ms);
  if (!d) return '';
  return `${longDay(d)} ${d.getFullYear()}, ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** The local day of `ms` ("YYYY-MM-DD", which sorts as days do), or '' when invalid. */
export function dayKey(ms) {
  const d = toDate(ms);
  return d ? formatDay(d) : '';
}

/** A day separator's words for `ms`: "Today", "Yesterday", "Monday 1 December", with the
 *  year when it is not this year's; '' when invalid. */
export function formatDayLabel(ms, now = new Date()) {
  const d = toDate(ms);
  if (!d) return '';
  const yesterday = new Date(now.getFullYear(), now.getMonth(), now.getDate() - 1);
  if (formatDay(d) === formatDay(now)) return 'Today';
  if (formatDay(d) === formatDay(yesterday)) return 'Yesterday';
  return d.getFullYear() === now.getFullYear() ? longDay(d) : `${longDay(d)} ${d.getFullYear()}`;
}

function longDay(d) {
  return `${WEEKDAYS[d.getDay()]} ${d.getDate()} ${MONTHS[d.getMonth()]}`;
}
