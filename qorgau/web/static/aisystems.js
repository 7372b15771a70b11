// The AI register pages: small progressive enhancements only; every form works without this script.
(function () {
  "use strict";

  // The questionnaire: focus the first field the server marked, count the answers per section,
  // and keep "none" exclusive in multiple-choice questions.
  var form = document.querySelector("[data-questionnaire]");
  if (form) {
    var focus = form.getAttribute("data-focus");
    if (focus) {
      var target = document.getElementById(focus);
      if (target) {
        var input = target.matches("input, select, textarea") ? target : target.querySelector("input, select, textarea");
        target.scrollIntoView({block: "center"});
        if (input) { input.focus({preventScroll: true}); }
      }
    }

    var answered = function (q) {
      var type = q.getAttribute("data-type");
      if (type === "bool") {
        var checked = q.querySelector("input[type=radio]:checked");
        return !!(checked && checked.value);
      }
      if (type === "enum_list") { return !!q.querySelector("input[type=checkbox]:checked"); }
      var field = q.querySelector("input, select, textarea");
      return !!(field && field.value.trim());
    };

    var count = function () {
      form.querySelectorAll("[data-group]").forEach(function (group) {
        var questions = group.querySelectorAll("[data-fact]");
        var done = 0;
        questions.forEach(function (q) { if (answered(q)) { done += 1; } });
        var badge = document.querySelector('[data-count-for="g-' + group.getAttribute("data-group") + '"]');
        if (badge) {
          badge.textContent = done + "/" + questions.length;
          badge.classList.toggle("is-complete", done === questions.length);
        }
      });
    };

    form.addEventListener("change", function (event) {
      var box = event.target;
      if (box.type === "checkbox" && box.checked) {
        var q = box.closest("[data-fact]");
        if (q) {
          q.querySelectorAll("input[type=checkbox]").forEach(function (other) {
            if (other !== box && (box.value === "none" || other.value === "none")) { other.checked = false; }
          });
        }
      }
      count();
    });
    form.addEventListener("input", count);
    count();
  }

  // The regulator's sandbox decision: dates, relaxations and conditions only matter when approving.
  document.querySelectorAll("[data-sandbox-decide]").forEach(function (decide) {
    var block = decide.querySelector("[data-approve-only]");
    var sync = function () {
      var chosen = decide.querySelector("input[name=decision]:checked");
      block.hidden = !(chosen && chosen.value === "approve");
    };
    decide.addEventListener("change", sync);
    sync();
  });
})();
