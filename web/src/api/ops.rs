//! Every GraphQL operation of the app, typed by `graphql_client` from the documents in
//! `api/documents/` and checked against the hub's `schema.graphql` when the app compiles.

use graphql_client::GraphQLQuery;
pub use shared::{ServerState, template::RuleKind as VariableRuleKind};

/// RFC 3339 text, as the hub sends it (see `crate::time`).
pub type DateTime = String;

macro_rules! operations {
    ($file:tt: $($name:ident),+ $(,)?) => {
        $(
            #[derive(GraphQLQuery)]
            #[graphql(
                schema_path = "../schema.graphql",
                query_path = $file,
                response_derives = "Clone, PartialEq",
                variables_derives = "Clone",
                extern_enums("ServerState", "VariableRuleKind")
            )]
            pub struct $name;
        )+
    };
}

operations!("src/api/documents/hub.graphql": HubInfo, Me, RequestPasswordReset, ResetPassword, AccessFeed, HubOverview);
operations!(
    "src/api/documents/servers.graphql": Servers,
    Server,
    ServerConsoleTail,
    ServerGrants,
    AllGrants,
    Templates,
    CreateServer,
    UpdateServer,
    DeleteServer,
    StartServer,
    StopServer,
    RestartServer,
    KillServer,
    SendServerCommand,
    GrantServerAccess,
    RevokeServerAccess,
    FindUsers,
    ServerStates,
    ServerConsole,
);
operations!(
    "src/api/documents/metrics.graphql": HostHistory,
    ServerHistory,
    HostSamples,
    ServerSamples,
    FiringAlerts,
    AlertEvents,
);
operations!(
    "src/api/documents/alerts.graphql": AlertRules,
    AlertList,
    AlertChanges,
    CreateAlertRule,
    SetAlertRuleEnabled,
    DeleteAlertRule,
    AcknowledgeAlert,
);
operations!("src/api/documents/audit.graphql": AuditPage, AuditFeed);
operations!("src/api/documents/roles.graphql": RolesAndPermissions, CreateRole, UpdateRole, DeleteRole);
operations!(
    "src/api/documents/users.graphql": UserList,
    Invitations,
    UserSessions,
    MyProfile,
    CreateUser,
    UpdateUser,
    DeleteUser,
    SetUserRoles,
    EndUserSessions,
    EndSession,
    LogoutAll,
    ChangePassword,
    CreateInvitation,
    RevokeInvitation,
    PasswordProblem,
);
operations!(
    "src/api/documents/templates.graphql": TemplateList,
    CreateTemplate,
    UpdateTemplate,
    DeleteTemplate,
);

/// The template editor's check: only its document (`check_template::QUERY`, checked against the
/// schema here) is used; the page sends the form's parts and reads the answer as JSON.
#[allow(dead_code)]
#[derive(GraphQLQuery)]
#[graphql(
    schema_path = "../schema.graphql",
    query_path = "src/api/documents/templates.graphql",
    extern_enums("VariableRuleKind")
)]
pub struct CheckTemplate;
