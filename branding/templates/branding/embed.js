{% autoescape off %}/* SecondRead website embed: a "Request a second opinion" button, or the portal inline. */
(function () {
  var config = {{ config }};
  var script = document.currentScript;
  if (!script) return;
  var mode = script.getAttribute("data-mode") === "inline" ? "inline" : "button";
  var host = document.createElement("div");
  host.setAttribute("data-secondread", mode);
  script.parentNode.insertBefore(host, script.nextSibling);
  var root = host.attachShadow ? host.attachShadow({ mode: "open" }) : host;
  if (mode === "inline") {
    var frame = document.createElement("iframe");
    frame.src = config.embed;
    frame.title = config.name + ": second opinion";
    frame.style.cssText = "width:100%;min-height:" + (parseInt(script.getAttribute("data-height"), 10) || 640) + "px;border:0;";
    root.appendChild(frame);
    return;
  }
  var style = document.createElement("style");
  style.textContent =
    "a{display:inline-block;font:600 16px/1.2 system-ui,-apple-system,'Segoe UI',Roboto,Arial,sans-serif;" +
    "padding:14px 22px;border-radius:10px;text-decoration:none;min-height:48px;box-sizing:border-box;" +
    "background:" + config.primary + ";color:" + config.onPrimary + ";}" +
    "a:focus-visible{outline:3px solid " + config.primary + ";outline-offset:3px;}";
  var link = document.createElement("a");
  link.href = config.portal;
  link.target = "_blank";
  link.rel = "noopener";
  link.textContent = config.label;
  link.setAttribute("aria-label", config.label + " (" + config.name + ", opens in a new tab)");
  link.setAttribute("part", "button");
  root.appendChild(style);
  root.appendChild(link);
})();
{% endautoescape %}
