//! The office's web console, served by `salur api` at `/` next to `/v1`: people sign in
//! ([`people`]), upload a batch, follow it, fix its blocked records on screen or in Excel
//! ([`excel`]), replay them, and a checker approves the payment list ([`pages`]); auditors read
//! the bank reconciliations ([`reconciliation`]).
//!
//! Server-rendered HTML (templates are Rust functions, every value escaped by [`h`]); one small
//! script ([`SCRIPT`]) refreshes the progress bars, and everything works without it. The pages
//! call the same operations as `/v1` (`ops::submit` through the upload's own code path,
//! `ops::batch`, `ops::remediate`, `ops::approval`) with the same roles and office isolation:
//! a person is a [`crate::ops::office::Principal`] of their office, and another office's batch
//! or record is a 404 page, as if it did not exist.
//!
//! Security: the session cookie is HttpOnly, SameSite=Strict, and Secure when the request came
//! over TLS (`X-Forwarded-Proto: https` from the proxy in front); every form carries the
//! session's CSRF token (the sign-in form a token of its own, in a cookie); pages answer with a
//! strict Content-Security-Policy and are never cached.

// Handlers answer a refusal with the page to show (`Err(Response)`), once per request: its size
// does not matter.
#![allow(clippy::result_large_err)]

pub mod excel;
pub mod pages;
pub mod people;
pub mod reconciliation;
pub mod text;

use crate::api::AppState;
use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use people::Session;
use serde::Deserialize;
use std::collections::HashMap;
use text::{Lang, t};

/// The session cookie.
pub const SESSION_COOKIE: &str = "salur_session";
/// The sign-in form's CSRF cookie (there is no session yet).
const SIGNIN_COOKIE: &str = "salur_signin";
const LANG_COOKIE: &str = "salur_lang";

/// The console's script: refreshes the progress on the batches and batch pages.
pub const SCRIPT: &str = include_str!("console.js");
pub const STYLE: &str = include_str!("console.css");

/// The console's routes (merged into the API's router).
pub fn router(state: &AppState) -> Router<AppState> {
    let upload_limit = state
        .settings
        .api_xlsx_limit
        .max(state.settings.api_body_limit)
        .min(usize::MAX as u64) as usize;
    Router::new()
        .route("/", get(|| async { Redirect::to("/batches") }))
        .route("/sign-in", get(sign_in_page).post(sign_in))
        .route("/sign-out", post(sign_out))
        .route("/password", get(password_page).post(password_change))
        .route("/lang", get(switch_lang))
        .route("/static/console.js", get(script))
        .route("/static/console.css", get(style))
        .route("/batches", get(pages::batches))
        .route(
            "/upload",
            get(pages::upload_page)
                .post(pages::upload)
                .layer(DefaultBodyLimit::max(upload_limit)),
        )
        .route("/batches/{id}", get(pages::batch))
        .route("/batches/{id}/fixes.xlsx", get(excel::download))
        .route(
            "/batches/{id}/fixes",
            post(excel::upload).layer(DefaultBodyLimit::max(
                state.settings.api_xlsx_limit.min(usize::MAX as u64) as usize,
            )),
        )
        .route("/batches/{id}/replay", post(pages::replay_batch))
        .route(
            "/batches/{id}/approval",
            get(pages::approval).post(pages::decide),
        )
        .route("/records/{id}", get(pages::record))
        .route("/records/{id}/fix", post(pages::fix))
        .route("/records/{id}/replay", post(pages::replay_record))
        .route("/reconciliations", get(reconciliation::list))
        .route("/reconciliations/{id}", get(reconciliation::show))
}

/// Whether a request path is the console's (the others are the API's, answered in JSON).
pub fn is_console_path(path: &str) -> bool {
    !(path.starts_with("/v1") || matches!(path, "/healthz" | "/readyz" | "/metrics"))
}

