//! Accounts through the real API: registration, sessions and refresh rotation, passwords and
//! resets by mail, brute-force limits, and the bad input an attacker sends.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

mod common;

use std::time::Duration;

use common::{ADMIN_EMAIL, ADMIN_PASSWORD, Backend, SmtpSink, Store, TestHub, code};
use serde_json::{Value, json};

const LOGIN: &str =
    "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken refreshToken user { id } } }";
const REFRESH: &str = "mutation($t: String!) { refreshSession(refreshToken: $t) { accessToken refreshToken } }";
const REGISTER: &str =
    "mutation($i: RegisterInput!) { register(input: $i) { accessToken user { email displayName roles { name } } } }";

fn field(res: &Value) -> &str {
    res["errors"][0]["extensions"]["field"].as_str().unwrap_or_else(|| panic!("no field in {res}"))
}

async fn count_users(hub: &TestHub) -> u64 {
    use sea_orm::{EntityTrait, PaginatorTrait};
    entity::user::Entity::find().count(hub.app.services.db.conn()).await.unwrap()
}

async fn registration_follows_its_mode(backend: Backend) {
    // Closed (the default): refused.
    let hub = TestHub::start(backend).await;
    let res = hub
        .gql(None, REGISTER, json!({ "i": { "email": "new@hub.test", "password": "tangerine submarine velvet" } }))
        .await;
    assert_eq!(code(&res), "FORBIDDEN", "{res}");
    let store = hub.stop().await;

    // Open: anyone, as a User, signed in at once.
    let hub = TestHub::start_with(store, &["--registration", "open"]).await;
    let info = hub.gql(None, "{ hubInfo { registrationOpen } }", json!({})).await;
    assert_eq!(info["data"]["hubInfo"]["registrationOpen"], true);
    let res = hub
        .gql(None, REGISTER, json!({ "i": { "email": " New@Hub.TEST ", "password": "tangerine submarine velvet", "displayName": "Newbie" } }))
        .await;
    let reg = &res["data"]["register"];
    assert_eq!(reg["user"]["email"], "new@hub.test", "{res}");
    assert_eq!(reg["user"]["roles"], json!([{ "name": "User" }]));
    let me = hub.gql(reg["accessToken"].as_str(), "{ me { displayName } }", json!({})).await;
    assert_eq!(me["data"]["me"]["displayName"], "Newbie");
    // The same address again, in another case: CONFLICT on email, nothing stored.
    let before = count_users(&hub).await;
    let res = hub
        .gql(None, REGISTER, json!({ "i": { "email": "NEW@hub.test", "password": "tangerine submarine velvet" } }))
        .await;
    assert_eq!((code(&res), field(&res)), ("CONFLICT", "email"), "{res}");
    assert_eq!(count_users(&hub).await, before);
    let store = hub.stop().await;

    // By invitation: only with a valid, unused invitation for that address.
    let hub = TestHub::start_with(store, &["--registration", "invite"]).await;
    let admin = hub.admin_token().await;
    let res = hub
        .gql(None, REGISTER, json!({ "i": { "email": "guest@hub.test", "password": "tangerine submarine velvet" } }))
        .await;
    assert_eq!((code(&res), field(&res)), ("BAD_USER_INPUT", "invitation"));
    let inv =
        hub.gql(Some(&admin), "mutation { createInvitation(email: \"guest@hub.test\") { token } }", json!({})).await;
    let token = inv["data"]["createInvitation"]["token"].as_str().unwrap_or_else(|| panic!("{inv}")).to_owned();
    let other =
        json!({ "i": { "email": "other@hub.test", "password": "tangerine submarine velvet", "invitation": token } });
    assert_eq!(field(&hub.gql(None, REGISTER, other).await), "invitation", "bound to its address");
    let ok =
        json!({ "i": { "email": "guest@hub.test", "password": "tangerine submarine velvet", "invitation": token } });
    let res = hub.gql(None, REGISTER, ok.clone()).await;
    assert_eq!(res["data"]["register"]["user"]["email"], "guest@hub.test", "{res}");
    let again =
        json!({ "i": { "email": "guest2@hub.test", "password": "tangerine submarine velvet", "invitation": token } });
    assert_eq!(field(&hub.gql(None, REGISTER, again).await), "invitation", "single use");

    // Listed without their tokens (the hub keeps hashes), the used one with its account; an
    // unused one revoked stops working; a used one cannot be revoked.
    let spare = hub.gql(Some(&admin), "mutation { createInvitation { id token } }", json!({})).await;
    let (spare_id, spare_token) = (
        spare["data"]["createInvitation"]["id"].as_str().unwrap().to_owned(),
        spare["data"]["createInvitation"]["token"].as_str().unwrap().to_owned(),
    );
    let list =
        hub.gql(Some(&admin), "{ invitations { id token email roleName usedAt usedBy { email } } }", json!({})).await;
    let list = list["data"]["invitations"].as_array().unwrap_or_else(|| panic!("{list}")).clone();
    assert_eq!(list.len(), 2, "{list:?}");
    assert!(list.iter().all(|i| i["token"].is_null()), "{list:?}");
    let used = list.iter().find(|i| i["email"] == "guest@hub.test").unwrap();
    assert_eq!(used["usedBy"]["email"], "guest@hub.test");
    let revoke = "mutation($id: ID!) { revokeInvitation(id: $id) }";
    assert_eq!(code(&hub.gql(Some(&admin), revoke, json!({ "id": used["id"] })).await), "CONFLICT");
    let res = hub.gql(Some(&admin), revoke, json!({ "id": spare_id })).await;
    assert_eq!(res["data"]["revokeInvitation"], true, "{res}");
    let late = json!({ "i": { "email": "late@hub.test", "password": "tangerine submarine velvet", "invitation": spare_token } });
    assert_eq!(field(&hub.gql(None, REGISTER, late).await), "invitation", "a revoked invitation");
    assert_eq!(code(&hub.gql(Some(&admin), revoke, json!({ "id": spare_id })).await), "NOT_FOUND");
    let moderator = hub.user_with_roles("mod@hub.test", &["Moderator"]).await;
    assert_eq!(code(&hub.gql(Some(&moderator), "{ invitations { id } }", json!({})).await), "FORBIDDEN");
    hub.stop().await;
}

