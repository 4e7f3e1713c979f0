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

function wrap(listener) {
  return function (req, res) {
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
