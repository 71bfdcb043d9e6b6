//! `salur bank-check --bank CODE`: the conformance kit for banks. It plays salur against a bank
//! integration running on a test vhost (or namespace) with no salur worker: it sends the bank
//! requests of every kind, repeats them as salur does (the same request again, a re-send with
//! the same idempotency key), reads the answers from `salur.bank.replies` and checks each rule
//! of the contract. One line per rule, `PASS` or `FAIL` with what was seen (`SKIP` when a rule
//! could not be tried, e.g. no account was opened to pay).

use super::contract::*;
use super::refusals;
use super::users;
use crate::broker::{Broker, Outgoing, names};
use crate::config::Settings;
use futures::StreamExt as _;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Fail,
    Skip,
}

/// One rule of the contract and how the bank did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RuleResult {
    pub rule: &'static str,
    pub verdict: Verdict,
    pub seen: String,
}

impl std::fmt::Display for RuleResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v = match self.verdict {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::Skip => "SKIP",
        };
        write!(f, "{v}  {:<34} {}", self.rule, self.seen)
    }
}

/// A run's results: one line per rule, then the counts (`salur bank-check`).
pub struct CheckReport<'a>(pub &'a [RuleResult]);

impl CheckReport<'_> {
    /// The rules that ended with `verdict`.
    pub fn count(&self, verdict: Verdict) -> usize {
        self.0.iter().filter(|r| r.verdict == verdict).count()
    }
}

impl std::fmt::Display for CheckReport<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for r in self.0 {
            writeln!(f, "{r}")?;
        }
        writeln!(
            f,
            "{} rules: {} passed, {} failed, {} skipped",
            self.0.len(),
            self.count(Verdict::Pass),
            self.count(Verdict::Fail),
            self.count(Verdict::Skip)
        )
    }
}

#[derive(Debug, Clone)]
pub struct CheckOptions {
    pub bank: String,
    /// How long to wait for each answer.
    pub timeout: Duration,
}

/// An answer as read off the replies queue: who published it and what it says.
#[derive(Debug, Clone)]
struct Answer {
    user_id: Option<String>,
    reply: Result<BankReply, String>,
}

struct Kit {
    settings: Settings,
    opts: CheckOptions,
    publisher: crate::broker::Publisher,
    answers: Arc<Mutex<Vec<Answer>>>,
    results: Vec<RuleResult>,
}

