/*
 * The admin videos list, live: rows still uploading or processing (those with a
 * data-state-url) follow their state through publishing-state.js and redraw their
 * state badge (with a <progress> bar while processing); polling stops for a row once
 * it is ready or failed, so nothing is fetched when nothing is pending.
 */
(function () {
  "use strict";

  function badge(data) {
    var shown = data.shown_state;
    var span = document.createElement("span");
    span.className = "badge badge-state-" + shown;
    span.dataset.state = shown;
    var label = document.createElement("span");
    label.className = "badge-label";
    label.textContent = data.label;
    span.appendChild(label);
    if (data.state === "processing" && data.progress !== null) {
      span.dataset.progress = String(data.progress);
      label.textContent = data.label + " " + data.progress + "%";
      var bar = document.createElement("progress");
      bar.className = "state-progress";
      bar.max = 100;
      bar.value = data.progress;
      bar.setAttribute("aria-label", "Processing progress");
      bar.textContent = data.progress + "%";
      span.appendChild(document.createTextNode(" "));
      span.appendChild(bar);
    }
    if (data.state === "failed" && data.failure_reason) {
      span.title = data.failure_reason;
    }
    return span;
  }

  function followRow(row) {
    var cell = row.querySelector(".video-state");
    if (!cell) {
      return;
    }
    window.vidgatePublishing.follow(
      row.dataset.stateUrl,
      function (data) {
        row.dataset.state = data.shown_state;
        cell.replaceChildren(badge(data));
        if (!data.pending) {
          delete row.dataset.stateUrl;
        }
      },
      function (why) {
        cell.title = why;
        delete row.dataset.stateUrl;
      }
    );
  }

  function start() {
    if (!window.vidgatePublishing) {
      return;
    }
    var rows = document.querySelectorAll("#videos tr[data-state-url]");
    for (var i = 0; i < rows.length; i += 1) {
      followRow(rows[i]);
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
