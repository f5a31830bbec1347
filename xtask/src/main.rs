//! Build automation for Kutanga Hub (`cargo xtask <command>`).
//!
//! Each command installs what it needs first (the wasm32 target, Trunk, wasm-bindgen-cli at the
//! version in Cargo.lock, Chromium for the browser tests) or stops at once with a message that
//! says what to do. Nothing here downloads a prebuilt binary: tools come from crates.io and
//! Debian's packages.

#![allow(clippy::print_stderr, reason = "a build tool talks on stderr")]

use std::{
    env,
    net::{TcpStream, ToSocketAddrs},
    path::{Path, PathBuf},
    process::{Command, ExitCode},
    time::Duration,
};

const TRUNK_VERSION: &str = "0.22.1";
/// npm's binaryen: Debian's (108) makes a wasm that fails in the browser.
const BINARYEN_VERSION: &str = "132";
const DEFAULT_TEST_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
/// Packs the Debian package (`cargo xtask package`).
const CARGO_DEB_VERSION: &str = "3.8.0";

const USAGE: &str = "\
usage: cargo xtask <command>

  run [ARGS...]   build the web app and run the hub (a dev build) on SQLite; ARGS go to
                  `kutanga serve`
  test [ARGS...]  install what the tests need, build the web app, run every test on SQLite and
                  PostgreSQL (KUTANGA_TEST_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/postgres);
                  ARGS go to cargo nextest (or cargo test)
  bench [NAME]    the monitoring and load benchmarks, or only NAME (release builds; need PostgreSQL
                  as for the tests, Debian's prometheus-node-exporter and wrk): print the figures
                  docs/performance.md quotes
  fuzz [CASES]    the property tests (GraphQL documents against a real hub, template files,
                  variable substitution, console output, configuration, tokens) with CASES random
                  inputs each (default 20000; the test command runs 256)
  package         build the Debian package (the web app, the release hub with it built in, the
                  systemd unit and settings) into target/debian/; prints its path
  image           build the container image (FROM scratch: the release hub and the libraries it
                  links) with podman as localhost/kutanga-hub; prints its name
  web             build the web app into web/dist (release)
  schema          write the GraphQL schema to schema.graphql
  setup           install the wasm target, Trunk and wasm-bindgen-cli
";

type Result<T = ()> = std::result::Result<T, String>;

fn main() -> ExitCode {
    let mut args = env::args().skip(1);
    let command = args.next().unwrap_or_default();
    let rest: Vec<String> = args.collect();
    let outcome = match command.as_str() {
        "run" => run(&rest),
        "test" => test(&rest),
        "bench" => bench(&rest),
        "fuzz" => fuzz(&rest),
        "web" => setup().and_then(|()| web()),
        "package" => package().map(|deb| print_path(&deb)),
        "image" => image().map(|name| print_path(Path::new(&name))),
        "schema" => schema(),
        "setup" => setup(),
        _ => {
            eprint!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("\nxtask: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root. Read at run time (`cargo run` sets CARGO_MANIFEST_DIR): checkouts that
/// share one target dir share the `xtask` binary too, and the path compiled into it may be
/// another checkout's.
fn root() -> PathBuf {
    let manifest = env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_owned());
    Path::new(&manifest).parent().unwrap_or(Path::new(".")).to_owned()
}

/// Runs a command in the workspace root; fails with its name when it fails.
fn sh(program: &str, args: &[&str]) -> Result {
    eprintln!("$ {program} {}", args.join(" "));
    let status = Command::new(program)
        .args(args)
        .current_dir(root())
        .status()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if status.success() { Ok(()) } else { Err(format!("`{program} {}` failed ({status})", args.join(" "))) }
}

/// The output of a command, if it ran and succeeded.
fn output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn cargo() -> String {
    env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// The wasm target, Trunk, and wasm-bindgen-cli at the version Cargo.lock pins.
fn setup() -> Result {
    let installed = output("rustup", &["target", "list", "--installed"]).unwrap_or_default();
    if !installed.lines().any(|l| l.trim() == "wasm32-unknown-unknown") {
        sh("rustup", &["target", "add", "wasm32-unknown-unknown"])
            .map_err(|e| format!("{e}\nthe web app needs the wasm32-unknown-unknown target"))?;
    }
    let wanted = locked_version("wasm-bindgen")?;
    let trunk_toml = std::fs::read_to_string(root().join("Trunk.toml")).map_err(|e| format!("Trunk.toml: {e}"))?;
    if !trunk_toml.contains(&format!("wasm_bindgen = \"{wanted}\"")) {
        return Err(format!(
            "Trunk.toml pins another wasm-bindgen than Cargo.lock ({wanted}); set `wasm_bindgen = \"{wanted}\"`"
        ));
    }
    let wasm_opt = binaryen_bin().join("wasm-opt");
    let have_opt = output(&wasm_opt.to_string_lossy(), &["--version"]).unwrap_or_default();
    if !have_opt.contains(&format!("version_{BINARYEN_VERSION}")) {
        if output("npm", &["--version"]).is_none() {
            return Err("the web app's size optimiser (wasm-opt) comes from npm's binaryen package: install Node.js \
                        and npm (`sudo apt-get install npm`) and retry"
                .into());
        }
        let prefix = binaryen_dir();
        let prefix = prefix.to_string_lossy();
        sh(
            "npm",
            &[
                "install",
                "--prefix",
                &prefix,
                "--no-save",
                "--no-audit",
                "--no-fund",
                &format!("binaryen@{BINARYEN_VERSION}"),
            ],
        )
        .map_err(|e| format!("{e}\ninstalling binaryen {BINARYEN_VERSION} from npm failed"))?;
    }
    let mut installs = Vec::new();
    if !output("trunk", &["--version"]).is_some_and(|v| v.contains(TRUNK_VERSION)) {
        // Trunk 0.22 declares a newer rust-version than it needs; it builds and works on 1.95.
        // Without the update check (it never downloads here, Trunk.toml); it needs one TLS stack.
        installs.push(Install {
            krate: "trunk",
            version: TRUNK_VERSION.into(),
            locked: true,
            features: Some("rustls"),
        });
    }
    let have = output("wasm-bindgen", &["--version"]).unwrap_or_default();
    if !have.split_whitespace().any(|w| w == wanted) {
        // Not --locked: its lock file wants a crate version the registry no longer serves.
        installs.push(Install { krate: "wasm-bindgen-cli", version: wanted, locked: false, features: None });
    }
    // Side by side: each spends much of its time in steps that use one core.
    let children: Vec<_> = installs.iter().map(|i| Ok((i, spawn(&cargo(), &i.args())?))).collect::<Result<_>>()?;
    let failed: Vec<String> = children
        .into_iter()
        .filter_map(|(install, child)| {
            finish(child, &format!("installing {} {} from crates.io", install.krate, install.version)).err()
        })
        .collect();
    if failed.is_empty() { Ok(()) } else { Err(failed.join("\n")) }
}

/// A tool the web build needs, built from crates.io.
struct Install {
    krate: &'static str,
    version: String,
    locked: bool,
    /// Cargo features, all but these off.
    features: Option<&'static str>,
}

impl Install {
    /// A debug build: the tools run for seconds, and an optimised build of them takes three times
    /// as long. Each in a target dir of its own, so that two installs and the hub's build never
    /// wait for one another's lock (and a failed install resumes where it stopped).
    fn args(&self) -> Vec<String> {
        let target = target_dir().join("tools").join(self.krate);
        let mut args = vec!["install", "--debug", "--ignore-rust-version", "--force"]
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>();
        if self.locked {
            args.push("--locked".into());
        }
        if let Some(features) = self.features {
            args.push("--no-default-features".into());
            if !features.is_empty() {
                args.extend(["--features".into(), features.into()]);
            }
        }
        args.extend(["--target-dir".into(), target.to_string_lossy().into_owned()]);
        args.extend([self.krate.into(), "--version".into(), self.version.clone()]);
        args
    }
}

/// Starts a command in the workspace root.
fn spawn(program: &str, args: &[String]) -> Result<std::process::Child> {
    eprintln!("$ {program} {} &", args.join(" "));
    Command::new(program).args(args).current_dir(root()).spawn().map_err(|e| format!("cannot run {program}: {e}"))
}

/// Waits for a started command; fails saying what it was for.
fn finish(mut child: std::process::Child, what: &str) -> Result {
    match child.wait() {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => Err(format!("{what} failed ({status})")),
        Err(e) => Err(format!("{what}: {e}")),
    }
}

/// Where cargo builds (CARGO_TARGET_DIR, or the workspace's target/).
fn target_dir() -> PathBuf {
    env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from)
}

/// Where the project keeps npm's binaryen (outside the clone, so that it survives a fresh one).
fn binaryen_dir() -> PathBuf {
    let home = env::var("HOME").unwrap_or_else(|_| "/tmp".into());
    PathBuf::from(home).join(".cache/kutanga-hub/binaryen")
}

fn binaryen_bin() -> PathBuf {
    binaryen_dir().join("node_modules/.bin")
}

/// The version of a package in Cargo.lock.
fn locked_version(package: &str) -> Result<String> {
    let lock = std::fs::read_to_string(root().join("Cargo.lock")).map_err(|e| format!("Cargo.lock: {e}"))?;
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line == format!("name = \"{package}\"")
            && let Some(v) = lines.next().and_then(|l| l.strip_prefix("version = \""))
        {
            return Ok(v.trim_end_matches('"').to_owned());
        }
    }
    Err(format!("{package} is not in Cargo.lock"))
}

/// The most the web app's WASM and JS may weigh, gzipped (a test holds it too).
const WEB_BUDGET_BYTES: u64 = 600 * 1024;

fn web() -> Result {
    // Trunk finds wasm-opt on PATH (and would download it otherwise, which it may not).
    let path = format!("{}:{}", binaryen_bin().display(), env::var("PATH").unwrap_or_default());
    let mut trunk = Command::new("trunk");
    // Trunk's progress on stderr: `package` and `image` print only a path or a name on stdout.
    progress_to_stderr(&mut trunk);
    let status = trunk
        .args(["--skip-version-check", "build", "--release"])
        .current_dir(root())
        .env("PATH", path)
        .status()
        .map_err(|e| format!("cannot run trunk: {e}"))?;
    if !status.success() {
        return Err(format!("trunk build failed ({status})"));
    }
    let mut total = 0;
    let dist = root().join("web/dist");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dist)
        .map_err(|e| format!("{}: {e}", dist.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "wasm" || x == "js"))
        .collect();
    files.sort();
    for file in files {
        let raw = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
        let gzipped = gzipped_size(&file)?;
        total += gzipped;
        eprintln!(
            "  {:<48} {:>8} bytes, {:>7} gzipped",
            file.file_name().unwrap_or_default().to_string_lossy(),
            raw,
            gzipped
        );
    }
    eprintln!("web app: {:.1} KiB gzipped (WASM + JS; budget {} KiB)", total as f64 / 1024.0, WEB_BUDGET_BYTES / 1024);
    if total > WEB_BUDGET_BYTES {
        return Err(format!("the web app weighs {total} bytes gzipped, over its budget of {WEB_BUDGET_BYTES}"));
    }
    Ok(())
}

/// The size of a file once gzipped (`gzip -9`, as a server would send it).
fn gzipped_size(file: &Path) -> Result<u64> {
    let out =
        Command::new("gzip").args(["-9", "-c"]).arg(file).output().map_err(|e| format!("cannot run gzip: {e}"))?;
    if out.status.success() { Ok(out.stdout.len() as u64) } else { Err(format!("gzip failed on {}", file.display())) }
}

fn schema() -> Result {
    sh(&cargo(), &["run", "--quiet", "-p", "kutanga", "--", "schema", "--output", "schema.graphql"])?;
    eprintln!("wrote schema.graphql");
    Ok(())
}

/// The hub as `cargo xtask run` builds it: the dev profile (unoptimised but for the hot crates,
/// Cargo.toml says which). On a first run (no web/dist yet) it starts at once beside the tools
/// and the web app; its build script finds no web app, and the last step builds the hub's own
/// crate once more with it. Later runs build the web app first: a dev build embeds the files of
/// web/dist by path, which Trunk replaces while it works.
fn run(args: &[String]) -> Result {
    if !root().join("web/dist").exists() {
        let build: Vec<String> = ["build", "-p", "kutanga", "--bin", "kutanga"].map(String::from).into();
        let mut hub = spawn(&cargo(), &build)?;
        if let Err(e) = setup().and_then(|()| web()) {
            let _ = hub.kill();
            let _ = hub.wait();
            return Err(e);
        }
        finish(hub, "building the hub")?;
    } else {
        setup()?;
        web()?;
    }
    let mut cmd: Vec<&str> = vec!["run", "-p", "kutanga", "--bin", "kutanga", "--", "serve"];
    cmd.extend(args.iter().map(String::as_str));
    sh(&cargo(), &cmd)
}

fn test(args: &[String]) -> Result {
    setup()?;
    chromium()?;
    test_programs()?;
    example_clients()?;
    let url = env::var("KUTANGA_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_TEST_DATABASE_URL.into());
    postgres_reachable(&url)?;
    // The package test installs it (api/tests/package.rs), the container test runs the image
    // (api/tests/container.rs); the web app is built on the way.
    // One web build for both: each new build of the app makes the hub be built again.
    web()?;
    let deb = pack_deb()?;
    let image = build_image()?;
    let nextest = output(&cargo(), &["nextest", "--version"]).is_some();
    let mut cmd: Vec<&str> = if nextest {
        vec!["nextest", "run", "--workspace", "--no-fail-fast"]
    } else {
        vec!["test", "--workspace", "--no-fail-fast"]
    };
    cmd.extend(args.iter().map(String::as_str));
    eprintln!("$ KUTANGA_TEST_DATABASE_URL={url} cargo {}", cmd.join(" "));
    let status = Command::new(cargo())
        .args(&cmd)
        .current_dir(root())
        .env("KUTANGA_TEST_DATABASE_URL", &url)
        .env("KUTANGA_TEST_DEB", &deb)
        .env("KUTANGA_TEST_IMAGE", &image)
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err(format!("tests failed ({status})"));
    }
    // The project has no doc tests (nextest does not run them): add a `cargo test --doc` step
    // here when it gets some.
    Ok(())
}

/// The property tests (modules named `fuzz`) with more cases than the test command gives them.
fn fuzz(args: &[String]) -> Result {
    let cases = match args {
        [] => 20_000,
        [n] => n.parse::<u32>().map_err(|_| format!("CASES is a number, not `{n}`"))?,
        _ => return Err("usage: cargo xtask fuzz [CASES]".into()),
    };
    let filter = "test(/(^|::)fuzz::/)";
    let nextest = output(&cargo(), &["nextest", "--version"]).is_some();
    let cmd: Vec<&str> = if nextest {
        vec!["nextest", "run", "-p", "kutanga", "--lib", "--test", "hostile_documents", "--no-capture", "-E", filter]
    } else {
        vec!["test", "-p", "kutanga", "--lib", "--test", "hostile_documents", "fuzz::", "--", "--nocapture"]
    };
    eprintln!("$ PROPTEST_CASES={cases} cargo {}", cmd.join(" "));
    let status = Command::new(cargo())
        .args(&cmd)
        .current_dir(root())
        .env("PROPTEST_CASES", cases.to_string())
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("a property failed ({status}); proptest printed the smallest input"))
    }
}

