//! From the command line to a result: validate flags into options, dispatch, map errors to exit
//! codes. The only place that prints errors.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use clap::{CommandFactory, Parser};
use tokio_util::sync::CancellationToken;

use crate::cli::{self, Cli, Command};
use crate::logging::{self, LogOptions};
use crate::output::out;
use crate::{docs, output, repl};
use drscript_base::error::{Error, Result};
use drscript_core::config::Config;
use drscript_core::exec::{Mode, Prompting};
use drscript_core::prompt::Acks;
use drscript_core::runner::{self, RunOptions};

pub fn main() -> i32 {
    let args = cli::normalize_args(std::env::args_os().collect());
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { drscript_base::error::exit::BAD_INPUT } else { 0 };
        }
    };
    let color = !cli.global.no_color && std::io::stderr().is_terminal();
    let verbosity = if cli.global.quiet { -1 } else { cli.global.verbose.min(3) as i8 };
    if let Err(e) = logging::init(&LogOptions {
        format: cli.global.log_format,
        file: cli.global.log_file.clone(),
        verbosity,
        color,
    }) {
        return report_error(&e);
    }
    drscript_core::observer::install(std::sync::Arc::new(crate::view::Observer::default()));
    if matches!(
        cli.command,
        Command::Run(_)
            | Command::Resume(_)
            | Command::Repl(_)
            | Command::Plan(_)
            | Command::Demo(_)
            | Command::Sync(_)
    ) {
        install_ctrl_c();
    }
    match dispatch(cli, arm_cancel()) {
        Ok(()) => 0,
        Err(e) => report_error(&e),
    }
}

fn report_error(e: &Error) -> i32 {
    let text = e.to_string();
    let text = if text.starts_with("error:") { text } else { format!("error: {text}") };
    output::err(&text);
    e.exit_code()
}

static PRESSES: AtomicUsize = AtomicUsize::new(0);
static CURRENT: Mutex<Option<CancellationToken>> = Mutex::new(None);

/// A fresh token that the next Ctrl-C cancels (the REPL arms one per input).
pub fn arm_cancel() -> CancellationToken {
    let token = CancellationToken::new();
    *CURRENT.lock().unwrap_or_else(|e| e.into_inner()) = Some(token.clone());
    PRESSES.store(0, Ordering::SeqCst);
    token
}

/// First Ctrl-C: stop at the next safe point (between operations, or out of a wait). Second:
/// leave at once.
fn install_ctrl_c() {
    let _ = ctrlc::set_handler(move || {
        if PRESSES.fetch_add(1, Ordering::SeqCst) == 0 {
            crate::view::say("\nstopping at the next safe point (press Ctrl-C again to abort at once)");
            if let Some(token) = CURRENT.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
                token.cancel();
            }
        } else {
            std::process::exit(130);
        }
    });
}

