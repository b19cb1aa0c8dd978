// A plain static script: marks external links.
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll('a[href^="http"]').forEach(function (a) {
    if (a.host !== window.location.host) {
      a.setAttribute("rel", "noopener");
    }
  });
});
