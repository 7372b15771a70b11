// qorgau — keyboard shortcuts of the oversight pages (templates/decisions*.html). No inline script: the CSP
// forbids it. Without JavaScript every page still works with the mouse and the Tab key.
//
// Queue (table[data-queue]): j / k move to the next / previous decision, Enter or o opens it.
// Decision (form[data-review-form]): a approve, m amend, r reject, e escalate — each picks the action and puts
// the cursor where the reviewer writes next; Ctrl+Enter (or Cmd+Enter) submits. The amended-outcome field is
// shown only while "amend" is chosen.
(function () {
  "use strict";

  function typing(target) {
    if (!target || !target.tagName) return false;
    var tag = target.tagName.toLowerCase();
    return tag === "input" || tag === "textarea" || tag === "select" || target.isContentEditable;
  }

  function queue(table) {
    var links = Array.prototype.slice.call(table.querySelectorAll("a[data-row-link]"));
    if (!links.length) return;
    var current = -1;

    function select(i) {
      if (i < 0 || i >= links.length) return;
      if (current >= 0) links[current].closest("tr").classList.remove("is-selected");
      current = i;
      var row = links[i].closest("tr");
      row.classList.add("is-selected");
      links[i].focus();
    }

    links.forEach(function (link, i) {
      link.addEventListener("focus", function () {
        if (current !== i) select(i);
      });
    });

    document.addEventListener("keydown", function (ev) {
      if (ev.altKey || ev.ctrlKey || ev.metaKey || typing(ev.target)) return;
      if (ev.key === "j") { ev.preventDefault(); select(Math.min(current + 1, links.length - 1)); }
      else if (ev.key === "k") { ev.preventDefault(); select(Math.max(current - 1, 0)); }
      else if (ev.key === "o" && current >= 0) { ev.preventDefault(); links[current].click(); }
    });
  }

  function review(form) {
    var radios = Array.prototype.slice.call(form.querySelectorAll("input[name=action][data-key]"));
    var outcomeField = form.querySelector("[data-outcome-field]");
    var outcome = form.querySelector("#outcome");
    var rationale = form.querySelector("#rationale");

    function sync() {
      var chosen = form.querySelector("input[name=action]:checked");
      if (outcomeField) outcomeField.hidden = !(chosen && chosen.value === "amend");
    }

    function choose(radio) {
      radio.checked = true;
      sync();
      var target = radio.value === "amend" && outcome ? outcome : rationale;
      if (target) target.focus();
    }

    radios.forEach(function (r) { r.addEventListener("change", sync); });
    sync();

    document.addEventListener("keydown", function (ev) {
      if ((ev.ctrlKey || ev.metaKey) && ev.key === "Enter" && form.contains(ev.target)) {
        ev.preventDefault();
        if (form.requestSubmit) form.requestSubmit(); else form.submit();
        return;
      }
      if (ev.altKey || ev.ctrlKey || ev.metaKey || typing(ev.target)) return;
      for (var i = 0; i < radios.length; i++) {
        if (radios[i].dataset.key === ev.key) {
          ev.preventDefault();
          choose(radios[i]);
          return;
        }
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var table = document.querySelector("table[data-queue]");
    if (table) queue(table);
    var form = document.querySelector("form[data-review-form]");
    if (form) review(form);
  });
})();
