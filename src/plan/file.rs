//! Plan files: `apiVersion: natsim.dev/v1`, `kind: Plan`, YAML. Parsing, validation and sweep
//! expansion; every error names the file, the line and column, and the field.
//!
//! One file (about 850 lines): the plan file's raw shapes and the function that turns them into
//! a [`Plan`] are read together, each field next to its check.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use serde_saphyr::Spanned;

use thiserror::Error;

use super::params::{Family, PointParams, SimulationParams};
use super::plot::Metric;
use super::settings::{Origin, Param, ParamError, Settings, Value, format_number};
use super::sweep::{Sweep, arithmetic_range, expand, geometric_range};

/// The only `apiVersion` this module reads.
pub const API_VERSION: &str = "natsim.dev/v1";
/// The only `kind` this module reads.
pub const KIND: &str = "Plan";
/// Default practical-significance floor when comparing analytic and simulated blocking: the
/// simulation's 95 % intervals decide, and differences below this are never flagged.
pub const DEFAULT_TOLERANCE_BLOCKING: f64 = 0.0;

/// Why a plan could not be loaded.
#[derive(Debug, Error)]
pub enum PlanError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The YAML is malformed or does not fit the schema (unknown or duplicate field, wrong type).
    #[error("{source_name}:{line}:{column}: {}{message}", field_prefix(.field.as_deref()))]
    Syntax {
        /// The file name.
        source_name: String,
        /// 1-based line (0 if unknown).
        line: u64,
        /// 1-based column (0 if unknown).
        column: u64,
        /// Dotted path of the field at that line, when it can be read off the indentation.
        field: Option<String>,
        /// serde-saphyr's message.
        message: String,
    },
    /// A value is well-formed but not allowed.
    #[error("{source_name}:{line}:{column}: {field}: {message}")]
    Invalid {
        /// The file name.
        source_name: String,
        /// 1-based line (0 if unknown).
        line: u64,
        /// 1-based column (0 if unknown).
        column: u64,
        /// Dotted path of the field.
        field: String,
        /// What is wrong.
        message: String,
    },
}

fn field_prefix(field: Option<&str>) -> String {
    field.map(|f| format!("{f}: ")).unwrap_or_default()
}

/// A YAML scalar kept as text, so each parameter can type-check it with its own rules and the
/// error can carry the value's line. `.1` is true when YAML gave it as a string (quoted, or a
/// plain word): a number written in quotes (`"0.5"`) is then refused for a numeric parameter,
/// as Kubernetes would refuse it, instead of being read as the number.
#[derive(Clone, Debug, PartialEq)]
struct Scalar(String, bool);

impl Scalar {
    /// The value as `param`'s type.
    fn typed(&self, param: Param) -> Result<Value, String> {
        let value = param.parse_value(&self.0)?;
        if self.1 && matches!(value, Value::Num(_)) {
            return Err(format!(
                "expected a number, got the string \"{}\" (write numbers without quotes)",
                self.0
            ));
        }
        Ok(value)
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ScalarVisitor;
        impl Visitor<'_> for ScalarVisitor {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number or a word")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string(), false))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string(), false))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string(), false))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar(format_number(v), false))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string(), true))
            }
        }
        deserializer.deserialize_any(ScalarVisitor)
    }
}