async fn weak_passwords_are_refused_with_the_reason(backend: Backend) {
    let hub = TestHub::start_with(Store::new(backend).await, &["--registration", "open"]).await;
    let before = count_users(&hub).await;
    for (password, why) in [
        ("short", "at least 8"),
        ("password1", "most common"),
        ("qwertyasdf12", "too easy"),
        ("aaaaaaaaaaaaaaaa", "too easy"),
    ] {
        let res = hub.gql(None, REGISTER, json!({ "i": { "email": "w@hub.test", "password": password } })).await;
        assert_eq!((code(&res), field(&res)), ("BAD_USER_INPUT", "password"), "{password}: {res}");
        assert!(res["errors"][0]["message"].as_str().unwrap().contains(why), "{password}: {res}");
    }
    // 128 characters are allowed; 10,000 are not.
    let long = "correct horse battery staple ".repeat(5);
    let res = hub.gql(None, REGISTER, json!({ "i": { "email": "long@hub.test", "password": &long[..128] } })).await;
    assert!(res["errors"].is_null(), "{res}");
    let res =
        hub.gql(None, REGISTER, json!({ "i": { "email": "huge@hub.test", "password": "x".repeat(10_000) } })).await;
    assert_eq!(field(&res), "password");
    assert_eq!(count_users(&hub).await, before + 1);
    hub.stop().await;
}

async fn bad_input_is_refused_and_nothing_is_stored(backend: Backend) {
    let hub = TestHub::start_with(Store::new(backend).await, &["--registration", "open"]).await;
    let admin = hub.admin_token().await;
    let before = count_users(&hub).await;
    let good = "tangerine submarine velvet";
    for (email, display, want_field) in [
        (format!("{}@hub.test", "a".repeat(250)), "ok", "email"),
        ("not-an-email".into(), "ok", "email"),
        ("ctrl\u{7}@hub.test".into(), "ok", "email"),
        ("zero\u{200B}width@hub.test".into(), "ok", "email"),
        ("x@hub.test".into(), "bell\u{7}name", "displayName"),
        ("x@hub.test".into(), &*"n".repeat(65), "displayName"),
    ] {
        let res =
            hub.gql(None, REGISTER, json!({ "i": { "email": email, "password": good, "displayName": display } })).await;
        assert_eq!((code(&res), field(&res)), ("BAD_USER_INPUT", want_field), "{email:?} {display:?}: {res}");
        let res = hub
            .gql(
                Some(&admin),
                "mutation($e: String!, $p: String!, $d: String) { createUser(email: $e, password: $p, displayName: $d) { id } }",
                json!({ "e": email, "p": good, "d": display }),
            )
            .await;
        assert_eq!((code(&res), field(&res)), ("BAD_USER_INPUT", want_field), "createUser {email:?}: {res}");
    }
    assert_eq!(count_users(&hub).await, before, "nothing was stored");

    // SQL and HTML are just text: stored as given, never run or rendered.
    let name = "Robert'); DROP TABLE users;-- <script>alert(1)</script>";
    let res = hub
        .gql(None, REGISTER, json!({ "i": { "email": "bobby@hub.test", "password": good, "displayName": name } }))
        .await;
    assert_eq!(res["data"]["register"]["user"]["displayName"], name, "{res}");
    let res = hub.gql(Some(&admin), "{ users(search: \"'; DROP TABLE users;--\") { id } }", json!({})).await;
    assert_eq!(res["data"]["users"], json!([]), "{res}");
    assert_eq!(count_users(&hub).await, before + 1);
    // Unicode addresses are fine.
    let res = hub.gql(None, REGISTER, json!({ "i": { "email": "jürgen@bücher.de", "password": good } })).await;
    assert_eq!(res["data"]["register"]["user"]["email"], "jürgen@bücher.de", "{res}");
    hub.stop().await;
}