fn dispatch(cli: Cli, cancel: CancellationToken) -> Result<()> {
    let global = &cli.global;
    let (config, config_required) = match &global.config {
        Some(path) => (Some(path.clone()), true),
        None => (Some(PathBuf::from("drscript.toml")), false),
    };
    let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    let base = |script: PathBuf, mode: Mode, yes: bool, vars: BTreeMap<String, String>| RunOptions {
        script,
        config: config.clone(),
        config_required,
        mode,
        prompting: Prompting { assume_yes: yes, interactive, acks: Default::default() },
        vars,
        state_dir: global.state_dir.clone(),
        stdlib_dir: global.stdlib.clone(),
        skip_rehearsal: false,
        local_state: global.state == cli::StateChoice::Local,
    };
    match cli.command {
        Command::Run(args) => {
            let mode = if args.dry_run { Mode::DryRun } else { Mode::Live };
            let mut options = base(args.script, mode, args.yes, parse_vars(&args.vars)?);
            options.skip_rehearsal = args.skip_rehearsal;
            options.prompting.acks = Acks { texts: args.acks, all: args.ack_all_manual };
            runner::run(&options, cancel).map(drop)
        }
        Command::Plan(args) => {
            let options = base(args.script, Mode::Plan, true, parse_vars(&args.vars)?);
            let outcome = runner::plan(&options, cancel)?;
            out(&outcome.plan.unwrap_or_default());
            Ok(())
        }
        Command::Init(args) => crate::init::run(&args.dir, args.force),
        Command::Check(args) => check(&args.scripts, global.config.as_deref(), global.stdlib.clone()),
        Command::Status(args) => {
            let config = runner::load_config(config.as_deref(), true)?.ok_or_else(|| Error::Config {
                message: "status needs a config: pass --config FILE or create ./drscript.toml".to_string(),
            })?;
            let options = crate::status::StatusOptions {
                json: args.json,
                watch: args.watch.map(|w| seconds(w.max(0.5), "--watch")).transpose()?,
                openmetrics: args.openmetrics,
                budget: drscript_core::site::Budget(seconds(args.timeout, "--timeout")?),
                color: !global.no_color && std::io::stdout().is_terminal(),
            };
            let state_dir = configured_state_dir(&config, &global.state_dir);
            let shared = shared_state(Some(&config), global.state)?;
            if crate::status::status(&config, &state_dir, shared.as_ref(), &options)? {
                Ok(())
            } else {
                Err(Error::Unhealthy)
            }
        }
        Command::Unlock(args) => {
            let config = runner::load_config(config.as_deref(), true)?;
            let shared = shared_state(config.as_deref(), cli::StateChoice::Shared)?.ok_or_else(|| {
                Error::Usage(
                    "unlock breaks the shared lock of `[state]`, and the config names no shared state; a local lock whose process is gone is taken over by the next run".to_string(),
                )
            })?;
            out(&format!("{}\n", shared.unlock(args.force)?));
            Ok(())
        }
        Command::Runs(args) => {
            let config = runner::load_config(config.as_deref(), config_required)?;
            let state_dir = match &config {
                Some(c) => configured_state_dir(c, &global.state_dir),
                None => global.state_dir.clone(),
            };
            let shared = shared_state(config.as_deref(), global.state)?;
            crate::status::runs(&state_dir, shared.as_ref(), args.json)
        }
        Command::Resume(args) => {
            let mut options = base(PathBuf::new(), Mode::Live, args.yes, BTreeMap::new());
            options.prompting.acks = Acks { texts: args.acks, all: args.ack_all_manual };
            runner::resume(args.run_id.as_deref(), &options, args.force, cancel).map(drop)
        }
        Command::Repl(args) => {
            let mode = match (args.plan, args.live) {
                (true, _) => Mode::Plan,
                (_, true) => Mode::Live,
                _ => Mode::DryRun,
            };
            let options = base(PathBuf::new(), mode, args.yes, BTreeMap::new());
            repl::run(&options)
        }
        Command::Docs(args) => docs::run(&args, global.stdlib.clone()),
        Command::Sync(args) => {
            let config = runner::load_config(config.as_deref(), config_required)?;
            crate::sync_cmd::run_cli(&args, config.as_deref()).map(drop)
        }
        Command::Sandbox(command) => sandbox(command),
        Command::Demo(args) => crate::demo::run(
            &crate::demo::DemoOptions {
                dir: args.dir,
                start_delay: seconds(args.start_delay, "--start-delay")?,
                stop_delay: seconds(args.stop_delay, "--stop-delay")?,
            },
            cancel,
        ),
        Command::Completions(args) => {
            let mut command = Cli::command();
            let mut buffer = Vec::new();
            clap_complete::generate(args.shell, &mut command, "drscript", &mut buffer);
            out(&String::from_utf8_lossy(&buffer));
            Ok(())
        }
    }
}

/// The config's shared state, unless `--state local`.
fn shared_state(config: Option<&Config>, choice: cli::StateChoice) -> Result<Option<drscript_core::shared::Shared>> {
    match (config, choice) {
        (Some(config), cli::StateChoice::Shared) => drscript_core::shared::Shared::open(config),
        _ => Ok(None),
    }
}

/// The state directory: `--state-dir`, else the config's `settings.state_dir`, else the default.
fn configured_state_dir(config: &Config, flag: &Path) -> PathBuf {
    match &config.settings.state_dir {
        Some(dir) if flag == Path::new(cli::DEFAULT_STATE_DIR) => dir.clone(),
        _ => flag.to_path_buf(),
    }
}

fn seconds(value: f64, flag: &str) -> Result<std::time::Duration> {
    if value.is_finite() && value >= 0.0 {
        Ok(std::time::Duration::from_secs_f64(value))
    } else {
        Err(Error::Usage(format!("{flag} {value}: expected a number of seconds ≥ 0")))
    }
}

