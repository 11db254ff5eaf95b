// The embeddable portal page. Inside another website's frame, browsers may withhold our
// cookies (SameSite, third-party cookie blocking), and then nobody can sign in or upload here.
// We ask the server whether the probe cookie it just set came back; if not, hand off to a
// new tab on the institution's own site, which always works.

async function cookiesWork() {
  try {
    if (document.hasStorageAccess && !(await document.hasStorageAccess())) return false;
    const response = await fetch("/embed/probe", { credentials: "same-origin", cache: "no-store" });
    if (!response.ok) return false;
    return Boolean((await response.json()).cookies);
  } catch {
    return false;
  }
}

async function main() {
  const page = document.querySelector("[data-embed-portal]");
  if (!page) return;
  const framed = window.top !== window.self;
  if (!framed || (await cookiesWork())) return;
  page.querySelector("[data-handoff]").hidden = false;
  for (const link of page.querySelectorAll("[data-portal-link]")) {
    link.target = "_blank";
    link.rel = "noopener";
  }
  document.documentElement.dataset.handoff = "on";
}

main();