/// Escapes text for HTML (element content and quoted attributes).
pub fn h(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

pub fn lang_of(headers: &HeaderMap) -> Lang {
    match cookie(headers, LANG_COOKIE) {
        Some("en") => Lang::En,
        _ => Lang::Id,
    }
}

/// Whether the browser reached us over TLS (directly or through a proxy that says so).
fn over_tls(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

fn set_cookie(headers: &HeaderMap, name: &str, value: &str, max_age: Option<u64>) -> HeaderValue {
    let secure = if over_tls(headers) { "; Secure" } else { "" };
    let age = max_age
        .map(|s| format!("; Max-Age={s}"))
        .unwrap_or_default();
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Strict{secure}{age}"
    ))
    .expect("cookie values are hex")
}

/// Two strings compared in time that does not depend on where they differ.
fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// A signed-in person on a console page. Without a session, the page redirects to the sign-in
/// form; with a one-time password not yet changed, to the password form.
pub struct Console {
    pub session: Session,
    pub lang: Lang,
    cookie: String,
}

impl Console {
    pub fn person(&self) -> &people::Person {
        &self.session.person
    }

    /// Checks the CSRF token a form sent.
    pub fn check_csrf(&self, sent: Option<&str>) -> Result<(), Response> {
        match sent {
            Some(s) if same_token(s, &self.session.csrf) => Ok(()),
            _ => Err(self.error(StatusCode::FORBIDDEN, "forbidden", "csrf_refused")),
        }
    }

    /// The hidden CSRF field of a form.
    pub fn csrf_field(&self) -> String {
        format!(
            r#"<input type="hidden" name="csrf" value="{}">"#,
            h(&self.session.csrf)
        )
    }

    /// A page of the console: header with the person and navigation, then `body`.
    pub fn page(&self, title: &str, body: &str) -> Response {
        let p = self.person();
        let lang = self.lang;
        let role = t(lang, &format!("role_{}", p.role.as_str()));
        let nav = format!(
            r#"<nav aria-label="menu"><a href="/batches">{batches}</a>{upload}{reconciliations}<a href="/password">{pw}</a>
<form method="post" action="/sign-out" class="inline">{csrf}<button type="submit" class="link">{out}</button></form>
<a href="/lang" lang="{other}">{language}</a></nav>
<p class="who">{signed}: <strong>{name}</strong> ({role}, {office})</p>"#,
            batches = t(lang, "batches"),
            upload = if p.role == crate::ops::office::Role::Maker {
                format!(r#"<a href="/upload">{}</a>"#, t(lang, "upload"))
            } else {
                String::new()
            },
            reconciliations = if p.role == crate::ops::office::Role::Auditor {
                format!(
                    r#"<a href="/reconciliations">{}</a>"#,
                    t(lang, "reconciliations")
                )
            } else {
                String::new()
            },
            pw = t(lang, "change_password"),
            csrf = self.csrf_field(),
            out = t(lang, "sign_out"),
            other = lang.other().code(),
            language = t(lang, "language"),
            signed = t(lang, "signed_in_as"),
            name = h(&p.name),
            office = h(&p.office),
        );
        document(lang, title, &nav, body)
    }

    /// An error page (404, 403, 500) in the person's language.
    pub fn error(&self, status: StatusCode, title_key: &str, text_key: &str) -> Response {
        let body = format!(
            "<h1>{}</h1><p>{}</p><p><a href=\"/batches\">{}</a></p>",
            t(self.lang, title_key),
            t(self.lang, text_key),
            t(self.lang, "back")
        );
        (status, self.page(t(self.lang, title_key), &body)).into_response()
    }

    pub fn not_found(&self) -> Response {
        self.error(StatusCode::NOT_FOUND, "not_found", "not_found_text")
    }

    pub fn forbidden(&self) -> Response {
        self.error(StatusCode::FORBIDDEN, "forbidden", "forbidden_text")
    }

    /// A failure of ours: logged (without personal data), a plain page for the person.
    pub fn internal(&self, context: &str, e: &dyn std::fmt::Display) -> Response {
        tracing::error!(error = %e, "console: {context}");
        self.error(StatusCode::INTERNAL_SERVER_ERROR, "error", "error_text")
    }
}

/// A whole HTML document.
pub fn document(lang: Lang, title: &str, nav: &str, body: &str) -> Response {
    let html = format!(
        r##"<!doctype html>
<html lang="{code}">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} — Salur</title>
<link rel="stylesheet" href="/static/console.css">
<script src="/static/console.js" defer></script></head>
<body><a class="skip" href="#main">{skip}</a>
<header><span class="brand">Salur</span>{nav}</header>
<main id="main">{body}</main>
</body></html>"##,
        code = lang.code(),
        title = h(title),
        skip = t(lang, "skip"),
    );
    let mut r = Html(html).into_response();
    let hdr = r.headers_mut();
    hdr.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    hdr.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    hdr.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    hdr.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    r
}

