//! Every plan parameter by its dotted path, with its type and validation. The plan file and the
//! sweeps both write into one [`Settings`] map, so a swept value and a fixed value go through the
//! same checks, and each error points at the line the offending value came from.

use std::collections::BTreeMap;
use std::fmt;

use super::analytic::AnalyticError;
use super::params::{
    DurationDist, Family, FlowDuration, GatewayParams, PointParams, ProtocolMix, SimulationParams,
    Traffic,
};
use super::profiles::{LimitScope, ProfileName, ProfileTimers};
use super::providers::{GCP_DEFAULT_MIN_PORTS_PER_VM, Rules};

/// The most destinations a plan may describe (the Zipf sums are O(destinations) per point).
pub const MAX_DESTINATIONS: u64 = 1_000_000;

/// Where a value was written: 1-based line and column (0 when unknown).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Origin {
    /// Line.
    pub line: u64,
    /// Column.
    pub column: u64,
}

impl Origin {
    pub(crate) fn of(location: &serde_saphyr::Location) -> Origin {
        Origin {
            line: location.line(),
            column: location.column(),
        }
    }
}

/// A parameter value: a number or a word.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A number.
    Num(f64),
    /// A word (names of profiles, rules, scopes, distributions; booleans).
    Text(String),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Num(x) => f.write_str(&format_number(*x)),
            Value::Text(t) => f.write_str(t),
        }
    }
}

/// Formats a number the way a plan writes it: integers without a fraction, others in Rust's
/// shortest round-trip form (deterministic on every platform).
pub fn format_number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

/// The type of a parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A non-negative integer.
    Int,
    /// A number.
    Float,
    /// A word.
    Text,
}

macro_rules! params {
    ($( $variant:ident => $path:literal, $kind:ident; )*) => {
        /// A plan parameter, named by its dotted path in the plan file.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
        pub enum Param { $( #[doc = $path] $variant, )* }

        impl Param {
            /// Every parameter, in plan-file order.
            pub const ALL: &'static [Param] = &[ $( Param::$variant, )* ];

            /// The dotted path.
            pub fn path(self) -> &'static str {
                match self { $( Param::$variant => $path, )* }
            }

            /// The value type.
            pub fn kind(self) -> Kind {
                match self { $( Param::$variant => Kind::$kind, )* }
            }
        }
    };
}

params! {
    Nics => "fleet.nics", Int;
    FlowRate => "fleet.traffic.flow_rate_per_s", Float;
    DurationDist => "fleet.traffic.flow_duration.dist", Text;
    DurationMean => "fleet.traffic.flow_duration.mean_s", Float;
    ParetoShape => "fleet.traffic.flow_duration.pareto_shape", Float;
    CloseFraction => "fleet.traffic.close_fraction", Float;
    Destinations => "fleet.traffic.destinations.count", Int;
    ZipfS => "fleet.traffic.destinations.zipf_s", Float;
    MixTcp => "fleet.traffic.protocol_mix.tcp", Float;
    MixUdp => "fleet.traffic.protocol_mix.udp", Float;
    MixIcmp => "fleet.traffic.protocol_mix.icmp", Float;
    Rules => "gateway.rules", Text;
    PortsPerNic => "gateway.ports_per_nic", Int;
    Ips => "gateway.ips", Int;
    Profile => "gateway.profile", Text;
    LimitScope => "gateway.limit_scope", Text;
    UdpIdle => "gateway.timers.udp_idle_s", Float;
    TcpEstablishedIdle => "gateway.timers.tcp_established_idle_s", Float;
    TcpTransitoryIdle => "gateway.timers.tcp_transitory_idle_s", Float;
    IcmpIdle => "gateway.timers.icmp_idle_s", Float;
    TcpCloseHold => "gateway.timers.tcp_close_hold_s", Float;
    UdpHold => "gateway.timers.udp_hold_s", Float;
    IcmpHold => "gateway.timers.icmp_hold_s", Float;
    ExclusiveBlockEnd => "gateway.quirks.exclusive_block_end", Text;
    BlockingMax => "target.blocking_max", Float;
}

impl Param {
    /// Looks a parameter up by its dotted path.
    pub fn parse(path: &str) -> Option<Param> {
        Param::ALL.iter().copied().find(|p| p.path() == path)
    }

    /// Parses a scalar written in the plan as this parameter's type (type check only; ranges
    /// and meaning are checked when a point is resolved).
    pub fn parse_value(self, text: &str) -> Result<Value, String> {
        if self == Param::Ips && text == "auto" {
            // `ips: auto`: the IPs the point's rules need (resolved with the point).
            return Ok(Value::Text(text.to_string()));
        }
        match self.kind() {
            Kind::Int => text
                .parse::<u64>()
                .map(|n| Value::Num(n as f64))
                .map_err(|_| format!("expected a non-negative integer, got `{text}`")),
            Kind::Float => match text.parse::<f64>() {
                Ok(x) if x.is_finite() => Ok(Value::Num(x)),
                _ => Err(format!("expected a number, got `{text}`")),
            },
            Kind::Text => {
                if text.is_empty() {
                    Err("expected a word, got an empty value".to_string())
                } else {
                    Ok(Value::Text(text.to_string()))
                }
            }
        }
    }
}

/// An error in one parameter, with where its value came from.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamError {
    /// The parameter's path (or the plan-file field).
    pub field: String,
    /// Where the value was written.
    pub origin: Origin,
    /// What is wrong.
    pub message: String,
}

