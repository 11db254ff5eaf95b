// Forms that ask before they submit: <form data-confirm="Question?">. (No inline handlers:
// the Content-Security-Policy refuses them.)
document.addEventListener("submit", function (event) {
  var form = event.target;
  if (form instanceof HTMLFormElement && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
    event.preventDefault();
  }
});

// What the upload pages keep in the browser (the upload history: case ids, file paths and
// upload addresses, to resume after a closed tab) belongs to the signed-in person only. It is
// removed when they sign out, and on any page shown signed out (the session may also have
// ended by itself after inactivity), so the next person at a shared computer finds none of it.
var UPLOAD_HISTORY_PREFIXES = ["secondread:", "tus::"];

function clearUploadHistory() {
  [window.localStorage, window.sessionStorage].forEach(function (store) {
    try {
      for (var i = store.length - 1; i >= 0; i--) {
        var key = store.key(i);
        if (key && UPLOAD_HISTORY_PREFIXES.some(function (prefix) { return key.indexOf(prefix) === 0; })) {
          store.removeItem(key);
        }
      }
    } catch (e) {
      /* storage unavailable (private mode): nothing was kept */
    }
  });
}

document.addEventListener("submit", function (event) {
  var form = event.target;
  if (form instanceof HTMLFormElement && form.hasAttribute("data-sign-out") && !event.defaultPrevented) {
    clearUploadHistory();
  }
});

if (document.body && document.body.hasAttribute("data-signed-out")) {
  clearUploadHistory();
} else {
  document.addEventListener("DOMContentLoaded", function () {
    if (document.body.hasAttribute("data-signed-out")) clearUploadHistory();
  });
}
