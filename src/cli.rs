//! The command line as clap sees it. Raw flags live here; `app` validates them into options
//! before anything runs.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::logging::LogFormat;

pub use drscript_core::state::DEFAULT_DIR as DEFAULT_STATE_DIR;

const AFTER_HELP: &str = "\
Examples:
  drscript failover.rhai                      run a runbook (same as `drscript run failover.rhai`)
  drscript plan failover.rhai                 show every step and action; change nothing
  drscript run failover.rhai --dry-run        read live state, describe the changes, make none
  drscript resume                             continue the last unfinished run
  drscript check runbooks/*.rhai              compile and lint; no config or network needed
  drscript demo                               sandbox + preflight + failover + failback

Exit codes:
  0  success
  1  the runbook failed at run time
  2  bad input (usage, script compile error, config error): nothing was executed
  2  ... or refused: the situation does not allow it (wrong direction, split brain): nothing changed
  3  stopped by the operator (declined confirmation, Ctrl-C, no terminal to ask)
  4  another run holds the lock of the state directory";

#[derive(Debug, Parser)]
#[command(
    name = "drscript",
    version,
    about = "Disaster-recovery runbooks as editable, testable Rhai scripts",
    after_help = AFTER_HELP,
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// Configuration file [default: ./drscript.toml]
    #[arg(long, global = true, env = "DRSCRIPT_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Log format on stderr (and in --log-file)
    #[arg(long, global = true, value_enum, default_value = "text", value_name = "FORMAT")]
    pub log_format: LogFormat,
    /// Also write logs to FILE (appended)
    #[arg(long, global = true, value_name = "FILE")]
    pub log_file: Option<PathBuf>,
    /// More output (-v debug, -vv trace)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Less output (warnings and errors only)
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// No colours in the output
    #[arg(long, global = true, env = "NO_COLOR", value_parser = clap::builder::FalseyValueParser::new())]
    pub no_color: bool,
    /// Where runs, journals, reports and the lock are kept
    #[arg(long, global = true, default_value = DEFAULT_STATE_DIR, value_name = "DIR")]
    pub state_dir: PathBuf,
    /// `local`: use the state directory alone even when the config's `[state]` names a shared
    /// state (when it does not answer); recorded, and uploaded by the next run that reaches it
    #[arg(long = "state", global = true, value_enum, default_value = "shared", value_name = "WHERE")]
    pub state: StateChoice,
    /// A folder of .rhai modules that overrides the stdlib compiled into the binary
    #[arg(long, global = true, value_name = "DIR")]
    pub stdlib: Option<PathBuf>,
}

/// Where a run keeps its lock and journal: see `[state]` in the README.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StateChoice {
    /// The config's `[state]` (the state directory alone when it names none)
    Shared,
    /// The state directory alone
    Local,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a runbook
    #[command(
        after_help = "Examples:\n  drscript run failover.rhai\n  drscript run failover.rhai --dry-run\n  drscript run drill.rhai --yes --var wait_minutes=5"
    )]
    Run(RunArgs),
    /// Show the numbered steps and every action with its target; change nothing, touch no network
    #[command(
        after_help = "Examples:\n  drscript plan failover.rhai\n  drscript plan failback.rhai --config customer/drscript.toml"
    )]
    Plan(PlanArgs),
    /// Compile and lint scripts, and validate a config; no network needed
    #[command(
        after_help = "Examples:\n  drscript check runbooks/*.rhai stdlib/*.rhai\n  drscript check --config drscript.toml"
    )]
    Check(CheckArgs),
    /// Write the runbooks, the stdlib and an annotated starter config for a new customer
    #[command(
        after_help = "Examples:\n  drscript init fabrikam\n  cd fabrikam && drscript check --config drscript.toml && drscript plan failover"
    )]
    Init(InitArgs),
    /// Where service is: the verdict (ACTIVE, SWITCHING, SPLIT, NONE, DNS MISMATCH) and a table per
    /// environment; exit 0 only when one side is active and healthy. Read-only
    #[command(
        after_help = "Examples:\n  drscript status\n  drscript status --json | jq .verdict\n  drscript status --watch 10\n  drscript status --openmetrics /var/lib/node_exporter/textfile/drscript.prom\n\nExit codes: 0 one side active and healthy; 1 anything else (the table says why); 2 bad config"
    )]
    Status(StatusArgs),
    /// The runs of the state directory, newest first: runbook, direction, outcome, RTO, RPO
    #[command(after_help = "Examples:\n  drscript runs\n  drscript runs --json")]
    Runs(RunsArgs),
    /// Break the shared lock of a run whose holder is gone (recorded: who broke whose lock)
    #[command(
        after_help = "Examples:\n  drscript unlock            # says who holds the lock\n  drscript unlock --force    # breaks it\n\nExit codes: 0 unlocked or free; 4 held (without --force); 2 no shared state or it does not answer"
    )]
    Unlock(UnlockArgs),
    /// Continue the last (or named) unfinished run; finished steps are skipped
    #[command(after_help = "Examples:\n  drscript resume\n  drscript resume 20261125-031502-1a2b --yes")]
    Resume(ResumeArgs),
    /// Interactive session with the same engine, config and primitives
    #[command(
        after_help = "Examples:\n  drscript repl\n  echo 'replicas(env(\"prod\"), \"deployment\", \"ac-ac-runtime\")' | drscript repl"
    )]
    Repl(ReplArgs),
    /// Reference of every primitive, generated from the engine itself
    #[command(
        after_help = "Examples:\n  drscript docs\n  drscript docs scale\n  drscript docs --json\n  drscript docs --definitions .rhai-defs"
    )]
    Docs(DocsArgs),
    /// Make DST like SRC: azcopy-sync semantics done right (folders, Azure Files, Azure Blob)
    #[command(
        after_help = "Examples:\n  drscript sync /data/export 'https://acct.file.core.windows.net/share/export?sv=...&sig=...'\n  drscript sync prod.shares.app/web/repository dr.shares.app/web/repository --dry-run\n  drscript sync prod.shares.rabbitmq dr.shares.rabbitmq --mirror --max-delete 10% --json"
    )]
    Sync(crate::sync_cmd::SyncArgs),
    /// A local simulated PROD + DR pair (Kubernetes API, gateway, shares, DNS) on 127.0.0.1
    #[command(
        subcommand,
        after_help = "Examples:\n  drscript sandbox up\n  drscript --config .drscript/sandbox/drscript.toml plan runbooks/failover.rhai\n  drscript sandbox status --json\n  drscript sandbox down"
    )]
    Sandbox(SandboxCommand),
    /// Sandbox + preflight + failover + checks + failback, with reports: the first look
    #[command(
        after_help = "Examples:\n  drscript demo\n  drscript demo --dir /tmp/drdemo --start-delay 2 --stop-delay 2"
    )]
    Demo(DemoArgs),
    /// Shell completions
    #[command(after_help = "Examples:\n  drscript completions bash > /etc/bash_completion.d/drscript")]
    Completions(CompletionsArgs),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The runbook (.rhai)
    pub script: PathBuf,
    /// Read live state and describe every change without making it
    #[arg(long)]
    pub dry_run: bool,
    /// Answer yes to every confirmation (not to manual steps: see --ack)
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Acknowledge up front the manual step whose message or step title contains TEXT
    /// (`--yes` never acknowledges a manual step)
    #[arg(long = "ack", value_name = "TEXT")]
    pub acks: Vec<String>,
    /// Acknowledge every manual step up front (recorded in the report)
    #[arg(long)]
    pub ack_all_manual: bool,
    /// A value for `param(KEY, default)`
    #[arg(long = "var", value_name = "KEY=VALUE")]
    pub vars: Vec<String>,
    /// Skip the offline rehearsal that runs before every live run
    #[arg(long)]
    pub skip_rehearsal: bool,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The runbook (.rhai)
    pub script: PathBuf,
    /// A value for `param(KEY, default)`
    #[arg(long = "var", value_name = "KEY=VALUE")]
    pub vars: Vec<String>,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Scripts to compile and lint
    pub scripts: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// The run to continue [default: the last unfinished one]
    pub run_id: Option<String>,
    /// Resume even though the script changed since the run started
    #[arg(long)]
    pub force: bool,
    /// Answer yes to every confirmation (not to manual steps: see --ack)
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Acknowledge up front the manual step whose message or step title contains TEXT
    /// (`--yes` never acknowledges a manual step)
    #[arg(long = "ack", value_name = "TEXT")]
    pub acks: Vec<String>,
    /// Acknowledge every manual step up front (recorded in the report)
    #[arg(long)]
    pub ack_all_manual: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Machine-readable output (the structure is documented in the README)
    #[arg(long)]
    pub json: bool,
    /// Read again every SECONDS until Ctrl-C
    #[arg(long, value_name = "SECONDS", num_args = 0..=1, default_missing_value = "5")]
    pub watch: Option<f64>,
    /// Also write the facts as OpenMetrics gauges to FILE (for a node-exporter textfile collector)
    #[arg(long, value_name = "FILE")]
    pub openmetrics: Option<PathBuf>,
    /// Seconds each part (cluster, gateway, share, storage, DNS) may take before it counts as
    /// unreachable
    #[arg(long, default_value_t = 8.0, value_name = "SECONDS")]
    pub timeout: f64,
}

#[derive(Debug, Args)]
pub struct UnlockArgs {
    /// Break the lock even though its lease is alive (its holder must be gone: check who it is)
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct RunsArgs {
    /// Machine-readable output
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ReplArgs {
    /// Start in plan mode (describe changes without reading anything)
    #[arg(long, conflicts_with = "live")]
    pub plan: bool,
    /// Make changes (the default is a dry run: read for real, change nothing); takes the state
    /// directory's lock and journals every change as a run that `drscript runs` lists
    #[arg(long)]
    pub live: bool,
    /// Answer yes to every confirmation
    #[arg(long, short = 'y')]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The customer's folder (created if missing)
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Overwrite files that exist (without it, nothing is written when one does)
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct DocsArgs {
    /// One primitive (or a prefix)
    pub name: Option<String>,
    /// Machine-readable output
    #[arg(long)]
    pub json: bool,
    /// Write Rhai definition files for editors into DIR
    #[arg(long, value_name = "DIR")]
    pub definitions: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum SandboxCommand {
    /// Start the sandbox and serve in the foreground until Ctrl-C
    #[command(
        after_help = "Examples:\n  drscript sandbox up\n  drscript sandbox up --dir /tmp/dr --start-delay 0.5 --stop-delay 0.5\n  drscript sandbox up --like customers/contoso/drscript.toml"
    )]
    Up(SandboxUpArgs),
    /// Print the whole simulated state
    #[command(
        after_help = "Examples:\n  drscript sandbox status\n  drscript sandbox status --json | jq .environments.dr"
    )]
    Status(SandboxStatusArgs),
    /// Stop a running sandbox
    #[command(after_help = "Examples:\n  drscript sandbox down")]
    Down(SandboxDirArgs),
    /// Take parts of an environment down until `sandbox restore`: cluster (the API server),
    /// gateway, share (its file shares; needs `up --remote-shares`), region (all of them)
    #[command(
        after_help = "Examples:\n  drscript sandbox outage prod region\n  drscript sandbox outage prod cluster --hang\n  drscript sandbox outage prod gateway share\n  drscript sandbox restore prod"
    )]
    Outage(SandboxOutageArgs),
    /// End every outage of an environment: its servers answer again, as they were
    #[command(after_help = "Examples:\n  drscript sandbox restore prod")]
    Restore(SandboxRestoreArgs),
    /// Assign a Files data role to a principal on a storage account (a sandbox started with
    /// `--entra`): reader, contributor, or none to remove the assignment
    #[command(
        after_help = "Examples:\n  drscript sandbox role prod 5a6d0b1c-0000-4000-8000-0000000a0b01 reader\n  drscript sandbox role prod 5a6d0b1c-0000-4000-8000-0000000a0b01 none"
    )]
    Role(SandboxRoleArgs),
}

#[derive(Debug, Args)]
pub struct SandboxRoleArgs {
    #[command(flatten)]
    pub dir: SandboxDirArgs,
    /// The storage account (an environment's name with --remote-shares)
    pub account: String,
    /// The principal's object id (the `oid` of its tokens)
    pub principal: String,
    /// reader (Storage File Data Privileged Reader), contributor (Storage File Data Privileged
    /// Contributor), or none
    pub role: String,
}

#[derive(Debug, Args)]
pub struct SandboxOutageArgs {
    #[command(flatten)]
    pub dir: SandboxDirArgs,
    /// The environment
    pub env: String,
    /// cluster, gateway, share, region
    #[arg(required = true)]
    pub parts: Vec<String>,
    /// Accept connections and never answer (a black hole) instead of refusing them
    #[arg(long)]
    pub hang: bool,
}

#[derive(Debug, Args)]
pub struct SandboxRestoreArgs {
    #[command(flatten)]
    pub dir: SandboxDirArgs,
    /// The environment
    pub env: String,
}

#[derive(Debug, Args)]
pub struct SandboxDirArgs {
    /// The sandbox's folder (kubeconfig, drscript.toml, shares, state)
    #[arg(long, default_value = DEFAULT_SANDBOX_DIR, value_name = "DIR")]
    pub dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct SandboxUpArgs {
    #[command(flatten)]
    pub dir: SandboxDirArgs,
    /// Seconds a simulated pod takes to become ready
    #[arg(long, default_value_t = 2.0, value_name = "SECONDS")]
    pub start_delay: f64,
    /// Seconds a simulated pod takes to terminate
    #[arg(long, default_value_t = 1.0, value_name = "SECONDS")]
    pub stop_delay: f64,
    /// Shape the sandbox like a customer's config (environment names, namespaces, releases,
    /// replica counts, DNS records) so that its runbooks run against it unchanged
    #[arg(long, value_name = "FILE")]
    pub like: Option<PathBuf>,
    /// With --like: the environment that starts active [default: prod, else the first]
    #[arg(long, value_name = "NAME", requires = "like")]
    pub active: Option<String>,
    /// Inject faults: `kube=error:0.2,slow:200ms,reset:0.05;gateway=timeout:0.3,late:35s;files=range_error:0.1`
    /// (rates as 0.2 or 20%; see docs/reliability.md)
    #[arg(long, value_name = "SPEC")]
    pub faults: Option<String>,
    /// Seed of the faults' random choices and of the pods' start jitter, to reproduce a run
    /// [default: random with --faults (printed), else 0]
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Let the sandbox's DNS resolvers keep an answer up to SECONDS (capped by its TTL), as real
    /// resolvers do: a switch then shows resolvers that still answer the old value
    #[arg(long, value_name = "SECONDS", default_value = "0")]
    pub dns_cache: f64,
    /// Serve each environment's shares through an Azure Files emulator (the same folders on
    /// disk), so that `sandbox outage ENV share` can take them down
    #[arg(long)]
    pub remote_shares: bool,
    /// Microsoft Entra ID instead of keys: an Entra ID emulator (HTTPS token endpoint with a
    /// client secret, certificate and federated credential; an App Service managed-identity
    /// endpoint), Files emulators over HTTPS that take bearer tokens and refuse the account key,
    /// and a config that signs in with workload identity (see docs/sandbox.md)
    #[arg(long)]
    pub entra: bool,
    /// Start with an outage: ENV:PART[+PART...], e.g. `prod:region` or `prod:cluster+gateway`
    #[arg(long, value_name = "ENV:PARTS")]
    pub outage: Vec<String>,
    /// Make a workload's pods never become ready, e.g. `dr/ac-ac-runtime=CrashLoopBackOff`
    /// (or `ImagePullBackOff`): what a stuck DR start looks like. Repeatable
    #[arg(long, value_name = "ENV/WORKLOAD=REASON")]
    pub stuck: Vec<String>,
    /// ENV/WORKLOAD=MIN:MAX: a HorizontalPodAutoscaler on that workload (e.g.
    /// `dr/ac-ac-runtime=1:1`, as Adeptia's chart deploys autoscaling), kept by the sandbox's HPA
    /// controller. Repeatable
    #[arg(long, value_name = "ENV/WORKLOAD=MIN:MAX")]
    pub hpa: Vec<String>,
    /// Serve the Kubernetes APIs over plain HTTP without authentication, instead of HTTPS with a
    /// private CA, a rotating admin token (kubeconfig `exec` plugin) and a read-only `ENV-viewer`
    #[arg(long)]
    pub insecure_http: bool,
}

#[derive(Debug, Args)]
pub struct SandboxStatusArgs {
    #[command(flatten)]
    pub dir: SandboxDirArgs,
    /// Machine-readable output
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where the demo keeps its sandbox, runbooks and reports (cleared at the start)
    #[arg(long, default_value = ".drscript/demo", value_name = "DIR")]
    pub dir: PathBuf,
    /// Seconds a simulated pod takes to become ready
    #[arg(long, default_value_t = 0.5, value_name = "SECONDS")]
    pub start_delay: f64,
    /// Seconds a simulated pod takes to terminate
    #[arg(long, default_value_t = 0.5, value_name = "SECONDS")]
    pub stop_delay: f64,
}

pub const DEFAULT_SANDBOX_DIR: &str = ".drscript/sandbox";

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    pub shell: clap_complete::Shell,
}

/// Subcommand names, for telling `drscript SCRIPT` from `drscript COMMAND`.
pub fn is_subcommand(name: &str) -> bool {
    use clap::CommandFactory;
    name == "help"
        || Cli::command().get_subcommands().any(|c| c.get_name() == name || c.get_all_aliases().any(|a| a == name))
}

/// Global options that take a value (so that `drscript --config x failover.rhai` is understood).
const VALUE_OPTIONS: &[&str] = &["--config", "--log-format", "--log-file", "--state-dir", "--state", "--stdlib"];

/// Rewrites `drscript [GLOBALS] SCRIPT ARGS` into `drscript [GLOBALS] run SCRIPT ARGS`.
pub fn normalize_args(mut args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let mut i = 1;
    while i < args.len() {
        let Some(arg) = args[i].to_str() else { break };
        if VALUE_OPTIONS.contains(&arg) {
            i += 2;
            continue;
        }
        if arg.starts_with('-') {
            i += 1;
            continue;
        }
        if !is_subcommand(arg) {
            args.insert(i, "run".into());
        }
        break;
    }
    args
}
