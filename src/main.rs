//! The `natsim` command line: a thin shell over the library. Exit codes are defined in
//! [`natsim::exit`]: 0 success, 1 failing verdicts (invalid manifests, plan points over
//! target), 2 bad input or usage (also an output that cannot be written), 3 unmet
//! expectations, 4 invariant violation, 5 a run bound was hit.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use natsim::{exit, output};

/// `--jobs N`: at least one worker thread.
fn parse_jobs(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(0) => Err("0 worker threads cannot run anything; valid: 1 or more".to_owned()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!(
            "`{s}` is not a number of threads; valid: 1 or more"
        )),
    }
}

/// `--dataplane`: which dataplane a run drives, with the kernel's settings.
#[derive(clap::Args, Clone, Copy, Debug)]
struct DataplaneArgs {
    /// `model` (natsim's gateway) or `linux` (the kernel's NAT in a network namespace natsim
    /// creates; needs root, iproute2, nftables, conntrack; docs/linux.md).
    #[arg(long, value_enum, default_value_t = DataplaneKind::Model)]
    dataplane: DataplaneKind,
    #[command(flatten)]
    kernel: KernelArgs,
}

/// `--time-scale`, `--verdict-wait-us`: how the kernel dataplane runs (docs/linux.md, "Time").
#[derive(clap::Args, Clone, Copy, Debug)]
struct KernelArgs {
    /// Against the kernel: wall seconds per virtual second (conntrack timeouts scaled alike).
    #[arg(long, default_value_t = natsim::kernel::KernelSettings::default().time_scale)]
    time_scale: f64,
    /// Against the kernel: how long to wait for a packet's output before calling it dropped,
    /// in microseconds.
    #[arg(long, default_value_t = natsim::kernel::KernelSettings::default().verdict_wait_us)]
    verdict_wait_us: u64,
}

impl KernelArgs {
    fn target(self) -> natsim::check::Target {
        natsim::check::Target::Kernel(natsim::kernel::KernelSettings {
            time_scale: self.time_scale,
            verdict_wait_us: self.verdict_wait_us,
        })
    }
}

/// The dataplanes `--dataplane` names.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum DataplaneKind {
    /// natsim's own gateway (deterministic).
    Model,
    /// The Linux kernel's NAT.
    Linux,
}

impl DataplaneArgs {
    fn target(self) -> natsim::check::Target {
        match self.dataplane {
            DataplaneKind::Linux => self.kernel.target(),
            DataplaneKind::Model => natsim::check::Target::Real,
        }
    }
}

