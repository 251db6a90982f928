// Call records page: order columns by dragging (or the arrows, which also work on phones),
// copy a number, and fill the blacklist dialog with the row's call.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll(".column-order").forEach(orderable);

  document.querySelectorAll(".copy-phone").forEach((button) => {
    button.addEventListener("click", () => copy(button.dataset.phone, button));
  });

  const dialog = document.getElementById("blacklist-dialog");
  document.querySelectorAll(".blacklist-call").forEach((link) => {
    if (!dialog || !window.bootstrap) return; // no groups or no script: the link's own page
    link.addEventListener("click", (event) => {
      event.preventDefault();
      dialog.querySelector("[name=call_id]").value = link.dataset.callId;
      dialog.querySelector(".blacklist-phone").textContent = link.dataset.phone;
      bootstrap.Modal.getOrCreateInstance(dialog).show();
    });
  });
});

// A list whose items can be dragged into a new order; the form submits them in that order.
function orderable(list) {
  let dragged = null;
  list.addEventListener("dragstart", (event) => {
    dragged = event.target.closest("li");
    event.dataTransfer.effectAllowed = "move";
    dragged.classList.add("opacity-50");
  });
  list.addEventListener("dragend", () => {
    if (dragged) dragged.classList.remove("opacity-50");
    dragged = null;
  });
  list.addEventListener("dragover", (event) => {
    const over = event.target.closest("li");
    if (!dragged || !over || over === dragged) return;
    event.preventDefault();
    const box = over.getBoundingClientRect();
    const after = event.clientY > box.top + box.height / 2;
    list.insertBefore(dragged, after ? over.nextSibling : over);
  });
  list.addEventListener("drop", (event) => event.preventDefault());
  list.addEventListener("click", (event) => {
    const button = event.target.closest(".move-up, .move-down");
    if (!button) return;
    const item = button.closest("li");
    if (button.classList.contains("move-up") && item.previousElementSibling) {
      list.insertBefore(item, item.previousElementSibling);
    } else if (button.classList.contains("move-down") && item.nextElementSibling) {
      list.insertBefore(item.nextElementSibling, item);
    }
  });
}

function copy(text, button) {
  const done = () => {
    button.classList.add("text-success");
    setTimeout(() => button.classList.remove("text-success"), 1200);
  };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(done, () => fallbackCopy(text, done));
  } else {
    fallbackCopy(text, done);
  }
}

// Plain-HTTP consoles have no async clipboard: copy through a selected, hidden text field.
function fallbackCopy(text, done) {
  const field = document.createElement("textarea");
  field.value = text;
  field.setAttribute("readonly", "");
  field.style.position = "fixed";
  field.style.opacity = "0";
  document.body.appendChild(field);
  field.select();
  if (document.execCommand("copy")) done();
  field.remove();
}
