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
    CheckTemplate,
    CreateTemplate,
    UpdateTemplate,
    DeleteTemplate,
);
