/*
 * vidgate player: plays one video from short-lived CloudFront signed URLs.
 *
 * The page (templates/watch.html) holds a #player container whose
 * data-grant-url is a same-origin route; POSTing to it (with the CSRF token
 * from <meta name="csrf-token">) returns {url, expires_at, content_type}, or
 * {error, message} with 401 / 403 premium_required / 404 / 503. No token ever
 * reaches this script: the server calls the playback handler for us.
 *
 * Signed URLs are checked on every Range request, so a URL that expired in
 * the middle of a video would stop it at the next request. The player renews
 * the URL before it expires (at 75 % of its remaining life, and at least 2 s
 * early) and swaps it into the <video> while keeping the position and the
 * play state. If the media fails anyway (a 403 after expiry, a dropped
 * connection) it recovers once with a fresh URL; if the fresh URL fails too,
 * or the server refuses the renewal (premium ended, signed out), it stops and
 * says why in #player-status. It never loops.
 *
 * State for people and tests, on #player: data-state (loading | ready |
 * playing | paused | ended | stopped | error), data-stop-reason, data-grants,
 * data-renewals, data-recoveries, data-renewing, data-swapping, data-position
 * (seconds; unlike video.currentTime it does not drop to 0 during a swap),
 * data-expires-at.
 */
(function () {
  "use strict";

  var RENEW_AT_FRACTION = 0.75; // of the URL's remaining lifetime
  var RENEW_MARGIN_MS = 2000; // renew no later than this before expiry
  var MIN_RENEW_DELAY_MS = 500;
  var RETRY_DELAYS_MS = [1000, 3000, 7000]; // transient failures (503, network) of a renewal
  var SKEW_IGNORED_MS = 2000; // clock differences smaller than this are ignored

  var MESSAGES = {
    loading: "Getting your video ready…",
    ready: "Ready — press Play.",
    blocked: "Press Play to start the video.",
    renewing: "Reconnecting…",
    retrying: "Connection trouble — retrying…",
    ended: "Finished. Press Play to watch again.",
    premium_required: "Your premium access has ended — playback stopped.",
    unauthorized: "Your session has ended — playback stopped. Please sign in again.",
    not_found: "This video is no longer available — playback stopped.",
    csrf: "This page has expired — playback stopped. Please reload the page (you may need to sign in again).",
    unavailable: "The video service is temporarily unavailable. Please try again in a moment.",
    media: "The video could not be played. Please reload the page to try again.",
    refused: "The video could not be loaded. Please reload the page to try again."
  };
  // Refusals that end playback for a reason the viewer must act on (data-state="stopped").
  var STOP_REASONS = { premium_required: true, unauthorized: true, not_found: true };

  function start(root) {
    var video = document.getElementById("player-video");
    var playButton = document.getElementById("player-play");
    var retryButton = document.getElementById("player-retry");
    var signInLink = document.getElementById("player-sign-in");
    var statusEl = document.getElementById("player-status");
    var csrfMeta = document.querySelector('meta[name="csrf-token"]');
    var grantUrl = root.getAttribute("data-grant-url");

    var url = null; // the signed URL now on the <video>
    var urlFromRecovery = false; // this URL replaced one that failed: its failure is final
    var expiresAtMs = 0; // the URL's expiry, on this browser's clock
    var renewTimer = null;
    var retryTimer = null;
    var retries = 0;
    var inflight = null; // the grant request in progress, if any
    var stale = false; // the renewal came due while paused: renew before playing again
    var wantPlay = false; // the viewer wants the video playing
    var swap = null; // {time, play, generation} while a new URL is being loaded
    var generation = 0;
    var position = 0; // last known playback position (seconds)
    var halted = false;
    var counters = { grants: 0, renewals: 0, recoveries: 0 };

    // ------------------------------------------------------------------ display

    function setState(state) {
      root.setAttribute("data-state", state);
      playButton.textContent = state === "playing" ? "Pause" : "Play";
    }

    function setStatus(text, kind) {
      statusEl.textContent = text || "";
      statusEl.setAttribute("data-kind", kind || "info");
    }

    function count(name) {
      counters[name] += 1;
      root.setAttribute("data-" + name, String(counters[name]));
    }

    function setRenewing(on) {
      root.setAttribute("data-renewing", on ? "true" : "false");
    }

    // The position survives source swaps (video.currentTime reads 0 while one loads).
    function setPosition(seconds) {
      position = seconds;
      root.setAttribute("data-position", seconds.toFixed(2));
    }

    // ------------------------------------------------------------------ grants

    function requestGrant() {
      if (inflight) {
        return inflight;
      }
      setRenewing(true);
      var headers = {
        "Accept": "application/json",
        "Content-Type": "application/json",
        "X-CSRF-Token": csrfMeta ? csrfMeta.getAttribute("content") : ""
      };
      inflight = fetch(grantUrl, {
        method: "POST",
        headers: headers,
        body: "{}",
        credentials: "same-origin",
        cache: "no-store",
        redirect: "error"
      })
        .then(function (response) {
          var receivedAt = Date.now();
          return response.text().then(function (text) {
            var body = null;
            try {
              body = text ? JSON.parse(text) : null;
            } catch (ignored) {
              body = null;
            }
            if (response.ok && body && typeof body.url === "string" && body.expires_at) {
              return { ok: true, grant: body, skewMs: clockSkew(response, receivedAt) };
            }
            var code = body && typeof body.error === "string" ? body.error : "";
            return { ok: false, status: response.status, code: code };
          });
        })
        .catch(function () {
          return { ok: false, status: 0, code: "network" };
        })
        .then(function (result) {
          inflight = null;
          setRenewing(false);
          return result;
        });
      return inflight;
    }

    // server clock minus ours, from the response's Date header (second resolution)
    function clockSkew(response, receivedAt) {
      var header = response.headers.get("Date");
      var serverMs = header ? Date.parse(header) : NaN;
      if (isNaN(serverMs)) {
        return 0;
      }
      var skew = serverMs + 500 - receivedAt;
      return Math.abs(skew) < SKEW_IGNORED_MS ? 0 : skew;
    }

    function reasonOf(result) {
      if (result.status === 401 || result.code === "unauthorized") {
        return "unauthorized";
      }
      if (result.code === "premium_required") {
        return "premium_required";
      }
      if (result.status === 404 || result.code === "not_found") {
        return "not_found";
      }
      if (result.code === "csrf") {
        return "csrf";
      }
      if (result.status === 0 || result.status === 429 || result.status >= 500) {
        return "unavailable";
      }
      return "refused";
    }

    // Fetch a grant and put it on the <video>. `kind`: first | renewal | recovery; `resume`
    // ({time, play}) defaults to where the video is when the grant arrives. One at a time.
    function obtain(kind, resume) {
      if (inflight) {
        return inflight;
      }
      clearTimeout(retryTimer);
      return requestGrant().then(function (result) {
        if (halted) {
          return;
        }
        if (result.ok) {
          retries = 0;
          applyGrant(result.grant, result.skewMs, kind, resume);
          return;
        }
        var reason = reasonOf(result);
        if (reason === "unavailable" && retries < RETRY_DELAYS_MS.length) {
          setStatus(MESSAGES.retrying, "info");
          retryTimer = setTimeout(function () {
            obtain(kind, resume);
          }, RETRY_DELAYS_MS[retries]);
          retries += 1;
          return;
        }
        halt(reason);
      });
    }

    function applyGrant(grant, skewMs, kind, resume) {
      count("grants");
      var expires = Date.parse(grant.expires_at);
      expiresAtMs = isNaN(expires) ? Date.now() : expires - skewMs;
      root.setAttribute("data-expires-at", grant.expires_at);
      stale = false;
      if (kind === "first") {
        url = grant.url;
        urlFromRecovery = false;
        video.src = url;
        setState("ready");
        setStatus(wantPlay ? MESSAGES.loading : MESSAGES.ready, "info");
        playButton.disabled = false;
        if (wantPlay) {
          play();
        }
      } else {
        count("renewals");
        if (kind === "recovery") {
          count("recoveries");
        }
        urlFromRecovery = kind === "recovery";
        swapSource(grant.url, resume || snapshot());
      }
      scheduleRenewal();
    }

    function scheduleRenewal() {
      clearTimeout(renewTimer);
      var remaining = expiresAtMs - Date.now();
      var delay = Math.min(remaining * RENEW_AT_FRACTION, remaining - RENEW_MARGIN_MS);
      renewTimer = setTimeout(renewalDue, Math.max(MIN_RENEW_DELAY_MS, delay));
    }

    function renewalDue() {
      if (halted) {
        return;
      }
      if (isPlaying() || wantPlay) {
        obtain("renewal", null);
      } else {
        stale = true; // nobody is watching: renew when they play or seek again
      }
    }

    // ------------------------------------------------------------------ the <video>

    function isPlaying() {
      return !video.paused && !video.ended;
    }

    function snapshot() {
      if (swap) {
        return { time: swap.time, play: wantPlay };
      }
      var time = video.readyState >= 1 && !video.error ? video.currentTime : position;
      return { time: time || position, play: wantPlay };
    }

    function swapSource(newUrl, resume) {
      generation += 1;
      var mine = generation;
      swap = { time: resume.time, play: resume.play, generation: mine };
      root.setAttribute("data-swapping", "true");
      url = newUrl;
      video.addEventListener("loadedmetadata", function restore() {
        video.removeEventListener("loadedmetadata", restore);
        if (!swap || swap.generation !== mine) {
          return;
        }
        var target = swap.time;
        var resumePlay = swap.play;
        swap = null;
        root.setAttribute("data-swapping", "false");
        if (target > 0 && isFinite(video.duration)) {
          video.currentTime = Math.min(target, Math.max(0, video.duration - 0.05));
        } else if (target > 0) {
          video.currentTime = target;
        }
        setPosition(target);
        if (resumePlay) {
          play();
        } else {
          setStatus("", "info");
        }
      });
      video.src = newUrl; // starts loading the new URL (the old request is dropped)
    }

    function play() {
      wantPlay = true;
      var promise = video.play();
      if (promise && typeof promise.catch === "function") {
        promise.catch(function (error) {
          if (error && error.name === "NotAllowedError") {
            wantPlay = false; // autoplay blocked: the viewer has to press Play
            setState("paused");
            setStatus(MESSAGES.blocked, "info");
          }
          // AbortError: a new source replaced this one; the swap resumes playback itself.
        });
      }
    }

    function needsFreshUrl() {
      return stale || Date.now() >= expiresAtMs - RENEW_MARGIN_MS;
    }

    function onPlayPressed() {
      if (halted || !url) {
        wantPlay = !halted;
        return;
      }
      if (isPlaying()) {
        wantPlay = false;
        video.pause();
        return;
      }
      if (video.ended) {
        setPosition(0);
      }
      if (needsFreshUrl()) {
        wantPlay = true;
        setStatus(MESSAGES.renewing, "info");
        obtain("renewal", video.ended ? { time: 0, play: true } : null);
        return;
      }
      play();
    }

    function onMediaError() {
      var error = video.error;
      if (halted || !error || !url || error.code === 1 /* MEDIA_ERR_ABORTED */) {
        return;
      }
      if (inflight) {
        return; // a renewal is on its way and will replace this source
      }
      if (urlFromRecovery) {
        halt("media"); // the fresh URL failed too: do not loop
        return;
      }
      setStatus(MESSAGES.renewing, "info");
      obtain("recovery", null);
    }

    function halt(reason) {
      halted = true;
      wantPlay = false;
      swap = null;
      root.setAttribute("data-swapping", "false");
      clearTimeout(renewTimer);
      clearTimeout(retryTimer);
      var stopped = STOP_REASONS[reason] === true;
      video.pause();
      if (url) {
        video.removeAttribute("src");
        video.load();
      }
      url = null;
      root.setAttribute("data-stop-reason", reason);
      setState(stopped ? "stopped" : "error");
      setStatus(MESSAGES[reason] || MESSAGES.refused, "error");
      playButton.disabled = true;
      signInLink.hidden = reason !== "unauthorized";
      retryButton.hidden = reason !== "unavailable";
    }

    function retry() {
      retryButton.hidden = true;
      halted = false;
      retries = 0;
      root.setAttribute("data-stop-reason", "");
      setState("loading");
      setStatus(MESSAGES.loading, "info");
      if (counters.grants === 0) {
        obtain("first", null);
      } else {
        wantPlay = true;
        obtain("recovery", null);
      }
    }

    video.addEventListener("playing", function () {
      if (!swap) {
        setState("playing");
        setStatus("", "info");
      }
    });
    video.addEventListener("play", function () {
      wantPlay = true;
      if (needsFreshUrl() && !swap && !halted) {
        obtain("renewal", null);
      }
    });
    video.addEventListener("pause", function () {
      if (swap || halted || video.ended || video.error) {
        return; // a source swap, a stop or a media error (recovered below), not the viewer
      }
      wantPlay = false;
      setState("paused");
    });
    video.addEventListener("ended", function () {
      wantPlay = false;
      setState("ended");
      setStatus(MESSAGES.ended, "info");
    });
    video.addEventListener("timeupdate", function () {
      if (!swap && video.readyState >= 1) {
        setPosition(video.currentTime);
      }
    });
    video.addEventListener("seeking", function () {
      if (swap || halted) {
        return;
      }
      setPosition(video.currentTime);
      if (needsFreshUrl()) {
        obtain("renewal", null);
      }
    });
    video.addEventListener("error", onMediaError);
    playButton.addEventListener("click", onPlayPressed);
    retryButton.addEventListener("click", retry);

    setState("loading");
    setStatus(MESSAGES.loading, "info");
    obtain("first", null);
  }

  function init() {
    var root = document.getElementById("player");
    if (root && root.getAttribute("data-grant-url")) {
      start(root);
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
