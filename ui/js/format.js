// Time formatting, always in the viewer's local time zone.

const pad = (n) => String(n).padStart(2, '0');

/** Unix ms -> "YYYY-MM-DD HH:MM:SS" (local, zero padded). */
export function formatTime(ms) {
  const d = new Date(ms);
  return `${formatDay(d)} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

function formatDay(d) {
  return `${String(d.getFullYear()).padStart(4, '0')}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

/** Compact time for the chat list: "HH:MM" today, else "YYYY-MM-DD". */
export function formatListTime(ms, now = new Date()) {
  if (ms === null || ms === undefined) return '';
  const d = new Date(ms);
  if (formatDay(d) === formatDay(now)) return `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  return formatDay(d);
}