impl FromRequestParts<AppState> for Console {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let lang = lang_of(&parts.headers);
        let to_sign_in = || Redirect::to("/sign-in").into_response();
        let Some(cookie) = cookie(&parts.headers, SESSION_COOKIE).map(str::to_owned) else {
            return Err(to_sign_in());
        };
        let session = match people::session(&state.pool, &cookie).await {
            Ok(Some(s)) => s,
            Ok(None) => return Err(to_sign_in()),
            Err(e) => {
                tracing::error!(error = %e, "console: reading the session failed");
                return Err((
                    StatusCode::SERVICE_UNAVAILABLE,
                    document(lang, t(lang, "error"), "", t(lang, "error_text")),
                )
                    .into_response());
            }
        };
        let path = parts.uri.path();
        if session.person.must_change && path != "/password" && path != "/sign-out" {
            return Err(Redirect::to("/password").into_response());
        }
        Ok(Console {
            session,
            lang,
            cookie,
        })
    }
}

async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        SCRIPT,
    )
        .into_response()
}

async fn style() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        STYLE,
    )
        .into_response()
}

#[derive(Deserialize)]
struct SignInQuery {
    refused: Option<String>,
}

fn sign_in_form(lang: Lang, token: &str, message: Option<&str>) -> String {
    let message = message
        .map(|m| format!(r#"<p class="error" role="alert">{}</p>"#, h(m)))
        .unwrap_or_default();
    format!(
        r#"<h1>{title}</h1>{message}
<form method="post" action="/sign-in" class="narrow">
<input type="hidden" name="csrf" value="{token}">
<p><label for="login">{login}</label><input id="login" name="login" autocomplete="username" required autofocus></p>
<p><label for="password">{password}</label><input id="password" name="password" type="password" autocomplete="current-password" required></p>
<p><button type="submit">{sign_in}</button></p></form>"#,
        title = t(lang, "app"),
        login = t(lang, "login"),
        password = t(lang, "password"),
        sign_in = t(lang, "sign_in"),
        token = h(token),
    )
}

fn lang_nav(lang: Lang) -> String {
    format!(
        r#"<nav><a href="/lang" lang="{}">{}</a></nav>"#,
        lang.other().code(),
        t(lang, "language")
    )
}

async fn sign_in_page(headers: HeaderMap, Query(q): Query<SignInQuery>) -> Response {
    let lang = lang_of(&headers);
    let token = people::random_hex(32);
    let message = q.refused.map(|_| t(lang, "signin_refused"));
    let mut r = document(
        lang,
        t(lang, "sign_in"),
        &lang_nav(lang),
        &sign_in_form(lang, &token, message),
    );
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&headers, SIGNIN_COOKIE, &token, Some(3600)),
    );
    r
}

#[derive(Deserialize)]
struct SignInForm {
    login: String,
    password: String,
    csrf: Option<String>,
}

