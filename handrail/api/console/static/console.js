// Keeps a console page current without a reload: every few seconds it fetches the page again
// and swaps in each region marked data-live whose content changed. A region the user is working
// in (focus inside, or an action form opened) is left alone until they are done. No framework:
// the content security policy allows this file and nothing inline.
(function () {
  "use strict";
  var EVERY_MS = 3000;
  var busy = false;

  function inUse(region) {
    var active = document.activeElement;
    if (active && active !== document.body && region.contains(active)) return true;
    return region.querySelector("details[open]") !== null;
  }

  function refresh() {
    var regions = document.querySelectorAll("[data-live][id]");
    if (busy || regions.length === 0 || document.visibilityState === "hidden") return;
    busy = true;
    fetch(window.location.href, { credentials: "same-origin", headers: { "X-Console-Refresh": "1" } })
      .then(function (response) {
        if (response.redirected || !response.ok) return null;  // logged out or refused: keep the page
        return response.text();
      })
      .then(function (html) {
        if (!html) return;
        var fresh = new DOMParser().parseFromString(html, "text/html");
        regions.forEach(function (region) {
          var next = fresh.getElementById(region.id);
          if (next && next.innerHTML !== region.innerHTML && !inUse(region)) {
            region.innerHTML = next.innerHTML;
          }
        });
        document.documentElement.setAttribute("data-refreshed", String(Date.now()));
      })
      .catch(function () { /* offline for a moment: try again on the next tick */ })
      .then(function () { busy = false; });
  }

  window.setInterval(refresh, EVERY_MS);
})();
