//! `carapace`: a self-hosted certificate service that speaks the real AWS APIs.

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

use carapace::app::App;

/// mimalloc: the API's hot path is allocation-heavy (headers, JSON documents), and glibc's
/// allocator showed up at the top of its profile.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use carapace::config::Config;

#[derive(Parser)]
#[command(
    name = "carapace",
    version,
    about = "Self-hosted certificates behind the real AWS APIs (ACM, Lightsail, Directory Service)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (API, background jobs and, unless `edge.enabled = false`, the edge).
    Serve(ServeArgs),
    /// Run an edge alone, serving the distributions of the database it shares with API
    /// nodes (PostgreSQL `database_url` for several machines).
    Edge(EdgeArgs),
    /// Manage access keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Manage the certificate authority.
    #[command(subcommand)]
    Ca(CaCommand),
    /// Inspect background jobs; revive or discard dead-lettered ones.
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// Benchmarks (figures for the README; they assert nothing).
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Full protocol stack (SigV4, parse, validate, store read, serialize) vs a bare hyper server.
    Wire {
        /// Keep-alive connections.
        #[arg(long, default_value_t = 32)]
        connections: usize,
        /// Measured seconds per server per round.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        /// Alternating rounds (the median is reported).
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
    /// DescribeCertificate on two nodes sharing one PostgreSQL database, row cache on and off.
    Nodes {
        /// An empty PostgreSQL database for the two nodes (its tables are created).
        #[arg(long)]
        database_url: String,
        /// Keep-alive connections, spread over both nodes.
        #[arg(long, default_value_t = 32)]
        connections: usize,
        /// Measured seconds per setup per round.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        /// Alternating rounds (the median is reported).
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
    /// AWS Private CA's IssueCertificate (signed within the call) beside `cfssl serve`
    /// signing the same requests, EC P-256 and RSA-2048, 1 and 16 clients.
    Pca {
        /// Measured seconds per server per round.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        /// Alternating rounds (the median is reported).
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
    /// Unauthenticated CRL GETs/s, the CRL signed for every GET (`crl_refresh_secs = 0`) and
    /// kept between revocations (the default).
    Crl {
        /// Keep-alive connections.
        #[arg(long, default_value_t = 16)]
        connections: usize,
        /// Measured seconds per server per round.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        /// Alternating rounds (the median is reported).
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// Revoked certificates the CRL lists.
        #[arg(long, default_value_t = 20)]
        revoked: usize,
    },
    /// GetDistributions / GetCertificates throughput and p99 with many of each stored.
    Lightsail {
        /// Distributions to store.
        #[arg(long, default_value_t = 1_000)]
        distributions: usize,
        /// Certificates to store.
        #[arg(long, default_value_t = 10_000)]
        certificates: usize,
        /// Keep-alive connections.
        #[arg(long, default_value_t = 16)]
        connections: usize,
        /// Measured seconds per call per round.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        /// Rounds per call (the median is reported).
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
    /// Many stored certificates on one node: load rate, WAL, size, listing latency, RSS.
    Scale {
        /// Certificates to store (written straight into the database, in batches).
        #[arg(long, default_value_t = 1_000_000)]
        certificates: usize,
        /// An empty PostgreSQL database instead of SQLite (its tables are created).
        #[arg(long)]
        database_url: Option<String>,
        /// Keep-alive connections of the RequestCertificate burst.
        #[arg(long, default_value_t = 16)]
        connections: usize,
        /// Seconds of the RequestCertificate burst (listings run half as long, at least 3 s).
        #[arg(long, default_value_t = 20)]
        seconds: u64,
    },
    /// An edge serving many distributions: snapshot updates caused by unrelated certificate
    /// writes, and the time from AttachCertificateToDistribution to the name being served.
    EdgeSync {
        /// Distributions to store (written straight into the database, in batches).
        #[arg(long, default_value_t = 10_000)]
        distributions: usize,
        /// Of those, distributions stored with a certificate attached.
        #[arg(long, default_value_t = 100)]
        attached: usize,
        /// RequestCertificate calls in other accounts.
        #[arg(long, default_value_t = 1_000)]
        burst: usize,
        /// AttachCertificateToDistribution calls timed.
        #[arg(long, default_value_t = 100)]
        attaches: usize,
    },
    /// The bare hyper server `bench wire` compares against (run by it as a child process).
    BareServer {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: std::net::SocketAddr,
        /// File whose bytes are the answer to every request.
        #[arg(long)]
        body_file: PathBuf,
    },
}

/// Where the data lives; shared by every command.
#[derive(Args, Clone)]
struct Common {
    /// TOML configuration file.
    #[arg(long, env = "CARAPACE_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory (database, master key, CA).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Master key file.
    #[arg(long)]
    master_key_file: Option<PathBuf>,
}

#[derive(Args)]
struct ServeArgs {
    #[command(flatten)]
    common: Common,
    /// Address to listen on (port 0 picks a free one).
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
    /// Emulator mode: accept any well-formed SigV4 request, auto-approve validation.
    #[arg(long)]
    dev: bool,
    #[command(flatten)]
    edge: EdgeListen,
}

#[derive(Args)]
struct EdgeArgs {
    #[command(flatten)]
    common: Common,
    #[command(flatten)]
    edge: EdgeListen,
}

/// The edge's listeners (`edge.https_listen`, `edge.http_listen`).
#[derive(Args)]
struct EdgeListen {
    /// Viewer HTTPS address of the edge (port 0 picks a free one).
    #[arg(long)]
    edge_https_listen: Option<std::net::SocketAddr>,
    /// Viewer HTTP address of the edge (answered with 301 to HTTPS).
    #[arg(long)]
    edge_http_listen: Option<std::net::SocketAddr>,
}

impl EdgeListen {
    fn apply(&self, config: &mut Config) {
        if let Some(addr) = self.edge_https_listen {
            config.edge.https_listen = addr;
        }
        if let Some(addr) = self.edge_http_listen {
            config.edge.http_listen = addr;
        }
    }
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create an access key for an account and print it as a credentials-file profile.
    Create {
        #[command(flatten)]
        common: Common,
        /// The 12-digit account id.
        #[arg(long)]
        account: String,
    },
    /// List access keys (ids and accounts, never secrets).
    List {
        #[command(flatten)]
        common: Common,
    },
    /// Revoke an access key.
    Revoke {
        #[command(flatten)]
        common: Common,
        /// The access key id.
        access_key_id: String,
    },
}

#[derive(Subcommand)]
enum JobsCommand {
    /// List queued jobs (id, kind, failures, run or death time, last error).
    List {
        #[command(flatten)]
        common: Common,
        /// Only dead-lettered jobs (failed too often, or unreadable by this build).
        #[arg(long)]
        dead: bool,
    },
    /// Bring a dead-lettered job back: due now, its failure count reset.
    Revive {
        #[command(flatten)]
        common: Common,
        /// The job id, as `jobs list --dead` prints it.
        id: String,
    },
    /// Delete a dead-lettered job for good.
    Discard {
        #[command(flatten)]
        common: Common,
        /// The job id.
        id: String,
    },
}

#[derive(Subcommand)]
enum CaCommand {
    /// Print the root certificate (PEM) for trust stores.
    ExportRoot {
        #[command(flatten)]
        common: Common,
        /// Print the N2 root instead: what `N2_AMAZON_MANAGED` certificates chain to
        /// (`N2_SFG2_AMAZON_MANAGED` ones chain to the main root through a cross-certificate).
        #[arg(long)]
        n2: bool,
    },
    /// Replace the CA with your own root and intermediate (used for every new leaf). Both are
    /// checked against the CA/Browser Forum profiles of root and subordinate CA certificates,
    /// and what they lack is printed; the import goes ahead whatever the findings.
    Import {
        #[command(flatten)]
        common: Common,
        /// Root certificate, PEM.
        #[arg(long)]
        root: PathBuf,
        /// Intermediate certificate, PEM, signed by the root.
        #[arg(long)]
        intermediate: PathBuf,
        /// The intermediate's private key, PEM (PKCS#8).
        #[arg(long)]
        key: PathBuf,
    },
}

fn load_config(common: &Common, tweak: impl FnOnce(&mut Config)) -> anyhow::Result<Config> {
    let mut config = Config::load(common.config.as_deref(), std::env::vars())?;
    if let Some(dir) = &common.data_dir {
        config.data_dir = dir.clone();
    }
    if let Some(file) = &common.master_key_file {
        config.master_key_file = Some(file.clone());
    }
    tweak(&mut config);
    config.validate()?;
    Ok(config)
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("carapace: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("carapace: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => {
            let config = load_config(&args.common, |c| {
                if let Some(listen) = args.listen {
                    c.listen = listen;
                }
                c.dev |= args.dev;
                args.edge.apply(c);
            })?;
            carapace::logging::init(&config.log_format);
            config.warn_old_names();
            // A panic while serving a request is that request's 500, logged once with its
            // request id; any other panic is one ERROR line, then the usual report.
            carapace_net::panic::install_hook();
            carapace::serve::serve(config, shutdown_signal()).await
        }
        Command::Edge(args) => {
            let config = load_config(&args.common, |c| args.edge.apply(c))?;
            carapace::logging::init(&config.log_format);
            config.warn_old_names();
            carapace_net::panic::install_hook();
            carapace::serve::edge(config, shutdown_signal()).await
        }
        Command::Keys(cmd) => keys(cmd).await,
        Command::Ca(cmd) => ca(cmd).await,
        Command::Jobs(cmd) => jobs(cmd).await,
        Command::Bench(BenchCommand::Wire { connections, seconds, rounds }) => {
            carapace::bench::wire(connections, seconds, rounds).await
        }
        Command::Bench(BenchCommand::Nodes { database_url, connections, seconds, rounds }) => {
            carapace::bench::nodes(&database_url, connections, seconds, rounds).await
        }
        Command::Bench(BenchCommand::Pca { seconds, rounds }) => carapace::bench_pca::pca(seconds, rounds).await,
        Command::Bench(BenchCommand::Crl { connections, seconds, rounds, revoked }) => {
            carapace::bench::crl(connections, seconds, rounds, revoked).await
        }
        Command::Bench(BenchCommand::Lightsail { distributions, certificates, connections, seconds, rounds }) => {
            carapace::bench::lightsail(distributions, certificates, connections, seconds, rounds).await
        }
        Command::Bench(BenchCommand::Scale { certificates, database_url, connections, seconds }) => {
            carapace::bench_scale::scale(certificates, database_url.as_deref(), connections, seconds).await
        }
        Command::Bench(BenchCommand::EdgeSync { distributions, attached, burst, attaches }) => {
            carapace::bench_edge_sync::edge_sync(distributions, attached, burst, attaches).await
        }
        Command::Bench(BenchCommand::BareServer { listen, body_file }) => {
            let body = std::fs::read(&body_file).with_context(|| format!("reading {}", body_file.display()))?;
            let listener = tokio::net::TcpListener::bind(listen).await?;
            println!("bare server listening on http://{}", listener.local_addr()?);
            carapace::bench::bare_server(listener, body.into()).await
        }
    }
}

async fn keys(cmd: KeysCommand) -> anyhow::Result<()> {
    match cmd {
        KeysCommand::Create { common, account } => {
            let app = App::open_command(&load_config(&common, |_| {})?).await?;
            let key = app.accounts.create_key(&account).await?;
            println!(
                "[carapace-{}]\naws_access_key_id = {}\naws_secret_access_key = {}",
                key.info.account_id,
                key.info.access_key_id,
                key.secret.as_str()
            );
            app.store.close().await?;
        }
        KeysCommand::List { common } => {
            let app = App::open_command(&load_config(&common, |_| {})?).await?;
            for key in app.accounts.list_keys().await? {
                let created = time::OffsetDateTime::from_unix_timestamp(key.created_ms / 1000)
                    .map(|t| t.to_string())
                    .unwrap_or_default();
                println!("{}\t{}\t{}", key.access_key_id, key.account_id, created);
            }
            app.store.close().await?;
        }
        KeysCommand::Revoke { common, access_key_id } => {
            let app = App::open_command(&load_config(&common, |_| {})?).await?;
            app.accounts.revoke_key(&access_key_id).await?;
            println!("revoked {access_key_id}");
            app.store.close().await?;
        }
    }
    Ok(())
}

async fn jobs(cmd: JobsCommand) -> anyhow::Result<()> {
    let time = |ms: i64| {
        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
            .map(|t| t.to_string())
            .unwrap_or_else(|_| String::from("-"))
    };
    match cmd {
        JobsCommand::List { common, dead } => {
            let app = App::open_command(&load_config(&common, |_| {})?).await?;
            let mut after = None;
            loop {
                let query = carapace_store::JobQuery { dead, after_id: after.take(), limit: 500 };
                let page = app.store.list_jobs(query).await?;
                for job in &page {
                    let when = job.dead_at_ms.map_or_else(|| time(job.run_at_ms), time);
                    let error = job.last_error.as_deref().unwrap_or("-").replace(['\n', '\t'], " ");
                    println!("{}\t{}\tfailures={}\t{when}\t{error}", job.id, job.kind, job.failures);
                }
                match page.last() {
                    Some(last) if page.len() == 500 => after = Some(last.id.clone()),
                    _ => break,
                }
            }
            app.store.close().await?;
        }
        JobsCommand::Revive { common, id } => {
            let app = App::open_command(&load_config(&common, |_| {})?).await?;
            let revived = app.store.revive_job(&id, app.clock.now_ms()).await?;
            app.store.close().await?;
            anyhow::ensure!(revived, "no dead-lettered job {id}");
            println!("revived {id}");
        }
        JobsCommand::Discard { common, id } => {
            let app = App::open_command(&load_config(&common, |_| {})?).await?;
            let discarded = app.store.discard_job(&id).await?;
            app.store.close().await?;
            anyhow::ensure!(discarded, "no dead-lettered job {id}");
            println!("discarded {id}");
        }
    }
    Ok(())
}

async fn ca(cmd: CaCommand) -> anyhow::Result<()> {
    match cmd {
        CaCommand::ExportRoot { common, n2 } => {
            let config = load_config(&common, |_| {})?;
            let app = App::open_command(&config).await?;
            let ca = app.ca(&config, &config.public_base_url(config.listen)).await?;
            let pem = if n2 { ca.n2_root_pem().context("the CA has no N2 hierarchy")? } else { ca.root_pem() };
            print!("{pem}");
            app.store.close().await?;
        }
        CaCommand::Import { common, root, intermediate, key } => {
            let config = load_config(&common, |_| {})?;
            let app = App::open_command(&config).await?;
            let read = |p: &PathBuf| std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()));
            let (root_pem, intermediate_pem) = (read(&root)?, read(&intermediate)?);
            let (_, material) = carapace_kernel::ca::CertificateAuthority::import(
                &root_pem,
                &intermediate_pem,
                &read(&key)?,
                &app.master_key,
            )?;
            print_ca_findings(&root_pem, &intermediate_pem, app.clock.now())?;
            carapace_kernel::runtime::store_ca(app.store.as_ref(), &material, app.clock.now_ms()).await?;
            carapace::app::write_private(&config.data_dir.join("ca-root.pem"), read(&root)?.as_bytes())?;
            println!("imported; new certificates chain to {}", root.display());
            app.store.close().await?;
        }
    }
    Ok(())
}

/// Prints what [`carapace_kernel::ca::lint`] finds in an imported root and intermediate. Findings
/// do not stop the import: the CA is the operator's, and only they can reissue it.
fn print_ca_findings(root_pem: &str, intermediate_pem: &str, now: time::OffsetDateTime) -> anyhow::Result<()> {
    use carapace_kernel::ca::lint::{self, CaRole};
    let mut findings = Vec::new();
    for (pem, role) in [(root_pem, CaRole::Root), (intermediate_pem, CaRole::Subordinate)] {
        findings.extend(lint::ca_certificate(pem, role, now)?.into_iter().map(|f| (role, f)));
    }
    if findings.is_empty() {
        println!("CA/Browser Forum checks of the root and intermediate: no findings");
        return Ok(());
    }
    println!(
        "CA/Browser Forum checks of the root and intermediate: {} finding(s) (imported anyway; \
         see docs/behaviour.md, \"The CA's certificates\"):",
        findings.len()
    );
    for (role, finding) in findings {
        println!("  {role}: {finding}");
    }
    Ok(())
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