async fn refresh_rotates_and_a_replayed_token_revokes_the_session(backend: Backend) {
    // No grace: the replay below comes at once.
    let hub = TestHub::start_with(Store::new(backend).await, &["--refresh-reuse-grace", "0"]).await;
    let login = hub.gql(None, LOGIN, json!({ "e": ADMIN_EMAIL, "p": ADMIN_PASSWORD })).await;
    let first = login["data"]["login"]["refreshToken"].as_str().unwrap().to_owned();
    let r1 = hub.gql(None, REFRESH, json!({ "t": first })).await;
    let second = r1["data"]["refreshSession"]["refreshToken"].as_str().unwrap_or_else(|| panic!("{r1}")).to_owned();
    let access = r1["data"]["refreshSession"]["accessToken"].as_str().unwrap().to_owned();
    assert_ne!(first, second);
    assert!(hub.gql(Some(&access), "{ me { id } }", json!({})).await["errors"].is_null());

    // The first token again: theft. The whole session ends, the new tokens with it.
    let replay = hub.gql(None, REFRESH, json!({ "t": first })).await;
    assert_eq!(code(&replay), "UNAUTHENTICATED");
    let after = hub.gql(None, REFRESH, json!({ "t": second })).await;
    assert_eq!(code(&after), "UNAUTHENTICATED", "the family is revoked");
    assert_eq!(code(&hub.gql(Some(&access), "{ me { id } }", json!({})).await), "UNAUTHENTICATED");
    let admin = hub.admin_token().await;
    let log = hub
        .gql(
            Some(&admin),
            "{ auditLog(filter: { action: \"auth.refresh_reuse\" }) { outcome actor { email } ip } }",
            json!({}),
        )
        .await;
    assert_eq!(
        log["data"]["auditLog"],
        json!([{ "outcome": "denied", "actor": { "email": ADMIN_EMAIL }, "ip": "127.0.0.1" }])
    );
    // Garbage is simply refused.
    assert_eq!(code(&hub.gql(None, REFRESH, json!({ "t": "nonsense" })).await), "UNAUTHENTICATED");
    hub.stop().await;
}

/// A refresh whose answer was lost (a browser reloaded mid-request keeps the old cookie) is
/// retried with the replaced token: within the grace it is answered, and the lost token is the
/// one retired; the retry of a retry counts from the first rotation; past the grace, or with an
/// older token, it is theft as before.
async fn a_lost_refresh_answer_can_be_retried_within_the_grace(backend: Backend) {
    let hub = TestHub::start_with(Store::new(backend).await, &["--refresh-reuse-grace", "3"]).await;
    let login = hub.gql(None, LOGIN, json!({ "e": ADMIN_EMAIL, "p": ADMIN_PASSWORD })).await;
    let t0 = login["data"]["login"]["refreshToken"].as_str().unwrap().to_owned();
    let token = |res: &Value| {
        res["data"]["refreshSession"]["refreshToken"].as_str().unwrap_or_else(|| panic!("{res}")).to_owned()
    };
    let lost = token(&hub.gql(None, REFRESH, json!({ "t": t0 })).await);
    // The client never saw `lost`: it retries with t0, twice.
    let t2 = token(&hub.gql(None, REFRESH, json!({ "t": t0 })).await);
    let t3 = token(&hub.gql(None, REFRESH, json!({ "t": t0 })).await);
    assert!(lost != t2 && t2 != t3);
    // The tokens the retries replaced are retired: presenting one is theft.
    assert_eq!(code(&hub.gql(None, REFRESH, json!({ "t": lost })).await), "UNAUTHENTICATED");
    assert_eq!(code(&hub.gql(None, REFRESH, json!({ "t": t3 })).await), "UNAUTHENTICATED", "the family is revoked");

    // Past the grace, the replaced token is theft again.
    let login = hub.gql(None, LOGIN, json!({ "e": ADMIN_EMAIL, "p": ADMIN_PASSWORD })).await;
    let u0 = login["data"]["login"]["refreshToken"].as_str().unwrap().to_owned();
    let u1 = token(&hub.gql(None, REFRESH, json!({ "t": u0 })).await);
    tokio::time::sleep(Duration::from_millis(3_200)).await;
    assert_eq!(code(&hub.gql(None, REFRESH, json!({ "t": u0 })).await), "UNAUTHENTICATED");
    assert_eq!(code(&hub.gql(None, REFRESH, json!({ "t": u1 })).await), "UNAUTHENTICATED", "revoked");
    let admin = hub.admin_token().await;
    let log =
        hub.gql(Some(&admin), "{ auditLog(filter: { action: \"auth.refresh_reuse\" }) { outcome } }", json!({})).await;
    assert_eq!(log["data"]["auditLog"].as_array().map(Vec::len), Some(2), "{log}");
    hub.stop().await;
}

