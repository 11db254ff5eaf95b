// Small DOM helpers. Everything read from files or the server goes in as text, never as HTML.
import { gettext, pageLanguage } from "../i18n.js";

export function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === false || value == null) continue;
    if (name === "class") element.className = value;
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child == null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

// A count written the page's way ("1,234" in English, "1234" or "1.234" in Spanish).
export function formatNumber(count) {
  return count.toLocaleString(pageLanguage);
}

export function formatBytes(bytes) {
  const number = (value, digits) => value.toLocaleString(pageLanguage, { minimumFractionDigits: digits, maximumFractionDigits: digits });
  if (bytes < 1024 * 1024) return `${number(Math.max(1, Math.round(bytes / 1024)), 0)} KB`;
  if (bytes < 1024 * 1024 * 1024) return `${number(bytes / 1024 / 1024, 1)} MB`;
  return `${number(bytes / 1024 / 1024 / 1024, 2)} GB`;
}

// DICOM dates are YYYYMMDD; ISO dates from the server are YYYY-MM-DD.
export function formatDate(value) {
  const digits = (value || "").replaceAll("-", "");
  if (!/^\d{8}$/.test(digits)) return gettext("date not given");
  const date = new Date(Date.UTC(+digits.slice(0, 4), +digits.slice(4, 6) - 1, +digits.slice(6, 8)));
  if (Number.isNaN(date.getTime())) return gettext("date not given");
  return date.toLocaleDateString(pageLanguage, { year: "numeric", month: "long", day: "numeric", timeZone: "UTC" });
}
