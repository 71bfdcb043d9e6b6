//! A record's lifecycle, in one place: its [`State`]s, the [`Stage`]s that move it, and one
//! table ([`RULES`]) of which stage each state waits for, where success takes it, where a
//! transient failure sends it back, and which states are in flight, parked or final. The
//! stages, the sweeper, replay and the metrics read it; none of them lists states of its own.
//!
//! ```text
//!  received ──> account_requested ──> account_opened ──> verified ──> transfer_requested ──> disbursed
//!  └─ account opening (and its bank) ┘└─ verification ─┘ └─ transfer (and its bank) ──────┘
//!                                            │                ^
//!                                            └─> awaiting_approval (a checker approves the list)
//!  any stage: blocked (fixable) · rejected · failed · dead (an operator decides)
//!  disbursed ──> returned (the money came back: a bank statement's credit line; an office may
//!                correct the payee and replay it, through approval again where required)
//! ```
//!
//! A record of a programme that requires approval does not go from verification to the
//! transfer: it waits in `awaiting_approval` for a checker to approve the payment list it is
//! on ([`Outcome::HeldForApproval`]); approving it moves it to `verified`, where the transfer
//! stage takes it as before.
//!
//! What a stage decides for one record is an [`Outcome`]; [`Outcome::to`] is the state it
//! leads to, [`Outcome::label`] its `outcome` label in `salur_records_total`.
//!
//! Adding a state: a variant of [`State`] (with its name in [`State::as_str`] and its place in
//! [`State::ALL`]) and its row in [`RULES`]; an outcome that leads to it, if a stage decides it,
//! in [`Outcome`] and [`Stage::outcomes`].

use serde::{Deserialize, Serialize};

/// Where a record is. Exactly one at a time; what each state waits for is in [`RULES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Received,
    AccountRequested,
    AccountOpened,
    AwaitingApproval,
    Verified,
    TransferRequested,
    Disbursed,
    /// Paid, and the money came back (account closed, recipient deceased, not collected), as
    /// a reconciled bank statement says ([`crate::ops::reconcile`]).
    Returned,
    Blocked,
    Rejected,
    Failed,
    Dead,
}

/// The three stages a record goes through, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    AccountOpening,
    Verification,
    Transfer,
}

/// What a record in a state is waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waits {
    /// Its stage's handler (a stage message on `salur.work`). Swept, and its message sent
    /// again, after `SALUR_STALE_AFTER` without a change.
    ForStage,
    /// Its bank's answer to a request. Swept, and the request sent again, after
    /// `SALUR_BANK_TIMEOUT`.
    ForBank,
    /// A person: parked on a dead-letter queue (`salur.blocked`, `salur.dead`) to be fixed and
    /// replayed, or discarded.
    ForPerson,
    /// A checker: a payment list to approve (`awaiting_approval`). Not in flight (nothing
    /// is swept or sent again), not parked on a queue (nothing to fix): `batch status --wait`
    /// returns, as for a blocked record.
    ForChecker,
    /// Nothing: paid, or not payable.
    Nothing,
}

/// One row of the lifecycle table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub state: State,
    pub waits: Waits,
    /// The stage a record in this state is in (waiting for its handler, or for its bank's
    /// answer); `None` when parked or final.
    pub stage: Option<Stage>,
    /// Where success takes it.
    pub next: Option<State>,
    /// Where a transient failure sends it, to be tried again through a retry tier: a bank's
    /// passing error sends the record back to the state its request was made from.
    pub back_to: Option<State>,
}

const fn rule(
    state: State,
    waits: Waits,
    stage: Option<Stage>,
    next: Option<State>,
    back_to: Option<State>,
) -> Rule {
    Rule {
        state,
        waits,
        stage,
        next,
        back_to,
    }
}

/// The lifecycle, one row per state in the order of [`State::ALL`].
pub const RULES: [Rule; 12] = {
    use Stage::*;
    use State::*;
    use Waits::*;
    [
        rule(
            Received,
            ForStage,
            Some(AccountOpening),
            Some(AccountRequested),
            Some(Received),
        ),
        rule(
            AccountRequested,
            ForBank,
            Some(AccountOpening),
            Some(AccountOpened),
            Some(Received),
        ),
        rule(
            AccountOpened,
            ForStage,
            Some(Verification),
            Some(Verified),
            Some(AccountOpened),
        ),
        // Approval moves it on (to `verified`); no stage takes it, nothing sends it back.
        rule(AwaitingApproval, ForChecker, None, Some(Verified), None),
        rule(
            Verified,
            ForStage,
            Some(Transfer),
            Some(TransferRequested),
            Some(Verified),
        ),
        rule(
            TransferRequested,
            ForBank,
            Some(Transfer),
            Some(Disbursed),
            Some(Verified),
        ),
        rule(Disbursed, Nothing, None, None, None),
        // Nothing moves it on by itself: a correction of the payee (`records fix`) parks it
        // as blocked, to be replayed like any blocked record.
        rule(Returned, Nothing, None, None, None),
        rule(Blocked, ForPerson, None, None, None),
        rule(Rejected, Nothing, None, None, None),
        rule(Failed, Nothing, None, None, None),
        rule(Dead, ForPerson, None, None, None),
    ]
};

