// Lets browsers on any origin send files to the local Azurite and read from it, as the storage
// account's CORS rule in infra/modules/storage.bicep lets the deployment's frontends: clients
// upload straight to blob storage with a write SAS. Azurite refuses every preflight until a
// rule is set. Set Blob Service Properties, signed with Azurite's well-known account key
// (Shared Key, learn.microsoft.com/rest/api/storageservices/authorize-with-shared-key).
// Usage: node azurite-cors.mjs [blob endpoint, default http://127.0.0.1:10000/devstoreaccount1]
import { createHmac } from "node:crypto";

const ACCOUNT = "devstoreaccount1";
const KEY =
  "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
const VERSION = "2021-08-06";
const endpoint = (process.argv[2] ?? `http://127.0.0.1:10000/${ACCOUNT}`).replace(/\/$/, "");

const body =
  '<?xml version="1.0" encoding="utf-8"?><StorageServiceProperties><Cors><CorsRule>' +
  "<AllowedOrigins>*</AllowedOrigins><AllowedMethods>GET,HEAD,PUT,OPTIONS</AllowedMethods>" +
  "<AllowedHeaders>content-type,content-length,range,x-ms-*</AllowedHeaders>" +
  "<ExposedHeaders>etag,content-length,content-range,x-ms-request-id</ExposedHeaders>" +
  "<MaxAgeInSeconds>3600</MaxAgeInSeconds></CorsRule></Cors></StorageServiceProperties>";
const url = new URL(`${endpoint}/?restype=service&comp=properties`);
const date = new Date().toUTCString();
const contentType = "application/xml";
const stringToSign = [
  "PUT",
  "", // Content-Encoding
  "", // Content-Language
  String(Buffer.byteLength(body)),
  "", // Content-MD5
  contentType,
  "", // Date (x-ms-date is used)
  "", // If-Modified-Since
  "", // If-Match
  "", // If-None-Match
  "", // If-Unmodified-Since
  "", // Range
  `x-ms-date:${date}\nx-ms-version:${VERSION}`,
  `/${ACCOUNT}${url.pathname}\ncomp:properties\nrestype:service`,
].join("\n");
const signature = createHmac("sha256", Buffer.from(KEY, "base64"))
  .update(stringToSign, "utf8")
  .digest("base64");

const response = await fetch(url, {
  method: "PUT",
  headers: {
    "content-type": contentType,
    "x-ms-date": date,
    "x-ms-version": VERSION,
    authorization: `SharedKey ${ACCOUNT}:${signature}`,
  },
  body,
});
if (response.status !== 202) {
  console.error(`Azurite CORS: HTTP ${response.status}: ${await response.text()}`);
  process.exit(1);
}
