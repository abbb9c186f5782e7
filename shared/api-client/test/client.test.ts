// The typed client against a running handler (tests/api/typescript_client.rs starts it with a
// mentor open for demos): compiled with tsc --strict first, so a type that drifted from the
// API fails before anything runs.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { test } from "node:test";

import { createCodeConnectClient, hasCode, type Schemas } from "../src/index.js";

function setting(name: string): string {
  const value = process.env[name];
  assert.ok(value, `${name} is set`);
  return value;
}

const baseUrl = setting("API_BASE_URL");
const mentorId = setting("MENTOR_ID");
const email = setting("STUDENT_EMAIL");
const bookDate = setting("BOOK_DATE");
const password = "Typed-client-2026!";

let token: string | undefined;
const api = createCodeConnectClient({ baseUrl, token: () => token });

test("a student signs up and logs in", async () => {
  const signup = await api.POST("/api/auth/signup", {
    body: { email, password, firstName: "Typed", lastName: "Client", role: "student" },
  });
  assert.equal(signup.response.status, 201);
  assert.ok(signup.data && "sessionToken" in signup.data, "a student gets a session at once");

  const wrong = await api.POST("/api/auth/login", { body: { email, password: "not-the-password" } });
  assert.equal(wrong.response.status, 401);
  assert.ok(hasCode(wrong.error, "INVALID_CREDENTIALS"), JSON.stringify(wrong.error));

  const login = await api.POST("/api/auth/login", { body: { email, password } });
  assert.equal(login.response.status, 200);
  assert.ok(login.data && "sessionToken" in login.data, JSON.stringify(login.data));
  token = login.data.sessionToken;

  const me = await api.GET("/api/auth/me");
  assert.equal(me.data?.email, email);
  assert.equal(me.data?.role, "student");
});

test("the student finds the mentor and books a demo", async () => {
  const list = await api.GET("/api/mentors", { params: { query: { subject: "Physics", limit: 100 } } });
  assert.equal(list.response.status, 200);
  const card: Schemas["MentorCard"] | undefined = list.data?.items.find((item) => item.mentorId === mentorId);
  assert.ok(card, "the mentor is listed");
  assert.equal(card.demoEnabled, true);
  const physics = card.subjects.find((offer) => offer.subject === "Physics");
  assert.equal(physics?.classFee, "600.00");

  const day = await api.GET("/api/mentors/{mentor_id}/availability", {
    params: { path: { mentor_id: mentorId }, query: { date: bookDate, sessionType: "demo" } },
  });
  assert.equal(day.response.status, 200);
  const start = day.data?.starts[0];
  assert.ok(start, "the mentor has a free start that day");

  const request: Schemas["CreateBooking"] = {
    mentorId,
    subject: "Physics",
    sessionType: "demo",
    scheduledAt: start.startUtc,
    idempotencyKey: randomUUID(),
  };
  const booked = await api.POST("/api/bookings", { body: request });
  assert.equal(booked.response.status, 201, JSON.stringify(booked.error));
  assert.equal(booked.data?.status, "confirmed", "a demo is free, so confirmed at once");
  assert.equal(booked.data?.mentorId, mentorId);

  const again = await api.POST("/api/bookings", { body: request });
  assert.equal(again.data?.bookingId, booked.data?.bookingId, "the same key answers the same booking");

  const second = await api.POST("/api/bookings", { body: { ...request, idempotencyKey: randomUUID() } });
  assert.equal(second.response.status, 409);
  assert.ok(hasCode(second.error, "DEMO_ALREADY_BOOKED"), JSON.stringify(second.error));

  const mine = await api.GET("/api/bookings");
  assert.deepEqual(
    mine.data?.items.map((booking) => booking.bookingId),
    [booked.data?.bookingId],
  );
});
