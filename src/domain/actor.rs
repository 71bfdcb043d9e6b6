//! Who caused a change: the person and the token they used. Every audit row a person causes
//! (submit, fix, replay, discard, approval) carries one; rows written by the system (stages,
//! the sweeper) carry none.

use serde::Serialize;

/// The token label of changes made on the server's command line (no API token).
pub const CLI_TOKEN: &str = "cli";

/// A person acting through a token. The person's name is staff data: it goes into the audit
/// trail, never into logs or metric labels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Actor {
    /// The person the token was made for (`None` for a token made without one).
    pub person: Option<String>,
    /// The token's label (its beginning, or the label it was given), or [`CLI_TOKEN`].
    pub token: String,
}

impl Actor {
    pub fn new(person: Option<String>, token: impl Into<String>) -> Self {
        Self {
            person: person
                .map(|p| p.trim().to_owned())
                .filter(|p| !p.is_empty()),
            token: token.into(),
        }
    }

    /// A person at the server's command line (`--person`, or the login name).
    pub fn cli(person: Option<String>) -> Self {
        Self::new(person, CLI_TOKEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_people_are_none() {
        assert_eq!(Actor::new(Some("  ".into()), "t").person, None);
        assert_eq!(
            Actor::cli(Some(" Ani ".into())),
            Actor {
                person: Some("Ani".into()),
                token: "cli".into()
            }
        );
    }
}
