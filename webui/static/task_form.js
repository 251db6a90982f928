// The task form: weekly call-time editor with presets and a timeline, timed scripts,
// no-call periods, and the line capacity note (T2). The server validates everything again.
(function () {
  "use strict";
  var form = document.getElementById("task-form");
  if (!form) { return; }
  var counter = 1000; // new rows get names that cannot clash with the rendered ones

  function minutes(text) {
    var parts = (text || "").split(":");
    return parts.length === 2 ? parseInt(parts[0], 10) * 60 + parseInt(parts[1], 10) : NaN;
  }

  // -- weekly editor ------------------------------------------------------------------------
  function drawTimeline(row) {
    var line = row.querySelector(".timeline");
    line.innerHTML = "";
    row.querySelectorAll(".segment").forEach(function (seg) {
      var start = minutes(seg.querySelector("input[name$=-start]").value);
      var end = minutes(seg.querySelector("input[name$=-end]").value);
      if (isNaN(start) || isNaN(end) || end <= start) { return; }
      var bar = document.createElement("div");
      bar.className = "position-absolute top-0 bottom-0 bg-primary rounded";
      bar.style.left = (start / 14.4) + "%";
      bar.style.width = ((end - start) / 14.4) + "%";
      bar.title = seg.querySelector("input[name$=-start]").value + " – " +
        seg.querySelector("input[name$=-end]").value;
      line.appendChild(bar);
    });
  }

  function addSegment(row, start, end) {
    var seg = document.getElementById("segment-template").content.firstElementChild.cloneNode(true);
    var n = counter++;
    seg.querySelectorAll("input").forEach(function (input) {
      input.name = "weekly-" + row.dataset.day + "-" + n + "-" + input.dataset.name;
      if (input.dataset.name === "start" && start) { input.value = start; }
      if (input.dataset.name === "end" && end) { input.value = end; }
    });
    row.querySelector(".segments").insertBefore(seg, row.querySelector("[data-add-segment]"));
    drawTimeline(row);
  }

  function setWeekly(weekly) {
    document.querySelectorAll("#weekly tr[data-day]").forEach(function (row) {
      row.querySelectorAll(".segment").forEach(function (seg) { seg.remove(); });
      (weekly[row.dataset.day] || []).forEach(function (pair) { addSegment(row, pair[0], pair[1]); });
      drawTimeline(row);
    });
  }

  var weeklyTable = document.getElementById("weekly");
  weeklyTable.addEventListener("click", function (ev) {
    var add = ev.target.closest("[data-add-segment]");
    var remove = ev.target.closest("[data-remove-segment]");
    if (add) { addSegment(add.closest("tr")); }
    if (remove) {
      var row = remove.closest("tr");
      remove.closest(".segment").remove();
      drawTimeline(row);
    }
  });
  weeklyTable.addEventListener("input", function (ev) { drawTimeline(ev.target.closest("tr")); });
  weeklyTable.querySelectorAll("tr[data-day]").forEach(drawTimeline);
  document.querySelectorAll("button[data-weekly]").forEach(function (button) {
    button.addEventListener("click", function () {
      setWeekly(JSON.parse(button.dataset.weekly));
      document.getElementById("f-ctt").value = "";
    });
  });
  document.getElementById("f-ctt").addEventListener("change", function (ev) {
    var option = ev.target.selectedOptions[0];
    if (option && option.dataset.weekly) { setWeekly(JSON.parse(option.dataset.weekly)); }
  });

  // -- rows added from templates -------------------------------------------------------------
  function cloneRow(templateId, prefix) {
    var node = document.getElementById(templateId).content.firstElementChild.cloneNode(true);
    var n = counter++;
    node.querySelectorAll("[data-name]").forEach(function (input) {
      input.name = input.dataset.name.indexOf("-N-") >= 0
        ? input.dataset.name.replace("-N-", "-" + n + "-")
        : prefix + "-" + n + "-" + input.dataset.name;
    });
    return node;
  }
  document.getElementById("add-forbidden").addEventListener("click", function () {
    document.getElementById("forbidden").appendChild(cloneRow("forbidden-template", "forbidden"));
  });
  document.getElementById("forbidden").addEventListener("click", function (ev) {
    var remove = ev.target.closest("[data-remove-forbidden]");
    if (remove) { remove.closest(".forbidden-row").remove(); }
  });
  document.getElementById("add-timed").addEventListener("click", function () {
    document.querySelector("#timed-scripts tbody").appendChild(cloneRow("timed-row", "timed"));
  });
  document.getElementById("timed-scripts").addEventListener("click", function (ev) {
    var remove = ev.target.closest("[data-remove-row]");
    if (remove) { remove.closest("tr").remove(); }
  });

  // -- dialogue model ------------------------------------------------------------------------
  function showMode() {
    var mode = form.querySelector("input[name=script_mode]:checked").value;
    form.querySelectorAll("[data-mode]").forEach(function (el) {
      el.hidden = el.dataset.mode !== mode;
    });
  }
  form.querySelectorAll("input[name=script_mode]").forEach(function (radio) {
    radio.addEventListener("change", showMode);
  });
  showMode();

  // -- line capacity (T2) --------------------------------------------------------------------
  var line = document.getElementById("f-line");
  var conc = document.getElementById("f-conc");
  var note = document.getElementById("capacity-note");
  function showCapacity() {
    var option = line.selectedOptions[0];
    if (!option || !option.dataset.max) { note.textContent = ""; return; }
    var max = parseInt(option.dataset.max, 10);
    var used = parseInt(option.dataset.used, 10);
    var free = Math.max(0, max - used);
    var text = note.dataset.template.replace("{max}", max).replace("{used}", used)
      .replace("{free}", free);
    var short = parseInt(conc.value, 10) > free;
    note.textContent = short ? note.dataset.short + " — " + text : text;
    note.classList.toggle("text-danger", short);
  }
  line.addEventListener("change", showCapacity);
  conc.addEventListener("input", showCapacity);
  showCapacity();
})();