/// The monitoring benchmark: a release build that prints its figures.
fn bench(only: &[String]) -> Result {
    test_programs()?;
    if !Path::new("/usr/bin/wrk").exists() {
        apt_install(&["wrk"], "the load benchmark needs Debian's wrk")?;
    }
    let url = env::var("KUTANGA_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_TEST_DATABASE_URL.into());
    postgres_reachable(&url)?;
    // The load benchmark runs the hub as users do: the release binary, in a process of its own.
    sh(&cargo(), &["build", "--release", "-p", "kutanga", "--bin", "kutanga"])?;
    // `cargo bench` builds the package's binary too, with the bench profile, into the same
    // `release` folder: the benchmark gets a copy of the release build, made before.
    let target = target_dir();
    // Copied then renamed: a file that a leftover hub still runs cannot be written over.
    let hub = target.join("kutanga-under-bench");
    let copy = target.join("kutanga-under-bench.new");
    std::fs::copy(target.join("release/kutanga"), &copy)
        .and_then(|_| std::fs::rename(&copy, &hub))
        .map_err(|e| format!("cannot copy the release hub: {e}"))?;
    for bench in ["monitoring", "load"].into_iter().filter(|b| only.is_empty() || only.iter().any(|o| o == b)) {
        eprintln!("$ KUTANGA_TEST_DATABASE_URL={url} cargo bench -p kutanga --bench {bench}");
        let status = Command::new(cargo())
            .args(["bench", "-p", "kutanga", "--bench", bench])
            .current_dir(root())
            .env("KUTANGA_TEST_DATABASE_URL", &url)
            .env("KUTANGA_BENCH_HUB", &hub)
            .status()
            .map_err(|e| format!("cannot run cargo: {e}"))?;
        if !status.success() {
            return Err(format!("the {bench} benchmark failed ({status})"));
        }
    }
    Ok(())
}

/// The graphql-transport-ws clients the API guide's examples use (docs/examples, run by
/// api/tests/docs.rs): gql from PyPI, graphql-ws from npm, at the versions the folder pins.
fn example_clients() -> Result {
    let examples = root().join("docs/examples");
    let requirements = examples.join("requirements.txt");
    let wanted = std::fs::read_to_string(&requirements).map_err(|e| format!("{}: {e}", requirements.display()))?;
    let version = wanted.trim().rsplit("==").next().unwrap_or_default().to_owned();
    let check = format!("import gql, sys; sys.exit(gql.__version__ != {version:?})");
    if output("python3", &["-c", &check]).is_none() {
        sh("python3", &["-m", "pip", "install", "--quiet", "-r", &requirements.to_string_lossy()]).map_err(|e| {
            format!("{e}\nthe API guide's Python example needs gql: install it with pip (a virtualenv will do)")
        })?;
    }
    sh("npm", &["ci", "--prefix", &examples.to_string_lossy(), "--no-audit", "--no-fund", "--silent"])
        .map_err(|e| format!("{e}\nthe API guide's JavaScript example needs its packages from npm"))
}

/// Chromium and its driver for the browser tests: present, or installed from Debian's packages
/// when we are root.
fn chromium() -> Result {
    let path = env::var("KUTANGA_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if Path::new(&path).exists() && Path::new("/usr/bin/chromedriver").exists() {
        return Ok(());
    }
    apt_install(
        &["chromium", "chromium-driver"],
        &format!("the browser tests need Chromium at {path} and chromedriver (or set KUTANGA_TEST_CHROMIUM)"),
    )
}

/// Sends what a tool prints on stdout to stderr.
fn progress_to_stderr(command: &mut Command) {
    if let Ok(stderr) = std::os::fd::AsFd::as_fd(&std::io::stderr()).try_clone_to_owned() {
        command.stdout(std::process::Stdio::from(stderr));
    }
}

#[allow(clippy::print_stdout, reason = "the package's path, for scripts")]
fn print_path(path: &Path) {
    println!("{}", path.display());
}

/// The Debian package: the web app, then the release hub with it built in, packed by cargo-deb
/// (installed from crates.io the first time) with the unit, settings and scripts of packaging/.
fn package() -> Result<PathBuf> {
    setup()?;
    web()?;
    pack_deb()
}

/// The package of the web app as it is built now.
fn pack_deb() -> Result<PathBuf> {
    let have = output(&cargo(), &["deb", "--version"]).unwrap_or_default();
    if !have.contains(CARGO_DEB_VERSION) {
        let install = Install { krate: "cargo-deb", version: CARGO_DEB_VERSION.into(), locked: true, features: None };
        finish(spawn(&cargo(), &install.args())?, "installing cargo-deb from crates.io")?;
    }
    if output("dpkg-shlibdeps", &["--version"]).is_none() {
        apt_install(&["dpkg-dev"], "the package's dependencies are found by dpkg-shlibdeps")?;
    }
    // Built here, as `image` builds it, so that the two share one build (cargo-deb's own build
    // differs enough from this one to be made again).
    sh(&cargo(), &["build", "--release", "-p", "kutanga", "--bin", "kutanga"])?;
    let out = Command::new(cargo())
        .args(["deb", "-p", "kutanga", "--no-build"])
        .current_dir(root())
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run cargo deb: {e}"))?;
    if !out.status.success() {
        return Err(format!("cargo deb failed ({})", out.status));
    }
    let printed = String::from_utf8_lossy(&out.stdout);
    let deb = printed.lines().map(str::trim).rfind(|l| l.ends_with(".deb")).map(PathBuf::from);
    deb.filter(|p| p.is_file()).ok_or_else(|| format!("cargo deb did not say where the package is: {printed}"))
}

/// The container image: the release hub (the web app built in) and the C libraries `ldd` names,
/// FROM scratch (packaging/container/Containerfile), built with podman in Docker's format (for its
/// HEALTHCHECK). Where CONTAINERS_CONF is unset, podman reads packaging/container/containers.conf.
fn image() -> Result<String> {
    setup()?;
    web()?;
    build_image()
}

/// The image of the web app as it is built now.
fn build_image() -> Result<String> {
    sh(&cargo(), &["build", "--release", "-p", "kutanga", "--bin", "kutanga"])?;
    if output("podman", &["--version"]).is_none() || output("runc", &["--version"]).is_none() {
        apt_install(&["podman", "runc"], "the container image is built with podman")?;
    }
    let target = target_dir();
    let binary = target.join("release/kutanga");
    let context = target.join("image");
    let _ = std::fs::remove_dir_all(&context);
    let rootfs = context.join("rootfs");
    let fail = |e: std::io::Error| format!("cannot lay out {}: {e}", context.display());
    for dir in ["usr/bin", "etc", "tmp"] {
        std::fs::create_dir_all(rootfs.join(dir)).map_err(fail)?;
    }
    std::fs::create_dir_all(context.join("data")).map_err(fail)?;
    std::fs::copy(&binary, rootfs.join("usr/bin/kutanga")).map_err(fail)?;
    let linked = output("ldd", &[&binary.to_string_lossy()]).ok_or("ldd could not read the hub's binary")?;
    for library in linked.split_whitespace().filter(|w| w.starts_with('/')) {
        let into = rootfs.join(library.trim_start_matches('/'));
        std::fs::create_dir_all(into.parent().unwrap_or(&rootfs)).map_err(fail)?;
        std::fs::copy(library, &into).map_err(fail)?;
    }
    std::fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0:root:/:/sbin/nologin\nkutanga:x:10001:10001:Kutanga Hub:/data:/sbin/nologin\n",
    )
    .map_err(fail)?;
    std::fs::write(rootfs.join("etc/group"), "root:x:0:\nkutanga:x:10001:\n").map_err(fail)?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(rootfs.join("tmp"), std::fs::Permissions::from_mode(0o1777)).map_err(fail)?;
        std::fs::set_permissions(context.join("data"), std::fs::Permissions::from_mode(0o711)).map_err(fail)?;
    }
    let version = locked_version("kutanga")?;
    let name = format!("localhost/kutanga-hub:{version}");
    let containerfile = root().join("packaging/container/Containerfile");
    let mut build = Command::new("podman");
    if env::var_os("CONTAINERS_CONF").is_none() {
        build.env("CONTAINERS_CONF", root().join("packaging/container/containers.conf"));
    }
    // podman's progress on stderr: stdout is the image's name alone, for scripts.
    progress_to_stderr(&mut build);
    let status = build
        .args(["build", "--format", "docker", "-t", &name, "-t", "localhost/kutanga-hub:latest", "-f"])
        .arg(&containerfile)
        .arg(&context)
        .status()
        .map_err(|e| format!("cannot run podman: {e}"))?;
    if !status.success() {
        return Err(format!("podman build failed ({status})"));
    }
    Ok(name)
}

