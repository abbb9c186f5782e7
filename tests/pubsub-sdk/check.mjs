// Microsoft's Web PubSub SDKs, unmodified, against our hub running with local auth off, as
// Azure's does. Run by tests/api/pubsub_sdk.rs with HUB_ENDPOINT, HUB_NAME, HANDLER_PORT and the
// local issuer's managed-identity endpoint (IDENTITY_ENDPOINT, IDENTITY_HEADER: App Service's
// protocol); the service client authenticates with an Entra token from it, and the hub sends its
// CloudEvents, with its own bearer token, to the express event handler started here. Prints one
// line per check; exits non-zero on the first failure.
import assert from "node:assert/strict";
import express from "express";
import { WebPubSubServiceClient } from "@azure/web-pubsub";
import { WebPubSubClient } from "@azure/web-pubsub-client";
import { WebPubSubEventHandler } from "@azure/web-pubsub-express";

const { HUB_ENDPOINT, HUB_NAME, HANDLER_PORT, IDENTITY_ENDPOINT, IDENTITY_HEADER } = process.env;

// A TokenCredential (what @azure/identity's ManagedIdentityCredential is) over App Service's
// managed-identity protocol.
const managedIdentity = {
  async getToken(scopes) {
    const resource = [scopes].flat()[0].replace(/\/\.default$/, "");
    const url = `${IDENTITY_ENDPOINT}?resource=${encodeURIComponent(resource)}&api-version=2019-08-01`;
    const answer = await fetch(url, { headers: { "X-IDENTITY-HEADER": IDENTITY_HEADER } });
    assert.equal(answer.status, 200, "the identity endpoint issues a token");
    const body = await answer.json();
    return { token: body.access_token, expiresOnTimestamp: Number(body.expires_on) * 1000 };
  },
};
const service = new WebPubSubServiceClient(HUB_ENDPOINT, managedIdentity, HUB_NAME);

