// Drag-and-drop for the public label check (/labels/verify). Progressive enhancement only: without this
// script the plain file input and the submit button do the same. A dropped file goes into that input and the
// form is submitted as usual; nothing is read or sent by script.
(function () {
  "use strict";
  var zone = document.querySelector("[data-drop-zone]");
  if (!zone || typeof DataTransfer === "undefined") { return; }
  var form = zone.closest("form");
  var input = form && form.querySelector('input[type="file"]');
  if (!input) { return; }
  var nameOut = zone.querySelector("[data-drop-name]");
  zone.hidden = false;
  zone.addEventListener("click", function () { input.click(); });
  ["dragenter", "dragover"].forEach(function (type) {
    zone.addEventListener(type, function (event) {
      event.preventDefault();
      zone.classList.add("is-over");
    });
  });
  ["dragleave", "drop"].forEach(function (type) {
    zone.addEventListener(type, function () { zone.classList.remove("is-over"); });
  });
  zone.addEventListener("drop", function (event) {
    event.preventDefault();
    var files = event.dataTransfer && event.dataTransfer.files;
    if (!files || !files.length) { return; }
    var transfer = new DataTransfer();
    transfer.items.add(files[0]);
    input.files = transfer.files;
    if (nameOut) { nameOut.textContent = files[0].name; }
    form.requestSubmit ? form.requestSubmit() : form.submit();
  });
}());