type Field = Spanned<Scalar>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanDoc {
    #[serde(rename = "apiVersion")]
    api_version: Spanned<String>,
    kind: Spanned<String>,
    metadata: MetadataDoc,
    #[serde(default)]
    seed: Option<u64>,
    fleet: FleetDoc,
    gateway: GatewayDoc,
    target: TargetDoc,
    #[serde(default)]
    sweep: Vec<SweepDoc>,
    #[serde(default)]
    simulation: Option<SimulationDoc>,
    #[serde(default)]
    report: Option<ReportDoc>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MetadataDoc {
    name: String,
    #[serde(default)]
    description: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FleetDoc {
    nics: Field,
    traffic: TrafficDoc,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TrafficDoc {
    flow_rate_per_s: Field,
    flow_duration: DurationDoc,
    #[serde(default)]
    close_fraction: Option<Field>,
    #[serde(default)]
    destinations: Option<DestinationsDoc>,
    protocol_mix: MixDoc,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DurationDoc {
    #[serde(default)]
    dist: Option<Field>,
    mean_s: Field,
    #[serde(default)]
    pareto_shape: Option<Field>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DestinationsDoc {
    count: Field,
    #[serde(default)]
    zipf_s: Option<Field>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MixDoc {
    #[serde(default)]
    tcp: Option<Field>,
    #[serde(default)]
    udp: Option<Field>,
    #[serde(default)]
    icmp: Option<Field>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GatewayDoc {
    #[serde(default)]
    rules: Option<Field>,
    #[serde(default)]
    ports_per_nic: Option<Field>,
    #[serde(default)]
    ips: Option<Field>,
    #[serde(default)]
    ip_families: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    profile: Option<Field>,
    #[serde(default)]
    limit_scope: Option<Field>,
    #[serde(default)]
    timers: Option<TimersDoc>,
    #[serde(default)]
    quirks: Option<QuirksDoc>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TimersDoc {
    #[serde(default)]
    udp_idle_s: Option<Field>,
    #[serde(default)]
    tcp_established_idle_s: Option<Field>,
    #[serde(default)]
    tcp_transitory_idle_s: Option<Field>,
    #[serde(default)]
    icmp_idle_s: Option<Field>,
    #[serde(default)]
    tcp_close_hold_s: Option<Field>,
    #[serde(default)]
    udp_hold_s: Option<Field>,
    #[serde(default)]
    icmp_hold_s: Option<Field>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QuirksDoc {
    #[serde(default)]
    exclusive_block_end: Option<Field>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetDoc {
    blocking_max: Field,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SweepDoc {
    param: Spanned<String>,
    #[serde(default)]
    values: Option<Vec<Field>>,
    #[serde(default)]
    from: Option<Spanned<f64>>,
    #[serde(default)]
    to: Option<f64>,
    #[serde(default)]
    step: Option<f64>,
    #[serde(default)]
    factor: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SimulationDoc {
    #[serde(default)]
    duration_s: Option<Spanned<f64>>,
    #[serde(default)]
    warmup_s: Option<Spanned<f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportDoc {
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    tolerance_blocking: Option<Spanned<f64>>,
    #[serde(default)]
    plots: Vec<PlotDoc>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlotDoc {
    file: Spanned<String>,
    #[serde(default)]
    title: Option<String>,
    x: Spanned<String>,
    y: Spanned<String>,
    #[serde(default)]
    series: Option<Spanned<String>>,
    #[serde(default)]
    log_x: bool,
    #[serde(default)]
    log_y: bool,
    #[serde(default)]
    filter: BTreeMap<String, Field>,
}

/// One plot to draw.
#[derive(Clone, Debug, PartialEq)]
pub struct PlotSpec {
    /// Output file name (`*.svg`, no directories).
    pub file: String,
    /// Title.
    pub title: String,
    /// Swept numeric parameter on the x axis.
    pub x: Param,
    /// Metric on the y axis.
    pub y: Metric,
    /// Swept parameter whose values become one line each.
    pub series: Option<Param>,
    /// log₂ x axis.
    pub log_x: bool,
    /// log₁₀ y axis.
    pub log_y: bool,
    /// Only points whose coordinates equal these values (parameter path → value text).
    pub filter: Vec<(Param, String)>,
}

/// Report settings.
#[derive(Clone, Debug, PartialEq)]
pub struct ReportSpec {
    /// Report title.
    pub title: String,
    /// Largest |analytic − simulated| fleet blocking still counted as agreement.
    pub tolerance_blocking: f64,
    /// Plots, in file order.
    pub plots: Vec<PlotSpec>,
}

/// A loaded, validated and expanded plan.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Where the plan came from, as given (used in messages and the report header).
    pub source_name: String,
    /// `metadata.name`.
    pub name: String,
    /// `metadata.description`.
    pub description: String,
    /// Plan seed (default 1); each point's seed derives from it.
    pub seed: u64,
    /// Sweep axes, in file order.
    pub sweeps: Vec<Sweep>,
    /// Report settings.
    pub report: ReportSpec,
    /// Expanded points, in sweep order.
    pub points: Vec<PointParams>,
}

impl Plan {
    /// Reads and validates the plan at `path`.
    pub fn load(path: &Path) -> Result<Plan, PlanError> {
        let text = std::fs::read_to_string(path).map_err(|source| PlanError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Plan::parse(&text, &path.display().to_string())
    }

    /// Parses and validates plan text; `source_name` names it in errors.
    pub fn parse(text: &str, source_name: &str) -> Result<Plan, PlanError> {
        let doc: PlanDoc = crate::yaml::from_str(text).map_err(|e| PlanError::Syntax {
            source_name: source_name.to_string(),
            line: e.line,
            column: e.column,
            field: e.field,
            message: e.message,
        })?;
        let invalid = |e: ParamError| PlanError::Invalid {
            source_name: source_name.to_string(),
            line: e.origin.line,
            column: e.origin.column,
            field: e.field,
            message: e.message,
        };
        build(doc, source_name).map_err(invalid)
    }

    /// The sweep over `param`, if any.
    pub fn sweep(&self, param: Param) -> Option<&Sweep> {
        self.sweeps.iter().find(|s| s.param == param)
    }
}

fn err(field: &str, origin: Origin, message: impl Into<String>) -> ParamError {
    ParamError {
        field: field.to_string(),
        origin,
        message: message.into(),
    }
}

fn origin_of<T>(spanned: &Spanned<T>) -> Origin {
    Origin::of(&spanned.referenced)
}

/// Type-checks one field and stores it.
fn put(settings: &mut Settings, param: Param, field: Option<&Field>) -> Result<(), ParamError> {
    if let Some(field) = field {
        let origin = origin_of(field);
        let value = field
            .value
            .typed(param)
            .map_err(|message| err(param.path(), origin, message))?;
        settings.set(param, value, origin);
    }
    Ok(())
}

fn build(doc: PlanDoc, source_name: &str) -> Result<Plan, ParamError> {
    if doc.api_version.value != API_VERSION {
        return Err(err(
            "apiVersion",
            origin_of(&doc.api_version),
            format!("expected `{API_VERSION}`, got `{}`", doc.api_version.value),
        ));
    }
    if doc.kind.value != KIND {
        return Err(err(
            "kind",
            origin_of(&doc.kind),
            format!("expected `{KIND}`, got `{}`", doc.kind.value),
        ));
    }

    let mut s = Settings::default();
    let traffic = &doc.fleet.traffic;
    put(&mut s, Param::Nics, Some(&doc.fleet.nics))?;
    put(&mut s, Param::FlowRate, Some(&traffic.flow_rate_per_s))?;
    put(
        &mut s,
        Param::DurationDist,
        traffic.flow_duration.dist.as_ref(),
    )?;
    put(
        &mut s,
        Param::DurationMean,
        Some(&traffic.flow_duration.mean_s),
    )?;
    put(
        &mut s,
        Param::ParetoShape,
        traffic.flow_duration.pareto_shape.as_ref(),
    )?;
    put(
        &mut s,
        Param::CloseFraction,
        traffic.close_fraction.as_ref(),
    )?;
    if let Some(d) = &traffic.destinations {
        put(&mut s, Param::Destinations, Some(&d.count))?;
        put(&mut s, Param::ZipfS, d.zipf_s.as_ref())?;
    }
    put(&mut s, Param::MixTcp, traffic.protocol_mix.tcp.as_ref())?;
    put(&mut s, Param::MixUdp, traffic.protocol_mix.udp.as_ref())?;
    put(&mut s, Param::MixIcmp, traffic.protocol_mix.icmp.as_ref())?;
    let gw = &doc.gateway;
    put(&mut s, Param::Rules, gw.rules.as_ref())?;
    put(&mut s, Param::PortsPerNic, gw.ports_per_nic.as_ref())?;
    put(&mut s, Param::Ips, gw.ips.as_ref())?;
    put(&mut s, Param::Profile, gw.profile.as_ref())?;
    put(&mut s, Param::LimitScope, gw.limit_scope.as_ref())?;
    if let Some(t) = &gw.timers {
        put(&mut s, Param::UdpIdle, t.udp_idle_s.as_ref())?;
        put(
            &mut s,
            Param::TcpEstablishedIdle,
            t.tcp_established_idle_s.as_ref(),
        )?;
        put(
            &mut s,
            Param::TcpTransitoryIdle,
            t.tcp_transitory_idle_s.as_ref(),
        )?;
        put(&mut s, Param::IcmpIdle, t.icmp_idle_s.as_ref())?;
        put(&mut s, Param::TcpCloseHold, t.tcp_close_hold_s.as_ref())?;
        put(&mut s, Param::UdpHold, t.udp_hold_s.as_ref())?;
        put(&mut s, Param::IcmpHold, t.icmp_hold_s.as_ref())?;
    }
    if let Some(q) = &gw.quirks {
        put(
            &mut s,
            Param::ExclusiveBlockEnd,
            q.exclusive_block_end.as_ref(),
        )?;
    }
    put(&mut s, Param::BlockingMax, Some(&doc.target.blocking_max))?;

    let families = families(gw.ip_families.as_deref())?;
    let simulation = simulation(doc.simulation.as_ref())?;
    let sweeps = doc
        .sweep
        .iter()
        .enumerate()
        .map(|(i, sd)| sweep(i, sd))
        .collect::<Result<Vec<_>, _>>()?;
    for (i, a) in sweeps.iter().enumerate() {
        if sweeps[..i].iter().any(|b| b.param == a.param) {
            let origin = a.values.first().map(|v| v.1).unwrap_or_default();
            return Err(err(
                &format!("sweep[{i}].param"),
                origin,
                format!("`{}` is swept twice", a.param.path()),
            ));
        }
    }
    let seed = doc.seed.unwrap_or(1);
    let points = expand(&s, &sweeps, &families, simulation, seed)?;

    let report = report(doc.report.as_ref(), &doc.metadata.name, &sweeps)?;
    Ok(Plan {
        source_name: source_name.to_string(),
        name: doc.metadata.name,
        description: doc.metadata.description.unwrap_or_default(),
        seed,
        sweeps,
        report,
        points,
    })
}

fn families(list: Option<&[Spanned<String>]>) -> Result<Vec<Family>, ParamError> {
    let Some(list) = list else {
        return Ok(vec![Family::IPv4]);
    };
    if list.is_empty() {
        return Err(err(
            "gateway.ip_families",
            Origin::default(),
            "must not be empty",
        ));
    }
    let mut out = Vec::new();
    for item in list {
        let family = match item.value.as_str() {
            "IPv4" => Family::IPv4,
            "IPv6" => Family::IPv6,
            other => {
                return Err(err(
                    "gateway.ip_families",
                    origin_of(item),
                    format!("unknown family `{other}`, expected IPv4 or IPv6"),
                ));
            }
        };
        if out.contains(&family) {
            return Err(err(
                "gateway.ip_families",
                origin_of(item),
                format!("`{}` listed twice", item.value),
            ));
        }
        out.push(family);
    }
    Ok(out)
}

/// Longest simulated duration of one plan point (365 days): longer runs would only wrap or
/// stall virtual time, never finish.
pub const MAX_DURATION_S: f64 = 365.0 * 86_400.0;

fn simulation(doc: Option<&SimulationDoc>) -> Result<SimulationParams, ParamError> {
    let mut sim = SimulationParams {
        duration_s: 600.0,
        warmup_s: 120.0,
    };
    if let Some(doc) = doc {
        if let Some(d) = &doc.duration_s {
            if !(d.value > 0.0 && d.value <= MAX_DURATION_S) {
                return Err(err(
                    "simulation.duration_s",
                    origin_of(d),
                    format!(
                        "{} is out of range (0, {MAX_DURATION_S}] seconds (365 days)",
                        d.value
                    ),
                ));
            }
            sim.duration_s = d.value;
        }
        if let Some(w) = &doc.warmup_s {
            if !(w.value >= 0.0 && w.value < sim.duration_s) {
                return Err(err(
                    "simulation.warmup_s",
                    origin_of(w),
                    "must be ≥ 0 and shorter than duration_s",
                ));
            }
            sim.warmup_s = w.value;
        }
    }
    Ok(sim)
}

fn sweep(index: usize, doc: &SweepDoc) -> Result<Sweep, ParamError> {
    let field = |name: &str| format!("sweep[{index}].{name}");
    let param_origin = origin_of(&doc.param);
    let param = Param::parse(&doc.param.value).ok_or_else(|| {
        err(
            &field("param"),
            param_origin,
            format!(
                "unknown parameter `{}` (see docs/planning.md for the list)",
                doc.param.value
            ),
        )
    })?;
    let range = (doc.from.as_ref(), doc.to, doc.step, doc.factor);
    let values = match (&doc.values, range) {
        (Some(values), (None, None, None, None)) => {
            if values.is_empty() {
                return Err(err(&field("values"), param_origin, "must not be empty"));
            }
            values
                .iter()
                .map(|v| {
                    let origin = origin_of(v);
                    v.value
                        .typed(param)
                        .map(|value| (value, origin))
                        .map_err(|m| {
                            err(&field("values"), origin, format!("{}: {m}", param.path()))
                        })
                })
                .collect::<Result<Vec<_>, _>>()?
        }
        (None, (Some(from), Some(to), step, factor)) => {
            let origin = origin_of(from);
            let numbers = match (step, factor) {
                (Some(step), None) => arithmetic_range(from.value, to, step),
                (None, Some(factor)) => geometric_range(from.value, to, factor),
                _ => Err("a range needs exactly one of `step` or `factor`".to_string()),
            }
            .map_err(|m| err(&field("from"), origin, m))?;
            if param.kind() == super::settings::Kind::Text {
                return Err(err(
                    &field("from"),
                    origin,
                    format!("{} takes words; list them under `values`", param.path()),
                ));
            }
            numbers
                .into_iter()
                .map(|x| {
                    param
                        .parse_value(&format_number(x))
                        .map(|value| (value, origin))
                        .map_err(|m| err(&field("from"), origin, format!("{}: {m}", param.path())))
                })
                .collect::<Result<Vec<_>, _>>()?
        }
        _ => {
            return Err(err(
                &field("values"),
                param_origin,
                "give either `values: [...]` or `from`, `to` and one of `step`/`factor`",
            ));
        }
    };
    Ok(Sweep { param, values })
}

fn report(doc: Option<&ReportDoc>, name: &str, sweeps: &[Sweep]) -> Result<ReportSpec, ParamError> {
    let mut spec = ReportSpec {
        title: name.to_string(),
        tolerance_blocking: DEFAULT_TOLERANCE_BLOCKING,
        plots: Vec::new(),
    };
    let Some(doc) = doc else {
        return Ok(spec);
    };
    if let Some(title) = &doc.title {
        spec.title.clone_from(title);
    }
    if let Some(t) = &doc.tolerance_blocking {
        if !(t.value >= 0.0 && t.value <= 1.0) {
            return Err(err(
                "report.tolerance_blocking",
                origin_of(t),
                "must be between 0 and 1",
            ));
        }
        spec.tolerance_blocking = t.value;
    }
    for (i, p) in doc.plots.iter().enumerate() {
        spec.plots.push(plot(i, p, sweeps, &spec.plots)?);
    }
    Ok(spec)
}

fn plot(
    i: usize,
    doc: &PlotDoc,
    sweeps: &[Sweep],
    earlier: &[PlotSpec],
) -> Result<PlotSpec, ParamError> {
    let field = |name: &str| format!("report.plots[{i}].{name}");
    let file = &doc.file.value;
    let file_ok = file.ends_with(".svg")
        && file.len() > 4
        && file
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        && !file.starts_with('.');
    if !file_ok {
        return Err(err(
            &field("file"),
            origin_of(&doc.file),
            format!("`{file}` must be a plain `name.svg` (letters, digits, -, _)"),
        ));
    }
    if earlier.iter().any(|p| &p.file == file) {
        return Err(err(
            &field("file"),
            origin_of(&doc.file),
            format!("`{file}` is used twice"),
        ));
    }
    let swept = |s: &Spanned<String>, name: &str| -> Result<&Sweep, ParamError> {
        let origin = origin_of(s);
        let param = Param::parse(&s.value).ok_or_else(|| {
            err(
                &field(name),
                origin,
                format!("unknown parameter `{}`", s.value),
            )
        })?;
        sweeps.iter().find(|sw| sw.param == param).ok_or_else(|| {
            err(
                &field(name),
                origin,
                format!("`{}` is not swept by this plan", s.value),
            )
        })
    };
    let x = swept(&doc.x, "x")?;
    if x.param.kind() == super::settings::Kind::Text {
        return Err(err(
            &field("x"),
            origin_of(&doc.x),
            format!("`{}` is not numeric; use it as `series`", doc.x.value),
        ));
    }
    let y = Metric::parse(&doc.y.value).ok_or_else(|| {
        err(
            &field("y"),
            origin_of(&doc.y),
            format!(
                "unknown metric `{}`, expected one of {}",
                doc.y.value,
                Metric::ALL
                    .iter()
                    .map(|m| m.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    })?;
    let series = match &doc.series {
        Some(s) => {
            let sw = swept(s, "series")?;
            if sw.param == x.param {
                return Err(err(
                    &field("series"),
                    origin_of(s),
                    "series must differ from x",
                ));
            }
            Some(sw.param)
        }
        None => None,
    };
    let mut filter = Vec::new();
    for (key, value) in &doc.filter {
        let origin = origin_of(value);
        let param = Param::parse(key).ok_or_else(|| {
            err(
                &field("filter"),
                origin,
                format!("unknown parameter `{key}`"),
            )
        })?;
        let sw = sweeps.iter().find(|sw| sw.param == param).ok_or_else(|| {
            err(
                &field("filter"),
                origin,
                format!("`{key}` is not swept by this plan"),
            )
        })?;
        let wanted = value
            .value
            .typed(param)
            .map_err(|m| err(&field("filter"), origin, m))?;
        if !sw.values.iter().any(|(v, _)| v == &wanted) {
            return Err(err(
                &field("filter"),
                origin,
                format!("`{key}` never takes the value `{wanted}`"),
            ));
        }
        if Some(param) == series || param == x.param {
            return Err(err(
                &field("filter"),
                origin,
                format!("`{key}` is already x or series"),
            ));
        }
        filter.push((param, wanted.to_string()));
    }
    // Every other swept parameter must be pinned, or one x would have several y per line.
    for sw in sweeps {
        let placed = sw.param == x.param
            || Some(sw.param) == series
            || filter.iter().any(|(p, _)| *p == sw.param)
            || sw.values.len() == 1;
        if !placed {
            return Err(err(
                &field("filter"),
                origin_of(&doc.x),
                format!(
                    "`{}` is swept but is neither x, series nor in filter",
                    sw.param.path()
                ),
            ));
        }
    }
    Ok(PlotSpec {
        file: file.clone(),
        title: doc
            .title
            .clone()
            .unwrap_or_else(|| format!("{} vs {}", y.label(), crate::plan::plot::human(x.param))),
        x: x.param,
        y,
        series,
        log_x: doc.log_x,
        log_y: doc.log_y,
        filter,
    })
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "plan {} ({} points)", self.name, self.points.len())
    }
}
