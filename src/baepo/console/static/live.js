// Baepo's console: live logs. Each <pre data-follow="URL"> follows the console's relay of the
// API's Server-Sent Events (console/relays.py) and appends each line as text, never as markup.
// The page rendered the log as it was; the stream sends those lines again first, so the box
// is emptied at its first line. A service's follow that ends (its time is up) is reconnected
// by the browser itself, from the last line it had; a run's ends with the run's status.
(function () {
  "use strict";
  var KEPT = 2000; // lines in the box at most: the oldest go first

  function text(entry) {
    if (entry.at === undefined) {
      return entry.text; // a run's line
    }
    var at = entry.at.slice(0, 19).replace("T", " ");
    return at + "  " + (entry.instance || entry.source) + "  " + entry.text;
  }

  function append(box, line) {
    var following = box.scrollTop + box.clientHeight >= box.scrollHeight - 4;
    box.appendChild(document.createTextNode(line + "\n"));
    while (box.childNodes.length > KEPT) {
      box.removeChild(box.firstChild);
    }
    if (following) {
      box.scrollTop = box.scrollHeight;
    }
  }

  function follow(box) {
    var source = new EventSource(box.getAttribute("data-follow"));
    var state = document.getElementById(box.getAttribute("data-state"));
    var first = true;
    source.onopen = function () {
      if (state) state.textContent = "following";
    };
    source.onerror = function () {
      if (state) state.textContent = source.readyState === EventSource.CLOSED ? "stopped" : "reconnecting";
    };
    source.onmessage = function (event) {
      if (first) {
        box.textContent = "";
        first = false;
      }
      append(box, text(JSON.parse(event.data)));
    };
    source.addEventListener("end", function (event) {
      var end = JSON.parse(event.data);
      if (end.status !== undefined) {
        source.close();
        if (state) state.textContent = "ended: " + end.status.toLowerCase();
      }
    });
  }

  var boxes = document.querySelectorAll("pre[data-follow]");
  for (var i = 0; i < boxes.length; i++) {
    follow(boxes[i]);
  }
})();
