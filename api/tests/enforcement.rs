//! Every operation is guarded. The first test walks the schema the hub serves and calls every
//! query and mutation without a token: all but the public ones must answer UNAUTHENTICATED. The
//! second is a table of (role, operation, allowed or denied).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Backend, TestHub};
use serde_json::{Value, json};

/// The operations anyone may call.
const PUBLIC: [&str; 6] = ["hubInfo", "register", "login", "refreshSession", "requestPasswordReset", "resetPassword"];

const TYPE_REF: &str = "kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } }";

fn named(t: &Value) -> &Value {
    if t["ofType"].is_null() { t } else { named(&t["ofType"]) }
}

/// A literal of the given type (for the required arguments of a call).
fn literal(t: &Value, types: &[Value]) -> String {
    match t["kind"].as_str().unwrap() {
        "NON_NULL" => literal(&t["ofType"], types),
        "LIST" => format!("[{}]", literal(&t["ofType"], types)),
        "ENUM" => {
            let ty = types.iter().find(|x| x["name"] == t["name"]).unwrap();
            ty["enumValues"][0]["name"].as_str().unwrap().to_owned()
        }
        "INPUT_OBJECT" => {
            let ty = types.iter().find(|x| x["name"] == t["name"]).unwrap();
            let fields: Vec<String> = ty["inputFields"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|f| f["type"]["kind"] == "NON_NULL")
                .map(|f| format!("{}: {}", f["name"].as_str().unwrap(), literal(&f["type"], types)))
                .collect();
            format!("{{ {} }}", fields.join(", "))
        }
        _ => match t["name"].as_str().unwrap() {
            "Int" => "1".into(),
            "Float" => "1.5".into(),
            "Boolean" => "true".into(),
            "DateTime" => "\"2026-01-01T00:00:00Z\"".into(),
            "ID" => "\"1\"".into(),
            _ => "\"probe@hub.test\"".into(),
        },
    }
}

/// `name(arg: value, ...) { __typename }` for a root field.
fn call(field: &Value, types: &[Value]) -> String {
    let args: Vec<String> = field["args"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["type"]["kind"] == "NON_NULL")
        .map(|a| format!("{}: {}", a["name"].as_str().unwrap(), literal(&a["type"], types)))
        .collect();
    let args = if args.is_empty() { String::new() } else { format!("({})", args.join(", ")) };
    let ret = named(&field["type"]);
    let selection =
        if matches!(ret["kind"].as_str(), Some("OBJECT" | "INTERFACE" | "UNION")) { " { __typename }" } else { "" };
    format!("{}{args}{selection}", field["name"].as_str().unwrap())
}

