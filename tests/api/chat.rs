//! Chat over HTTP: participants only, the send and read windows, dedup by clientMessageId, the
//! shared 20-a-minute limit, history pages, unread counts; and messages kept when the push to
//! Web PubSub fails (here it points at a closed port).

use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::*;

struct Chat {
    app: TestApp,
    booking_id: Uuid,
    mentor: String,
    student: String,
    admin: String,
}

async fn chat() -> Chat {
    let app = spawn_app_with(Options {
        realtime: Some(unreachable_realtime()),
        ..Options::default()
    })
    .await;
    let (_, admin) = app.admin().await;
    let (mentor_id, mentor) = app.open_mentor("chat-mentor@example.com", &admin).await;
    let (student_id, student) = app.student("chat-student@example.com").await;
    let booking_id = app
        .insert_booking(mentor_id, student_id, at(2, 10, 0), "confirmed")
        .await;
    Chat {
        app,
        booking_id,
        mentor,
        student,
        admin,
    }
}

impl Chat {
    fn path(&self, rest: &str) -> String {
        format!("/api/bookings/{}/messages{rest}", self.booking_id)
    }

    async fn send(&self, token: &str, text: &str, client_id: &str) -> reqwest::Response {
        self.app
            .post(
                &self.path(""),
                &json!({"message": text, "clientMessageId": client_id}),
                Some(token),
            )
            .await
    }
}

