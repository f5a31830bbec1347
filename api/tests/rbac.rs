//! Roles, permissions and per-server grants through the real API: no escalation, the last
//! holder of a key stays, IDOR between users' servers, and live subscriptions that end.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Backend, TestHub, code};
use serde_json::{Value, json};

async fn role_id(hub: &TestHub, token: &str, name: &str) -> String {
    let res = hub.gql(Some(token), "{ roles { id name } }", json!({})).await;
    res["data"]["roles"].as_array().unwrap().iter().find(|r| r["name"] == name).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn my_id(hub: &TestHub, token: &str) -> String {
    hub.gql(Some(token), "{ me { id } }", json!({})).await["data"]["me"]["id"].as_str().unwrap().to_owned()
}

const CREATE_ROLE: &str =
    "mutation($n: String!, $p: [String!]!) { createRole(name: $n, permissions: $p) { id name permissions builtIn } }";
const SET_ROLES: &str = "mutation($u: ID!, $r: [ID!]!) { setUserRoles(userId: $u, roleIds: $r) { id roles { name } } }";

async fn custom_roles_and_their_limits(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let admin = hub.admin_token().await;
    let res =
        hub.gql(Some(&admin), CREATE_ROLE, json!({ "n": "Operator", "p": ["server.read", "server.start"] })).await;
    let op = res["data"]["createRole"].clone();
    assert_eq!(op["permissions"], json!(["server.read", "server.start"]), "{res}");
    assert_eq!(op["builtIn"], false);
    let dup = hub.gql(Some(&admin), CREATE_ROLE, json!({ "n": "Operator", "p": [] })).await;
    assert_eq!((code(&dup), dup["errors"][0]["extensions"]["field"].as_str()), ("CONFLICT", Some("name")));
    let bad = hub.gql(Some(&admin), CREATE_ROLE, json!({ "n": "X", "p": ["server.launch"] })).await;
    assert_eq!(code(&bad), "BAD_USER_INPUT");
    let res = hub
        .gql(
            Some(&admin),
            "mutation($id: ID!) { updateRole(id: $id, permissions: [\"server.read\"]) { permissions } }",
            json!({ "id": op["id"] }),
        )
        .await;
    assert_eq!(res["data"]["updateRole"]["permissions"], json!(["server.read"]));
    // Built-in roles: not deleted, not renamed; the Admin role keeps every key.
    let admin_role = role_id(&hub, &admin, "Admin").await;
    let res = hub.gql(Some(&admin), "mutation($id: ID!) { deleteRole(id: $id) }", json!({ "id": admin_role })).await;
    assert_eq!(code(&res), "CONFLICT");
    let res = hub
        .gql(
            Some(&admin),
            "mutation($id: ID!) { updateRole(id: $id, name: \"Boss\") { name } }",
            json!({ "id": admin_role }),
        )
        .await;
    assert_eq!(code(&res), "CONFLICT");
    let res = hub
        .gql(
            Some(&admin),
            "mutation($id: ID!) { updateRole(id: $id, permissions: [\"user.read\"]) { name } }",
            json!({ "id": admin_role }),
        )
        .await;
    assert_eq!(code(&res), "CONFLICT");
    let res = hub.gql(Some(&admin), "mutation($id: ID!) { deleteRole(id: $id) }", json!({ "id": op["id"] })).await;
    assert_eq!(res["data"]["deleteRole"], true);
    let log = hub.gql(Some(&admin), "{ auditLog(first: 10) { action } }", json!({})).await;
    let actions: Vec<&str> =
        log["data"]["auditLog"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert!(["role.create", "role.update", "role.delete"].iter().all(|a| actions.contains(a)), "{actions:?}");
    hub.stop().await;
}

async fn nobody_grants_what_they_do_not_hold(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let admin = hub.admin_token().await;
    // A role manager who is not an admin.
    let res = hub
        .gql(Some(&admin), CREATE_ROLE, json!({ "n": "Role manager", "p": ["role.read", "role.manage", "user.read", "user.manage", "server.read"] }))
        .await;
    assert!(res["errors"].is_null(), "{res}");
    let manager = hub.user_with_roles("manager@hub.test", &["Role manager"]).await;
    let moderator = hub.user_with_roles("mod@hub.test", &["Moderator"]).await;
    let user = hub.user_with_roles("user@hub.test", &["User"]).await;
    let user_id = my_id(&hub, &user).await;
    let admin_role = role_id(&hub, &admin, "Admin").await;
    let mod_role = role_id(&hub, &admin, "Moderator").await;

    // A role with a key the manager lacks.
    let res = hub.gql(Some(&manager), CREATE_ROLE, json!({ "n": "Deleter", "p": ["server.delete"] })).await;
    assert_eq!(code(&res), "FORBIDDEN", "{res}");
    // Assigning the Admin role (keys the manager lacks).
    let res = hub.gql(Some(&manager), SET_ROLES, json!({ "u": user_id, "r": [admin_role] })).await;
    assert_eq!(code(&res), "FORBIDDEN", "{res}");
    // The Moderator role holds server.start, which the manager lacks.
    let res = hub.gql(Some(&manager), SET_ROLES, json!({ "u": user_id, "r": [mod_role] })).await;
    assert_eq!(code(&res), "FORBIDDEN", "{res}");
    // A moderator cannot manage roles at all, nor set their own.
    let mod_id = my_id(&hub, &moderator).await;
    let res = hub.gql(Some(&moderator), SET_ROLES, json!({ "u": mod_id, "r": [admin_role] })).await;
    assert_eq!(code(&res), "FORBIDDEN");
    let res = hub.gql(Some(&moderator), CREATE_ROLE, json!({ "n": "Mine", "p": [] })).await;
    assert_eq!(code(&res), "FORBIDDEN");
    // A user setting their own roles.
    let res = hub.gql(Some(&user), SET_ROLES, json!({ "u": user_id, "r": [admin_role] })).await;
    assert_eq!(code(&res), "FORBIDDEN");
    // A user calling admin mutations.
    for (q, vars) in [
        ("mutation($id: ID!) { deleteUser(id: $id) }", json!({ "id": mod_id })),
        ("mutation { createUser(email: \"x@hub.test\", password: \"tangerine submarine velvet\") { id } }", json!({})),
        ("mutation($id: ID!) { updateUser(id: $id, disabled: true) { id } }", json!({ "id": mod_id })),
        ("mutation { createInvitation { token } }", json!({})),
        ("{ users { id } }", json!({})),
    ] {
        assert_eq!(code(&hub.gql(Some(&user), q, vars).await), "FORBIDDEN", "{q}");
    }
    // The manager cannot disable someone more powerful.
    let admin_id = my_id(&hub, &admin).await;
    let res = hub
        .gql(
            Some(&manager),
            "mutation($id: ID!) { updateUser(id: $id, disabled: true) { id } }",
            json!({ "id": admin_id }),
        )
        .await;
    assert_eq!(code(&res), "FORBIDDEN");
    // Anyone may rename themselves.
    let res = hub
        .gql(
            Some(&user),
            "mutation($id: ID!) { updateUser(id: $id, displayName: \"Me\") { displayName } }",
            json!({ "id": user_id }),
        )
        .await;
    assert_eq!(res["data"]["updateUser"]["displayName"], "Me", "{res}");
    hub.stop().await;
}

async fn the_last_admin_cannot_be_removed(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let admin = hub.admin_token().await;
    let admin_id = my_id(&hub, &admin).await;
    let user_role = role_id(&hub, &admin, "User").await;
    for (q, vars) in [
        ("mutation($id: ID!) { updateUser(id: $id, disabled: true) { id } }", json!({ "id": admin_id })),
        ("mutation($id: ID!) { deleteUser(id: $id) }", json!({ "id": admin_id })),
        (SET_ROLES, json!({ "u": admin_id, "r": [user_role] })),
    ] {
        let res = hub.gql(Some(&admin), q, vars).await;
        assert_eq!(code(&res), "CONFLICT", "{q}: {res}");
    }
    // Still an admin, still enabled.
    let me = hub.gql(Some(&admin), "{ me { disabled roles { name } } }", json!({})).await;
    assert_eq!(me["data"]["me"], json!({ "disabled": false, "roles": [{ "name": "Admin" }] }));
    // With a second admin, the first can step down.
    hub.user_with_roles("second@hub.test", &["Admin"]).await;
    let res = hub.gql(Some(&admin), SET_ROLES, json!({ "u": admin_id, "r": [user_role] })).await;
    assert!(res["errors"].is_null(), "{res}");
    hub.stop().await;
}

/// Inserts a template and a server row directly (the supervisor that makes them comes later).
async fn fx_server(hub: &TestHub, name: &str) -> String {
    common::sql(
        hub,
        "INSERT INTO templates (slug, name, definition, built_in, created_at, updated_at) \
         SELECT 'fixture', 'Fixture', 'name = \"Fixture\"', false, '2026-01-01 00:00:00+00:00', '2026-01-01 00:00:00+00:00' \
         WHERE NOT EXISTS (SELECT 1 FROM templates WHERE slug = 'fixture')",
    )
    .await;
    common::sql(
        hub,
        &format!(
            "INSERT INTO game_servers (name, template_id, state, auto_restart, start_with_hub, created_at) \
             SELECT '{name}', id, 'OFFLINE', true, false, '2026-01-01 00:00:00+00:00' FROM templates WHERE slug = 'fixture'"
        ),
    )
    .await;
    let admin = hub.admin_token().await;
    let res = hub.gql(Some(&admin), "{ servers { id name } }", json!({})).await;
    res["data"]["servers"].as_array().unwrap().iter().find(|s| s["name"] == name).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

const GRANT: &str =
    "mutation($s: ID!, $u: ID!, $p: [String!]!) { grantServerAccess(serverId: $s, userId: $u, permissions: $p) }";

async fn per_server_grants_and_idor(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let admin = hub.admin_token().await;
    let a_server = fx_server(&hub, "alpha").await;
    let b_server = fx_server(&hub, "beta").await;
    let alice = hub.user_with_roles("alice@hub.test", &["User"]).await;
    let bob = hub.user_with_roles("bob@hub.test", &["User"]).await;
    let (alice_id, bob_id) = (my_id(&hub, &alice).await, my_id(&hub, &bob).await);

    // Nothing granted: nothing seen.
    assert_eq!(hub.gql(Some(&alice), "{ servers { id } }", json!({})).await["data"]["servers"], json!([]));
    let res = hub
        .gql(Some(&admin), GRANT, json!({ "s": a_server, "u": alice_id, "p": ["server.start", "server.grant"] }))
        .await;
    assert_eq!(res["data"]["grantServerAccess"], true, "{res}");
    let res = hub.gql(Some(&admin), GRANT, json!({ "s": b_server, "u": bob_id, "p": ["server.console"] })).await;
    assert!(res["errors"].is_null(), "{res}");

    let mine = hub.gql(Some(&alice), "{ servers { name myPermissions } }", json!({})).await;
    assert_eq!(
        mine["data"]["servers"],
        json!([{ "name": "alpha", "myPermissions": ["server.read", "server.start", "server.grant"] }])
    );
    // IDOR: alice reads or acts on bob's server.
    let res = hub.gql(Some(&alice), "query($id: ID!) { server(id: $id) { name } }", json!({ "id": b_server })).await;
    assert_eq!(res["data"]["server"], Value::Null, "{res}");
    let res = hub.gql(Some(&alice), GRANT, json!({ "s": b_server, "u": alice_id, "p": ["server.console"] })).await;
    assert_eq!(code(&res), "NOT_FOUND", "{res}");
    let res = hub
        .gql(
            Some(&alice),
            "mutation($s: ID!, $u: ID!) { revokeServerAccess(serverId: $s, userId: $u) }",
            json!({ "s": b_server, "u": bob_id }),
        )
        .await;
    assert_eq!(code(&res), "NOT_FOUND");
    // Alice may pass on only what she holds there.
    let res = hub.gql(Some(&alice), GRANT, json!({ "s": a_server, "u": bob_id, "p": ["server.delete"] })).await;
    assert_eq!(code(&res), "FORBIDDEN", "{res}");
    let res = hub.gql(Some(&alice), GRANT, json!({ "s": a_server, "u": bob_id, "p": ["server.start"] })).await;
    assert_eq!(res["data"]["grantServerAccess"], true, "{res}");
    let res = hub.gql(Some(&alice), GRANT, json!({ "s": a_server, "u": bob_id, "p": ["user.manage"] })).await;
    assert_eq!(code(&res), "BAD_USER_INPUT", "not a per-server key");
    let bobs = hub.gql(Some(&bob), "{ servers { name } }", json!({})).await;
    assert_eq!(bobs["data"]["servers"], json!([{ "name": "alpha" }, { "name": "beta" }]));
    // Bob, without server.grant on alpha, cannot revoke alice.
    let res = hub
        .gql(
            Some(&bob),
            "mutation($s: ID!, $u: ID!) { revokeServerAccess(serverId: $s, userId: $u) }",
            json!({ "s": a_server, "u": alice_id }),
        )
        .await;
    assert_eq!(code(&res), "FORBIDDEN");
    // Revoked: gone from the list at once.
    let res = hub
        .gql(
            Some(&admin),
            "mutation($s: ID!, $u: ID!) { revokeServerAccess(serverId: $s, userId: $u) }",
            json!({ "s": a_server, "u": bob_id }),
        )
        .await;
    assert_eq!(res["data"]["revokeServerAccess"], true);
    let bobs = hub.gql(Some(&bob), "{ servers { name } }", json!({})).await;
    assert_eq!(bobs["data"]["servers"], json!([{ "name": "beta" }]));
    // A moderator (global server.read) sees both.
    let moderator = hub.user_with_roles("mod@hub.test", &["Moderator"]).await;
    assert_eq!(
        hub.gql(Some(&moderator), "{ servers { name } }", json!({})).await["data"]["servers"].as_array().unwrap().len(),
        2
    );
    let log = hub.gql(Some(&admin), "{ auditLog(first: 10) { action } }", json!({})).await;
    let actions: Vec<&str> =
        log["data"]["auditLog"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert!(actions.contains(&"server.grant") && actions.contains(&"server.revoke"), "{actions:?}");
    hub.stop().await;
}

/// Two admins, the only ones, demote (or disable) each other at the same moment: one wins, the
/// other gets CONFLICT, and an admin always remains. Many rounds, on both databases.
async fn the_last_admin_survives_a_race(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let first = hub.admin_token().await;
    let second_email = "second@hub.test";
    hub.user_with_roles(second_email, &["Admin"]).await;
    let admin_role = role_id(&hub, &first, "Admin").await;
    let user_role = role_id(&hub, &first, "User").await;
    let mut tokens = [first, hub.login(second_email, "another long passphrase").await];
    let emails = [common::ADMIN_EMAIL, second_email];
    let passwords = [common::ADMIN_PASSWORD, "another long passphrase"];
    let ids = [my_id(&hub, &tokens[0]).await, my_id(&hub, &tokens[1]).await];
    for round in 0..16 {
        let disable = round % 2 == 1;
        let against = |me: usize| {
            let other = ids[1 - me].clone();
            if disable {
                hub.gql(
                    Some(&tokens[me]),
                    "mutation($u: ID!) { updateUser(id: $u, disabled: true) { id } }",
                    json!({ "u": other }),
                )
            } else {
                hub.gql(Some(&tokens[me]), SET_ROLES, json!({ "u": other, "r": [user_role] }))
            }
        };
        let (a, b) = tokio::join!(against(0), against(1));
        let won: Vec<usize> =
            [&a, &b].iter().enumerate().filter(|(_, r)| r["errors"].is_null()).map(|(i, _)| i).collect();
        assert_eq!(won.len(), 1, "round {round} (disable: {disable}): exactly one wins: {a} {b}");
        let lost = if won[0] == 0 { &b } else { &a };
        // CONFLICT when its check ran second; FORBIDDEN or UNAUTHENTICATED when its caller was
        // read after the other's change had landed.
        assert!(["CONFLICT", "FORBIDDEN", "UNAUTHENTICATED"].contains(&code(lost)), "round {round}: {lost}");
        // The winner is still an enabled admin; it puts the other back.
        let winner = won[0];
        let loser = 1 - winner;
        let me = hub.gql(Some(&tokens[winner]), "{ me { disabled roles { name } } }", json!({})).await;
        assert_eq!(me["data"]["me"]["roles"], json!([{ "name": "Admin" }]), "round {round}: {me}");
        let res = if disable {
            hub.gql(
                Some(&tokens[winner]),
                "mutation($u: ID!) { updateUser(id: $u, disabled: false) { id } }",
                json!({ "u": ids[loser] }),
            )
            .await
        } else {
            hub.gql(Some(&tokens[winner]), SET_ROLES, json!({ "u": ids[loser], "r": [admin_role] })).await
        };
        assert!(res["errors"].is_null(), "{res}");
        if disable {
            tokens[loser] = hub.login(emails[loser], passwords[loser]).await;
        }
    }
    hub.stop().await;
}

/// A grant holder adds or removes only keys it holds on that server itself.
async fn a_grant_never_touches_keys_the_granter_lacks(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let admin = hub.admin_token().await;
    let server = fx_server(&hub, "gamma").await;
    let granter = hub.user_with_roles("granter@hub.test", &["User"]).await;
    let player = hub.user_with_roles("player@hub.test", &["User"]).await;
    let (granter_id, player_id) = (my_id(&hub, &granter).await, my_id(&hub, &player).await);
    let full = ["server.start", "server.stop", "server.console"];
    assert!(hub.gql(Some(&admin), GRANT, json!({ "s": server, "u": player_id, "p": full })).await["errors"].is_null());
    assert!(
        hub.gql(Some(&admin), GRANT, json!({ "s": server, "u": granter_id, "p": ["server.grant"] })).await["errors"]
            .is_null()
    );
    let keys = || async {
        let res = hub.gql(Some(&player), "{ servers { myPermissions } }", json!({})).await;
        res["data"]["servers"][0]["myPermissions"].clone()
    };
    let before = keys().await;
    // Narrowing the player to server.read would take start, stop and console: refused.
    let res = hub.gql(Some(&granter), GRANT, json!({ "s": server, "u": player_id, "p": ["server.read"] })).await;
    assert_eq!(code(&res), "FORBIDDEN", "{res}");
    let res = hub
        .gql(
            Some(&granter),
            "mutation($s: ID!, $u: ID!) { revokeServerAccess(serverId: $s, userId: $u) }",
            json!({ "s": server, "u": player_id }),
        )
        .await;
    assert_eq!(code(&res), "FORBIDDEN", "{res}");
    assert_eq!(keys().await, before, "nothing was taken");
    // Adding a key it holds (server.grant) while keeping the rest is a change of one key only.
    let with_grant = ["server.start", "server.stop", "server.console", "server.grant"];
    let res = hub.gql(Some(&granter), GRANT, json!({ "s": server, "u": player_id, "p": with_grant })).await;
    assert!(res["errors"].is_null(), "{res}");
    hub.stop().await;
}

on_both!(
    the_last_admin_survives_a_race,
    a_grant_never_touches_keys_the_granter_lacks,
    custom_roles_and_their_limits,
    nobody_grants_what_they_do_not_hold,
    the_last_admin_cannot_be_removed,
    per_server_grants_and_idor
);
