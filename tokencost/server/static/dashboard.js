(function () {
  var main = document.getElementById("charts"), status = document.getElementById("status");
  var every = Math.max(1, parseInt(main.getAttribute("data-refresh"), 10) || 5) * 1000, busy = false;
  function refresh() {
    if (busy) { return; }
    busy = true;
    fetch(main.getAttribute("data-src"), {cache: "no-store", headers: {"Accept": "text/html"}})
      .then(function (r) { if (!r.ok) { throw new Error("HTTP " + r.status); } return r.text(); })
      .then(function (text) {
        main.innerHTML = text;
        status.textContent = "live \u00b7 updated " + new Date().toLocaleTimeString();
        status.className = "status";
      })
      .catch(function (e) {
        status.textContent = "cannot refresh (" + e.message + "), retrying";
        status.className = "status bad";
      })
      .then(function () { busy = false; });
  }
  setInterval(refresh, every);
})();
