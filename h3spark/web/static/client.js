// h3spark web: the page's side of the bridge's protocol (docs/web.md): hello with the token from the URL.
(function (root) {
  "use strict";

  // the token comes in the URL's fragment (#token=...), which the browser never sends to a server
  function token() {
    const match = /(?:^|[#&])token=([^&]+)/.exec(location.hash);
    return match ? decodeURIComponent(match[1]) : null;
  }

  // ws(s)://HOST/.../ws, relative to the page, so that a reverse proxy's path prefix is kept
  function socketUrl() {
    const url = new URL("ws", location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    url.hash = "";
    url.search = "";
    return url.toString();
  }

  function connect(role, handlers) {
    const ws = new WebSocket(socketUrl());
    ws.binaryType = "arraybuffer";
    ws.onopen = () => {
      const hello = { type: "hello", role: role };
      if (token()) hello.token = token();
      ws.send(JSON.stringify(hello));
    };
    ws.onmessage = (event) => {
      if (typeof event.data !== "string") return;
      const message = JSON.parse(event.data);
      (handlers[message.type] || handlers.other || function () {})(message);
    };
    ws.onclose = (event) => { if (handlers.close) handlers.close(event); };
    return ws;
  }

  function el(tag, attributes, children) {
    const node = document.createElement(tag);
    Object.entries(attributes || {}).forEach(([key, value]) => {
      if (key === "text") node.textContent = value; else node.setAttribute(key, value);
    });
    (children || []).forEach((child) => node.appendChild(child));
    return node;
  }

  root.H3Client = { token: token, socketUrl: socketUrl, connect: connect, el: el };
})(window);