impl State {
    pub const ALL: [State; 12] = [
        State::Received,
        State::AccountRequested,
        State::AccountOpened,
        State::AwaitingApproval,
        State::Verified,
        State::TransferRequested,
        State::Disbursed,
        State::Returned,
        State::Blocked,
        State::Rejected,
        State::Failed,
        State::Dead,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Received => "received",
            State::AccountRequested => "account_requested",
            State::AccountOpened => "account_opened",
            State::AwaitingApproval => "awaiting_approval",
            State::Verified => "verified",
            State::TransferRequested => "transfer_requested",
            State::Disbursed => "disbursed",
            State::Returned => "returned",
            State::Blocked => "blocked",
            State::Rejected => "rejected",
            State::Failed => "failed",
            State::Dead => "dead",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// This state's row of [`RULES`].
    pub fn rule(self) -> &'static Rule {
        &RULES[self as usize]
    }

    /// The stage a record in this state is in (waiting for it, or for its bank's answer);
    /// `None` for a final or parked state.
    pub fn stage(self) -> Option<Stage> {
        self.rule().stage
    }

    /// The state a record waits in for `stage` (the state its handler takes it from).
    pub fn waiting_for(stage: Stage) -> State {
        stage.takes_from()
    }

    /// Where success takes a record in this state; `None` for a parked or final state.
    pub fn next(self) -> Option<State> {
        self.rule().next
    }

    /// Where a transient failure sends a record in this state.
    pub fn back_to(self) -> Option<State> {
        self.rule().back_to
    }

    pub fn waits(self) -> Waits {
        self.rule().waits
    }

    /// Still moving through the pipeline (not waiting for a person, not done).
    pub fn in_flight(self) -> bool {
        matches!(self.waits(), Waits::ForStage | Waits::ForBank)
    }

    /// Waiting for a bank's answer to a request salur sent.
    pub fn awaits_bank(self) -> bool {
        self.waits() == Waits::ForBank
    }

    /// Parked on a dead-letter queue until a person acts (`blocked`, `dead`).
    pub fn parked(self) -> bool {
        self.waits() == Waits::ForPerson
    }

    /// Waiting for a checker to approve the payment list it is on (`awaiting_approval`).
    pub fn awaits_checker(self) -> bool {
        self.waits() == Waits::ForChecker
    }

    /// The state a record waits in for a checker before it may go on to `to`
    /// (`awaiting_approval` before `verified`); `None` if no approval stands before `to`.
    pub fn approval_before(to: State) -> Option<State> {
        RULES
            .iter()
            .find(|r| r.waits == Waits::ForChecker && r.next == Some(to))
            .map(|r| r.state)
    }

    /// Done unless a person acts: paid, returned, or not payable.
    pub fn is_final(self) -> bool {
        self.waits() == Waits::Nothing
    }

    /// Stopped short of a payment, with its reasons: parked, or final without having been paid
    /// (`blocked`, `dead`, `rejected`, `failed`). The database keeps these apart
    /// (`stopped_records`) so that nothing reads a batch's records to find them.
    pub fn stopped(self) -> bool {
        self.parked() || (self.is_final() && !matches!(self, State::Disbursed | State::Returned))
    }

