// AI外呼 list: the redial dialog, template names, and live progress (polled, no reload).
(function () {
  "use strict";
  var modal = document.getElementById("redial-modal");
  if (modal) {
    modal.addEventListener("show.bs.modal", function (ev) {
      var button = ev.relatedTarget;
      document.getElementById("redial-form").action = button.dataset.action;
      modal.querySelector("[data-field=name]").textContent = button.dataset.name;
    });
  }
  document.querySelectorAll("form.save-template").forEach(function (form) {
    form.addEventListener("submit", function (ev) {
      var input = form.querySelector("input[name=name]");
      var name = window.prompt(document.documentElement.lang === "zh-CN" ? "模板名称" : "Template name",
                               input.value);
      if (name === null) { ev.preventDefault(); return; }
      input.value = name;
    });
  });

  var rows = Array.prototype.slice.call(document.querySelectorAll("#tasks tr[data-task]"));
  if (!rows.length) { return; }
  var ids = rows.map(function (r) { return r.dataset.task; }).join(",");
  var colours = {running: "success", paused: "warning", finished: "secondary"};
  function refresh() {
    fetch(document.getElementById("tasks").dataset.stats + "?ids=" + ids, {credentials: "same-origin"})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (!data) { return; }
        rows.forEach(function (row) {
          var s = data[row.dataset.task];
          if (!s) { return; }
          row.querySelector("[data-field=bar]").style.width = s.progress + "%";
          row.querySelector("[data-field=counts]").textContent = s.done + " / " + s.numbers;
          row.querySelector("[data-field=rate]").textContent =
            s.connect_rate === null ? "—" : s.connect_rate + "% (" + s.answered + "/" + s.calls + ")";
          var badge = row.querySelector("[data-field=state]");
          badge.textContent = s.state_label;
          badge.className = "badge text-bg-" + (colours[s.state] || "light");
        });
      })
      .catch(function () { /* the next tick tries again */ });
  }
  window.setInterval(refresh, 5000);
})();
