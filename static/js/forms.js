// Forms that ask before they submit: <form data-confirm="Question?">. (No inline handlers:
// the Content-Security-Policy refuses them.)
document.addEventListener("submit", function (event) {
  var form = event.target;
  if (form instanceof HTMLFormElement && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
    event.preventDefault();
  }
});