    /// The names of the states `keep` selects, for SQL that binds them (`state = ANY($1)`)
    /// instead of listing them: `State::names_where(State::in_flight)`.
    pub fn names_where(keep: impl Fn(State) -> bool) -> Vec<&'static str> {
        Self::ALL
            .into_iter()
            .filter(|s| keep(*s))
            .map(State::as_str)
            .collect()
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Stage {
    pub const ALL: [Stage; 3] = [Stage::AccountOpening, Stage::Verification, Stage::Transfer];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::AccountOpening => "account_opening",
            Stage::Verification => "verification",
            Stage::Transfer => "transfer",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// The state this stage's handler takes records from.
    pub fn takes_from(self) -> State {
        self.state_that(Waits::ForStage)
            .expect("every stage has a state that waits for it")
    }

    /// The state a record waits in for its bank's answer to this stage's request; `None` for a
    /// stage that asks no bank (verification).
    pub fn awaits_bank_in(self) -> Option<State> {
        self.state_that(Waits::ForBank)
    }

    fn state_that(self, waits: Waits) -> Option<State> {
        RULES
            .iter()
            .find(|r| r.stage == Some(self) && r.waits == waits)
            .map(|r| r.state)
    }

    /// The outcomes this stage (with its bank's answers and the sweeper) decides: the fixed
    /// `outcome` labels of `salur_records_total` for the stage, started at zero.
    pub fn outcomes(self) -> &'static [Outcome] {
        use Outcome::*;
        match self {
            Stage::AccountOpening => &[Advanced, AccountOpened, Blocked, Retried, Resent, Dead],
            Stage::Verification => &[Advanced, HeldForApproval, Blocked, Rejected],
            Stage::Transfer => &[
                Advanced,
                HeldForApproval,
                Disbursed,
                Failed,
                Retried,
                Resent,
                Dead,
            ],
        }
    }
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The stage a parked record stopped at, from the state it was parked from (account opening
/// when that is unknown: nothing before it can park a record).
pub fn stopped_at(parked_from: Option<&str>) -> Stage {
    parked_from
        .and_then(State::parse)
        .and_then(State::stage)
        .unwrap_or(Stage::AccountOpening)
}

/// What a stage decided for one record. Each leads to one state ([`Outcome::to`]) and is
/// counted under its [`Outcome::label`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    /// Its stage's own step moved it on to the next state (a request sent, a check passed).
    Advanced,
    /// The bank opened the account, or confirmed the one the office gave.
    AccountOpened,
    /// Its stage's check passed, and its programme requires a checker's approval before the
    /// next stage: it waits in the state [`State::approval_before`] the next one.
    HeldForApproval,
    /// The bank paid.
    Disbursed,
    /// Stopped by data a person can fix (reasons say what): parked on `salur.blocked`.
    Blocked,
    /// Not payable (a double recipient, discarded by an operator).
    Rejected,
    /// The bank refused the transfer for good.
    Failed,
    /// A transient failure: back to [`State::back_to`], to be tried again through a retry tier.
    Retried,
    /// Nothing came back in time: its message or bank request was sent again, its state kept.
    Resent,
    /// Retries spent, or unprocessable: parked on `salur.dead` for an operator.
    Dead,
}

impl Outcome {
    pub const ALL: [Outcome; 10] = [
        Outcome::Advanced,
        Outcome::AccountOpened,
        Outcome::HeldForApproval,
        Outcome::Disbursed,
        Outcome::Blocked,
        Outcome::Rejected,
        Outcome::Failed,
        Outcome::Retried,
        Outcome::Resent,
        Outcome::Dead,
    ];

