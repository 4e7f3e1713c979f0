// node -r tests/support/azurite-copy-preload.js .../azurite/dist/src/blob/main.js ...
//
// Azurite answers Put Blob From URL with NotImplemented. For copies inside one Azurite
// instance its own Copy Blob From URL (the synchronous copy) does the same job, so this preload
// rewrites the one into the other before Azurite sees the request:
//   PUT <blob> + x-ms-copy-source + x-ms-blob-type: BlockBlob (no comp=)  = Put Blob From URL
//   PUT <blob> + x-ms-copy-source + x-ms-requires-sync: true               = Copy Blob From URL
// and maps the answer back (202 Accepted -> 201 Created, as Put Blob From URL answers).
// Metadata (x-ms-meta-*) passes unchanged. Every rewrite is counted in the response header
// x-drscript-preload-rewrites so that tests can prove the server-side path ran.
"use strict";
const http = require("http");

let rewrites = 0;

function isPutBlobFromUrl(req) {
  if (req.method !== "PUT") return false;
  const h = req.headers;
  if (!h["x-ms-copy-source"]) return false;
  if ((h["x-ms-blob-type"] || "").toLowerCase() !== "blockblob") return false;
  const q = (req.url.split("?")[1] || "").toLowerCase();
  return !/(^|&)comp=/.test(q);
}

function rewrite(req, res) {
  delete req.headers["x-ms-blob-type"];
  req.headers["x-ms-requires-sync"] = "true";
  const raw = [];
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    if (req.rawHeaders[i].toLowerCase() === "x-ms-blob-type") continue;
    raw.push(req.rawHeaders[i], req.rawHeaders[i + 1]);
  }
  raw.push("x-ms-requires-sync", "true");
  req.rawHeaders.length = 0;
  req.rawHeaders.push(...raw);
  rewrites += 1;
  const writeHead = res.writeHead;
  res.writeHead = function (status, ...rest) {
    if (status === 202) status = 201;
    if (res.statusCode === 202) res.statusCode = 201;
    res.setHeader("x-drscript-preload-rewrites", String(rewrites));
    return writeHead.call(this, status, ...rest);
  };
}

// DRSCRIPT_AZURITE_THROTTLE=RATE (the sync benchmark's throttled run): that share of requests
// is answered 503 ServerBusy with `Retry-After: 1`, as a throttled storage account answers,
// without reaching Azurite. Counted in the response header x-drscript-throttled.
const throttleRate = Number(process.env.DRSCRIPT_AZURITE_THROTTLE || 0);
let throttled = 0;

function throttle(req, res) {
  throttled += 1;
  // The client may stop sending the body once it reads the 503: the connection is closed after
  // the answer, and a write to a socket the client already closed is not an error worth dying of.
  req.socket.on("error", () => {});
  req.resume();
  const body =
    '<?xml version="1.0" encoding="utf-8"?><Error><Code>ServerBusy</Code>' +
    "<Message>The server is busy (injected by the preload).</Message></Error>";
  res.writeHead(503, {
    "Content-Type": "application/xml",
    "Content-Length": Buffer.byteLength(body),
    "Retry-After": "1",
    "x-ms-error-code": "ServerBusy",
    "x-drscript-throttled": String(throttled),
    Connection: "close",
  });
  res.end(body);
}

function wrap(listener) {
  return function (req, res) {
    if (throttleRate > 0 && Math.random() < throttleRate) return throttle(req, res);
    if (isPutBlobFromUrl(req)) rewrite(req, res);
    return listener.call(this, req, res);
  };
}

const createServer = http.createServer;
http.createServer = function (...args) {
  const server = createServer.apply(this, args);
  const on = server.on;
  server.on = function (event, fn) {
    if (event === "request" && typeof fn === "function") fn = wrap(fn);
    return on.call(this, event, fn);
  };
  server.addListener = server.on;
  return server;
};
