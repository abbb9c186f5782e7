//! What a client connection may do, from its token roles and REST grants (azure-contracts §2.3):
//! `webpubsub.joinLeaveGroup` / `webpubsub.sendToGroup` (any group), `….<group>` (that group),
//! and `webpubsub.joinLeaveGroups.<pattern>` / `webpubsub.sendToGroups.<pattern>`, where `*`
//! matches within one dot-separated segment, `**` across segments and `?` one character.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    JoinLeave,
    Send,
}

impl Action {
    /// The permission's name in REST paths.
    pub fn permission(self) -> &'static str {
        match self {
            Action::JoinLeave => "joinLeaveGroup",
            Action::Send => "sendToGroup",
        }
    }
}

pub fn allows(roles: &[String], action: Action, group: &str) -> bool {
    let single = format!("webpubsub.{}", action.permission());
    let plural = format!("webpubsub.{}s.", action.permission());
    roles.iter().any(|role| {
        role == &single
            || role
                .strip_prefix(&single)
                .and_then(|rest| rest.strip_prefix('.'))
                == Some(group)
            || role
                .strip_prefix(&plural)
                .is_some_and(|pattern| matches(pattern.as_bytes(), group.as_bytes()))
    })
}

fn matches(pattern: &[u8], text: &[u8]) -> bool {
    match pattern {
        [] => text.is_empty(),
        [b'*', b'*', rest @ ..] => (0..=text.len()).any(|skip| matches(rest, &text[skip..])),
        [b'*', rest @ ..] => {
            let segment = text.iter().position(|&b| b == b'.').unwrap_or(text.len());
            (0..=segment).any(|skip| matches(rest, &text[skip..]))
        }
        [b'?', rest @ ..] => !text.is_empty() && text[0] != b'.' && matches(rest, &text[1..]),
        [first, rest @ ..] => text.first() == Some(first) && matches(rest, &text[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roles(list: &[&str]) -> Vec<String> {
        list.iter().map(|role| role.to_string()).collect()
    }

    #[test]
    fn exact_group_roles_and_any_group_roles() {
        let video = roles(&["webpubsub.sendToGroup.booking.1.video"]);
        assert!(allows(&video, Action::Send, "booking.1.video"));
        assert!(!allows(&video, Action::Send, "booking.2.video"));
        assert!(!allows(&video, Action::JoinLeave, "booking.1.video"));
        assert!(allows(
            &roles(&["webpubsub.joinLeaveGroup"]),
            Action::JoinLeave,
            "any.thing"
        ));
        assert!(!allows(&[], Action::Send, "g"));
    }

    #[test]
    fn wildcard_patterns() {
        let one = roles(&["webpubsub.sendToGroups.booking.*.video"]);
        assert!(allows(&one, Action::Send, "booking.42.video"));
        assert!(!allows(&one, Action::Send, "booking.4.2.video"));
        assert!(!allows(&one, Action::Send, "booking.42.chat"));
        let deep = roles(&["webpubsub.joinLeaveGroups.booking.**"]);
        assert!(allows(&deep, Action::JoinLeave, "booking.4.2.video"));
        assert!(!allows(&deep, Action::JoinLeave, "user.1"));
        let char = roles(&["webpubsub.sendToGroups.room?"]);
        assert!(allows(&char, Action::Send, "room1"));
        assert!(!allows(&char, Action::Send, "room12"));
    }
}
