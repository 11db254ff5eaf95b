// The series list beside the image (thumbnail, description, number, modality, image count, date).
// Drawn from the page's JSON as soon as the page runs, before the full viewer has loaded; app.js
// listens for clicks on it. Two MR series used to read "MR (series 1)" alike: each line now
// says which series it is.

import { gettext, interpolate, ngettext, pageLanguage } from "../i18n.js";

// "20240115" -> "15 Jan 2024", "15 ene 2024" in Spanish (DICOM dates are local dates: no time
// zone to convert; the month is named in UTC so the day never shifts).
const monthName = new Intl.DateTimeFormat(pageLanguage, { month: "short", timeZone: "UTC" });

export function dicomDate(text) {
  const match = /^(\d{4})(\d{2})(\d{2})$/.exec(String(text || "").trim());
  if (!match) return "";
  const [, year, month, day] = match;
  const index = Number(month) - 1;
  if (index < 0 || index > 11) return "";
  const name = monthName.format(new Date(Date.UTC(Number(year), index, 1))).replace(".", "");
  return `${Number(day)} ${name} ${year}`;
}

// Draws the list; thumbnails are only asked for when ``loadThumbnails`` is called (after the
// first image), so they do not compete with the first frame for the server.
export function renderSeriesList(list, all, base) {
  list.textContent = "";
  const pictures = [];
  for (const series of all) {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.seriesUid = series.uid;
    button.dataset.studyUid = series.studyUid;
    button.dataset.description = series.description || "";
    button.dataset.modality = series.modality || "";
    const picture = document.createElement("img");
    picture.alt = "";
    picture.loading = "lazy";
    picture.dataset.src = `${base}/studies/${series.studyUid}/series/${series.uid}/thumbnail`;
    picture.addEventListener("error", () => picture.replaceWith(placeholder(series)));
    pictures.push(picture);
    const label = document.createElement("strong");
    label.textContent = series.description || gettext("No description");
    const facts = document.createElement("small");
    facts.dataset.seriesFacts = "";
    facts.textContent = seriesFacts(series);
    button.append(picture, label, facts);
    item.append(button);
    list.append(item);
  }
  return {
    loadThumbnails() {
      for (const picture of pictures) if (!picture.src && picture.dataset.src) picture.src = picture.dataset.src;
    },
  };
}

// "MR · series 3 · 24 images · 15 Jan 2024"
export function seriesFacts(series) {
  const count = Number(series.count) || 0;
  return [
    series.modality,
    series.number != null ? interpolate(gettext("series %(number)s"), { number: series.number }) : "",
    interpolate(ngettext("%(count)s image", "%(count)s images", count), { count }),
    dicomDate(series.date),
  ]
    .filter(Boolean)
    .join(" · ");
}

export function seriesLabel(series) {
  const parts = [series.modality, series.description].filter(Boolean).join(" ");
  return parts + (series.number != null ? ` (${interpolate(gettext("series %(number)s"), { number: series.number })})` : "");
}

function placeholder(series) {
  const box = document.createElement("span");
  box.className = "sr-viewer__no-thumb";
  box.textContent = series.modality || "?";
  return box;
}