#[tokio::test]
async fn messages_are_stored_even_when_the_push_fails_and_never_twice() {
    let chat = chat().await;
    let sent = chat
        .send(&chat.student, "Hello!", "c-1")
        .await
        .expect_status(StatusCode::CREATED)
        .await;
    assert_eq!(sent["message"], "Hello!");
    // A retry of the same message returns it instead of storing it again; so do racing retries.
    let again = chat
        .send(&chat.student, "Hello!", "c-1")
        .await
        .expect_status(StatusCode::OK)
        .await;
    assert_eq!(again["messageId"], sent["messageId"]);
    let racing = join_all((0..10).map(|_| chat.send(&chat.student, "Once", "c-2"))).await;
    let mut ids = Vec::new();
    for response in racing {
        assert!(matches!(
            response.status(),
            StatusCode::CREATED | StatusCode::OK
        ));
        ids.push(response.json::<Value>().await.unwrap()["messageId"].clone());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "one message for one clientMessageId");
    // The same client id from the other participant is a different message.
    chat.send(&chat.mentor, "Hi", "c-1")
        .await
        .expect_status(StatusCode::CREATED)
        .await;
    assert_eq!(chat.app.count("chat_messages").await, 3);

    let history = chat
        .app
        .get(&chat.path(""), Some(&chat.mentor))
        .await
        .expect_status(StatusCode::OK)
        .await;
    let texts: Vec<&str> = history["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["message"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["Hello!", "Once", "Hi"], "oldest first");
}

#[tokio::test]
async fn only_participants_chat_and_bad_messages_are_refused() {
    let chat = chat().await;
    let (_, stranger) = chat.app.student("chat-stranger@example.com").await;
    let (_, other_mentor) = chat
        .app
        .open_mentor("chat-other@example.com", &chat.admin)
        .await;
    for token in [&stranger, &other_mentor, &chat.admin] {
        chat.send(token, "psst", "x")
            .await
            .expect_problem(StatusCode::FORBIDDEN, "NOT_A_PARTICIPANT")
            .await;
        chat.app
            .get(&chat.path(""), Some(token))
            .await
            .expect_problem(StatusCode::FORBIDDEN, "NOT_A_PARTICIPANT")
            .await;
        chat.app
            .get(&chat.path("/unread"), Some(token))
            .await
            .expect_problem(StatusCode::FORBIDDEN, "NOT_A_PARTICIPANT")
            .await;
    }
    assert_eq!(
        chat.app.get(&chat.path(""), None).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let missing = format!("/api/bookings/{}/messages", Uuid::new_v4());
    chat.app
        .post(
            &missing,
            &json!({"message": "x", "clientMessageId": "x"}),
            Some(&chat.student),
        )
        .await
        .expect_problem(StatusCode::NOT_FOUND, "BOOKING_NOT_FOUND")
        .await;
    for body in [
        json!({"message": "", "clientMessageId": "a"}),
        json!({"message": "   ", "clientMessageId": "a"}),
        json!({"message": "x".repeat(4001), "clientMessageId": "a"}),
        json!({"message": "ok", "clientMessageId": ""}),
        json!({"message": "ok", "clientMessageId": "c".repeat(101)}),
    ] {
        chat.app
            .post(&chat.path(""), &body, Some(&chat.student))
            .await
            .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED")
            .await;
    }
    chat.app
        .post(
            &chat.path(""),
            &json!({"message": "no id"}),
            Some(&chat.student),
        )
        .await
        .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "INVALID_BODY")
        .await;
    chat.send(&chat.student, &"x".repeat(4000), "max")
        .await
        .expect_status(StatusCode::CREATED)
        .await;
    assert_eq!(chat.app.count("chat_messages").await, 1);
}

#[tokio::test]
async fn the_send_and_read_windows_close_after_the_class() {
    let chat = chat().await;
    chat.send(&chat.student, "before", "w-1")
        .await
        .expect_status(StatusCode::CREATED)
        .await;
    let set_end = |days: i64| {
        let app = &chat.app;
        let booking_id = chat.booking_id;
        async move {
            sqlx::query(
                "UPDATE bookings SET status = 'completed', scheduled_at = now() - make_interval(days => $2) - interval '55 minutes', ends_at = now() - make_interval(days => $2), blocked_until = now() - make_interval(days => $2) WHERE booking_id = $1",
            )
            .bind(booking_id)
            .bind(days as i32)
            .execute(&app.db)
            .await
            .unwrap();
        }
    };
    set_end(179).await;
    chat.send(&chat.student, "still open", "w-2")
        .await
        .expect_status(StatusCode::CREATED)
        .await;
    set_end(181).await;
    chat.send(&chat.mentor, "too late", "w-3")
        .await
        .expect_problem(StatusCode::FORBIDDEN, "CHAT_CLOSED")
        .await;
    chat.app
        .get(&chat.path(""), Some(&chat.student))
        .await
        .expect_status(StatusCode::OK)
        .await;
    set_end(271).await;
    chat.app
        .get(&chat.path(""), Some(&chat.student))
        .await
        .expect_problem(StatusCode::FORBIDDEN, "CHAT_CLOSED")
        .await;
}

#[tokio::test]
async fn a_called_off_class_keeps_its_chat_readable_but_takes_no_messages() {
    let chat = chat().await;
    chat.send(&chat.student, "see you then", "c-1")
        .await
        .expect_status(StatusCode::CREATED)
        .await;
    for status in ["cancelled", "expired"] {
        chat.app
            .execute(
                &format!("UPDATE bookings SET status = '{status}' WHERE booking_id = $1"),
                chat.booking_id,
            )
            .await;
        for token in [&chat.student, &chat.mentor] {
            chat.send(token, "still on?", &format!("c-{status}"))
                .await
                .expect_problem(StatusCode::FORBIDDEN, "CHAT_CLOSED")
                .await;
        }
        let history = chat
            .app
            .get(&chat.path(""), Some(&chat.mentor))
            .await
            .expect_status(StatusCode::OK)
            .await;
        assert_eq!(history["items"].as_array().unwrap().len(), 1);
    }
}

#[tokio::test]
async fn twenty_messages_a_minute_per_sender_across_instances() {
    let chat = chat().await;
    let other_instance = chat.app.second_instance().await;
    for n in 0..20 {
        let app = if n % 2 == 0 {
            &chat.app
        } else {
            &other_instance
        };
        let response = app
            .post(
                &chat.path(""),
                &json!({"message": format!("m{n}"), "clientMessageId": format!("r-{n}")}),
                Some(&chat.student),
            )
            .await;
        response.expect_status(StatusCode::CREATED).await;
    }
    let limited = chat
        .send(&chat.student, "one more", "r-20")
        .await
        .expect_problem(StatusCode::TOO_MANY_REQUESTS, "CHAT_RATE_LIMITED")
        .await;
    assert!(limited["retryAt"].is_string());
    // A retry of a stored message is not a new message; the other participant has their own limit.
    chat.send(&chat.student, "m0", "r-0")
        .await
        .expect_status(StatusCode::OK)
        .await;
    chat.send(&chat.mentor, "mine", "r-0")
        .await
        .expect_status(StatusCode::CREATED)
        .await;
    assert_eq!(chat.app.count("chat_messages").await, 21);
}

#[tokio::test]
async fn history_pages_and_unread_counts() {
    let chat = chat().await;
    let mut sent = Vec::new();
    for n in 0..7 {
        let message = chat
            .send(&chat.mentor, &format!("m{n}"), &format!("p-{n}"))
            .await
            .expect_status(StatusCode::CREATED)
            .await;
        sent.push(message["messageId"].as_str().unwrap().to_owned());
    }
    chat.send(&chat.student, "mine", "s-1")
        .await
        .expect_status(StatusCode::CREATED)
        .await;
    let mut seen = Vec::new();
    let mut path = chat.path("?limit=3");
    loop {
        let page = chat
            .app
            .get(&path, Some(&chat.student))
            .await
            .expect_status(StatusCode::OK)
            .await;
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["message"].as_str().unwrap().to_owned()),
        );
        match page["nextCursor"].as_str() {
            Some(cursor) => path = chat.path(&format!("?limit=3&cursor={cursor}")),
            None => break,
        }
    }
    assert_eq!(seen, ["m0", "m1", "m2", "m3", "m4", "m5", "m6", "mine"]);

    let unread = |token: String| {
        let app = &chat.app;
        let path = chat.path("/unread");
        async move {
            app.get(&path, Some(&token))
                .await
                .expect_status(StatusCode::OK)
                .await["unread"]
                .as_i64()
                .unwrap()
        }
    };
    assert_eq!(
        unread(chat.student.clone()).await,
        7,
        "own messages are never unread"
    );
    assert_eq!(unread(chat.mentor.clone()).await, 1);
    let after = chat
        .app
        .post(
            &chat.path("/read"),
            &json!({"upTo": sent[4]}),
            Some(&chat.student),
        )
        .await
        .expect_status(StatusCode::OK)
        .await;
    assert_eq!(after["unread"], 2);
    // Marking an older message later never moves the mark back.
    chat.app
        .post(
            &chat.path("/read"),
            &json!({"upTo": sent[1]}),
            Some(&chat.student),
        )
        .await;
    assert_eq!(unread(chat.student.clone()).await, 2);
    chat.app
        .post(
            &chat.path("/read"),
            &json!({"upTo": Uuid::new_v4()}),
            Some(&chat.student),
        )
        .await
        .expect_problem(StatusCode::NOT_FOUND, "MESSAGE_NOT_FOUND")
        .await;
}
