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
