/*
 * vidgate player: plays one video from short-lived grants, with its own controls.
 *
 * The page (templates/watch.html) holds a #player container whose
 * data-grant-url is a same-origin route; POSTing to it (with the CSRF token
 * from <meta name="csrf-token">) returns a grant, or {error, message} with
 * 401 / 403 premium_required / 404 / 409 / 503. No token ever reaches this
 * script: the server calls the playback handler for us.
 *
 * Grants come in two formats:
 *  - HLS: {url: master playlist, expires_at, format: "hls"} with CloudFront
 *    signed cookies set on the response for /videos/<id>/. The playlists and
 *    segments come from this page's own host (the front door), so the browser
 *    sends those cookies with hls.js's requests by itself: no xhrSetup.
 *  - MP4: {url: signed URL, expires_at, format: "mp4"}: the progressive
 *    fallback, asked for with {"format": "mp4"} when this browser can play
 *    HLS neither through Media Source Extensions (hls.js) nor natively.
 * Engines, in order: hls.js when Hls.isSupported() (MSE); the browser's own
 * HLS only where MSE is missing (iOS Safari); otherwise MP4.
 *
 * hls.js runs its transmuxer in a Web Worker loaded from /static
 * (config.workerPath), so the Content-Security-Policy needs worker-src 'self'
 * and no blob: worker; hls.js uses no eval. MSE itself needs media-src blob:.
 *
 * Grants expire. The player renews before expiry (at 75 % of the remaining
 * life, at least 2 s early). For HLS a renewal only re-issues the cookies:
 * hls.js keeps playing. For MP4 the new URL is swapped into the <video>
 * keeping position and play state. A fatal failure is recovered once (a new
 * grant, then hls.startLoad, or hls.recoverMediaError, or a fresh MP4 URL);
 * if that fails too, or the server refuses a renewal (premium ended, signed
 * out, stream ended), playback stops and #player-status says why. Never a loop.
 *
 * State for people and tests, on #player: data-state (loading | ready |
 * playing | paused | ended | stopped | error), data-stop-reason, data-grants,
 * data-renewals, data-recoveries, data-renewing, data-swapping, data-position
 * (seconds; unlike video.currentTime it does not drop to 0 during a swap),
 * data-expires-at, data-format (hls | mp4), data-engine (hlsjs | native |
 * progressive), data-levels (HLS rungs), data-level (the rung playing now,
 * -1 unknown), data-loading-level (the rung being fetched), data-quality (auto
 * or the chosen rung), data-rate, data-captions (none | off | on).
 */
