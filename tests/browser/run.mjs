// A video class between two headless Chromium pages, driven step by step; run by
// tests/api/browser_class.rs with the running handler's URL, the class and the people in the
// environment. Prints one `ok - ` line per check and `all checks passed`, or the first failure
// (exit 1). Screenshots of both pages at `connected` go to SCREENSHOTS.
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

import * as esbuild from "esbuild";
import { chromium } from "playwright-core";

const env = (name) => {
  const value = process.env[name];
  assert.ok(value, `${name} is set`);
  return value;
};
const API = env("API_BASE_URL");
const BOOKING = env("BOOKING_ID");
const PASSWORD = env("PASSWORD");
const SCREENSHOTS = env("SCREENSHOTS");
// Pages come from a localhost origin (a secure context, so the camera is available, and a
// loopback one, which Chromium lets call the API on loopback), served from memory here; the
// API admits the origin through CORS.
const PAGE_PORT = Number(env("PAGE_PORT"));
const ORIGIN = `http://localhost:${PAGE_PORT}`;

const here = fileURLToPath(new URL(".", import.meta.url));
const bundle = await esbuild.build({
  entryPoints: [join(here, "class-page.ts")],
  bundle: true,
  write: false,
  format: "iife",
  platform: "browser",
  target: "chrome120",
  logLevel: "silent",
});
const script = bundle.outputFiles[0].text;
const html = `<!doctype html><html><head><meta charset="utf-8"><title>class</title>
<style>video{width:320px;height:240px;background:#222;margin:4px}body{font:14px sans-serif}</style></head>
<body><h1 id="who"></h1><p>connection: <b id="state">new</b></p>
<video id="local" autoplay muted playsinline></video><video id="remote" autoplay muted playsinline></video>
<ul id="chat"></ul><script src="/class.js"></script></body></html>`;

const pages = createServer((request, response) => {
  const javascript = request.url === "/class.js";
  response.writeHead(200, { "content-type": javascript ? "text/javascript" : "text/html" });
  response.end(javascript ? script : html);
});
await new Promise((resolve) => pages.listen(PAGE_PORT, "127.0.0.1", resolve));

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    // A test pattern and a tone instead of a camera and a microphone, granted without a prompt.
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    // Host candidates as addresses (not mDNS names, which nothing resolves here).
    "--disable-features=WebRtcHideLocalIpsWithMdns",
  ],
});

async function open(label) {
  const context = await browser.newContext({ viewport: { width: 700, height: 560 } });
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (error) => errors.push(String(error)));
  await page.goto(`${ORIGIN}/class.html`);
  await page.evaluate((text) => (document.getElementById("who").textContent = text), label);
  return { page, context, errors, call: (method, ...args) => page.evaluate(([m, a]) => window.classPage[m](...a), [method, args]) };
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
async function eventually(what, probe, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}
const field = (page, name) => page.page.evaluate((n) => window.classPage[n], name);
async function check(name, body) {
  await body();
  console.log(`ok - ${name}`);
}

let status = 0;
try {
  const mentor = await open("mentor");
  const student = await open("student");
  const stranger = await open("stranger");

  await check("the mentor and the student log in with the typed client", async () => {
    await mentor.call("signIn", { apiBase: API, email: env("MENTOR_EMAIL"), password: PASSWORD, totpCode: env("MENTOR_TOTP") });
    await student.call("signIn", { apiBase: API, email: env("STUDENT_EMAIL"), password: PASSWORD });
    await stranger.call("signIn", { apiBase: API, email: env("STRANGER_EMAIL"), password: PASSWORD });
  });

  await check("each negotiates and connects to Web PubSub", async () => {
    for (const page of [mentor, student, stranger]) assert.ok(await page.call("connect"));
  });

  await check("both join the class; each sees the other arrive", async () => {
    assert.deepEqual(await mentor.call("join", BOOKING), { status: 200 });
    assert.deepEqual(await student.call("join", BOOKING), { status: 200 });
    const studentId = await field(student, "userId");
    await eventually("the mentor sees the student join", async () =>
      (await field(mentor, "presence")).some((p) => p.event === "user-joined" && p.userId === studentId),
    );
  });

  await check("a stranger can neither join nor send to the class", async () => {
    const refused = await stranger.call("join", BOOKING);
    assert.equal(refused.status, 403, JSON.stringify(refused));
    assert.equal(refused.code, "NOT_A_PARTICIPANT");
    const sent = await stranger.call("trySignal", `booking.${BOOKING}.video`);
    assert.match(sent, /^refused/);
  });

  await check("WebRTC connects and both sides decode the other's video", async () => {
    await mentor.call("call");
    for (const page of [mentor, student]) {
      await eventually("connected", async () => (await page.call("connectionState")) === "connected");
      await eventually("frames decoded", async () => (await page.call("framesDecoded")) > 0);
    }
    await mentor.page.screenshot({ path: join(SCREENSHOTS, "mentor-connected.png") });
    await student.page.screenshot({ path: join(SCREENSHOTS, "student-connected.png") });
  });

  await check("the mentor records while the class runs", async () => {
    await mentor.call("startRecording", 1000);
    await mentor.call("startStats", 1000);
    await student.call("startStats", 1000);
  });

  await check("a chat message reaches the other side within a second", async () => {
    const started = await student.page.evaluate(() => performance.now());
    const sent = await mentor.call("sendChat", "Welcome! Shall we start with torque?");
    const arrived = await eventually("the message", async () =>
      (await field(student, "chat")).find((message) => message.messageId === sent),
    );
    assert.ok(arrived.at - started < 1000, `arrived after ${Math.round(arrived.at - started)} ms`);
  });

  await check("after a dropped WebSocket the student reconnects and misses no message", async () => {
    await student.call("dropSocket");
    const sent = await mentor.call("sendChat", "Sent while your connection was down");
    await eventually("a new connection", async () => (await field(student, "connections")) >= 2);
    await eventually("the missed message", async () =>
      (await field(student, "chat")).some((message) => message.messageId === sent),
    );
    const back = await mentor.call("sendChat", "And this one after");
    await eventually("the next message", async () =>
      (await field(student, "chat")).some((message) => message.messageId === back),
    );
    assert.deepEqual(await field(student, "problems"), []);
  });

  await check("WebRTC stats are posted every second", async () => {
    await eventually("stats", async () => (await field(mentor, "statsPosted")) >= 2 && (await field(student, "statsPosted")) >= 2);
  });

  await check("the recording's parts are uploaded straight to storage", async () => {
    await sleep(2000);
    const { parts, seconds } = await mentor.call("stopRecording");
    assert.ok(parts >= 3, `${parts} parts`);
    console.log(`# recorded parts: ${parts}`);
    console.log(`# recorded seconds: ${seconds.toFixed(2)}`);
  });

  await check("the student closes the tab and the mentor sees them leave", async () => {
    await student.call("stopStats");
    const studentId = await field(student, "userId");
    const leaves = async () =>
      (await field(mentor, "presence")).filter((p) => p.event === "user-left" && p.userId === studentId).length;
    // The dropped connection may have been reported as a leave already.
    const before = await leaves();
    await student.context.close();
    await eventually("the mentor sees the student leave", async () => (await leaves()) > before);
    await mentor.call("stopStats");
  });

  for (const page of [mentor, stranger]) {
    assert.deepEqual(page.errors, [], "no page errors");
    assert.deepEqual(await field(page, "problems"), []);
  }
  console.log("all checks passed");
} catch (error) {
  console.log(`FAIL - ${error.stack ?? error}`);
  status = 1;
} finally {
  await browser.close();
  pages.close();
}
process.exit(status);
