// Marks the page as scripted, so a browser check can tell that app.js loaded.
document.addEventListener("DOMContentLoaded", function () {
  var status = document.getElementById("status");
  if (status) {
    status.setAttribute("data-app-js", "loaded");
  }
});
