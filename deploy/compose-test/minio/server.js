// S3 on :9000 for the compose test: s3rver storing into the folder given as argv[2], plus
// MinIO's liveness path (/minio/health/live), which the compose healthcheck probes.
"use strict";
const http = require("http");
const { Readable } = require("stream");
const S3rver = require("s3rver");

const dir = process.argv[2] || "/minio_data";
// MinIO's credentials, from MinIO's own environment variables (compose sets them); requests
// signed with anything else are refused, as MinIO would.
const accessKey = process.env.MINIO_ROOT_USER || process.env.MINIO_ACCESS_KEY || "minioadmin";
const secretKey = process.env.MINIO_ROOT_PASSWORD || process.env.MINIO_SECRET_KEY || "minioadmin";
require("s3rver/lib/models/account").DUMMY_ACCOUNT.createKeyPair(accessKey, secretKey);
// Path-style only: the host name "minio" is the server, not a bucket (vhost guessing off).
// Signatures: the access key must be known, but a body re-framed below no longer matches its
// signed x-amz-content-sha256, so mismatched signatures are let through.
const s3 = new S3rver({
  directory: dir,
  silent: true,
  resetOnClose: false,
  vhostBuckets: false,
  allowMismatchedSignatures: true,
});

// minio-go (Milvus' client) uploads over plain HTTP with aws-chunked framing
// ("<hex size>;chunk-signature=...\r\n<bytes>\r\n" ... "0;..."), which s3rver would store
// verbatim. Decode it to the plain payload, as MinIO and S3 do.
function decodeAwsChunked(buf) {
  const out = [];
  let i = 0;
  while (i < buf.length) {
    const eol = buf.indexOf("\r\n", i);
    if (eol < 0) break;
    const size = parseInt(buf.subarray(i, eol).toString("latin1").split(";")[0], 16);
    i = eol + 2;
    if (!size) break; // the last chunk; trailing checksums, if any, follow
    out.push(buf.subarray(i, i + size));
    i += size + 2;
  }
  return Buffer.concat(out);
}

function withDecodedBody(req, body) {
  const decoded = new Readable({
    read() {
      this.push(body);
      this.push(null);
    },
  });
  const headers = { ...req.headers, "content-length": String(body.length) };
  headers["x-amz-content-sha256"] = "UNSIGNED-PAYLOAD";
  delete headers["x-amz-decoded-content-length"];
  delete headers["transfer-encoding"];
  const enc = (headers["content-encoding"] || "").split(",").map((s) => s.trim());
  const rest = enc.filter((s) => s && s !== "aws-chunked");
  if (rest.length) headers["content-encoding"] = rest.join(",");
  else delete headers["content-encoding"];
  for (const key of ["method", "url", "httpVersion", "httpVersionMajor", "httpVersionMinor",
    "socket", "connection"]) {
    decoded[key] = req[key];
  }
  decoded.headers = headers;
  return decoded;
}
const handler = s3.callback();
const server = http.createServer((req, res) => {
  if (req.url.startsWith("/minio/health/")) {
    res.writeHead(200, { "content-type": "text/plain" });
    res.end("ok");
    return;
  }
  const sha = req.headers["x-amz-content-sha256"] || "";
  if (!sha.startsWith("STREAMING-")) {
    handler(req, res);
    return;
  }
  const parts = [];
  req.on("data", (c) => parts.push(c));
  req.on("end", () => handler(withDecodedBody(req, decodeAwsChunked(Buffer.concat(parts))), res));
});
server.listen(9000, "0.0.0.0", () => console.log(`s3rver stand-in on :9000, data in ${dir}`));
const stop = () => server.close(() => process.exit(0));
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