// The upstream: what the hub sends must satisfy Microsoft's own CloudEvents parser.
const events = [];
const handler = new WebPubSubEventHandler(HUB_NAME, {
  path: "/eventhandler",
  handleConnect: (req, res) => {
    events.push({ type: "connect", userId: req.context.userId, connectionId: req.context.connectionId });
    res.success();
  },
  handleUserEvent: (req, res) => {
    events.push({ type: "user", event: req.context.eventName, data: req.data, dataType: req.dataType });
    res.success(JSON.stringify({ echoed: req.data }), "json");
  },
  onConnected: (req) => events.push({ type: "connected", userId: req.context.userId, connectionId: req.context.connectionId }),
  onDisconnected: (req) => events.push({ type: "disconnected", connectionId: req.context.connectionId }),
});
const app = express();
// With local auth off the service signs nothing: every event carries a bearer token instead.
const upstreamAuth = [];
app.use((req, _res, next) => {
  if (req.method === "POST") upstreamAuth.push({ bearer: req.headers.authorization, signature: req.headers["ce-signature"] });
  next();
});
app.use(handler.getMiddleware());
const server = app.listen(Number(HANDLER_PORT), "127.0.0.1");

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
async function eventually(what, predicate) {
  for (let i = 0; i < 100; i++) {
    if (predicate()) return;
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}`);
}
async function check(name, body) {
  await body();
  console.log(`ok - ${name}`);
}

/// A client SDK connection whose messages are collected.
async function client(userId, roles, groups = []) {
  const { url } = await service.getClientAccessToken({ userId, roles, groups });
  const socket = new WebPubSubClient(url);
  const received = { group: [], server: [] };
  socket.on("group-message", (e) => received.group.push(e.message));
  socket.on("server-message", (e) => received.server.push(e.message));
  let connectionId;
  socket.on("connected", (e) => (connectionId = e.connectionId));
  await socket.start();
  await eventually(`${userId} connected`, () => connectionId);
  return { socket, received, connectionId: () => connectionId };
}

try {
  let alice, bob;
  await check("client SDK connects (reliable protocol); connect and connected reach the express handler", async () => {
    alice = await client("alice", ["webpubsub.joinLeaveGroup.room", "webpubsub.sendToGroup.room"]);
    bob = await client("bob", ["webpubsub.joinLeaveGroups.room*"]);
    await eventually("connect events", () => events.filter((e) => e.type === "connect").length === 2);
    await eventually("connected events", () => events.filter((e) => e.type === "connected").length === 2);
    const connected = events.find((e) => e.type === "connected" && e.userId === "alice");
    assert.equal(connected.connectionId, alice.connectionId());
  });

  await check("joinGroup and sendToGroup with acks; group messages reach other members", async () => {
    await alice.socket.joinGroup("room");
    await bob.socket.joinGroup("room");
    await alice.socket.sendToGroup("room", { hello: "bob" }, "json", { noEcho: true });
    await eventually("bob's group message", () => bob.received.group.length === 1);
    assert.deepEqual(bob.received.group[0].data, { hello: "bob" });
    assert.equal(bob.received.group[0].fromUserId, "alice");
    await sleep(200);
    assert.equal(alice.received.group.length, 0, "noEcho");
  });

  await check("a send without permission is refused with an error ack", async () => {
    await assert.rejects(bob.socket.sendToGroup("room", { sneaky: true }, "json"));
    await assert.rejects(alice.socket.joinGroup("elsewhere"));
  });

  await check("server SDK: sendToAll (text), sendToUser (json), group send, sendToConnection", async () => {
    await service.sendToAll("hello all", { contentType: "text/plain" });
    await service.sendToUser("bob", { just: "bob" });
    await service.group("room").sendToAll({ to: "room" });
    await service.sendToConnection(alice.connectionId(), { to: "alice" });
    await eventually("server messages", () => alice.received.server.length === 3 && bob.received.server.length === 3);
    assert.equal(alice.received.server[0].data, "hello all");
    assert.equal(alice.received.server[0].dataType, "text");
    assert.deepEqual(bob.received.server.map((m) => m.data).slice(1), [{ just: "bob" }, { to: "room" }]);
    assert.deepEqual(alice.received.server[2].data, { to: "alice" });
  });

  await check("server SDK: group membership, existence checks and permissions", async () => {
    await service.group("vip").addUser("bob");
    assert.equal(await service.groupExists("vip"), true);
    assert.equal(await service.userExists("bob"), true);
    assert.equal(await service.userExists("nobody"), false);
    assert.equal(await service.connectionExists(alice.connectionId()), true);
    await service.group("vip").addConnection(alice.connectionId());
    await service.group("vip").removeConnection(alice.connectionId());
    await service.group("vip").sendToAll({ vip: true });
    await eventually("vip message", () => bob.received.server.some((m) => m.data?.vip));
    await sleep(200);
    assert.ok(!alice.received.server.some((m) => m.data?.vip), "removed from the group");
    await service.grantPermission(bob.connectionId(), "sendToGroup", { targetName: "room" });
    assert.equal(await service.hasPermission(bob.connectionId(), "sendToGroup", { targetName: "room" }), true);
    await bob.socket.sendToGroup("room", { now: "allowed" }, "json");
    await eventually("alice hears bob", () => alice.received.group.some((m) => m.data?.now === "allowed"));
    await service.revokePermission(bob.connectionId(), "sendToGroup", { targetName: "room" });
    assert.equal(await service.hasPermission(bob.connectionId(), "sendToGroup", { targetName: "room" }), false);
  });

  await check("client events go upstream and the handler's answer comes back", async () => {
    await alice.socket.sendEvent("greet", { n: 1 }, "json");
    await eventually("user event upstream", () => events.some((e) => e.type === "user"));
    const user = events.find((e) => e.type === "user");
    assert.equal(user.event, "greet");
    assert.deepEqual(user.data, { n: 1 });
    await eventually("the answer", () => alice.received.server.some((m) => m.data?.echoed));
  });

  await check("closeConnection ends a client; disconnected reaches the handler", async () => {
    const id = bob.connectionId();
    await service.closeConnection(id, { reason: "done" });
    await eventually("disconnected event", () => events.some((e) => e.type === "disconnected" && e.connectionId === id));
    assert.equal(await service.connectionExists(id), false);
    alice.socket.stop();
    bob.socket.stop();
  });

  await check("every upstream event carried a bearer token and no ce-signature", async () => {
    assert.ok(upstreamAuth.length >= 6, `saw ${upstreamAuth.length} events`);
    for (const { bearer, signature } of upstreamAuth) {
      assert.match(bearer ?? "", /^Bearer [\w-]+\.[\w-]+\.[\w-]+$/);
      assert.equal(signature, undefined);
    }
  });

  await check("an access key (local auth) or a token from no identity is refused", async () => {
    const endpointUrl = new URL(HUB_ENDPOINT);
    const keyed = new WebPubSubServiceClient(
      `Endpoint=https://${endpointUrl.hostname};Port=${endpointUrl.port};AccessKey=any-key;Version=1.0;`,
      HUB_NAME,
    );
    await assert.rejects(keyed.sendToAll("x", { contentType: "text/plain" }), (error) => error.statusCode === 401);
    const stranger = { getToken: async () => ({ token: "a.b.c", expiresOnTimestamp: Date.now() + 60000 }) };
    const anonymous = new WebPubSubServiceClient(HUB_ENDPOINT, stranger, HUB_NAME);
    await assert.rejects(anonymous.sendToAll("x", { contentType: "text/plain" }), (error) => error.statusCode === 401);
  });
  console.log("all checks passed");
  server.close();
  process.exit(0);
} catch (error) {
  console.error(`not ok - ${error.stack ?? error} ${error.statusCode ?? ""} ${error.request?.method ?? ""} ${error.request?.url ?? ""} ${JSON.stringify(error.errorDetail ?? "")}`);
  server.close();
  process.exit(1);
}
