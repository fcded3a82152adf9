/*
 * Follows a video's publishing state (GET /admin/videos/<id>/state) until it is ready or
 * failed, for the admin pages that show processing live: the upload page's second
 * progress bar and the videos list. window.vidgatePublishing.follow(url, onState) polls
 * every 1 s, slowing to 2 s while nothing changes and backing off further on errors (a
 * transient error or a restart of the web app does not stop it); it stops on ready,
 * failed or a 404 (the video was removed) and returns a function that stops it early.
 */
(function () {
  "use strict";

  var FIRST_MS = 1000;
  var STEADY_MAX_MS = 2000;
  var ERROR_MAX_MS = 15000;
  var MAX_ERRORS = 20;

  function follow(url, onState, onGiveUp) {
    var stopped = false;
    var timer = null;
    var delay = FIRST_MS;
    var errors = 0;
    var last = "";

    function schedule(ms) {
      if (!stopped) {
        timer = window.setTimeout(poll, ms);
      }
    }

    function poll() {
      if (document.hidden) {
        schedule(STEADY_MAX_MS); // a background tab: no requests, look again later
        return;
      }
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" }, cache: "no-store" })
        .then(function (response) {
          if (response.status === 404) {
            stopped = true;
            if (onGiveUp) {
              onGiveUp("This video no longer exists.");
            }
            return null;
          }
          if (!response.ok) {
            throw new Error("HTTP " + response.status);
          }
          return response.json();
        })
        .then(function (data) {
          if (stopped || !data) {
            return;
          }
          errors = 0;
          var seen = data.state + ":" + data.progress;
          delay = seen === last ? Math.min(STEADY_MAX_MS, Math.round(delay * 1.25)) : FIRST_MS;
          last = seen;
          onState(data);
          if (data.pending) {
            schedule(delay);
          } else {
            stopped = true;
          }
        })
        .catch(function () {
          if (stopped) {
            return;
          }
          errors += 1;
          if (errors >= MAX_ERRORS) {
            stopped = true;
            if (onGiveUp) {
              onGiveUp("The state could not be read for a while; reload the page to try again.");
            }
            return;
          }
          schedule(Math.min(ERROR_MAX_MS, FIRST_MS * Math.pow(2, errors)));
        });
    }

    schedule(0);
    return function stop() {
      stopped = true;
      if (timer !== null) {
        window.clearTimeout(timer);
      }
    };
  }

  window.vidgatePublishing = { follow: follow };
})();
