// The success page: poll the checkout's status until the webhook has recorded it.
(function () {
  "use strict";
  var state = document.getElementById("checkout-state");
  if (!state) { return; }
  var url = state.getAttribute("data-status-url");
  var tries = 0;
  function poll() {
    tries += 1;
    fetch(url, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : { state: "processing" }; })
      .then(function (body) {
        if (body.state === "complete") {
          state.setAttribute("data-state", "complete");
          state.textContent = "Payment confirmed.";
          document.getElementById("checkout-done").hidden = false;
        } else if (tries < 120) {
          setTimeout(poll, 1000);
        } else {
          state.textContent = "Still processing. Your account page shows your access once it is confirmed.";
        }
      })
      .catch(function () { if (tries < 120) { setTimeout(poll, 2000); } });
  }
  poll();
})();
