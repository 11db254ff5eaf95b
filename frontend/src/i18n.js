// The page's language for words written by scripts: Django's JavaScript catalogue
// (/i18n/messages.js, the djangojs domain of locale/<language>/) defines window.django before
// the bundles run. Without it (a page that does not load it) the English words are shown.
//
// Only literal strings may be passed to gettext/ngettext (makemessages reads them from this
// source); values go in with interpolate's named placeholders, "%(count)s".
const catalog = window.django || null;

export function gettext(text) {
  return catalog ? catalog.gettext(text) : text;
}

export function ngettext(one, many, count) {
  return catalog ? catalog.ngettext(one, many, count) : count === 1 ? one : many;
}

export function interpolate(text, values) {
  return text.replace(/%\((\w+)\)s/g, (match, name) => (name in values ? String(values[name]) : match));
}

// The page's language (<html lang>), for numbers and dates written by scripts.
export const pageLanguage = document.documentElement.lang || "en";