/// Parameter values with their origins; the unresolved form of a point.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    values: BTreeMap<Param, (Value, Origin)>,
}

impl Settings {
    /// Sets `param`.
    pub fn set(&mut self, param: Param, value: Value, origin: Origin) {
        self.values.insert(param, (value, origin));
    }

    fn err(&self, param: Param, message: impl Into<String>) -> ParamError {
        ParamError {
            field: param.path().to_string(),
            origin: self.values.get(&param).map(|v| v.1).unwrap_or_default(),
            message: message.into(),
        }
    }

    fn num(&self, param: Param) -> Result<Option<f64>, ParamError> {
        match self.values.get(&param) {
            None => Ok(None),
            Some((Value::Num(x), _)) => Ok(Some(*x)),
            Some((Value::Text(t), _)) => {
                Err(self.err(param, format!("expected a number, got `{t}`")))
            }
        }
    }

    /// A number that must satisfy `ok`, with `rule` naming the constraint in the error.
    fn checked(
        &self,
        param: Param,
        default: Option<f64>,
        ok: impl Fn(f64) -> bool,
        rule: &str,
    ) -> Result<f64, ParamError> {
        let value = match (self.num(param)?, default) {
            (Some(x), _) => x,
            (None, Some(d)) => return Ok(d),
            (None, None) => return Err(self.err(param, "missing required field")),
        };
        if ok(value) {
            Ok(value)
        } else {
            Err(self.err(param, format!("{} must be {rule}", format_number(value))))
        }
    }

    fn int(&self, param: Param, default: Option<u64>) -> Result<u64, ParamError> {
        let x = self.checked(
            param,
            default.map(|d| d as f64),
            |x| x >= 0.0 && x.fract() == 0.0 && x < 9e15,
            "a non-negative integer",
        )?;
        Ok(x as u64)
    }

    fn word<T>(
        &self,
        param: Param,
        parse: impl Fn(&str) -> Option<T>,
        choices: &[&str],
    ) -> Result<Option<T>, ParamError> {
        match self.values.get(&param) {
            None => Ok(None),
            Some((value, _)) => {
                let text = value.to_string();
                parse(&text).map(Some).ok_or_else(|| {
                    self.err(
                        param,
                        format!(
                            "unknown value `{text}`, expected one of {}",
                            choices.join(", ")
                        ),
                    )
                })
            }
        }
    }

