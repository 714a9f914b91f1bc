// The marketplace page's filter box. The page works without it: this only
// hides the offerings that do not match what is typed. It reads the
// data-search attributes the server wrote and never inserts HTML.
"use strict";

document.addEventListener("DOMContentLoaded", function () {
  var box = document.getElementById("filter");
  var input = document.getElementById("filter-input");
  var count = document.getElementById("filter-count");
  if (!box || !input || !count) {
    return;
  }
  var offerings = Array.prototype.slice.call(document.querySelectorAll("article.offering"));
  var tocItems = Array.prototype.slice.call(document.querySelectorAll("li.toc-offering"));
  var producers = Array.prototype.slice.call(document.querySelectorAll("[data-producer]"));
  box.hidden = false;

  function apply() {
    var words = input.value.toLowerCase().split(/\s+/).filter(Boolean);
    var matches = function (el) {
      var text = el.getAttribute("data-search") || "";
      return words.every(function (w) { return text.indexOf(w) >= 0; });
    };
    var shown = 0;
    offerings.forEach(function (el) {
      el.hidden = !matches(el);
      if (!el.hidden) {
        shown++;
      }
    });
    tocItems.forEach(function (el) { el.hidden = !matches(el); });
    // A producer section (or table-of-contents entry) with nothing left
    // to show goes too, unless it holds the signed-in producer's failures.
    producers.forEach(function (el) {
      var visible = el.querySelector("[data-search]:not([hidden])") || el.querySelector(".failures");
      el.hidden = !visible;
    });
    count.textContent = words.length ? shown + " of " + offerings.length + " offerings" : "";
  }

  input.addEventListener("input", apply);
});
