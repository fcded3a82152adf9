/* vidgate: shows <time class="local-time" datetime="...Z"> in the viewer's own time zone.
 * The server writes the UTC text inside; without script (or with a bad value) it stays. */
(function () {
  "use strict";
  var nodes = document.querySelectorAll("time.local-time[datetime]");
  for (var i = 0; i < nodes.length; i++) {
    var node = nodes[i];
    var moment = new Date(node.getAttribute("datetime"));
    if (isNaN(moment.getTime())) { continue; }
    var dateOnly = node.getAttribute("data-style") === "date";
    var options = dateOnly
      ? { year: "numeric", month: "short", day: "numeric" }
      : { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", timeZoneName: "short" };
    try {
      node.title = node.textContent.trim();
      node.textContent = new Intl.DateTimeFormat(undefined, options).format(moment);
      node.setAttribute("data-localized", "yes");
    } catch (err) {
      /* keep the UTC text */
    }
  }
})();