/// Runs every rule against the bank; the results in order. Err only if the kit itself cannot
/// run (no broker, a salur worker consuming the answers).
pub async fn run(settings: &Settings, opts: CheckOptions) -> anyhow::Result<Vec<RuleResult>> {
    let bank = crate::domain::BankCode::parse(&opts.bank)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .as_str()
        .to_owned();
    let broker = Broker::connect(settings).await?;
    crate::broker::topology::declare(&broker).await?;
    let ch = broker.channel().await?;
    let replies = settings.name(names::BANK_REPLIES);
    let q = ch
        .queue_declare(
            replies.as_str().into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
    anyhow::ensure!(
        q.consumer_count() == 0,
        "{replies} has {} consumer(s): a salur worker runs on this vhost and namespace. Run \
         bank-check on a test vhost (AMQP_URL) or namespace (SALUR_NAMESPACE) where only the \
         bank runs",
        q.consumer_count()
    );
    let requests = settings.name(&names::bank_queue(&bank));
    let q = ch
        .queue_declare(
            requests.as_str().into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
    anyhow::ensure!(
        q.consumer_count() > 0,
        "no bank consumes {requests}: start the bank integration first (connected as {})",
        users::user_name(settings, &bank)
    );
    let mut consumer = ch
        .basic_consume(
            replies.as_str().into(),
            "salur-bank-check".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let answers = Arc::new(Mutex::new(Vec::new()));
    let sink = answers.clone();
    let reader = tokio::spawn(async move {
        while let Some(Ok(d)) = consumer.next().await {
            let user_id = d.properties.user_id().as_ref().map(|u| u.to_string());
            let reply = serde_json::from_slice::<BankReply>(&d.data).map_err(|e| e.to_string());
            sink.lock()
                .expect("answers")
                .push(Answer { user_id, reply });
            let _ = d.acker.ack(BasicAckOptions::default()).await;
        }
    });
    let mut kit = Kit {
        settings: settings.clone(),
        opts: CheckOptions { bank, ..opts },
        publisher: broker.publisher().await?,
        answers,
        results: Vec::new(),
    };
    kit.check_all().await;
    reader.abort();
    let _ = ch.close(200, "bye".into()).await;
    broker.close().await;
    Ok(kit.results)
}

impl Kit {
    fn note(&mut self, rule: &'static str, verdict: Verdict, seen: impl Into<String>) {
        self.results.push(RuleResult {
            rule,
            verdict,
            seen: seen.into(),
        });
    }

    fn pass_or_fail(&mut self, rule: &'static str, problems: Vec<String>, ok: impl Into<String>) {
        if problems.is_empty() {
            self.note(rule, Verdict::Pass, ok);
        } else {
            self.note(rule, Verdict::Fail, problems.join("; "));
        }
    }

    /// A request kind was answered: what each item got.
    fn answered(&mut self, rule: &'static str, a: &Answer) {
        match &a.reply {
            Ok(r) => {
                let statuses: Vec<String> = r
                    .items
                    .iter()
                    .map(|i| {
                        let code = i.reason.as_ref().map(|r| format!(" {}", r.code));
                        format!(
                            "item {} {:?}{}",
                            i.item_id,
                            i.status,
                            code.unwrap_or_default()
                        )
                    })
                    .collect();
                self.note(
                    rule,
                    Verdict::Pass,
                    format!("answered: {}", statuses.join(", ")),
                );
            }
            Err(e) => self.note(
                rule,
                Verdict::Fail,
                format!("the answer is not a bank reply: {e}"),
            ),
        }
    }

    /// `req` again with a new request id (as salur re-sends after a timeout): every item must
    /// get the first answer.
    async fn resend_same_key(
        &mut self,
        req: &BankRequest,
        first: &Answer,
        rule: &'static str,
        what: &str,
        suspect: &str,
        seen: &mut Vec<(BankRequest, Answer)>,
    ) {
        let mut again = req.clone();
        again.request_id = Uuid::new_v4();
        match self.ask_until_final(again).await {
            Ok((req2, second)) => {
                let problems = same_items(first, &second)
                    .into_iter()
                    .map(|p| format!("{what} {p} {suspect}"))
                    .collect();
                self.pass_or_fail(rule, problems, format!("{what} got the first answer"));
                seen.push((req2, second));
            }
            Err(e) => self.note(rule, Verdict::Fail, e),
        }
    }

    async fn send(&self, request: &BankRequest) -> anyhow::Result<()> {
        let message = Outgoing {
            exchange: self.settings.name(names::BANK),
            routing_key: request.body.kind().routing_key(&request.bank_code),
            payload: serde_json::to_vec(request)?,
        };
        self.publisher.publish_one(message).await?;
        Ok(())
    }

    /// Sends `request` and waits for a new answer to it (an answer to the same request id that
    /// came before is not taken; a duplicate of this one stays in `answers`).
    async fn ask(&self, request: &BankRequest) -> Result<Answer, String> {
        let before = self.answers_to(request.request_id).len();
        self.send(request)
            .await
            .map_err(|e| format!("could not send the request: {e:#}"))?;
        let deadline = tokio::time::Instant::now() + self.opts.timeout;
        loop {
            if let Some(a) = self.answers_to(request.request_id).get(before) {
                return Ok(a.clone());
            }
            if tokio::time::Instant::now() > deadline {
                return Err(format!(
                    "no answer to request {} within {} s",
                    request.request_id,
                    self.opts.timeout.as_secs()
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn answers_to(&self, request_id: Uuid) -> Vec<Answer> {
        self.answers
            .lock()
            .expect("answers")
            .iter()
            .filter(|a| a.reply.as_ref().is_ok_and(|r| r.request_id == request_id))
            .cloned()
            .collect()
    }

    /// Asks until no item is a transient error (a bank may answer `error`; salur asks again),
    /// with a new request id each time, as salur does.
    async fn ask_until_final(
        &self,
        mut request: BankRequest,
    ) -> Result<(BankRequest, Answer), String> {
        for _ in 0..5 {
            let a = self.ask(&request).await?;
            let transient = a
                .reply
                .as_ref()
                .is_ok_and(|r| r.items.iter().any(|i| i.status == ItemStatus::Error));
            if !transient {
                return Ok((request, a));
            }
            request.request_id = Uuid::new_v4();
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        Err("every answer in 5 tries had a transient error".into())
    }

    fn request(&self, body: RequestBody) -> BankRequest {
        BankRequest {
            v: VERSION,
            request_id: Uuid::new_v4(),
            bank_code: self.opts.bank.clone(),
            sent_at: chrono::Utc::now(),
            body,
        }
    }

    async fn check_all(&mut self) {
        let mut seen: Vec<(BankRequest, Answer)> = Vec::new();

        // Account opening, and a re-send of the same item with the same key.
        let open = self.request(RequestBody::AccountOpen {
            items: vec![open_item("1"), open_item("2")],
        });
        let opened = self.ask_until_final(open.clone()).await;
        let account = match &opened {
            Ok((req, a)) => {
                self.answered("account_open.answered", a);
                seen.push((req.clone(), a.clone()));
                a.reply.as_ref().ok().and_then(|r| {
                    r.items
                        .iter()
                        .find(|i| i.status == ItemStatus::Ok)
                        .and_then(|i| Some((i.account_number.clone()?, i.account_name.clone()?)))
                })
            }
            Err(e) => {
                self.note("account_open.answered", Verdict::Fail, e.clone());
                None
            }
        };
        if let Ok((req, first)) = &opened {
            self.resend_same_key(
                req,
                first,
                "account_open.resend_one_account",
                "a re-send with the same idempotency_key",
                "(a second account?)",
                &mut seen,
            )
            .await;
            // The very same request again (a redelivery): the same answer.
            let first_answer = first.clone();
            match self.ask(req).await {
                Ok(a) => {
                    let problems = same_items(&first_answer, &a);
                    self.pass_or_fail(
                        "request.repeated_same_answer",
                        problems
                            .into_iter()
                            .map(|p| format!("the same request again {p}"))
                            .collect(),
                        "the same request (same request_id) again got the same answer",
                    );
                }
                Err(e) => self.note("request.repeated_same_answer", Verdict::Fail, e),
            }
        }

        // Inquiries: the account just opened, and one the bank most likely does not have (it
        // may answer either way, by the rules every answer keeps).
        let mut inquiry_items = vec![AccountInquiryItem {
            item_id: "3".into(),
            account_number: format!("9{:012}", rand::random::<u64>() % 1_000_000_000_000),
            nik: random_nik(),
            name: "BANK CHECK NOBODY".into(),
        }];
        if let Some((number, name)) = &account {
            inquiry_items.push(AccountInquiryItem {
                item_id: "4".into(),
                account_number: number.clone(),
                nik: String::new(),
                name: name.clone(),
            });
        }
        let inquiry = self.request(RequestBody::AccountInquiry {
            items: inquiry_items,
        });
        match self.ask_until_final(inquiry).await {
            Ok((req, a)) => {
                self.answered("account_inquiry.answered", &a);
                if let Ok(r) = &a.reply {
                    if account.is_some() {
                        let known = r.items.iter().find(|i| i.item_id == "4");
                        let asked = account.as_ref().map(|(n, _)| n.as_str());
                        let problems: Vec<String> = match known {
                            Some(i) if i.status != ItemStatus::Ok => {
                                vec![format!(
                                    "the account just opened was answered {:?}",
                                    i.status
                                )]
                            }
                            Some(i)
                                if i.account_number.is_some()
                                    && i.account_number.as_deref() != asked =>
                            {
                                vec![
                                    "the answer names another account number than the one asked"
                                        .into(),
                                ]
                            }
                            _ => Vec::new(),
                        };
                        self.pass_or_fail(
                            "account_inquiry.opened_account",
                            problems,
                            "the account just opened is confirmed with its holder's name",
                        );
                    } else {
                        self.note(
                            "account_inquiry.opened_account",
                            Verdict::Skip,
                            "no account was opened to ask about",
                        );
                    }
                }
                seen.push((req, a));
            }
            Err(e) => self.note("account_inquiry.answered", Verdict::Fail, e),
        }

        // A transfer, and a new request with the same idempotency key.
        match &account {
            None => {
                self.note(
                    "transfer.answered",
                    Verdict::Skip,
                    "no account was opened to pay",
                );
                self.note(
                    "transfer.repeated_key_paid_once",
                    Verdict::Skip,
                    "no account was opened to pay",
                );
            }
            Some((number, name)) => {
                let key = Uuid::new_v4().to_string();
                let transfer = self.request(RequestBody::Transfer {
                    items: vec![TransferItem {
                        item_id: "5".into(),
                        idempotency_key: key,
                        account_number: number.clone(),
                        account_name: name.clone(),
                        amount: Money {
                            value: "600000.00".into(),
                            currency: "IDR".into(),
                        },
                        description: "salur bank-check".into(),
                    }],
                });
                match self.ask_until_final(transfer).await {
                    Ok((req, first)) => {
                        self.answered("transfer.answered", &first);
                        seen.push((req.clone(), first.clone()));
                        self.resend_same_key(
                            &req,
                            &first,
                            "transfer.repeated_key_paid_once",
                            "the same idempotency_key in a new request",
                            "(paid twice?)",
                            &mut seen,
                        )
                        .await;
                    }
                    Err(e) => self.note("transfer.answered", Verdict::Fail, e),
                }
            }
        }

        self.check_answers(&seen);
    }

    /// The rules every answer must keep: who sent it, its shape, required fields, codes.
    fn check_answers(&mut self, seen: &[(BankRequest, Answer)]) {
        if seen.is_empty() {
            for rule in ["replies.user_id", "replies.shape", "refusal_codes.listed"] {
                self.note(rule, Verdict::Skip, "no answer to check");
            }
            return;
        }
        let user = users::user_name(&self.settings, &self.opts.bank);
        let mut sender = Vec::new();
        let mut shape = Vec::new();
        let mut fields: HashMap<RequestKind, Vec<String>> = HashMap::new();
        let mut codes = Vec::new();
        let mut kinds_answered = Vec::new();
        for (req, a) in seen {
            let kind = req.body.kind();
            if a.user_id.as_deref() != Some(user.as_str()) {
                sender.push(format!(
                    "a {} answer carries user_id {:?}, not {user:?}",
                    kind.as_str(),
                    a.user_id
                ));
            }
            let r = match &a.reply {
                Ok(r) => r,
                Err(e) => {
                    shape.push(format!("an answer is not a bank reply: {e}"));
                    continue;
                }
            };
            kinds_answered.push(kind);
            if r.v != VERSION || r.bank_code != req.bank_code || r.kind != kind {
                shape.push(format!(
                    "a {} answer says v {}, bank {}, kind {}",
                    kind.as_str(),
                    r.v,
                    r.bank_code,
                    r.kind.as_str()
                ));
            }
            let mut asked: Vec<String> = item_ids(&req.body);
            let mut got: Vec<String> = r.items.iter().map(|i| i.item_id.clone()).collect();
            asked.sort();
            got.sort();
            if asked != got {
                shape.push(format!(
                    "a {} request named items {asked:?}, its answer {got:?}",
                    kind.as_str()
                ));
            }
            for i in &r.items {
                if let Some(field) = i.missing_field(kind) {
                    fields.entry(kind).or_default().push(format!(
                        "an ok {} answer (item {}) lacks {field}",
                        kind.as_str(),
                        i.item_id
                    ));
                }
                if i.status == ItemStatus::Rejected {
                    let code = i.reason.as_ref().map(|r| r.code.as_str());
                    let listed = code
                        .and_then(refusals::find)
                        .is_some_and(|r| r.kinds.contains(&kind));
                    if !listed {
                        codes.push(format!(
                            "a {} refusal carries code {:?}, not one of the list for {}",
                            kind.as_str(),
                            code.unwrap_or("(none)"),
                            kind.as_str()
                        ));
                    }
                }
            }
        }
        self.pass_or_fail(
            "replies.user_id",
            sender,
            format!("every answer carries user_id {user}"),
        );
        self.pass_or_fail(
            "replies.shape",
            shape,
            "v, request_id, bank_code and kind echo the request; every item answered once",
        );
        for (kind, rule) in [
            (RequestKind::AccountOpen, "account_open.required_fields"),
            (
                RequestKind::AccountInquiry,
                "account_inquiry.required_fields",
            ),
            (RequestKind::Transfer, "transfer.required_fields"),
        ] {
            if !kinds_answered.contains(&kind) {
                self.note(
                    rule,
                    Verdict::Skip,
                    format!("no {} answer to check", kind.as_str()),
                );
                continue;
            }
            let what = match kind {
                RequestKind::AccountOpen => "account_number and account_name",
                RequestKind::AccountInquiry => "account_name",
                RequestKind::Transfer => "reference",
            };
            self.pass_or_fail(
                rule,
                fields.remove(&kind).unwrap_or_default(),
                format!("every ok {} answer carries {what}", kind.as_str()),
            );
        }
        self.pass_or_fail(
            "refusal_codes.listed",
            codes,
            "every refusal carries a code of queues/refusal-codes.md for its kind",
        );
    }
}

fn item_ids(body: &RequestBody) -> Vec<String> {
    match body {
        RequestBody::AccountOpen { items } => items.iter().map(|i| i.item_id.clone()).collect(),
        RequestBody::AccountInquiry { items } => items.iter().map(|i| i.item_id.clone()).collect(),
        RequestBody::Transfer { items } => items.iter().map(|i| i.item_id.clone()).collect(),
    }
}

/// What must not change between two answers to the same item: status, account, reference,
/// refusal code.
type Fingerprint = (ItemStatus, Option<String>, Option<String>, Option<String>);

fn what(i: &ReplyItem) -> Fingerprint {
    (
        i.status,
        i.account_number.clone(),
        i.reference.clone(),
        i.reason.as_ref().map(|r| r.code.clone()),
    )
}

/// What differs, item by item, between two answers to the same items.
fn same_items(first: &Answer, second: &Answer) -> Vec<String> {
    let (Ok(a), Ok(b)) = (&first.reply, &second.reply) else {
        return vec!["was not a readable answer".into()];
    };
    let mut out = Vec::new();
    for i in &a.items {
        match b.items.iter().find(|j| j.item_id == i.item_id) {
            Some(j) if what(i) == what(j) => {}
            Some(j) => out.push(format!(
                "answered item {} with {:?} after {:?}",
                i.item_id,
                what(j),
                what(i)
            )),
            None => out.push(format!("did not answer item {}", i.item_id)),
        }
    }
    out
}

/// A NIK of the right shape that no real person is likely to have (a random serial).
fn random_nik() -> String {
    format!("537101450880{:04}", rand::random::<u16>() % 9000 + 1000)
}

fn open_item(item_id: &str) -> AccountOpenItem {
    let nik = random_nik();
    AccountOpenItem {
        item_id: item_id.into(),
        idempotency_key: Uuid::new_v4().to_string(),
        kk: format!("537101010120{}", &nik[12..]),
        nik,
        name: "Maria Goreti Ndolu".into(),
        mother_name: "Yohana Bili".into(),
        birth_place: "Kupang".into(),
        birth_date: "1980-08-05".into(),
        sex: "P".into(),
        address: "Jl. El Tari No. 5".into(),
        region_code: "5371011001".into(),
        phone: None,
    }
}