async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<SignInForm>,
) -> Response {
    let lang = lang_of(&headers);
    let expected = cookie(&headers, SIGNIN_COOKIE).unwrap_or_default();
    if expected.is_empty() || !same_token(expected, form.csrf.as_deref().unwrap_or_default()) {
        let token = people::random_hex(32);
        let mut r = (
            StatusCode::FORBIDDEN,
            document(
                lang,
                t(lang, "sign_in"),
                &lang_nav(lang),
                &sign_in_form(lang, &token, Some(t(lang, "signin_expired"))),
            ),
        )
            .into_response();
        r.headers_mut().append(
            header::SET_COOKIE,
            set_cookie(&headers, SIGNIN_COOKIE, &token, Some(3600)),
        );
        return r;
    }
    match people::sign_in(&state.pool, &form.login, &form.password).await {
        Ok(people::SignIn::Ok {
            cookie,
            must_change,
        }) => {
            let to = if must_change { "/password" } else { "/batches" };
            let mut r = Redirect::to(to).into_response();
            r.headers_mut().append(
                header::SET_COOKIE,
                set_cookie(&headers, SESSION_COOKIE, &cookie, None),
            );
            r.headers_mut().append(
                header::SET_COOKIE,
                set_cookie(&headers, SIGNIN_COOKIE, "", Some(0)),
            );
            r
        }
        Ok(people::SignIn::Refused) => Redirect::to("/sign-in?refused=1").into_response(),
        Err(e) => {
            tracing::error!(error = %e, "console: sign-in failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                document(lang, t(lang, "error"), "", t(lang, "error_text")),
            )
                .into_response()
        }
    }
}

async fn sign_out(
    State(state): State<AppState>,
    headers: HeaderMap,
    console: Console,
    axum::Form(form): axum::Form<HashMap<String, String>>,
) -> Response {
    if let Err(r) = console.check_csrf(form.get("csrf").map(String::as_str)) {
        return r;
    }
    if let Err(e) = people::sign_out(&state.pool, &console.cookie).await {
        return console.internal("signing out failed", &e);
    }
    let mut r = Redirect::to("/sign-in").into_response();
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&headers, SESSION_COOKIE, "", Some(0)),
    );
    r
}

