//! The templates shipped with the hub (the files in `templates/` at the repository root),
//! compiled into the binary and loaded into the database at every start.

/// (slug, file text)
pub const BUILT_IN: [(&str, &str); 4] = [
    ("luanti", include_str!("../../../templates/luanti.toml")),
    ("teeworlds", include_str!("../../../templates/teeworlds.toml")),
    ("freeciv", include_str!("../../../templates/freeciv.toml")),
    ("custom", include_str!("../../../templates/custom.toml")),
];
