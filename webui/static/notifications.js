// The header's unread count, and a pop-up (弹屏提醒) when one of the user's background jobs
// (import, export …) ends, polled every few seconds; the list page is the record.
(function () {
  "use strict";
  var box = document.getElementById("job-toasts");
  var badge = document.getElementById("unread-count");
  if (!box || !badge) { return; }
  var since = new Date().toISOString();

  function toast(item) {
    var el = document.createElement("div");
    el.className = "toast align-items-center border-0 text-bg-" +
      (item.state === "failed" ? "danger" : "success");
    el.setAttribute("role", "status");
    el.setAttribute("aria-live", "polite");
    var body = document.createElement("div");
    body.className = "toast-body";
    body.textContent = item.title + " · " + item.state_label + (item.error ? " · " + item.error : "");
    if (item.download) {
      var link = document.createElement("a");
      link.href = item.download;
      link.className = "ms-2 text-white fw-semibold";
      link.textContent = box.dataset.download;
      body.appendChild(link);
    }
    var row = document.createElement("div");
    row.className = "d-flex";
    var close = document.createElement("button");
    close.type = "button";
    close.className = "btn-close btn-close-white me-2 m-auto";
    close.setAttribute("data-bs-dismiss", "toast");
    row.appendChild(body);
    row.appendChild(close);
    el.appendChild(row);
    box.appendChild(el);
    new bootstrap.Toast(el, {autohide: false}).show();
  }

  function poll() {
    fetch(box.dataset.url + "?since=" + encodeURIComponent(since), {credentials: "same-origin"})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (!data) { return; }
        since = data.now;
        badge.textContent = data.unread;
        badge.hidden = !data.unread;
        if (box.dataset.popup === "on") { data.ended.forEach(toast); }
      })
      .catch(function () { /* the next tick tries again */ });
  }
  window.setInterval(poll, 5000);
})();