/// natsim: a deterministic testbed that verifies and plans cloud NAT gateways.
#[derive(Parser)]
#[command(name = "natsim", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one scenario in the simulator, checking every invariant on every event.
    Run {
        /// The scenario file (YAML, `kind: Scenario`).
        scenario: PathBuf,
        /// Override the scenario's seed.
        #[arg(long)]
        seed: Option<u64>,
        /// Write pcapng captures of the scenario's chosen links into this folder.
        #[arg(long)]
        pcap_dir: Option<PathBuf>,
        /// Write the JSON report to this file.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Every invariant must make at least one check; one that made none is an unmet
        /// expectation (exit 3) naming it.
        #[arg(long)]
        require_exercised: bool,
        #[command(flatten)]
        dataplane: DataplaneArgs,
    },
    /// Run every scenario in a folder and print one line per scenario (the CI job).
    Check {
        /// Folder of scenario files.
        #[arg(default_value = "scenarios")]
        dir: PathBuf,
        /// Also write JUnit XML for CI systems.
        #[arg(long)]
        junit: Option<PathBuf>,
        /// Every invariant must make at least one check in every scenario (exit 3 otherwise).
        #[arg(long)]
        require_exercised: bool,
        /// Check only shard K of N of the folder's files (0-based, round-robin in file order)
        /// and write its results to SHARD_OUT/check-K-of-N.json for `natsim merge`. Without
        /// it, JOB_COMPLETION_INDEX and NATSIM_SHARDS (both set) name the shard.
        #[arg(long, value_parser = natsim::shard::Shard::parse, conflicts_with = "junit")]
        shard: Option<natsim::shard::Shard>,
        /// Where a shard writes its result file.
        #[arg(long, default_value = "natsim-shards")]
        shard_out: PathBuf,
    },
    /// Swarm testing: generate a world per seed (random feature subsets, traffic, faults,
    /// control-plane changes), check every invariant, minimise failures to scenario files.
    Swarm {
        /// Seed range `A..B` (B excluded) or a single seed.
        #[arg(long, value_parser = natsim::swarm::cli::parse_seeds,
              required_unless_present_any = ["reproduce", "from_fuzz"])]
        seeds: Option<std::ops::Range<u64>>,
        /// Instead of generating: run one (minimised) scenario file against the gateway named by
        /// `--broken` (or the real one), as the header of a written failure says.
        #[arg(long, conflicts_with = "from_fuzz")]
        reproduce: Option<PathBuf>,
        /// Instead of generating: take a `sim_world` fuzz input (e.g. a crash file), run its
        /// world against the gateway named by `--broken` (or the real one), and on failure write
        /// the minimised scenario to `OUT/<file name>.yaml`.
        #[arg(long, conflicts_with = "seeds")]
        from_fuzz: Option<PathBuf>,
        /// Worker threads (1 or more); the printed results do not depend on it.
        #[arg(long, value_parser = parse_jobs)]
        jobs: Option<usize>,
        /// Where minimised failing scenarios are written.
        #[arg(long, default_value = "swarm-failures")]
        out: PathBuf,
        /// Testing aid: run against a deliberately broken gateway by name (see docs/swarm.md).
        #[arg(long)]
        broken: Option<String>,
        /// Run only shard K of N (0-based; seeds round-robin by position) and write its results
        /// to OUT/shards/swarm-K-of-N.json for `natsim merge`. Without it, JOB_COMPLETION_INDEX
        /// and NATSIM_SHARDS (both set) name the shard, as in a Kubernetes Indexed Job.
        #[arg(long, value_parser = natsim::shard::Shard::parse, conflicts_with_all = ["reproduce", "from_fuzz"])]
        shard: Option<natsim::shard::Shard>,
    },
    /// Merge the result files of every shard of a sharded run (`swarm`, `check` or `plan --shard K/N`) into the
    /// output the unsharded run gives, byte for byte, with its exit code. Exit 2 when a shard
    /// is missing or given twice, or the files come from different runs.
    Merge {
        /// Every shard's result file.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Worker threads for the work left to the merge (minimising failures); the output
        /// does not depend on it.
        #[arg(long, value_parser = parse_jobs)]
        jobs: Option<usize>,
        /// Merging `check` shards: also write JUnit XML, as `natsim check --junit` does.
        #[arg(long)]
        junit: Option<PathBuf>,
    },
    /// Print (or write) the JSON Schema of scenario files, for editors.
    Schema {
        /// Write to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Push a fixed set of flows through the gateway and print translations and drops.
    Demo {
        /// Behaviour profile: rfc, dpservice, gcp, aws, azure, linux.
        #[arg(long, default_value = "rfc")]
        profile: String,
    },
    /// Validate IronCore manifests (Network, NetworkInterface, VirtualIP, NATGateway); lists every
    /// error with file, line, object and field. Exit 1 on any error.
    Validate {
        /// Multi-document YAML manifest files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Reconcile manifests: print each NATGateway with its status and routing table as YAML.
    Reconcile {
        /// Multi-document YAML manifest files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Public address pool prefix (repeatable); defaults 203.0.113.0/24 and 2001:db8:ffff::/96.
        #[arg(long = "pool")]
        pools: Vec<ipnet::IpNet>,
    },
    /// Replay a pcap/pcapng capture through the gateway: translated inside and outside views,
    /// per-packet verdicts, a summary, and invariant checks (exit 4 on a violation).
    Replay {
        /// The capture file (pcap or pcapng).
        capture: PathBuf,
        /// Replay configuration (YAML); command-line options override it.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Output folder (default: `<capture stem>.replay`).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Inside prefix (repeatable; replaces the default RFC 1918 / 100.64/10 / fc00::/7).
        #[arg(long)]
        inside: Vec<ipnet::IpNet>,
        /// Behaviour profile: rfc, dpservice, gcp, aws, azure, linux.
        #[arg(long)]
        profile: Option<String>,
        /// Replay under several profiles (`all`, or a comma-separated list) and print where
        /// their verdicts diverge; one output folder per profile plus profiles.json.
        #[arg(long, value_name = "all|LIST", conflicts_with = "profile")]
        profiles: Option<String>,
        /// Recompute checksums on ingest (captures taken with checksum offload).
        #[arg(long)]
        fix_checksums: bool,
        /// Replay speed factor (2 = twice as fast as captured).
        #[arg(long)]
        speed: Option<f64>,
        /// Also write per-packet verdicts as JSON lines.
        #[arg(long)]
        verdicts: bool,
        /// Testing aid: replay against a deliberately broken gateway by name, as
        /// `natsim swarm --broken` takes it (see docs/replay.md); the checks should fail.
        #[arg(long, value_name = "NAME")]
        broken: Option<String>,
        /// Accept a capture that ends early (truncated or corrupt after some packets): replay
        /// what was read and exit 0. Without it such a capture exits 2.
        #[arg(long)]
        allow_truncated: bool,
        #[command(flatten)]
        dataplane: DataplaneArgs,
    },
    /// Run a scenario or replay a capture through natsim's model (profile `linux` unless told
    /// otherwise) and through the Linux kernel's NAT, and compare the verdicts packet by packet
    /// (docs/linux.md). Exit 0 when every packet agrees, 1 when they differ, 2 on bad input or
    /// when the kernel cannot be driven (needs root, iproute2, nftables, conntrack).
    Diff {
        /// A scenario file (`.yaml`) or a capture (pcap, pcapng).
        input: PathBuf,
        /// Override the scenario's seed.
        #[arg(long)]
        seed: Option<u64>,
        /// The model's behaviour profile.
        #[arg(long, default_value = "linux")]
        profile: String,
        /// Write the JSON report to this file.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Replay configuration for a capture (YAML, as `natsim replay --config`).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Output folder of a capture's replays (`model/`, `linux/`).
        #[arg(long)]
        out: Option<PathBuf>,
        /// The capture was written by `natsim run --dataplane linux --pcap-dir`: compare the
        /// model with the kernel verdicts recorded in its packet comments (no kernel needed).
        #[arg(long)]
        recorded: bool,
        /// Also print up to N (at most 20) of the records whose verdicts differ.
        #[arg(long, default_value_t = 0)]
        show: usize,
        #[command(flatten)]
        kernel: KernelArgs,
    },
    /// Delete network namespaces left behind by natsim runs against the kernel that were
    /// killed (names starting with `natsim-`).
    KernelCleanup,
    /// Capacity planning: evaluate a plan file and write report.md, report.json and SVG plots.
    Plan {
        /// The plan file (YAML).
        plan: PathBuf,
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
        /// Worker threads (1 or more; default: all cores); results do not depend on it.
        #[arg(long, value_parser = parse_jobs)]
        jobs: Option<usize>,
        /// Analytic answers only (skip the simulated run of every point).
        #[arg(long)]
        no_sim: bool,
        /// Simulate only shard K of N of the points (0-based, round-robin in sweep order) and
        /// write what they measured to OUT/shards/plan-K-of-N.json for `natsim merge`. Without
        /// it, JOB_COMPLETION_INDEX and NATSIM_SHARDS (both set) name the shard.
        #[arg(long, value_parser = natsim::shard::Shard::parse, conflicts_with = "no_sim")]
        shard: Option<natsim::shard::Shard>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(code) => code,
        Err(e) => exit::code(output::print_error(&format_args!("{e:#}"))),
    }
}

fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Run {
            scenario,
            seed,
            pcap_dir,
            json,
            require_exercised,
            dataplane,
        } => Ok(natsim::scenario::cli::run_cmd(
            &scenario,
            seed,
            pcap_dir.as_deref(),
            json.as_deref(),
            require_exercised,
            dataplane.target(),
        )
        .into()),
        Command::Check {
            dir,
            junit,
            require_exercised,
            shard,
            shard_out,
        } => {
            let shard = match shard {
                Some(s) => Some(s),
                None if junit.is_none() => {
                    natsim::shard::Shard::from_env().map_err(anyhow::Error::msg)?
                }
                None => None,
            };
            Ok(match shard {
                Some(s) => natsim::scenario::check_shard::check_shard_cmd(
                    &dir,
                    require_exercised,
                    s,
                    &shard_out,
                ),
                None => natsim::scenario::cli::check_cmd(&dir, junit.as_deref(), require_exercised),
            }
            .into())
        }
        Command::Swarm {
            seeds,
            reproduce,
            from_fuzz,
            jobs,
            out,
            broken,
            shard,
        } => Ok(match (reproduce, from_fuzz, seeds) {
            (Some(file), _, _) => natsim::swarm::cli::reproduce_cmd(&file, broken.as_deref()),
            (None, Some(input), _) => {
                natsim::swarm::from_fuzz::from_fuzz_cmd(&input, broken.as_deref(), &out)
            }
            (None, None, Some(seeds)) => {
                let shard = match shard.map_or_else(natsim::shard::Shard::from_env, |s| Ok(Some(s)))
                {
                    Ok(s) => s,
                    Err(e) => anyhow::bail!(e),
                };
                natsim::swarm::cli::swarm_cmd(seeds, jobs, &out, broken.as_deref(), shard)
            }
            (None, None, None) => {
                anyhow::bail!("give --seeds A..B, --reproduce FILE or --from-fuzz FILE")
            }
        }
        .into()),
        Command::Merge { files, jobs, junit } => {
            let first = files.first().map(|f| natsim::shard::read_header(f));
            let command = match first {
                Some(Ok(h)) => h.command,
                Some(Err(e)) => anyhow::bail!(e),
                None => anyhow::bail!("give every shard's result file"),
            };
            Ok(match command.as_str() {
                natsim::scenario::check_shard::COMMAND => {
                    natsim::scenario::check_shard::merge_cmd(&files, junit.as_deref())
                }
                natsim::swarm::shard::COMMAND if junit.is_none() => {
                    natsim::swarm::shard::merge_cmd(
                        &files,
                        jobs.unwrap_or_else(|| {
                            std::thread::available_parallelism().map_or(1, |n| n.get())
                        }),
                    )
                }
                natsim::plan::shard::COMMAND if junit.is_none() => natsim::plan::shard::merge_cmd(
                    &files,
                    jobs.unwrap_or_else(|| {
                        std::thread::available_parallelism().map_or(1, |n| n.get())
                    }),
                ),
                natsim::swarm::shard::COMMAND | natsim::plan::shard::COMMAND => {
                    anyhow::bail!(
                        "--junit is for merging `check` shards; these are `{command}` shards"
                    )
                }
                other => anyhow::bail!(
                    "{}: shards of `{other}`, which natsim cannot merge; valid: check, plan, swarm",
                    files[0].display()
                ),
            }
            .into())
        }
        Command::Schema { out } => Ok(natsim::scenario::cli::schema_cmd(out.as_deref()).into()),
        Command::Demo { profile } => {
            let text = natsim::demo::run(&profile).map_err(anyhow::Error::msg)?;
            Ok(exit::code(output::print_all(exit::OK, &text)))
        }
        Command::Validate { files } => Ok(natsim::api::cli::validate(&files)),
        Command::Reconcile { files, pools } => Ok(natsim::api::cli::reconcile(&files, &pools)),
        Command::Replay {
            capture,
            config,
            out,
            inside,
            profile,
            profiles,
            fix_checksums,
            speed,
            verdicts,
            broken,
            allow_truncated,
            dataplane,
        } => {
            let kernel = dataplane.target();
            let options = natsim::replay::cli::ReplayCliOptions {
                kernel: (!kernel.reproducible()).then_some(kernel),
                out,
                inside,
                profile,
                profiles,
                fix_checksums,
                speed,
                verdicts,
                broken,
                allow_truncated,
            };
            // Refuse an unusable output folder before reading the capture.
            if let Some(dir) = &options.out {
                output::check_output_dir(dir)?;
            }
            let code = natsim::replay::cli::replay_cmd(&capture, config.as_deref(), options)?;
            Ok(exit::code(code))
        }
        Command::Diff {
            input,
            seed,
            profile,
            json,
            config,
            out,
            recorded,
            show,
            kernel,
        } => {
            let options = natsim::diff::cli::DiffOptions {
                seed,
                profile,
                json,
                config,
                out,
                recorded,
                show,
                kernel: kernel.target(),
            };
            Ok(natsim::diff::cli::diff_cmd(&input, &options).into())
        }
        Command::KernelCleanup => {
            let deleted = natsim::kernel::cleanup_all()?;
            println!(
                "deleted {} namespace(s){}",
                deleted.len(),
                if deleted.is_empty() {
                    String::new()
                } else {
                    format!(": {}", deleted.join(", "))
                }
            );
            Ok(exit::code(exit::OK))
        }
        Command::Plan {
            plan,
            out,
            jobs,
            no_sim,
            shard,
        } => {
            // Refuse an unusable output folder before minutes of simulation.
            output::check_output_dir(&out)?;
            let shard = match shard {
                Some(s) => Some(s),
                None if !no_sim => natsim::shard::Shard::from_env().map_err(anyhow::Error::msg)?,
                None => None,
            };
            if let Some(s) = shard {
                let simulate: natsim::plan::run::SimulateFn<'_> = &natsim::plan::simulate::simulate;
                return Ok(
                    natsim::plan::shard::plan_shard_cmd(&plan, &out, jobs, s, simulate).into(),
                );
            }
            let outcome = if no_sim {
                natsim::plan::plan_cmd_no_sim(&plan, &out, jobs)?
            } else {
                natsim::plan::plan_cmd(&plan, &out, jobs)?
            };
            Ok(exit::code(natsim::plan::shard::print_outcome(
                &outcome, &out,
            )))
        }
    }
}