fn password_form(console: &Console, message: Option<(&str, bool)>) -> Response {
    let lang = console.lang;
    let note = if console.person().must_change {
        format!(r#"<p class="notice">{}</p>"#, t(lang, "must_change"))
    } else {
        String::new()
    };
    let message = message
        .map(|(m, ok)| {
            format!(
                r#"<p class="{}" role="alert">{}</p>"#,
                if ok { "ok" } else { "error" },
                h(m)
            )
        })
        .unwrap_or_default();
    let body = format!(
        r#"<h1>{title}</h1>{note}{message}
<form method="post" action="/password" class="narrow">{csrf}
<p><label for="current">{current}</label><input id="current" name="current" type="password" autocomplete="current-password" required></p>
<p><label for="new">{new}</label><input id="new" name="new" type="password" autocomplete="new-password" minlength="10" required></p>
<p><label for="repeat">{repeat}</label><input id="repeat" name="repeat" type="password" autocomplete="new-password" minlength="10" required></p>
<p><button type="submit">{save}</button></p></form>"#,
        title = t(lang, "change_password"),
        csrf = console.csrf_field(),
        current = t(lang, "current_password"),
        new = t(lang, "new_password"),
        repeat = t(lang, "repeat_password"),
        save = t(lang, "save"),
    );
    console.page(t(lang, "change_password"), &body)
}

async fn password_page(console: Console) -> Response {
    password_form(&console, None)
}

async fn password_change(
    State(state): State<AppState>,
    console: Console,
    axum::Form(form): axum::Form<HashMap<String, String>>,
) -> Response {
    if let Err(r) = console.check_csrf(form.get("csrf").map(String::as_str)) {
        return r;
    }
    let get = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
    match people::change_password(
        &state.pool,
        &console.person().login,
        &console.cookie,
        get("current"),
        get("new"),
        get("repeat"),
    )
    .await
    {
        Ok(Ok(())) => Redirect::to("/batches?password=changed").into_response(),
        Ok(Err(refused)) => {
            let key = match refused {
                people::ChangeRefused::WrongCurrent => "pw_wrong_current",
                people::ChangeRefused::TooShort => "pw_too_short",
                people::ChangeRefused::Mismatch => "pw_mismatch",
                people::ChangeRefused::Same => "pw_same",
            };
            let mut r = password_form(&console, Some((t(console.lang, key), false)));
            *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            r
        }
        Err(e) => console.internal("changing a password failed", &e),
    }
}

/// The console page a `Referer` names, if it is one of ours and a plain path (nothing a browser
/// could read as another site, such as `//host` or `/\\host`).
fn back_to(headers: &HeaderMap) -> Option<String> {
    let host = headers.get(header::HOST)?.to_str().ok()?;
    let referer = headers.get(header::REFERER)?.to_str().ok()?;
    let rest = &referer[referer.find("://")? + 3..];
    let (authority, path) = rest.split_at(rest.find('/')?);
    (authority == host
        && !path.starts_with("//")
        && is_console_path(path)
        && path
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/-_.?=&%".contains(c)))
    .then(|| path.to_owned())
}

async fn switch_lang(headers: HeaderMap) -> Response {
    let next = lang_of(&headers).other();
    let back = back_to(&headers).unwrap_or_else(|| "/batches".into());
    let mut r = Redirect::to(&back).into_response();
    let secure = if over_tls(&headers) { "; Secure" } else { "" };
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{LANG_COOKIE}={}; Path=/; SameSite=Strict; Max-Age=31536000{secure}",
        next.code()
    )) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

/// The 404 page of a path no route serves (the API keeps its problem+json for `/v1`).
pub fn not_found_page(headers: &HeaderMap) -> Response {
    let lang = lang_of(headers);
    (
        StatusCode::NOT_FOUND,
        document(
            lang,
            t(lang, "not_found"),
            &lang_nav(lang),
            &format!(
                "<h1>{}</h1><p>{}</p><p><a href=\"/batches\">{}</a></p>",
                t(lang, "not_found"),
                t(lang, "not_found_text"),
                t(lang, "back")
            ),
        ),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    #[test]
    fn text_is_escaped() {
        assert_eq!(
            super::h(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn the_language_switch_goes_back_only_to_our_own_pages() {
        use axum::http::{HeaderMap, HeaderValue, header};
        let back = |referer: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::HOST, HeaderValue::from_static("salur.example:8080"));
            h.insert(header::REFERER, HeaderValue::from_str(referer).unwrap());
            super::back_to(&h)
        };
        assert_eq!(
            back("http://salur.example:8080/batches/1?state=blocked").as_deref(),
            Some("/batches/1?state=blocked")
        );
        assert_eq!(back("http://evil.example/batches"), None);
        assert_eq!(back("http://salur.example:8080//evil.example/"), None);
        assert_eq!(back("http://salur.example:8080/\\evil.example/"), None);
        assert_eq!(back("http://salur.example:8080/v1/batches"), None);
    }

    #[test]
    fn the_session_cookie_is_http_only_strict_and_secure_over_tls() {
        use axum::http::{HeaderMap, HeaderValue};
        let plain = HeaderMap::new();
        let c = super::set_cookie(&plain, super::SESSION_COOKIE, "ab", None);
        assert_eq!(c, "salur_session=ab; Path=/; HttpOnly; SameSite=Strict");
        let mut tls = HeaderMap::new();
        tls.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        let c = super::set_cookie(&tls, super::SESSION_COOKIE, "ab", Some(0));
        assert_eq!(
            c,
            "salur_session=ab; Path=/; HttpOnly; SameSite=Strict; Secure; Max-Age=0"
        );
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(super::same_token("abc", "abc"));
        assert!(!super::same_token("abc", "abd"));
        assert!(!super::same_token("abc", "ab"));
        assert!(!super::same_token("", "a"));
    }
}