async fn every_non_public_operation_needs_a_token(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let field_q = format!("fields {{ name args {{ name type {{ {TYPE_REF} }} }} type {{ {TYPE_REF} }} }}");
    let query = format!(
        "{{ __schema {{ queryType {{ {field_q} }} mutationType {{ {field_q} }} subscriptionType {{ fields {{ name }} }} \
         types {{ name kind enumValues {{ name }} inputFields {{ name type {{ {TYPE_REF} }} }} }} }} }}"
    );
    let schema = hub.gql(None, &query, json!({})).await;
    let schema = &schema["data"]["__schema"];
    let types = schema["types"].as_array().unwrap().clone();
    let mut checked = 0;
    for (root, keyword) in [("queryType", "query"), ("mutationType", "mutation")] {
        for field in schema[root]["fields"].as_array().unwrap() {
            let name = field["name"].as_str().unwrap();
            if PUBLIC.contains(&name) {
                continue;
            }
            let op = format!("{keyword} {{ {} }}", call(field, &types));
            let res = hub.gql(None, &op, json!({})).await;
            let codes: Vec<&str> = res["errors"]
                .as_array()
                .map_or(vec![], |e| e.iter().map(|x| x["extensions"]["code"].as_str().unwrap_or("?")).collect());
            assert_eq!(codes, ["UNAUTHENTICATED"], "{op} answered without a token: {res}");
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} operations were walked");
    // Subscriptions need a token in connection_init (see websocket.rs); every one is listed here
    // so that a new one is not forgotten in the role table below.
    let subs: Vec<&str> =
        schema["subscriptionType"]["fields"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(
        subs,
        ["myAccess", "serverState", "serverConsole", "hostMetrics", "serverMetrics", "alerts", "auditEvents"],
        "a new subscription: add a test of its permission (metrics.rs, supervisor.rs, alerts.rs, websocket.rs)"
    );
    hub.stop().await;
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Want {
    Allow,
    Deny,
}

async fn the_role_table_holds(backend: Backend) {
    use Want::{Allow, Deny};
    let hub = TestHub::start(backend).await;
    let admin = hub.admin_token().await;
    let moderator = hub.user_with_roles("mod@hub.test", &["Moderator"]).await;
    let user = hub.user_with_roles("user@hub.test", &["User"]).await;
    let user_id =
        hub.gql(Some(&user), "{ me { id } }", json!({})).await["data"]["me"]["id"].as_str().unwrap().to_owned();
    let victim = hub.user_with_roles("victim@hub.test", &["User"]).await;
    let victim_id =
        hub.gql(Some(&victim), "{ me { id } }", json!({})).await["data"]["me"]["id"].as_str().unwrap().to_owned();
    let table: Vec<(&str, String, [Want; 3])> = vec![
        // (what, operation, [Admin, Moderator, User])
        ("me", "{ me { id } }".into(), [Allow, Allow, Allow]),
        ("roles", "{ roles { id } }".into(), [Allow, Allow, Deny]),
        ("permissions", "{ permissions { key } }".into(), [Allow, Allow, Deny]),
        ("users", "{ users { id } }".into(), [Allow, Allow, Deny]),
        ("user (self)", format!("{{ user(id: \"{user_id}\") {{ id }} }}"), [Allow, Allow, Allow]),
        ("auditLog", "{ auditLog { id } }".into(), [Allow, Allow, Deny]),
        ("alertRules", "{ alertRules { id } }".into(), [Allow, Allow, Deny]),
        ("alerts", "{ alerts { id } }".into(), [Allow, Allow, Deny]),
        (
            "createAlertRule",
            "mutation { createAlertRule(input: { name: \"r\", metric: \"load.1\", threshold: 99, forSeconds: 60 }) { id } }"
                .into(),
            [Allow, Deny, Deny],
        ),
        ("servers", "{ servers { id } }".into(), [Allow, Allow, Allow]),
        ("templates", "{ templates { id } }".into(), [Allow, Allow, Allow]),
        ("createRole", "mutation { createRole(name: \"T-ROLE\", permissions: []) { id } }".into(), [Allow, Deny, Deny]),
        ("createInvitation", "mutation { createInvitation { id } }".into(), [Allow, Deny, Deny]),
        ("invitations", "{ invitations { id } }".into(), [Allow, Deny, Deny]),
        ("hubOverview", "{ hubOverview { version } }".into(), [Allow, Deny, Deny]),
        ("checkTemplate", "{ checkTemplate(definition: \"x\") { error } }".into(), [Allow, Deny, Deny]),
        ("passwordProblem", "{ passwordProblem(password: \"x\") }".into(), [Allow, Allow, Allow]),
        ("me.sessions", "{ me { sessions { id } } }".into(), [Allow, Allow, Allow]),
        ("user.sessions", format!("{{ user(id: \"{victim_id}\") {{ sessions {{ id }} }} }}"), [Allow, Deny, Deny]),
        ("endUserSessions", format!("mutation {{ endUserSessions(userId: \"{victim_id}\") }}"), [Allow, Deny, Deny]),
        (
            "createUser",
            "mutation { createUser(email: \"probe-ROLE@hub.test\", password: \"tangerine submarine velvet\") { id } }"
                .into(),
            [Allow, Deny, Deny],
        ),
        (
            "setUserRoles",
            format!("mutation {{ setUserRoles(userId: \"{user_id}\", roleIds: []) {{ id }} }}"),
            [Allow, Deny, Deny],
        ),
    ];
    let tokens = [("Admin", &admin), ("Moderator", &moderator), ("User", &user)];
    for (what, op, wants) in &table {
        for ((role, token), want) in tokens.iter().zip(wants) {
            // Make names unique per role so that allowed creations do not collide.
            let op = op.replace("T-ROLE", &format!("T-{role}")).replace("ROLE@", &format!("{}@", role.to_lowercase()));
            let res = hub.gql(Some(token), &op, json!({})).await;
            let denied = res["errors"].as_array().is_some_and(|e| {
                e.iter().any(|x| matches!(x["extensions"]["code"].as_str(), Some("FORBIDDEN" | "UNAUTHENTICATED")))
            });
            let got = if denied { Deny } else { Allow };
            assert_eq!(got, *want, "{role} {what}: {res}");
            if got == Allow {
                assert!(res["errors"].is_null(), "{role} {what} was allowed but failed: {res}");
            }
        }
    }
    hub.stop().await;
}

/// The overview tells the admin what runs, and no secret: the admin password the test hub was
/// started with is only "set".
async fn the_hub_overview_shows_the_running_hub_without_secrets(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let admin = hub.admin_token().await;
    hub.create_burner(&admin).await;
    let q = "{ hubOverview { version schemaVersion database dataDir dataDirBytes registration users servers serversRunning \
             openSubscriptions configuration { key value source secret } } }";
    let res = hub.gql(Some(&admin), q, json!({})).await;
    let o = &res["data"]["hubOverview"];
    let database = match backend {
        Backend::Sqlite => "SQLite",
        Backend::Postgres => "PostgreSQL",
    };
    assert_eq!(o["database"], database, "{res}");
    assert_eq!(o["schemaVersion"], kutanga::db::schema_version(), "{res}");
    assert_eq!((o["users"].as_i64(), o["servers"].as_i64(), o["serversRunning"].as_i64()), (Some(1), Some(1), Some(0)));
    assert_eq!(o["registration"], "closed");
    assert!(o["dataDirBytes"].as_f64().unwrap() > 0.0, "{res}");
    let text = res.to_string();
    assert!(!text.contains(common::ADMIN_PASSWORD), "a secret is shown: {text}");
    let options = o["configuration"].as_array().unwrap();
    let option = |key: &str| options.iter().find(|e| e["key"] == key).unwrap_or_else(|| panic!("{key}: {res}"));
    assert_eq!(
        (&option("admin_password")["value"], &option("admin_password")["secret"]),
        (&json!("set"), &json!(true))
    );
    assert_eq!(
        (&option("shutdown_timeout")["value"], &option("shutdown_timeout")["source"]),
        (&json!("3"), &json!("command line"))
    );
    assert_eq!(option("session_ttl")["source"], "default");
    hub.stop().await;
}

on_both!(
    every_non_public_operation_needs_a_token,
    the_role_table_holds,
    the_hub_overview_shows_the_running_hub_without_secrets
);