(function () {
  "use strict";

  var RENEW_AT_FRACTION = 0.75; // of the grant's remaining lifetime
  var RENEW_MARGIN_MS = 2000; // renew no later than this before expiry
  var MIN_RENEW_DELAY_MS = 500;
  var RETRY_DELAYS_MS = [1000, 3000, 7000]; // transient failures (503, network) of a grant
  var SKEW_IGNORED_MS = 2000; // clock differences smaller than this are ignored
  var SKIP_SECONDS = 10; // j / l, the skip buttons, a double tap
  var ARROW_SECONDS = 5; // the arrow keys
  var IDLE_HIDE_MS = 2500; // controls fade while playing with no pointer or key activity
  var DOUBLE_TAP_MS = 300;
  var HLS_TYPE = "application/vnd.apple.mpegurl";

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
    too_many_streams: "You are already watching on as many screens as your plan allows — end one of them to watch here.",
    session_ended: "This stream was ended (on another screen or by an administrator) — playback stopped.",
    end_failed: "That stream could not be ended. Reload the page and try again.",
    csrf: "This page has expired — playback stopped. Please reload the page (you may need to sign in again).",
    unavailable: "The video service is temporarily unavailable. Please try again in a moment.",
    media: "The video could not be played. Please reload the page to try again.",
    refused: "The video could not be loaded. Please reload the page to try again."
  };
  // Refusals that end playback for a reason the viewer must act on (data-state="stopped").
  var STOP_REASONS = {
    premium_required: true,
    unauthorized: true,
    not_found: true,
    too_many_streams: true,
    session_ended: true
  };

  function formatTime(seconds) {
    var total = isFinite(seconds) && seconds > 0 ? Math.floor(seconds) : 0;
    var h = Math.floor(total / 3600);
    var m = Math.floor((total % 3600) / 60);
    var s = total % 60;
    var mm = h ? (m < 10 ? "0" : "") + m : String(m);
    return (h ? h + ":" : "") + mm + ":" + (s < 10 ? "0" : "") + s;
  }

  function formatBitrate(bps) {
    return bps >= 1e6 ? (bps / 1e6).toFixed(1) + " Mb/s" : Math.round(bps / 1e3) + " kb/s";
  }

  function levelName(level) {
    return level.height ? level.height + "p" : formatBitrate(level.bitrate);
  }

  function start(root) {
    var $ = function (id) {
      return document.getElementById(id);
    };
    var video = $("player-video");
    var surface = $("player-surface");
    var playButton = $("player-play");
    var retryButton = $("player-retry");
    var signInLink = $("player-sign-in");
    var statusEl = $("player-status");
    var seek = $("player-seek");
    var bufferedEl = $("player-buffered");
    var playedEl = $("player-played");
    var timeEl = $("player-time");
    var toolbar = $("player-toolbar");
    var muteButton = $("player-mute");
    var volume = $("player-volume");
    var speedButton = $("player-speed");
    var speedMenu = $("player-speed-menu");
    var qualityButton = $("player-quality");
    var qualityMenu = $("player-quality-menu");
    var captionsButton = $("player-captions");
    var pipButton = $("player-pip");
    var fullscreenButton = $("player-fullscreen");
    var nextPanel = $("player-next");
    var captionsText = $("player-captions-text");
    var csrfMeta = document.querySelector('meta[name="csrf-token"]');
    var grantUrl = root.getAttribute("data-grant-url");
    var endUrl = root.getAttribute("data-end-url");
    var endStreamUrl = root.getAttribute("data-end-stream-url");
    var resumeAt = parseFloat(root.getAttribute("data-resume") || "0") || 0;
    var resumeEl = $("player-resume");
    var streamsEl = $("player-streams");
    var streamsList = $("player-streams-list");
    var workerUrl = root.getAttribute("data-hls-worker");

    var HlsLib = typeof window.Hls === "function" ? window.Hls : null;
    var mseHls = !!(HlsLib && HlsLib.isSupported());
    var nativeHls = !mseHls && video.canPlayType(HLS_TYPE) !== "";

    var engine = null; // "hlsjs" | "native" | "progressive", once the first grant is applied
    var hls = null; // the hls.js instance when engine is "hlsjs"
    var url = null; // the grant's URL now on the player
    var sessionId = null; // the playback session a renewal continues (when the API issues one)
    var fromRecovery = false; // the grant now in use replaced one that failed: a failure is final
    var mediaRecovered = false; // hls.recoverMediaError was used once already
    var loadingStopped = false; // hls.js loading paused because the cookies went stale
    var expiresAtMs = 0; // the grant's expiry, on this browser's clock
    var renewTimer = null;
    var retryTimer = null;
    var retries = 0;
    var inflight = null; // the grant request in progress, if any
    var stale = false; // the renewal came due while paused: renew before playing again
    var wantPlay = false; // the viewer wants the video playing
    var swap = null; // {time, play, generation} while a new source is being loaded
    var generation = 0;
    var position = 0; // last known playback position (seconds)
    var halted = false;
    var counters = { grants: 0, renewals: 0, recoveries: 0 };
    var qualityChoice = -1; // -1: Auto; otherwise the hls.levels index the viewer chose
    var playingLevel = -1;
    var captionsOn = false;
    var seekDragging = false; // the seek bar's thumb is being dragged: do not move it under the pointer
    var renewedOn403 = false; // a refused segment already asked for fresh cookies
    var grantAppliedAt = 0; // performance.now() when the newest grant (cookies) took effect
    var heartbeatMs = 0; // the server's heartbeat interval (a renewal at least this often)
    var playRequestedAt = 0; // performance.now() of the first play request (startup time)
    var startupMs = -1; // play request -> first frame; reported once, on the next heartbeat
    var startupSent = false;
    var waitingSince = 0; // performance.now() when playback stalled (0: not stalled)
    var stallMs = 0; // stalled time since the last heartbeat

    // ------------------------------------------------------------------ display

    function setState(state) {
      root.setAttribute("data-state", state);
      var playing = state === "playing";
      setLabel(playButton, playing ? "Pause" : "Play");
      setIcon(playButton, playing ? "pause" : "play");
      playButton.title = playing ? "Pause (k)" : "Play (k)";
      if (nextPanel) {
        nextPanel.hidden = state !== "ended";
      }
      showControls();
    }

    function setLabel(button, text) {
      var label = button.querySelector(".visually-hidden");
      label.textContent = text;
    }

    function setIcon(button, name) {
      button.querySelector("use").setAttribute("href", "#player-i-" + name);
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
      renderTime();
    }

    // ------------------------------------------------------------------ grants

    function grantBody() {
      var body = {};
      if (engine === "progressive" || (!engine && !mseHls && !nativeHls)) {
        body.format = "mp4"; // this browser plays no HLS, or is already on the MP4
      }
      if (sessionId) {
        body.session_id = sessionId; // a renewal is the stream's heartbeat
        body.position = Math.round(position * 10) / 10;
        var level = hls && hls.levels && playingLevel >= 0 ? hls.levels[playingLevel] : null;
        if (level) {
          body.rendition = levelName(level);
          if (level.bitrate > 0) {
            body.bitrate = Math.round(level.bitrate);
          }
        }
        var stalled = stallMs + (waitingSince ? performance.now() - waitingSince : 0);
        body.stall_ms = Math.round(stalled);
        stallMs = 0;
        if (waitingSince) {
          waitingSince = performance.now();
        }
        if (startupMs >= 0 && !startupSent) {
          body.startup_ms = Math.round(startupMs);
          startupSent = true;
        }
      }
      return JSON.stringify(body);
    }

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
        body: grantBody(),
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
            var active = body && Array.isArray(body.active) ? body.active : [];
            return { ok: false, status: response.status, code: code, active: active };
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
      if (result.code === "too_many_streams" || result.code === "session_ended") {
        return result.code;
      }
      if (result.code === "csrf") {
        return "csrf";
      }
      if (result.status === 0 || result.status === 429 || result.status >= 500) {
        return "unavailable";
      }
      return "refused";
    }

    function formatOf(grant) {
      if (grant.format === "hls" || grant.format === "mp4") {
        return grant.format;
      }
      return grant.content_type === HLS_TYPE ? "hls" : "mp4";
    }

    // Fetch a grant and apply it. `kind`: first | renewal | recovery; `resume`
    // ({time, play}) defaults to where the video is when the grant arrives. One at a time.
    function obtain(kind, resume) {
      if (inflight) {
        return inflight;
      }
      clearTimeout(retryTimer);
      var wasStale = stale && sessionId !== null;
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
        if (reason === "session_ended" && wasStale) {
          sessionId = null; // paused past two heartbeats: this play starts a new stream
          obtain(kind, resume);
          return;
        }
        if (reason === "too_many_streams") {
          showStreams(result.active);
        }
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
      grantAppliedAt = performance.now();
      var expires = Date.parse(grant.expires_at);
      expiresAtMs = isNaN(expires) ? Date.now() : expires - skewMs;
      root.setAttribute("data-expires-at", grant.expires_at);
      if (typeof grant.session_id === "string" && grant.session_id) {
        sessionId = grant.session_id;
        root.setAttribute("data-session-id", sessionId);
      }
      if (typeof grant.heartbeat_seconds === "number" && grant.heartbeat_seconds > 0) {
        heartbeatMs = grant.heartbeat_seconds * 1000;
      }
      stale = false;
      var format = formatOf(grant);
      if (format === "hls" && !mseHls && !nativeHls) {
        halt("media"); // the server ignored {"format": "mp4"}: nothing here can play this
        return;
      }
      if (kind === "first") {
        attach(format, grant.url, resumeAt > 0 ? { time: resumeAt, play: false } : null);
        if (resumeAt > 0) {
          setPosition(resumeAt);
          showResume();
        }
        setState("ready");
        setStatus(wantPlay ? MESSAGES.loading : MESSAGES.ready, "info");
        playButton.disabled = false;
        refreshToolbar();
        if (wantPlay) {
          play();
        }
      } else {
        count("renewals");
        if (kind === "recovery") {
          count("recoveries");
        }
        if (kind === "recovery" || engine !== "hlsjs") {
          fromRecovery = kind === "recovery"; // hls.js: cleared by a fragment that buffers, not by time
        }
        var where = resume || snapshot();
        if (format !== (engine === "progressive" ? "mp4" : "hls") || (engine === "hlsjs" && !hls)) {
          attach(format, grant.url, where); // a new format, or after a stop: start over, same place
        } else if (engine === "hlsjs") {
          resumeHls(grant.url, kind, where); // the new cookies are set: hls.js carries on
        } else if (engine === "native" && kind !== "recovery" && url) {
          url = grant.url; // the new cookies are set: the browser carries on
          if (where.play && video.paused) {
            play();
          }
        } else {
          swapSource(grant.url, where);
        }
      }
      scheduleRenewal();
    }

    function scheduleRenewal() {
      clearTimeout(renewTimer);
      var remaining = expiresAtMs - Date.now();
      var delay = Math.min(remaining * RENEW_AT_FRACTION, remaining - RENEW_MARGIN_MS);
      if (heartbeatMs > 0) {
        delay = Math.min(delay, heartbeatMs); // renewals are the stream's heartbeats
      }
      renewTimer = setTimeout(renewalDue, Math.max(MIN_RENEW_DELAY_MS, delay));
    }

    function renewalDue() {
      if (halted) {
        return;
      }
      if (isPlaying() || wantPlay) {
        obtain("renewal", null);
        return;
      }
      stale = true; // nobody is watching: renew when they play or seek again
      if (hls && !loadingStopped) {
        loadingStopped = true;
        hls.stopLoad(); // the cookies are about to expire: load nothing more until renewed
      }
    }

    // ------------------------------------------------------------------ engines

    function attach(format, newUrl, resume) {
      detach();
      url = newUrl;
      if (format === "hls" && mseHls) {
        engine = "hlsjs";
        startHls(newUrl, resume);
      } else if (format === "hls") {
        engine = "native";
        if (resume) {
          swapSource(newUrl, resume);
        } else {
          video.src = newUrl;
        }
      } else {
        engine = "progressive";
        if (resume) {
          swapSource(newUrl, resume);
        } else {
          video.src = newUrl;
        }
      }
      root.setAttribute("data-engine", engine);
      root.setAttribute("data-format", format);
    }

    function detach() {
      if (hls) {
        hls.destroy(); // detaches the MediaSource and removes video.src
        hls = null;
      }
      hlsCues = [];
      hlsCueKeys = {};
      hlsCueTrack = null;
      inStreamCaptions = false;
      root.setAttribute("data-loading-level", "-1");
      levelsChanged([]);
    }

    function startHls(newUrl, resume) {
      hls = new HlsLib({
        workerPath: workerUrl, // the transmuxer worker from /static: worker-src 'self', no blob:
        enableWorker: true,
        renderTextTracksNatively: false, // the player draws captions (see "captions" below)
        enableID3MetadataCues: false, // no timed metadata here; hls.js would add a data: <track>
        enableEmsgMetadataCues: false,
        maxBufferLength: 10, // read 10 s ahead, not "up to 60 MB": egress is paid, Auto reacts sooner
        maxMaxBufferLength: 10,
        abrEwmaFastVoD: 2, // quicker than hls.js's 3 s / 9 s: a worse line drops the rung in seconds
        abrEwmaSlowVoD: 6,
        startPosition: resume && resume.time > 0 ? resume.time : -1
      });
      loadingStopped = false;
      mediaRecovered = false;
      var events = HlsLib.Events;
      hls.on(events.MANIFEST_PARSED, function () {
        if (qualityChoice >= 0 && qualityChoice < hls.levels.length) {
          hls.nextLevel = qualityChoice; // the viewer's choice holds across a restart
        }
        levelsChanged(hls.levels);
        if (resume && resume.play) {
          play();
        }
      });
      hls.on(events.FRAG_CHANGED, function (event, data) {
        setPlayingLevel(data.frag.level); // the rung of the fragment on screen now
      });
      hls.on(events.FRAG_BUFFERED, function () {
        renewedOn403 = false; // media flows again: a later failure may be recovered again
        fromRecovery = false;
        mediaRecovered = false;
      });
      hls.on(events.LEVEL_SWITCHING, function (event, data) {
        root.setAttribute("data-loading-level", String(data.level)); // the rung fetched from now on
      });
      hls.on(events.SUBTITLE_TRACKS_UPDATED, updateCaptions);
      hls.on(events.SUBTITLE_TRACK_SWITCH, function (event, data) {
        captionsOn = data.id >= 0; // hls.js may pick a DEFAULT=YES rendition by itself
        renderCaptions();
      });
      hls.on(events.CUES_PARSED, onCuesParsed);
      hls.on(events.ERROR, onHlsError);
      hls.loadSource(newUrl);
      hls.attachMedia(video);
    }

    function withoutQuery(address) {
      return typeof address === "string" ? address.split("?", 1)[0] : address;
    }

    // A renewal or recovery grant for hls.js: the cookies are fresh again.
    function resumeHls(newUrl, kind, where) {
      // Each grant signs the master playlist's URL anew: only another path is another playlist.
      var moved = withoutQuery(newUrl) !== withoutQuery(url);
      if (kind === "recovery" || loadingStopped || moved) {
        loadingStopped = false;
        if (moved || !hls.levels || hls.levels.length === 0) {
          url = newUrl;
          hls.loadSource(newUrl); // the playlist itself never loaded (or moved)
        } else {
          hls.startLoad(where.time > 0 ? where.time : -1);
        }
      }
      if (where.play && video.paused && !video.ended) {
        play();
      }
    }

    function onHlsError(event, data) {
      if (halted) {
        return;
      }
      var types = HlsLib.ErrorTypes;
      if (data.response && data.response.code === 403) {
        onRefusedByCdn(data);
        return;
      }
      if (!data.fatal) {
        return; // hls.js retries those itself
      }
      if (data.type === types.MEDIA_ERROR && !mediaRecovered) {
        mediaRecovered = true;
        count("recoveries");
        hls.recoverMediaError();
        return;
      }
      if (data.type === types.NETWORK_ERROR && !fromRecovery) {
        if (!inflight) {
          setStatus(MESSAGES.renewing, "info");
          obtain("recovery", null);
        }
        return;
      }
      halt("media"); // the one recovery failed too: do not loop
    }

    // The CDN refused a playlist or segment: fresh cookies first (they may have expired under
    // us, in a sleeping tab), then one recovery, then stop. hls.js itself does not retry a 4xx.
    function onRefusedByCdn(data) {
      var started = data.stats && data.stats.loading ? data.stats.loading.start : performance.now();
      if (inflight || started < grantAppliedAt) {
        return; // asked with the cookies a grant has just replaced
      }
      if (!renewedOn403) {
        renewedOn403 = true;
        obtain("renewal", null);
      } else if (!fromRecovery) {
        setStatus(MESSAGES.renewing, "info");
        obtain("recovery", null);
      } else {
        halt("media");
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
      if (!playRequestedAt) {
        playRequestedAt = performance.now();
      }
      if (resumeEl) {
        resumeEl.hidden = true;
      }
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

    function needsFreshGrant() {
      return stale || Date.now() >= expiresAtMs - RENEW_MARGIN_MS;
    }

    function togglePlay() {
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
      if (needsFreshGrant()) {
        wantPlay = true;
        setStatus(MESSAGES.renewing, "info");
        obtain("renewal", video.ended ? { time: 0, play: true } : null);
        return;
      }
      play();
    }

    function onMediaError() {
      var error = video.error;
      if (engine === "hlsjs" || halted || !error || !url || error.code === 1 /* ABORTED */) {
        return; // hls.js reports its own errors (onHlsError)
      }
      if (inflight) {
        return; // a renewal is on its way and will replace this source
      }
      if (fromRecovery) {
        halt("media"); // the fresh grant failed too: do not loop
        return;
      }
      setStatus(MESSAGES.renewing, "info");
      obtain("recovery", null);
    }

    // The stream is over for this page: tell the server now (a beacon survives page close).
    // reason: why it stopped ("ended" at the video's end, "closed" page, "stopped" otherwise).
    function endStream(errorCode, reason) {
      if (!sessionId || !endUrl) {
        return;
      }
      var form = new URLSearchParams(); // urlencoded: a beacon's one CORS-safe form body
      form.append("csrf_token", csrfMeta ? csrfMeta.getAttribute("content") : "");
      form.append("session_id", sessionId);
      form.append("position", String(Math.round(position * 10) / 10));
      if (errorCode) {
        form.append("error", errorCode);
      }
      form.append("reason", reason || "stopped");
      sessionId = null;
      root.setAttribute("data-session-id", "");
      if (!(navigator.sendBeacon && navigator.sendBeacon(endUrl, form))) {
        fetch(endUrl, { method: "POST", body: form, credentials: "same-origin", keepalive: true });
      }
    }

    function showResume() {
      if (!resumeEl) {
        return;
      }
      $("player-resume-at").textContent = formatTime(resumeAt);
      resumeEl.hidden = false;
    }

    function showStreams(active) {
      if (!streamsEl || !streamsList) {
        return;
      }
      streamsList.textContent = "";
      active.forEach(function (stream) {
        var item = document.createElement("li");
        item.className = "player-stream";
        item.setAttribute("data-session-id", stream.session_id);
        var started = new Date(stream.started_at);
        item.textContent =
          (stream.device || "A device") + " — " + (stream.title || stream.video_id) +
          ", since " + started.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) + " ";
        var button = document.createElement("button");
        button.type = "button";
        button.className = "player-action player-end-stream";
        button.textContent = "End that stream";
        button.addEventListener("click", function () {
          endOther(stream.session_id, button);
        });
        item.appendChild(button);
        streamsList.appendChild(item);
      });
      streamsEl.hidden = active.length === 0;
    }

    function endOther(otherId, button) {
      button.disabled = true;
      fetch(endStreamUrl.replace("SESSION", encodeURIComponent(otherId)), {
        method: "POST",
        headers: {
          "Accept": "application/json",
          "X-CSRF-Token": csrfMeta ? csrfMeta.getAttribute("content") : ""
        },
        credentials: "same-origin",
        cache: "no-store",
        redirect: "error"
      })
        .then(function (response) {
          if (!response.ok && response.status !== 404) {
            throw new Error("status " + response.status);
          }
          streamsEl.hidden = true; // ended (or already over): there is room for this one now
          retry();
        })
        .catch(function () {
          button.disabled = false;
          setStatus(MESSAGES.end_failed, "error");
        });
    }

    function halt(reason) {
      if (reason !== "session_ended" && reason !== "too_many_streams") {
        endStream(reason === "media" || reason === "refused" ? reason : null);
      }
      halted = true;
      wantPlay = false;
      swap = null;
      root.setAttribute("data-swapping", "false");
      clearTimeout(renewTimer);
      clearTimeout(retryTimer);
      var stopped = STOP_REASONS[reason] === true;
      video.pause();
      detach();
      if (video.hasAttribute("src")) {
        video.removeAttribute("src");
        video.load();
      }
      url = null;
      root.setAttribute("data-stop-reason", reason);
      setState(stopped ? "stopped" : "error");
      setStatus(MESSAGES[reason] || MESSAGES.refused, "error");
      playButton.disabled = true;
      seek.disabled = true;
      signInLink.hidden = reason !== "unauthorized";
      retryButton.hidden = reason !== "unavailable";
      refreshToolbar();
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
        playButton.disabled = false;
        refreshToolbar();
        obtain("recovery", { time: position, play: true }); // the old source is gone: same place
      }
    }

    // ------------------------------------------------------------------ seeking and time

    function duration() {
      return isFinite(video.duration) ? video.duration : 0;
    }

    function seekTo(seconds) {
      var end = duration();
      if (!url || halted || !end) {
        return;
      }
      var target = Math.max(0, Math.min(seconds, end - 0.05));
      if (swap) {
        swap.time = target; // applied when the new source is ready
        setPosition(target);
        return;
      }
      video.currentTime = target;
      setPosition(target);
    }

    function skip(seconds) {
      seekTo((swap ? swap.time : video.currentTime || position) + seconds);
      showControls();
    }

    function renderTime() {
      var end = duration();
      var now = swap ? swap.time : position;
      timeEl.textContent = formatTime(now) + " / " + formatTime(end);
      if (document.activeElement !== seek || !seekDragging) {
        seek.max = String(end || 0);
        seek.value = String(Math.min(now, end || 0));
      }
      seek.setAttribute("aria-valuetext", formatTime(now) + " of " + formatTime(end));
      seek.disabled = halted || !end;
      playedEl.style.width = end ? (100 * Math.min(now, end)) / end + "%" : "0";
    }

    // The buffered ranges, drawn under the seek bar (CSSOM styles: allowed by the CSP).
    function renderBuffered() {
      var end = duration();
      var ranges = video.buffered;
      while (bufferedEl.children.length > ranges.length) {
        bufferedEl.removeChild(bufferedEl.lastChild);
      }
      while (bufferedEl.children.length < ranges.length) {
        bufferedEl.appendChild(document.createElement("span"));
      }
      for (var i = 0; i < ranges.length; i += 1) {
        var from = end ? ranges.start(i) / end : 0;
        var to = end ? ranges.end(i) / end : 0;
        bufferedEl.children[i].style.left = 100 * from + "%";
        bufferedEl.children[i].style.width = 100 * Math.max(0, to - from) + "%";
      }
    }

    seek.addEventListener("input", function () {
      seekDragging = true;
      seekTo(Number(seek.value));
    });
    seek.addEventListener("change", function () {
      seekDragging = false;
      seekTo(Number(seek.value));
    });
    seek.addEventListener("keydown", function (event) {
      var keys = {
        ArrowLeft: -ARROW_SECONDS,
        ArrowDown: -ARROW_SECONDS,
        ArrowRight: ARROW_SECONDS,
        ArrowUp: ARROW_SECONDS,
        PageDown: -SKIP_SECONDS,
        PageUp: SKIP_SECONDS
      };
      if (Object.prototype.hasOwnProperty.call(keys, event.key)) {
        skip(keys[event.key]);
      } else if (event.key === "Home") {
        seekTo(0);
      } else if (event.key === "End") {
        seekTo(duration());
      } else {
        return;
      }
      event.preventDefault(); // the native step (0.1 s) is too small to be useful
      event.stopPropagation();
    });

    // ------------------------------------------------------------------ volume and speed

    function renderVolume() {
      var silent = video.muted || video.volume === 0;
      setLabel(muteButton, silent ? "Unmute" : "Mute");
      setIcon(muteButton, silent ? "muted" : "volume");
      muteButton.setAttribute("aria-pressed", silent ? "true" : "false");
      muteButton.title = silent ? "Unmute (m)" : "Mute (m)";
      var level = silent ? 0 : video.volume;
      volume.value = String(level);
      volume.setAttribute("aria-valuetext", Math.round(level * 100) + " %");
    }

    function toggleMute() {
      if (video.muted || video.volume === 0) {
        video.muted = false;
        if (video.volume === 0) {
          video.volume = 0.5;
        }
      } else {
        video.muted = true;
      }
      showControls();
    }

    function setRate(rate) {
      video.defaultPlaybackRate = rate; // survives a source swap (load() resets playbackRate)
      video.playbackRate = rate;
      root.setAttribute("data-rate", String(rate));
      $("player-speed-value").textContent = rate + "×";
      var items = speedMenu.querySelectorAll("[data-rate]");
      for (var i = 0; i < items.length; i += 1) {
        var on = Number(items[i].getAttribute("data-rate")) === rate;
        items[i].setAttribute("aria-checked", on ? "true" : "false");
      }
    }

    volume.addEventListener("input", function () {
      var value = Number(volume.value);
      video.volume = value;
      video.muted = value === 0;
    });
    video.addEventListener("volumechange", renderVolume);
    video.addEventListener("ratechange", function () {
      if (video.playbackRate !== Number(root.getAttribute("data-rate"))) {
        setRate(video.playbackRate);
      }
    });

    // ------------------------------------------------------------------ quality (HLS rungs)

    function levelsChanged(levels) {
      root.setAttribute("data-levels", String(levels.length));
      qualityButton.hidden = levels.length < 2;
      while (qualityMenu.firstChild) {
        qualityMenu.removeChild(qualityMenu.firstChild);
      }
      if (levels.length < 2) {
        setPlayingLevel(-1);
        refreshToolbar();
        return;
      }
      qualityMenu.appendChild(menuItem("Auto", "-1"));
      var order = levels.map(function (level, index) {
        return index;
      });
      order.sort(function (a, b) {
        return levels[b].height - levels[a].height || levels[b].bitrate - levels[a].bitrate;
      });
      order.forEach(function (index) {
        var level = levels[index];
        var text = levelName(level) + " · " + formatBitrate(level.bitrate);
        var item = menuItem(text, String(index));
        item.setAttribute("data-height", String(level.height || 0));
        item.setAttribute("data-bitrate", String(level.bitrate || 0));
        qualityMenu.appendChild(item);
      });
      renderQuality();
      refreshToolbar();
    }

    function menuItem(text, level) {
      var item = document.createElement("button");
      item.type = "button";
      item.className = "player-menu-item";
      item.setAttribute("role", "menuitemradio");
      item.setAttribute("tabindex", "-1");
      item.setAttribute("data-level", level);
      item.textContent = text;
      return item;
    }

    function setPlayingLevel(index) {
      playingLevel = index;
      root.setAttribute("data-level", String(index));
      renderQuality();
    }

    function chooseQuality(index) {
      qualityChoice = index;
      if (hls) {
        hls.nextLevel = index; // -1: Auto again; a rung: from the next fragment on, and it sticks
      }
      renderQuality();
    }

    function renderQuality() {
      root.setAttribute("data-quality", qualityChoice < 0 ? "auto" : String(qualityChoice));
      var levels = hls && hls.levels ? hls.levels : [];
      var now = levels[playingLevel] ? levelName(levels[playingLevel]) : "";
      var label = qualityChoice < 0 ? (now ? "Auto · " + now : "Auto") : now || "…";
      if (qualityChoice >= 0 && levels[qualityChoice] && playingLevel !== qualityChoice) {
        label = levelName(levels[qualityChoice]) + (now ? " (now " + now + ")" : "");
      }
      $("player-quality-value").textContent = label;
      var items = qualityMenu.querySelectorAll("[data-level]");
      for (var i = 0; i < items.length; i += 1) {
        var index = Number(items[i].getAttribute("data-level"));
        items[i].setAttribute("aria-checked", index === qualityChoice ? "true" : "false");
        items[i].setAttribute("data-playing", index === playingLevel ? "true" : "false");
        if (index === -1) {
          items[i].textContent = now && qualityChoice < 0 ? "Auto (" + now + ")" : "Auto";
        }
      }
    }

    // ------------------------------------------------------------------ captions
    // The player draws captions itself, above its controls and inside the fullscreen element:
    // hls.js's native rendering would add <track src="data:,WEBVTT"> nodes, which the CSP's
    // media-src refuses. Native text tracks (<track> WebVTT, Safari's own HLS) are kept
    // "hidden" (their cues load, the browser draws nothing) and drawn the same way.

    var hlsCues = []; // cues hls.js parsed for the subtitle track in use (or in-stream captions)
    var hlsCueKeys = {};
    var hlsCueTrack = null; // which hls.js track the cues above belong to
    var inStreamCaptions = false; // CEA-608 captions found in the video itself
    var shownTrack = null; // the native TextTrack whose cues are drawn
    var shownCues = "";

    function nativeTextTracks() {
      var found = [];
      for (var i = 0; i < video.textTracks.length; i += 1) {
        var track = video.textTracks[i];
        if (track.kind === "subtitles" || track.kind === "captions") {
          found.push(track);
        }
      }
      return found;
    }

    function captionTracks() {
      if (engine === "hlsjs") {
        var tracks = hls && hls.subtitleTracks ? hls.subtitleTracks : [];
        return tracks.length || !inStreamCaptions ? tracks : [{ name: "CC", default: true }];
      }
      return nativeTextTracks();
    }

    function updateCaptions() {
      var available = captionTracks().length > 0;
      captionsButton.hidden = !available;
      if (!available) {
        captionsOn = false;
      }
      nativeTextTracks().forEach(function (track) {
        if (!track.vidgateWired) {
          track.vidgateWired = true;
          track.addEventListener("cuechange", renderCues);
        }
      });
      renderCaptions();
      refreshToolbar();
    }

    function renderCaptions() {
      var available = !captionsButton.hidden;
      captionsButton.setAttribute("aria-pressed", captionsOn ? "true" : "false");
      root.setAttribute("data-captions", available ? (captionsOn ? "on" : "off") : "none");
      renderCues();
    }

    function onCuesParsed(event, data) {
      var track = data.type === "captions" ? "cc" : data.track;
      if (data.type === "captions" && !inStreamCaptions) {
        inStreamCaptions = true;
        updateCaptions();
      }
      if (track !== hlsCueTrack) {
        hlsCueTrack = track; // another track's cues: start a new list
        hlsCues = [];
        hlsCueKeys = {};
      }
      data.cues.forEach(function (cue) {
        var key = cue.startTime + "|" + cue.endTime + "|" + cue.text;
        if (!hlsCueKeys[key]) {
          hlsCueKeys[key] = true; // hls.js may parse a fragment twice
          hlsCues.push(cue);
        }
      });
      renderCues();
    }

    function activeCues() {
      if (!captionsOn) {
        return [];
      }
      if (engine === "hlsjs") {
        var now = video.currentTime;
        return hlsCues.filter(function (cue) {
          return cue.startTime <= now && now < cue.endTime;
        });
      }
      return shownTrack && shownTrack.activeCues ? Array.prototype.slice.call(shownTrack.activeCues) : [];
    }

    function renderCues() {
      var cues = activeCues();
      var key = cues.map(function (cue) {
        return cue.startTime + "|" + cue.text;
      }).join("\n");
      if (key === shownCues) {
        return;
      }
      shownCues = key;
      while (captionsText.firstChild) {
        captionsText.removeChild(captionsText.firstChild);
      }
      cues.forEach(function (cue) {
        var line = document.createElement("span");
        line.className = "player-cue";
        if (typeof cue.getCueAsHTML === "function") {
          line.appendChild(cue.getCueAsHTML()); // WebVTT markup as inert nodes (no HTML parsing)
        } else {
          line.textContent = cue.text;
        }
        captionsText.appendChild(line);
      });
      captionsText.hidden = cues.length === 0;
    }

    function preferredTrack(tracks) {
      var lang = (navigator.language || "").slice(0, 2).toLowerCase();
      for (var i = 0; i < tracks.length; i += 1) {
        if (tracks[i].default) {
          return i;
        }
      }
      for (var j = 0; j < tracks.length; j += 1) {
        var trackLang = (tracks[j].lang || tracks[j].language || "").slice(0, 2).toLowerCase();
        if (trackLang && trackLang === lang) {
          return j;
        }
      }
      return 0;
    }

    function toggleCaptions() {
      var tracks = captionTracks();
      if (!tracks.length) {
        return;
      }
      captionsOn = !captionsOn;
      var chosen = preferredTrack(tracks);
      if (engine === "hlsjs") {
        if (hls.subtitleTracks.length) {
          hls.subtitleTrack = captionsOn ? chosen : -1; // loads (or stops loading) that rendition
        }
      } else {
        tracks.forEach(function (track, index) {
          track.mode = captionsOn && index === chosen ? "hidden" : "disabled";
        });
        shownTrack = captionsOn ? tracks[chosen] : null;
      }
      renderCaptions();
      showControls();
    }

    // iPhone fullscreen shows only the <video>: let the browser draw the cues there.
    video.addEventListener("webkitbeginfullscreen", function () {
      if (shownTrack) {
        shownTrack.mode = "showing";
      }
    });
    video.addEventListener("webkitendfullscreen", function () {
      if (shownTrack) {
        shownTrack.mode = "hidden";
      }
    });
    video.textTracks.addEventListener("addtrack", updateCaptions);
    video.textTracks.addEventListener("removetrack", updateCaptions);

    // ------------------------------------------------------------------ fullscreen and PiP

    function fullscreenElement() {
      return document.fullscreenElement || document.webkitFullscreenElement || null;
    }

    function toggleFullscreen() {
      if (fullscreenElement()) {
        (document.exitFullscreen || document.webkitExitFullscreen).call(document);
        return;
      }
      // The whole player goes fullscreen, so the controls and messages come along.
      var request = root.requestFullscreen || root.webkitRequestFullscreen;
      if (request) {
        var result = request.call(root);
        if (result && typeof result.catch === "function") {
          result.catch(function () {});
        }
      } else if (video.webkitEnterFullscreen) {
        video.webkitEnterFullscreen(); // iPhone: only the <video> itself can go fullscreen
      }
    }

    function renderFullscreen() {
      var on = fullscreenElement() === root;
      root.classList.toggle("is-fullscreen", on);
      setLabel(fullscreenButton, on ? "Exit full screen" : "Full screen");
      setIcon(fullscreenButton, on ? "fullscreen-exit" : "fullscreen");
      fullscreenButton.title = on ? "Exit full screen (f)" : "Full screen (f)";
    }

    var fullscreenPossible = !!(
      root.requestFullscreen ||
      root.webkitRequestFullscreen ||
      video.webkitEnterFullscreen
    );
    fullscreenButton.hidden = !fullscreenPossible;
    document.addEventListener("fullscreenchange", renderFullscreen);
    document.addEventListener("webkitfullscreenchange", renderFullscreen);

    var pipPossible = !!(document.pictureInPictureEnabled && video.requestPictureInPicture);
    pipButton.hidden = !pipPossible;

    function togglePip() {
      if (document.pictureInPictureElement) {
        document.exitPictureInPicture().catch(function () {});
      } else if (pipPossible) {
        video.requestPictureInPicture().catch(function () {});
      }
    }

    // ------------------------------------------------------------------ menus

    var openMenu = null; // {button, menu}

    function menuItems(menu) {
      return Array.prototype.slice.call(menu.querySelectorAll(".player-menu-item"));
    }

    function showMenu(button, menu, focusLast) {
      closeMenu(false);
      openMenu = { button: button, menu: menu };
      menu.hidden = false;
      button.setAttribute("aria-expanded", "true");
      root.classList.add("has-menu");
      var items = menuItems(menu);
      var checked = menu.querySelector('[aria-checked="true"]');
      var target = checked || (focusLast ? items[items.length - 1] : items[0]);
      if (target) {
        target.focus();
      }
    }

    function closeMenu(returnFocus) {
      if (!openMenu) {
        return;
      }
      var was = openMenu;
      openMenu = null;
      was.menu.hidden = true;
      was.button.setAttribute("aria-expanded", "false");
      root.classList.remove("has-menu");
      if (returnFocus) {
        was.button.focus();
      }
    }

    function wireMenu(button, menu, onChoose) {
      button.addEventListener("click", function () {
        if (openMenu && openMenu.menu === menu) {
          closeMenu(true);
        } else {
          showMenu(button, menu, false);
        }
      });
      button.addEventListener("keydown", function (event) {
        if (event.key === "ArrowDown" || event.key === "ArrowUp") {
          event.preventDefault();
          event.stopPropagation();
          showMenu(button, menu, event.key === "ArrowUp");
        }
      });
      menu.addEventListener("click", function (event) {
        var item = event.target.closest(".player-menu-item");
        if (item) {
          onChoose(item);
          closeMenu(true);
        }
      });
      menu.addEventListener("keydown", function (event) {
        var items = menuItems(menu);
        var at = items.indexOf(document.activeElement);
        var to = -1;
        if (event.key === "ArrowDown") {
          to = (at + 1) % items.length;
        } else if (event.key === "ArrowUp") {
          to = (at - 1 + items.length) % items.length;
        } else if (event.key === "Home") {
          to = 0;
        } else if (event.key === "End") {
          to = items.length - 1;
        } else if (event.key === "Escape") {
          event.preventDefault();
          event.stopPropagation();
          closeMenu(true);
          return;
        } else if (event.key === "Tab") {
          closeMenu(false);
          return;
        } else {
          return;
        }
        event.preventDefault();
        event.stopPropagation();
        items[to].focus();
      });
      menu.addEventListener("focusout", function (event) {
        if (openMenu && openMenu.menu === menu && !menu.contains(event.relatedTarget) &&
            event.relatedTarget !== button) {
          closeMenu(false);
        }
      });
    }

    wireMenu(speedButton, speedMenu, function (item) {
      setRate(Number(item.getAttribute("data-rate")));
    });
    wireMenu(qualityButton, qualityMenu, function (item) {
      chooseQuality(Number(item.getAttribute("data-level")));
    });
    document.addEventListener("pointerdown", function (event) {
      if (openMenu && !openMenu.menu.contains(event.target) && !openMenu.button.contains(event.target)) {
        closeMenu(false);
      }
    });

    // ------------------------------------------------------------------ the toolbar (one Tab stop)

    var rovingCurrent = playButton;
    var rovingChosen = false; // the viewer has been inside the toolbar: Tab returns to that control

    function toolbarItems() {
      return Array.prototype.slice.call(toolbar.querySelectorAll(".player-tool")).filter(function (el) {
        return !el.hidden && !el.disabled;
      });
    }

    // Roving tabindex: the toolbar is one Tab stop; the arrow keys move inside it.
    function refreshToolbar() {
      var items = toolbarItems();
      if (!rovingChosen || items.indexOf(rovingCurrent) < 0) {
        rovingCurrent = items[0] || null;
      }
      var all = toolbar.querySelectorAll(".player-tool");
      for (var i = 0; i < all.length; i += 1) {
        all[i].setAttribute("tabindex", all[i] === rovingCurrent ? "0" : "-1");
      }
    }

    toolbar.addEventListener("focusin", function (event) {
      if (event.target.classList.contains("player-tool")) {
        rovingCurrent = event.target;
        rovingChosen = true;
        refreshToolbar();
      }
    });
    toolbar.addEventListener("keydown", function (event) {
      if (!event.target.classList.contains("player-tool")) {
        return;
      }
      var items = toolbarItems();
      var at = items.indexOf(event.target);
      var to = -1;
      if (event.key === "ArrowRight") {
        to = (at + 1) % items.length;
      } else if (event.key === "ArrowLeft") {
        to = (at - 1 + items.length) % items.length;
      } else if (event.key === "Home") {
        to = 0;
      } else if (event.key === "End") {
        to = items.length - 1;
      } else {
        return; // Up/Down still change the volume slider
      }
      event.preventDefault();
      event.stopPropagation();
      items[to].focus();
    });

    // ------------------------------------------------------------------ showing the controls

    var idleTimer = null;

    function showControls() {
      root.classList.remove("is-idle");
      clearTimeout(idleTimer);
      idleTimer = setTimeout(function () {
        if (isPlaying() && !openMenu) {
          root.classList.add("is-idle"); // CSS keeps them visible while focus is inside
        }
      }, IDLE_HIDE_MS);
    }

    root.addEventListener("pointermove", showControls);
    root.addEventListener("focusin", showControls);

    // ------------------------------------------------------------------ pointer and touch

    var lastPointer = "mouse";
    var lastTap = 0;
    var tapTimer = null;

    surface.addEventListener("pointerdown", function (event) {
      lastPointer = event.pointerType;
    });
    surface.addEventListener("pointerup", function (event) {
      if (event.pointerType !== "touch") {
        return;
      }
      var now = Date.now();
      var box = surface.getBoundingClientRect();
      var where = box.width ? (event.clientX - box.left) / box.width : 0.5;
      if (now - lastTap < DOUBLE_TAP_MS) {
        clearTimeout(tapTimer);
        lastTap = 0;
        if (where < 0.4) {
          skip(-SKIP_SECONDS);
        } else if (where > 0.6) {
          skip(SKIP_SECONDS);
        }
        return;
      }
      lastTap = now;
      tapTimer = setTimeout(function () {
        // One tap: show the controls; a tap while they show hides them again.
        if (root.classList.contains("is-idle") || !isPlaying()) {
          showControls();
        } else {
          clearTimeout(idleTimer);
          root.classList.add("is-idle");
        }
      }, DOUBLE_TAP_MS);
    });
    surface.addEventListener("click", function () {
      if (lastPointer !== "touch") {
        togglePlay();
      }
    });
    surface.addEventListener("dblclick", function () {
      if (lastPointer !== "touch") {
        toggleFullscreen();
      }
    });
    // No "Save video as…": paid content offers no download.
    root.addEventListener("contextmenu", function (event) {
      event.preventDefault();
    });

    // ------------------------------------------------------------------ keyboard shortcuts

    function isTextEntry(el) {
      if (!el || !el.tagName) {
        return false;
      }
      if (el.isContentEditable) {
        return true;
      }
      var tag = el.tagName.toLowerCase();
      if (tag === "textarea" || tag === "select") {
        return true;
      }
      return tag === "input" && el.type !== "range" && el.type !== "checkbox" && el.type !== "radio";
    }

    function activatesOnSpace(el) {
      if (!el || el === surface || !el.tagName) {
        return false;
      }
      var tag = el.tagName.toLowerCase();
      return tag === "button" || tag === "a" || tag === "summary" || el.getAttribute("role") === "button";
    }

    document.addEventListener("keydown", function (event) {
      if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) {
        return;
      }
      var target = event.target;
      if (isTextEntry(target) || (openMenu && openMenu.menu.contains(target))) {
        return;
      }
      var key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
      var inToolbar = toolbar.contains(target);
      switch (key) {
        case " ":
          if (activatesOnSpace(target)) {
            return; // Space presses the focused button or link
          }
          togglePlay();
          break;
        case "k":
          togglePlay();
          break;
        case "j":
          skip(-SKIP_SECONDS);
          break;
        case "l":
          skip(SKIP_SECONDS);
          break;
        case "ArrowLeft":
        case "ArrowRight":
          if (inToolbar || target === seek) {
            return; // they move inside the toolbar, or the seek bar handles them
          }
          skip(key === "ArrowLeft" ? -ARROW_SECONDS : ARROW_SECONDS);
          break;
        case "ArrowUp":
        case "ArrowDown":
          if (target !== surface) {
            return; // the page scrolls; the volume slider handles its own
          }
          video.muted = false;
          video.volume = Math.max(0, Math.min(1, video.volume + (key === "ArrowUp" ? 0.05 : -0.05)));
          break;
        case "f":
          toggleFullscreen();
          break;
        case "m":
          toggleMute();
          break;
        case "c":
          toggleCaptions();
          break;
        default:
          return;
      }
      event.preventDefault(); // Space must not scroll the page, nor a key type elsewhere
      showControls();
    });

    // ------------------------------------------------------------------ wiring

    function setBuffering(on) {
      root.setAttribute("data-buffering", on ? "true" : "false");
    }
    video.addEventListener("waiting", function () {
      setBuffering(true);
      if (startupMs >= 0 && !waitingSince && !swap) {
        waitingSince = performance.now(); // a stall after the start (seeks count too)
      }
    });
    ["playing", "pause", "seeked", "ended", "emptied"].forEach(function (name) {
      video.addEventListener(name, function () {
        setBuffering(false);
      });
    });
    video.addEventListener("playing", function () {
      if (startupMs < 0 && playRequestedAt) {
        startupMs = performance.now() - playRequestedAt;
        root.setAttribute("data-startup-ms", String(Math.round(startupMs)));
      }
      if (waitingSince) {
        stallMs += performance.now() - waitingSince;
        waitingSince = 0;
      }
      if (!swap) {
        setState("playing");
        setStatus("", "info");
      }
    });
    video.addEventListener("play", function () {
      wantPlay = true;
      if (needsFreshGrant() && !swap && !halted) {
        obtain("renewal", null);
      }
    });
    video.addEventListener("pause", function () {
      if (swap || halted || video.ended || video.error) {
        return; // a source swap, a stop or a media error (recovered), not the viewer
      }
      wantPlay = false;
      setState("paused");
    });
    video.addEventListener("ended", function () {
      endStream(null, "ended"); // watched to the end; playing again opens a new stream
      stale = true;
      wantPlay = false;
      setState("ended");
      setStatus(MESSAGES.ended, "info");
    });
    video.addEventListener("timeupdate", function () {
      if (!swap && video.readyState >= 1) {
        setPosition(video.currentTime);
      }
      if (engine === "hlsjs") {
        renderCues();
      }
    });
    video.addEventListener("durationchange", renderTime);
    video.addEventListener("loadedmetadata", function () {
      renderTime();
      renderBuffered();
      if (engine !== "hlsjs") {
        updateCaptions();
      }
    });
    video.addEventListener("progress", renderBuffered);
    video.addEventListener("seeking", function () {
      if (swap || halted) {
        return;
      }
      setPosition(video.currentTime);
      renderBuffered();
      if (needsFreshGrant()) {
        obtain("renewal", null);
      }
    });
    video.addEventListener("error", onMediaError);
    playButton.addEventListener("click", togglePlay);
    retryButton.addEventListener("click", retry);
    $("player-back").addEventListener("click", function () {
      skip(-SKIP_SECONDS);
    });
    $("player-forward").addEventListener("click", function () {
      skip(SKIP_SECONDS);
    });
    muteButton.addEventListener("click", toggleMute);
    captionsButton.addEventListener("click", toggleCaptions);
    pipButton.addEventListener("click", togglePip);
    fullscreenButton.addEventListener("click", toggleFullscreen);

    window.addEventListener("pagehide", function () {
      endStream(null, "closed");
    });
    window.addEventListener("pageshow", function (event) {
      if (event.persisted) {
        stale = true; // back from the page cache: the old stream was ended; open a new one
      }
    });
    var startOver = $("player-start-over");
    if (startOver) {
      startOver.addEventListener("click", function () {
        resumeAt = 0;
        resumeEl.hidden = true;
        if (swap) {
          swap.time = 0;
        }
        if (duration()) {
          seekTo(0);
        } else if (hls) {
          hls.stopLoad(); // not loaded yet: load from the beginning instead
          hls.startLoad(0);
        }
        setPosition(0);
      });
    }

    video.controls = false; // one set of controls: ours (they also work in fullscreen)
    root.classList.add("has-controls");
    renderVolume();
    renderFullscreen();
    renderTime();
    refreshToolbar();
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
