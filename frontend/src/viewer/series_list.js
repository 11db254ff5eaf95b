// The series list beside the image (thumbnails, label, count). Drawn from the page's JSON as soon
// as the page runs, before the full viewer has loaded; app.js listens for clicks on it.

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
    const picture = document.createElement("img");
    picture.alt = "";
    picture.loading = "lazy";
    picture.dataset.src = `${base}/studies/${series.studyUid}/series/${series.uid}/thumbnail`;
    picture.addEventListener("error", () => picture.replaceWith(placeholder(series)));
    pictures.push(picture);
    const label = document.createElement("span");
    label.textContent = `${series.modality} ${series.description || "Series " + (series.number ?? "")}`.trim();
    const count = document.createElement("small");
    count.textContent = `${series.count} image${series.count === 1 ? "" : "s"}`;
    button.append(picture, label, count);
    item.append(button);
    list.append(item);
  }
  return {
    loadThumbnails() {
      for (const picture of pictures) if (!picture.src && picture.dataset.src) picture.src = picture.dataset.src;
    },
  };
}

export function seriesLabel(series) {
  return `${series.modality} ${series.description}`.trim() + (series.number != null ? ` (series ${series.number})` : "");
}

function placeholder(series) {
  const box = document.createElement("span");
  box.className = "sr-viewer__no-thumb";
  box.textContent = series.modality || "?";
  return box;
}