    /// The `outcome` label of `salur_records_total`.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Advanced => "advanced",
            Outcome::AccountOpened => "account_opened",
            Outcome::HeldForApproval => "awaiting_approval",
            Outcome::Disbursed => "disbursed",
            Outcome::Blocked => "blocked",
            Outcome::Rejected => "rejected",
            Outcome::Failed => "failed",
            Outcome::Retried => "retried",
            Outcome::Resent => "resent",
            Outcome::Dead => "dead",
        }
    }

    /// The state a record in `from` goes to with this outcome; `None` if the lifecycle has no
    /// such move (success from a parked or final state).
    pub fn to(self, from: State) -> Option<State> {
        match self {
            Outcome::Advanced | Outcome::AccountOpened | Outcome::Disbursed => from.next(),
            // Before the state it would go to; or, for a record that reached a state it may
            // only be in approved (`verified`) without an approval, before the state it is in.
            Outcome::HeldForApproval => from
                .next()
                .and_then(State::approval_before)
                .or_else(|| State::approval_before(from)),
            Outcome::Blocked => Some(State::Blocked),
            Outcome::Rejected => Some(State::Rejected),
            Outcome::Failed => Some(State::Failed),
            Outcome::Dead => Some(State::Dead),
            Outcome::Retried => from.back_to(),
            Outcome::Resent => Some(from),
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_has_one_row_per_state_in_order() {
        for (i, state) in State::ALL.into_iter().enumerate() {
            assert_eq!(RULES[i].state, state);
            assert_eq!(state as usize, i);
            assert_eq!(State::parse(state.as_str()), Some(state));
        }
    }

    #[test]
    fn every_stage_waits_in_one_state_and_leads_to_the_next_stage() {
        assert_eq!(State::waiting_for(Stage::AccountOpening), State::Received);
        assert_eq!(
            State::waiting_for(Stage::Verification),
            State::AccountOpened
        );
        assert_eq!(State::waiting_for(Stage::Transfer), State::Verified);
        assert_eq!(
            Stage::AccountOpening.awaits_bank_in(),
            Some(State::AccountRequested)
        );
        assert_eq!(Stage::Verification.awaits_bank_in(), None);
        assert_eq!(
            Stage::Transfer.awaits_bank_in(),
            Some(State::TransferRequested)
        );
        // Following success from the first state walks every in-flight state once and ends
        // paid.
        let mut walked = vec![State::Received];
        while let Some(next) = walked.last().unwrap().next() {
            walked.push(next);
        }
        assert_eq!(walked.last(), Some(&State::Disbursed));
        let in_flight: Vec<State> = State::ALL.into_iter().filter(|s| s.in_flight()).collect();
        assert_eq!(&walked[..walked.len() - 1], in_flight.as_slice());
    }

    #[test]
    fn in_flight_states_have_a_stage_and_a_way_back_and_the_others_have_neither() {
        for rule in RULES {
            let s = rule.state;
            assert_eq!(s.in_flight(), rule.stage.is_some(), "{s}");
            assert_eq!(s.in_flight(), rule.back_to.is_some(), "{s}");
            // Only a record in flight, or one a checker may approve, goes on.
            assert_eq!(
                s.in_flight() || s.awaits_checker(),
                rule.next.is_some(),
                "{s}"
            );
            // A transient failure never moves a record on to another stage.
            if let Some(back) = rule.back_to {
                assert_eq!(back.stage(), rule.stage, "{s}");
                assert_eq!(back.waits(), Waits::ForStage, "{s}");
            }
            assert_eq!(
                [s.in_flight(), s.awaits_checker(), s.parked(), s.is_final()]
                    .iter()
                    .filter(|b| **b)
                    .count(),
                1,
                "{s}"
            );
        }
        assert_eq!(State::AccountRequested.back_to(), Some(State::Received));
        assert_eq!(State::TransferRequested.back_to(), Some(State::Verified));
        assert_eq!(State::names_where(State::parked), ["blocked", "dead"]);
        assert_eq!(
            State::names_where(State::is_final),
            ["disbursed", "returned", "rejected", "failed"]
        );
    }

    #[test]
    fn every_outcome_a_stage_decides_leads_somewhere_from_the_states_it_handles() {
        for stage in Stage::ALL {
            let from = [Some(stage.takes_from()), stage.awaits_bank_in()];
            for outcome in stage.outcomes() {
                assert!(
                    from.iter().flatten().any(|s| outcome.to(*s).is_some()),
                    "{stage} {outcome}"
                );
            }
        }
        assert_eq!(
            Outcome::Retried.to(State::AccountRequested),
            Some(State::Received)
        );
        assert_eq!(Outcome::Resent.to(State::Verified), Some(State::Verified));
        assert_eq!(
            Outcome::Disbursed.to(State::TransferRequested),
            Some(State::Disbursed)
        );
        assert_eq!(Outcome::Advanced.to(State::Dead), None);
    }

    #[test]
    fn approval_stands_between_verification_and_the_transfer_only() {
        assert_eq!(
            Outcome::HeldForApproval.to(State::AccountOpened),
            Some(State::AwaitingApproval)
        );
        assert_eq!(Outcome::HeldForApproval.to(State::Received), None);
        // A record in `verified` without an approval goes back to wait for one.
        assert_eq!(
            Outcome::HeldForApproval.to(State::Verified),
            Some(State::AwaitingApproval)
        );
        assert_eq!(State::AwaitingApproval.next(), Some(State::Verified));
        assert_eq!(
            State::approval_before(State::Verified),
            Some(State::AwaitingApproval)
        );
        let s = State::AwaitingApproval;
        assert!(!s.in_flight() && !s.parked() && !s.is_final() && s.awaits_checker());
        assert_eq!(s.stage(), None);
        assert_eq!(
            State::names_where(State::awaits_checker),
            ["awaiting_approval"]
        );
        assert_eq!(State::parse("awaiting_approval"), Some(s));
    }

    #[test]
    fn a_parked_record_stopped_at_the_stage_of_the_state_it_was_parked_from() {
        assert_eq!(stopped_at(Some("transfer_requested")), Stage::Transfer);
        assert_eq!(stopped_at(Some("account_opened")), Stage::Verification);
        assert_eq!(stopped_at(Some("blocked")), Stage::AccountOpening);
        assert_eq!(stopped_at(None), Stage::AccountOpening);
    }
}