async fn idle_and_expired_sessions_cannot_refresh(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let a = hub.gql(None, LOGIN, json!({ "e": ADMIN_EMAIL, "p": ADMIN_PASSWORD })).await;
    let b = hub.gql(None, LOGIN, json!({ "e": ADMIN_EMAIL, "p": ADMIN_PASSWORD })).await;
    let c = hub.gql(None, LOGIN, json!({ "e": ADMIN_EMAIL, "p": ADMIN_PASSWORD })).await;
    // Age session a past the idle timeout (7 days) and end session b's absolute lifetime.
    let long_ago = "2001-01-01 00:00:00+00:00";
    common::sql(
        &hub,
        &format!("UPDATE sessions SET last_used_at = '{long_ago}' WHERE id = (SELECT MIN(id) FROM sessions)"),
    )
    .await;
    common::sql(
        &hub,
        &format!("UPDATE sessions SET expires_at = '{long_ago}' WHERE id = (SELECT MIN(id) + 1 FROM sessions)"),
    )
    .await;
    for (res, alive) in [(a, false), (b, false), (c, true)] {
        let t = res["data"]["login"]["refreshToken"].as_str().unwrap();
        let r = hub.gql(None, REFRESH, json!({ "t": t })).await;
        assert_eq!(r["errors"].is_null(), alive, "{r}");
    }
    hub.stop().await;
}