    /// Validates everything and builds the point. `families`, `simulation`, `index` and `seed`
    /// are not parameters (lists and bookkeeping) and come in ready-made.
    pub fn resolve(
        &self,
        families: &[Family],
        simulation: SimulationParams,
        index: usize,
        seed: u64,
    ) -> Result<PointParams, ParamError> {
        let nics = self.int(Param::Nics, None)?;
        if nics == 0 {
            return Err(self.err(
                Param::Nics,
                "0 must be at least 1 (a fleet without NICs has nothing to plan)",
            ));
        }
        let flow_rate_per_s =
            self.checked(Param::FlowRate, None, |x| x >= 0.0, "≥ 0 flows per second")?;
        let dist = self
            .word(
                Param::DurationDist,
                |t| match t {
                    "fixed" => Some(DurationDist::Fixed),
                    "exponential" => Some(DurationDist::Exponential),
                    "pareto" => Some(DurationDist::Pareto),
                    _ => None,
                },
                &["fixed", "exponential", "pareto"],
            )?
            .unwrap_or(DurationDist::Exponential);
        // 0 is allowed on purpose: flows that close at once still hold their port for the
        // profile's hold time (docs/planning.md), the pure port-hold case.
        let mean_s = self.checked(Param::DurationMean, None, |x| x >= 0.0, "≥ 0 seconds")?;
        let pareto_shape = match (dist, self.num(Param::ParetoShape)?) {
            (DurationDist::Pareto, Some(_)) => Some(self.checked(
                Param::ParetoShape,
                None,
                |a| a > 1.0,
                "> 1 (a Pareto with shape ≤ 1 has no finite mean)",
            )?),
            (DurationDist::Pareto, None) => {
                return Err(self.err(Param::ParetoShape, "dist: pareto needs pareto_shape"));
            }
            (_, Some(_)) => {
                return Err(self.err(
                    Param::ParetoShape,
                    "pareto_shape only applies to dist: pareto",
                ));
            }
            (_, None) => None,
        };
        let close_fraction = self.checked(
            Param::CloseFraction,
            Some(1.0),
            |x| (0.0..=1.0).contains(&x),
            "between 0 and 1",
        )?;
        let destinations = self.int(Param::Destinations, Some(1))?;
        if destinations == 0 || destinations > MAX_DESTINATIONS {
            return Err(self.err(
                Param::Destinations,
                format!("{destinations} must be between 1 and {MAX_DESTINATIONS}"),
            ));
        }
        let zipf_s = self.checked(Param::ZipfS, Some(0.0), |x| x >= 0.0, "≥ 0")?;
        let share = |p| self.checked(p, Some(0.0), |x| x >= 0.0, "≥ 0");
        let (tcp, udp, icmp) = (
            share(Param::MixTcp)?,
            share(Param::MixUdp)?,
            share(Param::MixIcmp)?,
        );
        let total = tcp + udp + icmp;
        if total <= 0.0 {
            return Err(self.err(
                Param::MixTcp,
                "protocol_mix needs at least one positive share",
            ));
        }
        let protocol_mix = ProtocolMix {
            tcp: tcp / total,
            udp: udp / total,
            icmp: icmp / total,
        };

        let rules = self
            .word(
                Param::Rules,
                Rules::parse,
                &["ironcore", "gcp", "aws", "azure"],
            )?
            .unwrap_or(Rules::Ironcore);
        // GCP's per-VM minimum defaults to 64 ports (docs/behaviour.md §7); IronCore's P to 2048.
        let default_ports = if rules == Rules::Gcp {
            u64::from(GCP_DEFAULT_MIN_PORTS_PER_VM)
        } else {
            2048
        };
        let ports_per_nic = self.int(Param::PortsPerNic, Some(default_ports))?;
        let ports_per_nic_effective =
            rules
                .effective_ports_per_nic(ports_per_nic)
                .map_err(|e| match e {
                    AnalyticError::BadPortsPerNic(p) if rules == Rules::Gcp => self.err(
                        Param::PortsPerNic,
                        format!(
                            "{p}: GCP needs 1..=32768 ports per VM (rounded up to a power of two)"
                        ),
                    ),
                    other => self.err(Param::PortsPerNic, other.to_string()),
                })?;
        let ips = match self.values.get(&Param::Ips) {
            Some((Value::Text(t), _)) if t == "auto" => {
                auto_ips(rules, ports_per_nic_effective, nics)
            }
            _ => self.int(Param::Ips, Some(1))?,
        };
        let profile_names: Vec<&str> = ProfileName::ALL.iter().map(|p| p.as_str()).collect();
        let profile = self
            .word(Param::Profile, ProfileName::parse, &profile_names)?
            .unwrap_or(rules.limits().native_profile);
        let mut timers = ProfileTimers::of(profile);
        let seconds = |p| self.checked(p, None, |x| x >= 0.0, "≥ 0 seconds").map(Some);
        let timer_override = |p: Param, slot: &mut f64| -> Result<(), ParamError> {
            if self.values.contains_key(&p) {
                *slot = seconds(p)?.unwrap_or(*slot);
            }
            Ok(())
        };
        timer_override(Param::UdpIdle, &mut timers.udp_idle_s)?;
        timer_override(
            Param::TcpEstablishedIdle,
            &mut timers.tcp_established_idle_s,
        )?;
        timer_override(Param::TcpTransitoryIdle, &mut timers.tcp_transitory_idle_s)?;
        timer_override(Param::TcpCloseHold, &mut timers.tcp_close_hold_s)?;
        timer_override(Param::UdpHold, &mut timers.udp_hold_s)?;
        timer_override(Param::IcmpHold, &mut timers.icmp_hold_s)?;
        if self.values.contains_key(&Param::IcmpIdle) {
            timers.icmp_idle_s = seconds(Param::IcmpIdle)?;
        }
        let scope_names: Vec<&str> = LimitScope::ALL.iter().map(|s| s.name()).collect();
        if let Some(scope) = self.word(Param::LimitScope, LimitScope::parse, &scope_names)? {
            timers.limit_scope = scope;
        }
        let exclusive_block_end = self
            .word(
                Param::ExclusiveBlockEnd,
                |t| match t {
                    "true" => Some(true),
                    "false" => Some(false),
                    _ => None,
                },
                &["true", "false"],
            )?
            .unwrap_or(false);
        let blocking_max = self.checked(
            Param::BlockingMax,
            None,
            |x| x > 0.0 && x < 1.0,
            "a probability strictly between 0 and 1",
        )?;

        Ok(PointParams {
            index,
            seed,
            coordinates: Vec::new(),
            nics,
            traffic: Traffic {
                flow_rate_per_s,
                flow_duration: FlowDuration {
                    dist,
                    mean_s,
                    pareto_shape,
                },
                close_fraction,
                destinations,
                zipf_s,
                protocol_mix,
            },
            gateway: GatewayParams {
                rules,
                ports_per_nic,
                ports_per_nic_effective,
                ips,
                ip_families: families.to_vec(),
                profile,
                limit_scope: timers.limit_scope,
                timers,
                exclusive_block_end,
            },
            blocking_max,
            simulation,
        })
    }
}

/// `ips: auto`: per-NIC rules get the IPs that give every NIC a block (`ceil(NICs / floor(64512
/// / P))`); pooled rules (AWS, Azure) get the most IPs the provider allows.
fn auto_ips(rules: Rules, ports_per_nic_effective: Option<u32>, nics: u64) -> u64 {
    let limits = rules.limits();
    match (ports_per_nic_effective, limits.max_ips) {
        (Some(p), _) => nics.div_ceil(u64::from(limits.ports_per_ip / p.max(1)).max(1)),
        (None, Some(max)) => u64::from(max),
        (None, None) => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_unique_and_parse_back() {
        for &p in Param::ALL {
            assert_eq!(Param::parse(p.path()), Some(p));
        }
    }

    #[test]
    fn number_formatting() {
        assert_eq!(format_number(64.0), "64");
        assert_eq!(format_number(0.5), "0.5");
    }
}