/// The Debian programs the tests run: the game servers (supervisor tests and the guide's
/// example), promtool (checks /metrics) and Prometheus' node exporter (the collector benchmark's
/// baseline).
fn test_programs() -> Result {
    const PROGRAMS: [(&str, &str); 6] = [
        ("/usr/games/minetestserver", "minetest-server"),
        ("/usr/games/teeworlds-server", "teeworlds-server"),
        ("/usr/games/freeciv-server", "freeciv-server"),
        // The administrator guide's worked example of a game with no built-in template.
        ("/usr/games/wesnothd-1.16", "wesnoth-1.16-server"),
        ("/usr/bin/promtool", "prometheus"),
        ("/usr/bin/prometheus-node-exporter", "prometheus-node-exporter"),
    ];
    let missing: Vec<&str> = PROGRAMS.iter().filter(|(bin, _)| !Path::new(bin).exists()).map(|(_, pkg)| *pkg).collect();
    if missing.is_empty() {
        return Ok(());
    }
    apt_install(&missing, "the tests need these Debian packages")
}

/// Installs Debian packages when we are root and have apt-get; else fails with the command to run.
fn apt_install(packages: &[&str], why: &str) -> Result {
    let root_user = output("id", &["-u"]).is_some_and(|u| u.trim() == "0");
    if root_user && output("apt-get", &["--version"]).is_some() {
        sh("apt-get", &["update", "-q"])?;
        let mut args = vec!["install", "-y", "-q", "--no-install-recommends"];
        args.extend(packages);
        return sh("apt-get", &args);
    }
    Err(format!("{why}: `sudo apt-get install {}`", packages.join(" ")))
}

fn postgres_reachable(url: &str) -> Result {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let host_port = rest.split(['/', '?']).next().unwrap_or_default();
    let host_port = host_port.rsplit_once('@').map(|(_, h)| h).unwrap_or(host_port);
    let addr = if host_port.contains(':') { host_port.to_owned() } else { format!("{host_port}:5432") };
    let reachable = addr
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .is_some_and(|a| TcpStream::connect_timeout(&a, Duration::from_secs(3)).is_ok());
    if reachable {
        Ok(())
    } else {
        Err(format!(
            "the PostgreSQL tests need a server at {addr} (from KUTANGA_TEST_DATABASE_URL={url}): start one \
             (apt-get install postgresql; pg_ctlcluster <version> main start) or point the variable at one"
        ))
    }
}
