//! The exported SDL at the repository root stays in step with the code and the contract.
#![allow(clippy::unwrap_used, clippy::expect_used)]

const SCHEMA_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../schema.graphql");

#[test]
fn schema_graphql_is_up_to_date() {
    let on_disk = std::fs::read_to_string(SCHEMA_FILE).expect("schema.graphql exists at the repository root");
    assert!(on_disk == kutanga::sdl(), "schema.graphql is stale: run `cargo xtask schema` and commit the result");
}

/// The operations of ../shared/api-contract.graphql that this hub serves so far, with the
/// contract's argument shapes.
#[test]
fn the_served_operations_match_the_contract() {
    let sdl = kutanga::sdl();
    for needle in [
        "hubInfo: HubInfo!",
        "me: User!",
        "roles: [Role!]!",
        "permissions: [Permission!]!",
        "auditLog(filter: AuditFilter, first: Int, after: String): [AuditEntry!]!",
        "login(email: String!, password: String!): AuthPayload!",
        "auditEvents(filter: AuditFilter): AuditEntry!",
        "registrationOpen: Boolean!",
        "accessTokenExpiresAt: DateTime!",
    ] {
        assert!(sdl.contains(needle), "the schema lacks `{needle}`");
    }
    for ty in ["type User", "type Role", "type Permission", "type AuthPayload", "type AuditEntry", "input AuditFilter"]
    {
        assert!(sdl.contains(ty), "the schema lacks `{ty}`");
    }
}