fn sandbox(command: cli::SandboxCommand) -> Result<()> {
    use drscript_sandbox::SandboxOptions;
    match command {
        cli::SandboxCommand::Up(args) => {
            let mut options = SandboxOptions { databases: true, ..SandboxOptions::default() };
            options.delays.start = seconds(args.start_delay, "--start-delay")?;
            options.delays.terminate = seconds(args.stop_delay, "--stop-delay")?;
            let mut like_entra = false;
            if let Some(path) = &args.like {
                let config = Config::load(path)?;
                let shape = crate::sandbox_like::shape_of(&config, args.active.as_deref())?;
                options.environments.clone_from(&shape.order);
                options.like = Some(shape);
                // A customer whose shares take Entra ID tokens rehearses on shares that refuse keys.
                like_entra = config
                    .environments
                    .values()
                    .flat_map(|e| e.shares.values())
                    .any(|s| s.auth == Some(drscript_core::config::ShareAuth::Entra));
                if like_entra && !args.entra {
                    output::err(&format!(
                        "{}'s shares use Entra ID (auth = \"entra\"): the sandbox serves them as an account that refuses keys (--entra --remote-shares)\n",
                        path.display()
                    ));
                }
            }
            if let Some(spec) = &args.faults {
                options.faults = Some(spec.parse()?);
                options.seed = rand::random();
            }
            options.seed = args.seed.unwrap_or(options.seed);
            options.dns_cache = seconds(args.dns_cache, "--dns-cache")?;
            options.remote_shares = args.remote_shares || like_entra;
            options.entra = args.entra || like_entra;
            for spec in &args.outage {
                let (env, parts) = spec.split_once(':').ok_or_else(|| {
                    Error::Usage(format!("--outage {spec}: expected ENV:PART[+PART], e.g. prod:region"))
                })?;
                let mut list = Vec::new();
                for part in parts.split(['+', ',']) {
                    list.extend(drscript_sandbox::outage::Part::parse_all(part)?);
                }
                if list.contains(&drscript_sandbox::outage::Part::Share) {
                    options.remote_shares = true;
                }
                options.outages.push((env.to_string(), list));
            }
            options.stuck = args.stuck.iter().map(|s| s.parse()).collect::<Result<_>>()?;
            options.hpa = args.hpa.iter().map(|s| s.parse()).collect::<Result<_>>()?;
            options.kube_tls = !args.insecure_http;
            drscript_sandbox::cli_up(&args.dir.dir, options, output::err)
        }
        cli::SandboxCommand::Status(args) => {
            output::out(&drscript_sandbox::cli_status(&args.dir.dir, args.json)?);
            Ok(())
        }
        cli::SandboxCommand::Down(args) => drscript_sandbox::cli_down(&args.dir).map(|said| output::err(&said)),
        cli::SandboxCommand::Outage(args) => {
            drscript_sandbox::cli_outage(&args.dir.dir, &args.env, &args.parts, args.hang, false)
                .map(|said| output::err(&said))
        }
        cli::SandboxCommand::Restore(args) => {
            drscript_sandbox::cli_outage(&args.dir.dir, &args.env, &[], false, true).map(|said| output::err(&said))
        }
        cli::SandboxCommand::Role(args) => {
            drscript_sandbox::cli_role(&args.dir.dir, &args.account, &args.principal, &args.role)
                .map(|said| output::err(&said))
        }
    }
}

fn parse_vars(raw: &[String]) -> Result<BTreeMap<String, String>> {
    raw.iter()
        .map(|kv| {
            let (k, v) = kv.split_once('=').ok_or_else(|| Error::Usage(format!("--var {kv}: expected KEY=VALUE")))?;
            if k.is_empty() {
                return Err(Error::Usage(format!("--var {kv}: the key is empty")));
            }
            Ok((k.to_string(), v.to_string()))
        })
        .collect()
}

/// `drscript check`: compile and lint scripts, validate a config; no network, no secrets read.
fn check(scripts: &[PathBuf], config: Option<&Path>, stdlib: Option<PathBuf>) -> Result<()> {
    if scripts.is_empty() && config.is_none() {
        return Err(Error::Usage("check: name at least one script, or a config with --config FILE".to_string()));
    }
    let mut failures = Vec::new();
    if let Some(path) = config {
        match Config::load(path) {
            Ok(c) => out(&format!(
                "ok  {} ({} environment(s): {})\n",
                path.display(),
                c.environments.len(),
                c.environments.keys().cloned().collect::<Vec<_>>().join(", ")
            )),
            Err(e) => failures.push(e.to_string()),
        }
    }
    let runtime = runner::runtime()?;
    for script in scripts {
        let options = RunOptions {
            script: script.clone(),
            config: None,
            config_required: false,
            mode: Mode::Plan,
            prompting: Prompting { assume_yes: true, ..Default::default() },
            vars: BTreeMap::new(),
            state_dir: PathBuf::from(cli::DEFAULT_STATE_DIR),
            stdlib_dir: stdlib.clone(),
            skip_rehearsal: true,
            local_state: true,
        };
        match runner::prepare(&options, runtime.handle()) {
            Ok(prepared) => {
                for warning in prepared.switch_warnings() {
                    out(&format!("{warning}\n"));
                }
                out(&format!("ok  {}\n", script.display()));
            }
            Err(e) => failures.push(e.to_string()),
        }
    }
    if failures.is_empty() { Ok(()) } else { Err(Error::Compile { rendered: failures.join("\n\n") }) }
}
