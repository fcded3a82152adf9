/*
 * Poster picking on a video's admin page. Whatever the admin picks (a frame of a
 * video: a local copy of the file or the page's preview; or an image file) is drawn
 * on a canvas and sent as a JPEG, so the server stores one format it can check by its
 * bytes. A local file is a blob: URL and the preview is served by the same front door,
 * so the canvas is never tainted and toBlob() works.
 */
(function () {
  "use strict";

  var picker = document.getElementById("poster-picker");
  if (!picker) {
    return;
  }
  var url = picker.dataset.posterUrl;
  var source = document.getElementById("poster-source");
  var fileInput = document.getElementById("poster-video-file");
  var useFrame = document.getElementById("poster-use-frame");
  var form = document.getElementById("poster-form");
  var imageInput = document.getElementById("poster-file");
  var message = document.getElementById("poster-message");
  var MAX_SIDE = 1920;
  var objectUrl = null;

  function say(text, kind) {
    message.textContent = text;
    message.className = "flash flash-" + (kind || "info");
    message.hidden = !text;
  }

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  // Draw `drawable` (a video or an image) at most MAX_SIDE wide/high and send it as a JPEG.
  function sendDrawn(drawable, width, height) {
    var scale = Math.min(1, MAX_SIDE / Math.max(width, height));
    var canvas = document.createElement("canvas");
    canvas.width = Math.max(1, Math.round(width * scale));
    canvas.height = Math.max(1, Math.round(height * scale));
    canvas.getContext("2d").drawImage(drawable, 0, 0, canvas.width, canvas.height);
    return new Promise(function (resolve, reject) {
      canvas.toBlob(function (blob) {
        if (!blob) {
          reject(new Error("The browser could not make a JPEG of it."));
          return;
        }
        var body = new FormData();
        body.append("poster", blob, "poster.jpg");
        fetch(url, {
          method: "POST",
          body: body,
          credentials: "same-origin",
          headers: { Accept: "application/json", "X-CSRF-Token": csrfToken() },
        })
          .then(function (response) {
            return response.json().then(function (data) {
              if (!response.ok) {
                throw new Error(data && data.message ? data.message : "The poster was refused.");
              }
              resolve(data);
            });
          })
          .catch(reject);
      }, "image/jpeg", 0.88);
    });
  }

  function done() {
    say("Poster saved. It shows everywhere within a minute.", "success");
    picker.dataset.saved = String(Number(picker.dataset.saved || "0") + 1);
  }

  fileInput.addEventListener("change", function () {
    var file = fileInput.files && fileInput.files[0];
    if (!file) {
      return;
    }
    if (objectUrl) {
      URL.revokeObjectURL(objectUrl);
    }
    objectUrl = URL.createObjectURL(file);
    source.src = objectUrl;
    source.hidden = false;
    useFrame.hidden = false;
  });

  // The local copy if one is open, else a preview on the page (any video marked
  // data-poster-source, served by the same front door) that shows a picture.
  function frameSource() {
    if (!source.hidden && source.videoWidth) {
      return source;
    }
    var videos = document.querySelectorAll("video[data-poster-source]");
    for (var i = 0; i < videos.length; i += 1) {
      if (videos[i] !== source && videos[i].videoWidth) {
        return videos[i];
      }
    }
    return null;
  }

  if (document.querySelectorAll("video[data-poster-source]").length > 1) {
    useFrame.hidden = false; // the page has a preview to take a frame from
  }

  useFrame.addEventListener("click", function () {
    var video = frameSource();
    if (!video) {
      say("The video has no picture to take yet: let it load, then stop at a frame.", "error");
      return;
    }
    sendDrawn(video, video.videoWidth, video.videoHeight).then(done, function (error) {
      say(error.message, "error");
    });
  });

  // An image file is converted to JPEG in the browser too (PNG included).
  form.addEventListener("submit", function (event) {
    var file = imageInput.files && imageInput.files[0];
    if (!file) {
      return;
    }
    event.preventDefault();
    var image = new Image();
    var imageUrl = URL.createObjectURL(file);
    image.onload = function () {
      sendDrawn(image, image.naturalWidth, image.naturalHeight)
        .then(done, function (error) {
          say(error.message, "error");
        })
        .finally(function () {
          URL.revokeObjectURL(imageUrl);
        });
    };
    image.onerror = function () {
      URL.revokeObjectURL(imageUrl);
      say("That file is not an image this browser can read (use JPEG or PNG).", "error");
    };
    image.src = imageUrl;
  });
})();
