// Live dashboard: a websocket tells us when numbers changed; we re-fetch the dashboard body (an
// htmx partial rendered on the server, charts included). At most one request in flight, and a
// change that arrives meanwhile triggers one more refresh after it.
(function () {
  "use strict";
  var root = document.getElementById("dashboard");
  if (!root || !window.WebSocket) return;
  var status = document.getElementById("live-status");
  var busy = false, pending = false, backoff = 1000;

  function setLive(on) {
    if (!status) return;
    status.dataset.live = on ? "on" : "off";
    status.textContent = on ? "live" : "live updates off";
  }

  function refresh() {
    if (busy) { pending = true; return; }
    busy = true;
    htmx.ajax("GET", root.dataset.refresh, { target: root, swap: "innerHTML" }).finally(function () {
      busy = false;
      if (pending) { pending = false; setTimeout(refresh, 500); }
    });
  }

  function connect() {
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(scheme + location.host + root.dataset.ws);
    socket.onopen = function () { backoff = 1000; setLive(true); refresh(); };
    socket.onmessage = function () { refresh(); };
    socket.onclose = function () {
      setLive(false);
      setTimeout(connect, backoff);
      backoff = Math.min(backoff * 2, 30000);
    };
  }
  connect();
})();