async fn logout_and_logout_all_end_sessions_at_once(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let one = hub.gql(None, LOGIN, json!({ "e": ADMIN_EMAIL, "p": ADMIN_PASSWORD })).await["data"]["login"].clone();
    let two = hub.gql(None, LOGIN, json!({ "e": ADMIN_EMAIL, "p": ADMIN_PASSWORD })).await["data"]["login"].clone();
    let (a1, r1) = (one["accessToken"].as_str().unwrap(), one["refreshToken"].as_str().unwrap());
    let a2 = two["accessToken"].as_str().unwrap();
    let out = hub.gql(Some(a1), "mutation($t: String!) { logout(refreshToken: $t) }", json!({ "t": r1 })).await;
    assert_eq!(out["data"]["logout"], true, "{out}");
    assert_eq!(
        code(&hub.gql(Some(a1), "{ me { id } }", json!({})).await),
        "UNAUTHENTICATED",
        "a still-valid JWT of an ended session"
    );
    assert!(hub.gql(Some(a2), "{ me { id } }", json!({})).await["errors"].is_null(), "the other session lives");
    assert_eq!(code(&hub.gql(None, REFRESH, json!({ "t": r1 })).await), "UNAUTHENTICATED");
    // Someone else's refresh token cannot be logged out by another user.
    let user = hub.user_with_roles("u@hub.test", &["User"]).await;
    let r2 = two["refreshToken"].as_str().unwrap();
    let res = hub.gql(Some(&user), "mutation($t: String!) { logout(refreshToken: $t) }", json!({ "t": r2 })).await;
    assert_eq!(res["data"]["logout"], false);
    assert!(hub.gql(Some(a2), "{ me { id } }", json!({})).await["errors"].is_null());
    let res = hub.gql(Some(a2), "mutation { logoutAll }", json!({})).await;
    assert_eq!(res["data"]["logoutAll"], true);
    assert_eq!(code(&hub.gql(Some(a2), "{ me { id } }", json!({})).await), "UNAUTHENTICATED");
    let log = hub.gql(Some(&hub.admin_token().await), "{ auditLog(first: 20) { action } }", json!({})).await;
    let actions: Vec<&str> =
        log["data"]["auditLog"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert!(actions.contains(&"auth.logout") && actions.contains(&"auth.logout_all"), "{actions:?}");
    hub.stop().await;
}

const SESSIONS: &str = "{ me { id sessions { id current ip userAgent lastUsedAt } } }";

async fn sessions_are_listed_and_ended_one_at_a_time(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let one = hub.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let two = hub.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let mine = hub.gql(Some(&one), SESSIONS, json!({})).await;
    let list = mine["data"]["me"]["sessions"].as_array().unwrap_or_else(|| panic!("{mine}")).clone();
    assert_eq!(list.len(), 2, "{mine}");
    assert_eq!(list.iter().filter(|s| s["current"] == true).count(), 1, "{mine}");
    let current = list.iter().find(|s| s["current"] == true).unwrap()["id"].clone();
    let other = list.iter().find(|s| s["current"] == false).unwrap()["id"].clone();
    assert_eq!(list[0]["ip"], "127.0.0.1", "{mine}");
    // Another user neither sees nor ends them.
    let user = hub.user_with_roles("u@hub.test", &["User"]).await;
    let admin_id = mine["data"]["me"]["id"].clone();
    let peek =
        hub.gql(Some(&user), "query($id: ID!) { user(id: $id) { sessions { id } } }", json!({ "id": admin_id })).await;
    assert_eq!(code(&peek), "FORBIDDEN", "{peek}");
    let end = "mutation($id: ID!) { endSession(id: $id) }";
    assert_eq!(code(&hub.gql(Some(&user), end, json!({ "id": other })).await), "NOT_FOUND");
    assert!(hub.gql(Some(&two), "{ me { id } }", json!({})).await["errors"].is_null());
    // Its owner ends one: that one stops at once, this one lives.
    let res = hub.gql(Some(&one), end, json!({ "id": other })).await;
    assert_eq!(res["data"]["endSession"], true, "{res}");
    assert_eq!(code(&hub.gql(Some(&two), "{ me { id } }", json!({})).await), "UNAUTHENTICATED");
    let mine = hub.gql(Some(&one), SESSIONS, json!({})).await;
    assert_eq!(mine["data"]["me"]["sessions"].as_array().unwrap().len(), 1, "{mine}");
    assert_eq!(code(&hub.gql(Some(&one), end, json!({ "id": other })).await), "NOT_FOUND", "ended already");
    // An admin ends every session of another account; a moderator may not.
    let moderator = hub.user_with_roles("mod@hub.test", &["Moderator"]).await;
    let user_id = hub.gql(Some(&user), "{ me { id } }", json!({})).await["data"]["me"]["id"].clone();
    let end_all = "mutation($id: ID!) { endUserSessions(userId: $id) }";
    assert_eq!(code(&hub.gql(Some(&moderator), end_all, json!({ "id": user_id })).await), "FORBIDDEN");
    let res = hub.gql(Some(&one), end_all, json!({ "id": user_id })).await;
    assert_eq!(res["data"]["endUserSessions"], 1, "{res}");
    assert_eq!(code(&hub.gql(Some(&user), "{ me { id } }", json!({})).await), "UNAUTHENTICATED");
    assert!(hub.gql(Some(&one), "{ me { id } }", json!({})).await["errors"].is_null(), "{current}");
    let log = hub.gql(Some(&one), "{ auditLog(first: 5) { action } }", json!({})).await;
    let actions: Vec<&str> =
        log["data"]["auditLog"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert!(actions.contains(&"auth.session_end") && actions.contains(&"auth.logout_all"), "{actions:?}");
    // A user manager without the admin's keys neither sees nor ends the admin's sessions.
    let role = hub
        .gql(
            Some(&one),
            "mutation { createRole(name: \"Managers\", permissions: [\"user.read\", \"user.manage\"]) { id } }",
            json!({}),
        )
        .await;
    assert!(role["errors"].is_null(), "{role}");
    let manager = hub.user_with_roles("manager@hub.test", &["Managers"]).await;
    let peek = hub
        .gql(Some(&manager), "query($id: ID!) { user(id: $id) { sessions { id } } }", json!({ "id": admin_id }))
        .await;
    assert_eq!(code(&peek), "FORBIDDEN", "{peek}");
    assert_eq!(code(&hub.gql(Some(&manager), end_all, json!({ "id": admin_id })).await), "FORBIDDEN");
    assert_eq!(code(&hub.gql(Some(&manager), end, json!({ "id": current })).await), "FORBIDDEN");
    assert!(hub.gql(Some(&one), "{ me { id } }", json!({})).await["errors"].is_null(), "the admin is still signed in");
    hub.stop().await;
}

async fn the_password_policy_answers_before_a_change(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let token = hub.admin_token().await;
    let ask = "query($p: String!) { passwordProblem(password: $p) }";
    for weak in ["password1", "short", "admin@hub.test"] {
        let res = hub.gql(Some(&token), ask, json!({ "p": weak })).await;
        assert!(res["data"]["passwordProblem"].as_str().is_some_and(|m| !m.is_empty()), "{weak}: {res}");
    }
    let res = hub.gql(Some(&token), ask, json!({ "p": "tangerine submarine velvet" })).await;
    assert!(res["data"]["passwordProblem"].is_null(), "{res}");
    assert_eq!(code(&hub.gql(None, ask, json!({ "p": "x" })).await), "UNAUTHENTICATED");
    hub.stop().await;
}

async fn password_reset_by_mail_is_single_use_and_ends_sessions(backend: Backend) {
    let sink = SmtpSink::start().await;
    let url = sink.url();
    let hub =
        TestHub::start_with(Store::new(backend).await, &["--smtp-url", &url, "--public-url", "https://hub.example"])
            .await;
    let old = hub.admin_token().await;
    let ask = "mutation($e: String!) { requestPasswordReset(email: $e) }";
    // Known and unknown addresses get the same answer.
    let known = hub.gql(None, ask, json!({ "e": ADMIN_EMAIL })).await;
    let unknown = hub.gql(None, ask, json!({ "e": "nobody@hub.test" })).await;
    assert_eq!(known, unknown);
    assert_eq!(known["data"]["requestPasswordReset"], true);
    let mail = sink.message(0).await;
    assert!(mail.contains(&format!("To: {ADMIN_EMAIL}")), "{mail}");
    let token = mail.lines().find_map(|l| l.strip_prefix("Or use this token: ")).unwrap().trim().to_owned();
    assert!(mail.contains(&format!("https://hub.example/reset-password?token={token}")));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(sink.messages.lock().unwrap().len(), 1, "no mail for the unknown address");

    let reset = "mutation($t: String!, $p: String!) { resetPassword(token: $t, newPassword: $p) }";
    let weak = hub.gql(None, reset, json!({ "t": token, "p": "password1" })).await;
    assert_eq!(field(&weak), "newPassword");
    let ok = hub.gql(None, reset, json!({ "t": token, "p": "a fresh reset passphrase" })).await;
    assert_eq!(ok["data"]["resetPassword"], true, "{ok}");
    assert_eq!(code(&hub.gql(Some(&old), "{ me { id } }", json!({})).await), "UNAUTHENTICATED", "sessions ended");
    let again = hub.gql(None, reset, json!({ "t": token, "p": "another fresh passphrase" })).await;
    assert_eq!((code(&again), field(&again)), ("BAD_USER_INPUT", "token"), "single use");
    hub.login(ADMIN_EMAIL, "a fresh reset passphrase").await;

    // An expired token does not work.
    hub.gql(None, ask, json!({ "e": ADMIN_EMAIL })).await;
    let mail = sink.message(1).await;
    let token = mail.lines().find_map(|l| l.strip_prefix("Or use this token: ")).unwrap().trim().to_owned();
    common::sql(&hub, "UPDATE password_resets SET expires_at = '2001-01-01 00:00:00+00:00'").await;
    let late = hub.gql(None, reset, json!({ "t": token, "p": "another fresh passphrase" })).await;
    assert_eq!(field(&late), "token");
    hub.stop().await;
}

async fn change_password_needs_the_current_one(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let token = hub.admin_token().await;
    let change = "mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) }";
    let wrong = hub.gql(Some(&token), change, json!({ "c": "not it", "n": "a changed passphrase" })).await;
    assert_eq!(field(&wrong), "currentPassword");
    let res = hub.gql(Some(&token), change, json!({ "c": ADMIN_PASSWORD, "n": "a changed passphrase" })).await;
    assert_eq!(res["data"]["changePassword"], true, "{res}");
    assert_eq!(code(&hub.gql(Some(&token), "{ me { id } }", json!({})).await), "UNAUTHENTICATED");
    hub.login(ADMIN_EMAIL, "a changed passphrase").await;
    hub.stop().await;
}

async fn twenty_aliased_logins_hit_the_limit(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let aliases: String = (0..20)
        .map(|i| format!("a{i}: login(email: \"{ADMIN_EMAIL}\", password: \"guess number {i}\") {{ accessToken }} "))
        .collect();
    let res = hub.gql(None, &format!("mutation {{ {aliases} }}"), json!({})).await;
    let errors = res["errors"].as_array().unwrap();
    let codes: Vec<&str> = errors.iter().map(|e| e["extensions"]["code"].as_str().unwrap()).collect();
    assert_eq!(codes.len(), 20);
    assert_eq!(codes.iter().filter(|c| **c == "UNAUTHENTICATED").count(), 10, "the first 10 are checked: {codes:?}");
    assert_eq!(codes.iter().filter(|c| **c == "RATE_LIMITED").count(), 10, "{codes:?}");
    let limited = errors.iter().find(|e| e["extensions"]["code"] == "RATE_LIMITED").unwrap();
    assert!(limited["extensions"]["retryAfter"].as_u64().unwrap() >= 1);
    // The right password is limited too now: the account is locked for a while, not guessable.
    let res = hub.gql(None, LOGIN, json!({ "e": ADMIN_EMAIL, "p": ADMIN_PASSWORD })).await;
    assert_eq!(code(&res), "RATE_LIMITED");
    hub.stop().await;
}

async fn a_disabled_users_token_stops_at_once(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let admin = hub.admin_token().await;
    let user = hub.user_with_roles("soon-gone@hub.test", &["Moderator"]).await;
    let me = hub.gql(Some(&user), "{ me { id } }", json!({})).await;
    let id = me["data"]["me"]["id"].as_str().unwrap().to_owned();
    let res = hub
        .gql(
            Some(&admin),
            "mutation($id: ID!) { updateUser(id: $id, disabled: true) { disabled } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(res["data"]["updateUser"]["disabled"], true, "{res}");
    assert_eq!(code(&hub.gql(Some(&user), "{ me { id } }", json!({})).await), "UNAUTHENTICATED");
    let res = hub.gql(None, LOGIN, json!({ "e": "soon-gone@hub.test", "p": "another long passphrase" })).await;
    assert_eq!(code(&res), "UNAUTHENTICATED");
    // Deleting keeps the audit entries; the actor shows as a deleted user.
    let res = hub.gql(Some(&admin), "mutation($id: ID!) { deleteUser(id: $id) }", json!({ "id": id })).await;
    assert_eq!(res["data"]["deleteUser"], true, "{res}");
    let log = hub
        .gql(
            Some(&admin),
            "query($id: ID!) { auditLog(filter: { actorId: $id }) { action actor { id } actorEmail } }",
            json!({ "id": id }),
        )
        .await;
    let entries = log["data"]["auditLog"].as_array().unwrap();
    assert!(!entries.is_empty(), "{log}");
    assert!(entries.iter().all(|e| e["actor"].is_null() && e["actorEmail"] == "soon-gone@hub.test"), "{log}");
    hub.stop().await;
}

async fn a_batch_counts_each_item(backend: Backend) {
    let hub = TestHub::start_with(Store::new(backend).await, &["--rate-limit-account", "3"]).await;
    let batch: Vec<Value> = (0..5)
        .map(|i| json!({ "query": LOGIN, "variables": { "e": ADMIN_EMAIL, "p": format!("guess {i}") } }))
        .collect();
    let res: Vec<Value> = hub.http.post(hub.url("/graphql")).json(&batch).send().await.unwrap().json().await.unwrap();
    let codes: Vec<&str> = res.iter().map(code).collect();
    assert_eq!(codes.iter().filter(|c| **c == "UNAUTHENTICATED").count(), 3, "{codes:?}");
    assert_eq!(codes.iter().filter(|c| **c == "RATE_LIMITED").count(), 2, "{codes:?}");
    // Password reset requests count against the same account.
    let res =
        hub.gql(None, "mutation($e: String!) { requestPasswordReset(email: $e) }", json!({ "e": ADMIN_EMAIL })).await;
    assert_eq!(code(&res), "RATE_LIMITED");
    hub.stop().await;
}

async fn users_can_be_searched_and_paged(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let admin = hub.admin_token().await;
    for name in ["carol", "dave", "caroline"] {
        hub.user_with_roles(&format!("{name}@hub.test"), &["User"]).await;
    }
    let q = "query($s: String, $f: Int, $a: String) { users(search: $s, first: $f, after: $a) { id email } }";
    let found = hub.gql(Some(&admin), q, json!({ "s": "CAROL" })).await;
    let emails: Vec<&str> =
        found["data"]["users"].as_array().unwrap().iter().map(|u| u["email"].as_str().unwrap()).collect();
    assert_eq!(emails, ["carol@hub.test", "caroline@hub.test"]);
    let page1 = hub.gql(Some(&admin), q, json!({ "f": 2 })).await["data"]["users"].as_array().unwrap().clone();
    let after = page1[1]["id"].as_str().unwrap();
    let page2 =
        hub.gql(Some(&admin), q, json!({ "f": 2, "a": after })).await["data"]["users"].as_array().unwrap().clone();
    assert_eq!(page1.len() + page2.len(), 4, "admin + 3 users");
    assert!(page2.iter().all(|u| !page1.contains(u)));
    let res = hub.gql(Some(&admin), q, json!({ "f": 0 })).await;
    assert_eq!((code(&res), field(&res)), ("BAD_USER_INPUT", "first"));
    // LIKE's wildcards are plain characters in a search.
    for wildcard in ["%", "_", "c%l", "car_l", "\\"] {
        let res = hub.gql(Some(&admin), q, json!({ "s": wildcard })).await;
        assert_eq!(res["data"]["users"], json!([]), "{wildcard}: {res}");
    }
    hub.user_with_roles("under_score@hub.test", &["User"]).await;
    let res = hub.gql(Some(&admin), q, json!({ "s": "r_s" })).await;
    assert_eq!(res["data"]["users"][0]["email"], "under_score@hub.test", "{res}");
    assert_eq!(res["data"]["users"].as_array().unwrap().len(), 1);
    hub.stop().await;
}

/// The peak resident memory of this test process (the hub runs in it), in KiB.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status.lines().find(|l| l.starts_with("VmHWM:")).unwrap().split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// 200 wrong sign-ins at once from 200 addresses: password hashing runs a few at a time, the
/// rest wait in a short queue or are told RATE_LIMITED at once, and memory stays bounded.
async fn a_flood_of_sign_ins_costs_bounded_memory(backend: Backend) {
    let hub = TestHub::start(backend).await;
    hub.admin_token().await;
    // The clients (in this process too) are made before the measure starts.
    let clients: Vec<reqwest::Client> = (0..200u32)
        .map(|n| {
            reqwest::Client::builder()
                .local_address(std::net::IpAddr::from([127, 0, (n / 250 + 1) as u8, (n % 250 + 1) as u8]))
                .timeout(std::time::Duration::from_secs(120))
                .build()
                .unwrap()
        })
        .collect();
    let before = peak_rss_kib();
    let mut attempts = Vec::new();
    for (n, client) in clients.into_iter().enumerate() {
        let url = hub.url("/graphql");
        attempts.push(tokio::spawn(async move {
            let body =
                json!({ "query": LOGIN, "variables": { "e": format!("nobody{n}@hub.test"), "p": "a wrong guess" } });
            let res: Value = client.post(url).json(&body).send().await.unwrap().json().await.unwrap();
            res["errors"][0]["extensions"]["code"].as_str().unwrap().to_owned()
        }));
    }
    let mut codes = Vec::new();
    for a in attempts {
        codes.push(a.await.unwrap());
    }
    let grown = peak_rss_kib().saturating_sub(before);
    let limited = codes.iter().filter(|c| *c == "RATE_LIMITED").count();
    let checked = codes.iter().filter(|c| *c == "UNAUTHENTICATED").count();
    eprintln!("200 sign-ins at once: {checked} checked, {limited} refused at once; peak memory grew by {grown} KiB");
    assert_eq!(checked + limited, 200, "{codes:?}");
    assert!(limited > 0, "the queue is short: some are refused at once");
    assert!(grown < 128 * 1024, "the hub's peak memory grew by {grown} KiB");
    // The hub still signs people in.
    hub.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    hub.stop().await;
}

/// Successful sign-ins never count, and failures from one address never lock the account's
/// owner out of another address (sign-in and password reset alike).
async fn nobody_can_lock_another_person_out(backend: Backend) {
    let hub = TestHub::start(backend).await;
    for n in 0..15 {
        let res = hub.gql(None, LOGIN, json!({ "e": ADMIN_EMAIL, "p": ADMIN_PASSWORD })).await;
        assert!(res["errors"].is_null(), "correct sign-in #{n}: {res}");
    }
    let attacker = reqwest::Client::builder().local_address(std::net::IpAddr::from([127, 0, 0, 66])).build().unwrap();
    let mut codes = Vec::new();
    for n in 0..40 {
        let body = json!({ "query": LOGIN, "variables": { "e": ADMIN_EMAIL, "p": format!("guess {n}") } });
        let res: Value = attacker.post(hub.url("/graphql")).json(&body).send().await.unwrap().json().await.unwrap();
        codes.push(code(&res).to_owned());
    }
    assert_eq!(codes.iter().filter(|c| *c == "UNAUTHENTICATED").count(), 10, "{codes:?}");
    assert!(codes[10..].iter().all(|c| c == "RATE_LIMITED"), "{codes:?}");
    // The owner, from their own address, signs in and may ask for a reset.
    let res = hub.gql(None, LOGIN, json!({ "e": ADMIN_EMAIL, "p": ADMIN_PASSWORD })).await;
    assert!(res["errors"].is_null(), "the owner is not locked out: {res}");
    let res =
        hub.gql(None, "mutation($e: String!) { requestPasswordReset(email: $e) }", json!({ "e": ADMIN_EMAIL })).await;
    assert_eq!(res["data"]["requestPasswordReset"], true, "{res}");
    // The attacker's address stays refused, even with the right password.
    let body = json!({ "query": LOGIN, "variables": { "e": ADMIN_EMAIL, "p": ADMIN_PASSWORD } });
    let res: Value = attacker.post(hub.url("/graphql")).json(&body).send().await.unwrap().json().await.unwrap();
    assert_eq!(code(&res), "RATE_LIMITED");
    hub.stop().await;
}

on_both!(
    nobody_can_lock_another_person_out,
    a_flood_of_sign_ins_costs_bounded_memory,
    a_batch_counts_each_item,
    users_can_be_searched_and_paged,
    registration_follows_its_mode,
    weak_passwords_are_refused_with_the_reason,
    bad_input_is_refused_and_nothing_is_stored,
    refresh_rotates_and_a_replayed_token_revokes_the_session,
    a_lost_refresh_answer_can_be_retried_within_the_grace,
    idle_and_expired_sessions_cannot_refresh,
    logout_and_logout_all_end_sessions_at_once,
    sessions_are_listed_and_ended_one_at_a_time,
    the_password_policy_answers_before_a_change,
    password_reset_by_mail_is_single_use_and_ends_sessions,
    change_password_needs_the_current_one,
    twenty_aliased_logins_hit_the_limit,
    a_disabled_users_token_stops_at_once,
);
