//! SVG plots of plan results (plotters, SVG backend, no fonts needed). Output is a pure function
//! of the plan and results, so the bytes are identical run to run.

use plotters::prelude::*;

use super::file::{Plan, PlotSpec};
use super::run::{PlanResult, PointResult};
use super::settings::{Param, format_number};

/// A number the report can plot on the y axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    /// floor(64512 / P).
    NicsPerIp,
    /// IPs per family needed.
    IpsNeeded,
    /// IPs needed × families.
    AddressesNeeded,
    /// Mean busy ports per NIC.
    BusyPortsNic,
    /// Mean busy ports on the hottest key of one NIC.
    BusyPortsHot,
    /// Erlang-B blocking on the hottest key.
    BlockingHot,
    /// Flow-weighted blocking per allocated NIC.
    BlockingNic,
    /// Flow-weighted blocking over the fleet.
    BlockingFleet,
    /// Refused flows per second, fleet.
    RefusedFlowsPerS,
    /// Per-NIC rate at which the target is reached.
    MaxRatePerSAtTarget,
    /// Smallest power-of-two P meeting the target.
    RecommendedPortsPerNic,
    /// IPs at the recommended P.
    RecommendedIps,
}

impl Metric {
    /// Every metric.
    pub const ALL: [Metric; 12] = [
        Metric::NicsPerIp,
        Metric::IpsNeeded,
        Metric::AddressesNeeded,
        Metric::BusyPortsNic,
        Metric::BusyPortsHot,
        Metric::BlockingHot,
        Metric::BlockingNic,
        Metric::BlockingFleet,
        Metric::RefusedFlowsPerS,
        Metric::MaxRatePerSAtTarget,
        Metric::RecommendedPortsPerNic,
        Metric::RecommendedIps,
    ];

    /// Name in plan files.
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::NicsPerIp => "nics_per_ip",
            Metric::IpsNeeded => "ips_needed",
            Metric::AddressesNeeded => "addresses_needed",
            Metric::BusyPortsNic => "busy_ports_nic",
            Metric::BusyPortsHot => "busy_ports_hot",
            Metric::BlockingHot => "blocking_hot",
            Metric::BlockingNic => "blocking_nic",
            Metric::BlockingFleet => "blocking_fleet",
            Metric::RefusedFlowsPerS => "refused_flows_per_s",
            Metric::MaxRatePerSAtTarget => "max_rate_per_s_at_target",
            Metric::RecommendedPortsPerNic => "recommended_ports_per_nic",
            Metric::RecommendedIps => "recommended_ips",
        }
    }

    /// Parses a plan-file name.
    pub fn parse(text: &str) -> Option<Metric> {
        Self::ALL.into_iter().find(|m| m.as_str() == text)
    }

    /// Axis label.
    pub fn label(self) -> &'static str {
        match self {
            Metric::NicsPerIp => "NICs per public IP",
            Metric::IpsNeeded => "public IPs per family at this P",
            Metric::AddressesNeeded => "public addresses (all families)",
            Metric::BusyPortsNic => "mean busy ports per NIC (ports)",
            Metric::BusyPortsHot => "mean busy ports on the busiest key (ports)",
            Metric::BlockingHot => "new flows refused on the busiest key (%)",
            Metric::BlockingNic => "new flows refused per NIC (%)",
            Metric::BlockingFleet => "new flows refused, whole fleet (%)",
            Metric::RefusedFlowsPerS => "refused flows per second, fleet (flows/s)",
            Metric::MaxRatePerSAtTarget => "highest new flows/s per NIC at the target",
            Metric::RecommendedPortsPerNic => "recommended ports per NIC (P)",
            Metric::RecommendedIps => "public IPs per family at the recommended P",
        }
    }

    /// True for probabilities (the target line is drawn on these).
    pub fn is_probability(self) -> bool {
        matches!(
            self,
            Metric::BlockingHot | Metric::BlockingNic | Metric::BlockingFleet
        )
    }

    /// The analytic value at a point (`None` when it does not apply, e.g. NICs per IP on AWS).
    pub fn value(self, point: &PointResult) -> Option<f64> {
        let a = &point.analytic;
        match self {
            Metric::NicsPerIp => a.nics_per_ip.map(|n| n as f64),
            Metric::IpsNeeded => a.ips_needed.map(|n| n as f64),
            Metric::AddressesNeeded => a.addresses_needed.map(|n| n as f64),
            Metric::BusyPortsNic => Some(a.busy_ports_nic),
            Metric::BusyPortsHot => Some(a.busy_ports_hot),
            Metric::BlockingHot => Some(a.blocking_hot),
            Metric::BlockingNic => Some(a.blocking_nic),
            Metric::BlockingFleet => Some(a.blocking_fleet),
            Metric::RefusedFlowsPerS => Some(a.refused_flows_per_s),
            Metric::MaxRatePerSAtTarget => a.max_rate_per_s_at_target,
            // The recommendation of the point's one verdict (simulation-aware).
            Metric::RecommendedPortsPerNic => {
                point.decision.recommended_ports_per_nic.map(f64::from)
            }
            Metric::RecommendedIps => point.decision.recommended_ips.map(|n| n as f64),
        }
    }

    /// The simulated counterpart, when the simulation measures the same quantity.
    pub fn simulated_value(self, point: &PointResult) -> Option<f64> {
        match self {
            Metric::BlockingFleet => point.simulated.as_ref().and_then(|s| s.blocking()),
            Metric::BlockingHot => point.simulated.as_ref().and_then(|s| s.blocking_hot),
            Metric::BusyPortsNic => point.simulated.as_ref().map(|s| s.mean_ports_in_use_nic),
            Metric::BusyPortsHot => point
                .simulated
                .as_ref()
                .map(|s| s.mean_ports_in_use_hot_key),
            _ => None,
        }
    }
}

/// Plot size in pixels.
const SIZE: (u32, u32) = (900, 560);
/// Smallest value a log y axis shows; smaller values (including 0) are drawn there.
const LOG_Y_FLOOR: f64 = 1e-12;
/// Floor of a log probability axis: a blocking under one in a million is zero for planning, and
/// a floor far below it would spend most of the plot on numerical noise.
const LOG_Y_FLOOR_PROBABILITY: f64 = 1e-6;

/// The log-axis floor for `metric`.
fn log_floor(metric: Metric) -> f64 {
    if metric.is_probability() {
        LOG_Y_FLOOR_PROBABILITY
    } else {
        LOG_Y_FLOOR
    }
}
/// Colour-blind-friendly palette (Okabe–Ito), in series order.
const PALETTE: [RGBColor; 8] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(230, 159, 0),
    RGBColor(0, 0, 0),
    RGBColor(240, 228, 66),
];

/// Dashed capacity lines, darkest first.
const REFERENCE_GREYS: [RGBColor; 3] = [
    RGBColor(90, 90, 90),
    RGBColor(150, 150, 150),
    RGBColor(190, 190, 190),
];

/// One line: label and (x, y) in plot coordinates (after log transforms).
struct Line {
    label: String,
    analytic: Vec<(f64, f64)>,
    simulated: Vec<(f64, f64)>,
    /// Points whose value is exactly zero (drawn as hollow markers on the floor of a log axis).
    zeros: Vec<(f64, f64)>,
    /// First x at which the metric has no value any more (not reachable), if any.
    unreachable_from: Option<f64>,
}

/// A parameter's name for people, with its unit.
pub fn human(param: Param) -> &'static str {
    match param {
        Param::Nics => "NICs behind the gateway",
        Param::FlowRate => "new flows per second per NIC",
        Param::DurationMean => "mean flow life (s)",
        Param::ParetoShape => "Pareto shape",
        Param::CloseFraction => "share of TCP flows closed",
        Param::Destinations => "destinations",
        Param::ZipfS => "Zipf skew of destinations",
        Param::MixTcp => "TCP weight",
        Param::MixUdp => "UDP weight",
        Param::MixIcmp => "ICMP weight",
        Param::Rules => "rules",
        Param::PortsPerNic => "ports per NIC (P)",
        Param::Ips => "public IPs per family",
        Param::Profile => "profile",
        Param::LimitScope => "limit scope",
        Param::UdpIdle => "UDP idle timeout (s)",
        Param::TcpEstablishedIdle => "TCP established timeout (s)",
        Param::TcpTransitoryIdle => "TCP transitory timeout (s)",
        Param::IcmpIdle => "ICMP idle timeout (s)",
        Param::TcpCloseHold => "TCP hold after close (s)",
        Param::UdpHold => "UDP hold after expiry (s)",
        Param::IcmpHold => "ICMP hold after expiry (s)",
        Param::ExclusiveBlockEnd => "exclusive block end",
        Param::DurationDist => "flow life distribution",
        Param::BlockingMax => "blocking target",
    }
}

/// A short name for legends and title pins: `P`, `rules`, `profile`.
fn short(param: Param) -> &'static str {
    match param {
        Param::PortsPerNic => "P",
        Param::Ips => "IPs",
        Param::FlowRate => "flows/s per NIC",
        Param::Nics => "NICs",
        _ => param.path().rsplit('.').next().unwrap_or(param.path()),
    }
}

fn collect_lines(plan: &Plan, spec: &PlotSpec, result: &PlanResult) -> Vec<Line> {
    let transform_x = |x: f64| {
        if spec.log_x {
            (x > 0.0).then(|| x.log2())
        } else {
            Some(x)
        }
    };
    let transform_y = |y: f64| {
        if spec.log_y {
            Some(y.max(log_floor(spec.y)).log10())
        } else {
            Some(y)
        }
    };
    // Series values in the order the sweep lists them, so colours are stable.
    let series_values: Vec<Option<String>> = match spec.series.and_then(|p| plan.sweep(p)) {
        Some(sweep) => sweep
            .values
            .iter()
            .map(|(v, _)| Some(v.to_string()))
            .collect(),
        None => vec![None],
    };
    series_values
        .into_iter()
        .map(|series_value| {
            let mut line = Line {
                label: match (&series_value, spec.series) {
                    (Some(v), Some(p)) => format!("{} = {v}", short(p)),
                    _ => spec.y.label().to_string(),
                },
                analytic: Vec::new(),
                simulated: Vec::new(),
                zeros: Vec::new(),
                unreachable_from: None,
            };
            for point in &result.points {
                let params = &point.params;
                let in_series = match (&series_value, spec.series) {
                    (Some(v), Some(p)) => params.coordinate(p.path()) == Some(v.as_str()),
                    _ => true,
                };
                let in_filter = spec
                    .filter
                    .iter()
                    .all(|(p, v)| params.coordinate(p.path()) == Some(v.as_str()));
                if !(in_series && in_filter) {
                    continue;
                }
                let Some(x) = params
                    .coordinate(spec.x.path())
                    .and_then(|t| t.parse::<f64>().ok())
                    .and_then(transform_x)
                else {
                    continue;
                };
                let value = spec.y.value(point);
                if value.is_none() && line.unreachable_from.is_none_or(|u| x < u) {
                    line.unreachable_from = Some(x);
                }
                if let Some(v) = value {
                    if v <= 0.0 && spec.log_y {
                        // Zero has no place on a log axis: a hollow marker on the floor says 0.
                        line.zeros.extend(transform_y(v).map(|y| (x, y)));
                    }
                    if let Some(y) = transform_y(v) {
                        line.analytic.push((x, y));
                    }
                }
                if let Some(y) = spec.y.simulated_value(point).and_then(transform_y) {
                    line.simulated.push((x, y));
                }
            }
            line
        })
        .collect()
}

fn padded(min: f64, max: f64, log: bool) -> (f64, f64) {
    if !(min.is_finite() && max.is_finite()) {
        return (0.0, 1.0);
    }
    if (max - min).abs() < 1e-12 {
        let pad = if log { 1.0 } else { (max.abs() * 0.1).max(0.5) };
        return (min - pad, max + pad);
    }
    let pad = (max - min) * 0.05;
    (min - pad, max + pad)
}

fn axis_number(v: f64, scientific: bool) -> String {
    if scientific {
        super::model::sci3(v)
    } else {
        super::model::sig3(v)
    }
}

/// 10^k as a plain decimal percentage (`0.001%`, `1%`, `100%`): one format on the whole axis.
fn decade_percent(k: i32) -> String {
    let e = k + 2;
    if e >= 0 {
        format!("1{}%", "0".repeat(e as usize))
    } else {
        format!("0.{}1%", "0".repeat((-e - 1) as usize))
    }
}

/// A linear probability tick with the decimals the axis needs, the same for every tick.
fn linear_percent(v: f64, decimals: usize) -> String {
    format!("{:.decimals$}%", v * 100.0)
}

/// Renders one plot to SVG text.
pub fn render_svg(plan: &Plan, spec: &PlotSpec, result: &PlanResult) -> Result<String, String> {
    let lines = collect_lines(plan, spec, result);
    let transform_y = |y: f64| {
        if spec.log_y {
            y.max(log_floor(spec.y)).log10()
        } else {
            y
        }
    };
    // Horizontal reference lines: the target on probabilities, the available ports on busy-port
    // plots, so "where does the curve cross the limit" is visible at a glance.
    let mut references: Vec<(String, f64)> = Vec::new();
    if spec.y.is_probability()
        && let Some(t) = plan.points.first().map(|p| p.blocking_max)
    {
        references.push((
            format!("target {}", super::model::percent(t)),
            transform_y(t),
        ));
    }
    if matches!(spec.y, Metric::BusyPortsHot) {
        // Only the P of points this plot shows: a filtered plot must not draw other P's limits.
        let mut ports: Vec<u64> = result
            .points
            .iter()
            .filter(|p| {
                spec.filter
                    .iter()
                    .all(|(param, v)| p.params.coordinate(param.path()) == Some(v.as_str()))
            })
            .filter_map(|p| p.analytic.ports_usable)
            .collect();
        ports.sort_unstable();
        ports.dedup();
        for p in ports {
            references.push((format!("{p} ports per key"), transform_y(p as f64)));
        }
    }

    let all = lines
        .iter()
        .flat_map(|l| l.analytic.iter().chain(&l.simulated));
    let (mut x_min, mut x_max, mut y_min, mut y_max) = (
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
    );
    for &(x, y) in all {
        x_min = x_min.min(x);
        x_max = x_max.max(x);
        y_min = y_min.min(y);
        y_max = y_max.max(y);
    }
    for (_, y) in &references {
        y_min = y_min.min(*y);
        y_max = y_max.max(*y);
    }
    if !spec.log_y && y_min > 0.0 && y_min.is_finite() {
        // Linear axes start at zero so heights compare honestly.
        y_min = 0.0;
    }
    let (x_lo, x_hi) = padded(x_min, x_max, spec.log_x);
    let (y_lo, y_hi) = padded(y_min, y_max, spec.log_y);
    // Headroom for the legend, but a probability axis never goes far past 100%.
    let mut y_hi = y_hi + (y_hi - y_lo) * 0.25;
    if spec.y.is_probability() {
        y_hi = y_hi.min(if spec.log_y { 0.3 } else { 1.1 });
    }

    // Legend in the upper corner with fewer data points under it.
    let (mid_x, top_y) = ((x_lo + x_hi) / 2.0, y_lo + (y_hi - y_lo) * 0.6);
    let (mut left, mut right) = (0, 0);
    for l in &lines {
        for &(x, y) in &l.analytic {
            if y > top_y {
                if x < mid_x { left += 1 } else { right += 1 }
            }
        }
    }
    let legend_at = if left <= right {
        SeriesLabelPosition::UpperLeft
    } else {
        SeriesLabelPosition::UpperRight
    };

    // One tick format per axis, chosen from the axis range.
    let x_sci = !spec.log_x && (x_hi.abs().max(x_lo.abs()) >= 1e5);
    let y_sci = if spec.log_y {
        y_hi >= 5.0 || y_lo < -3.0
    } else {
        y_hi.abs().max(y_lo.abs()) >= 1e5
    };
    let y_decimals = {
        let span = (y_hi - y_lo) * 100.0;
        if span >= 10.0 {
            0
        } else if span >= 1.0 {
            1
        } else {
            3
        }
    };
    let x_fmt = |v: &f64| {
        if spec.log_x {
            if (v - v.round()).abs() < 1e-6 {
                format_number(2f64.powf(v.round()))
            } else {
                String::new()
            }
        } else {
            axis_number(*v, x_sci)
        }
    };
    let y_fmt = |v: &f64| {
        if spec.log_y {
            if (v - v.round()).abs() > 1e-6 {
                String::new()
            } else if spec.y.is_probability() {
                decade_percent(v.round() as i32)
            } else {
                axis_number(10f64.powi(v.round() as i32), y_sci)
            }
        } else if spec.y.is_probability() {
            linear_percent(*v, y_decimals)
        } else {
            axis_number(*v, y_sci)
        }
    };
    let x_desc = if spec.log_x {
        format!("{} (log scale)", human(spec.x))
    } else {
        human(spec.x).to_string()
    };
    let y_desc = if spec.log_y {
        if spec.y.is_probability() {
            format!(
                "{} (log scale; 0 drawn as ○ at {})",
                spec.y.label(),
                decade_percent(LOG_Y_FLOOR_PROBABILITY.log10().round() as i32)
            )
        } else {
            format!("{} (log scale; 0 drawn as ○ on the floor)", spec.y.label())
        }
    } else {
        spec.y.label().to_string()
    };
    // Filter pins belong in the title: a plot pinned to P = 2048 must say so.
    let title = if spec.filter.is_empty() {
        spec.title.clone()
    } else {
        let pins: Vec<String> = spec
            .filter
            .iter()
            .map(|(p, v)| format!("{} = {v}", short(*p)))
            .collect();
        format!("{} ({})", spec.title, pins.join(", "))
    };

    let mut svg = String::new();
    {
        let e = |e: DrawingAreaErrorKind<_>| format!("plot {}: {e}", spec.file);
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(e)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(&title, ("sans-serif", 20))
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(80)
            .build_cartesian_2d(x_lo..x_hi, y_lo..y_hi)
            .map_err(e)?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc(y_desc)
            .x_label_formatter(&x_fmt)
            .y_label_formatter(&y_fmt)
            .x_labels(12)
            .y_labels(10)
            .light_line_style(RGBColor(235, 235, 235))
            .axis_desc_style(("sans-serif", 15))
            .label_style(("sans-serif", 13))
            .draw()
            .map_err(e)?;
        for (i, (label, y)) in references.iter().enumerate() {
            // Red for the target, greys for capacities.
            let color = if spec.y.is_probability() {
                RGBColor(200, 0, 0)
            } else {
                REFERENCE_GREYS[i % REFERENCE_GREYS.len()]
            };
            chart
                .draw_series(DashedLineSeries::new(
                    vec![(x_lo, *y), (x_hi, *y)],
                    8,
                    5,
                    color.stroke_width(1),
                ))
                .map_err(e)?
                .label(label.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        }
        let mut simulated_labelled = false;
        for (i, line) in lines.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            // A series that later series draw over exactly (e.g. profiles with the same UDP
            // timer) is drawn wider, so identical series show as nested bands instead of one
            // hiding the others.
            let covered_by = lines[i + 1..]
                .iter()
                .filter(|later| later.analytic == line.analytic)
                .count() as u32;
            let width = 2 + 3 * covered_by;
            chart
                .draw_series(LineSeries::new(
                    line.analytic.clone(),
                    color.stroke_width(width),
                ))
                .map_err(e)?
                .label(line.label.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(width))
                });
            chart
                .draw_series(PointSeries::of_element(
                    line.analytic.clone(),
                    3,
                    color.filled(),
                    &|c, s, st| Circle::new(c, s, st),
                ))
                .map_err(e)?;
        }
        // Crosses after every line, so the legend lists the series first.
        for (i, line) in lines.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            if !line.simulated.is_empty() {
                let series = chart
                    .draw_series(PointSeries::of_element(
                        line.simulated.clone(),
                        5,
                        color.stroke_width(2),
                        &|c, s, st| Cross::new(c, s, st),
                    ))
                    .map_err(e)?;
                // One legend entry for all simulated crosses: the colour already names the
                // series, and one entry per series would double the legend.
                if !simulated_labelled {
                    simulated_labelled = true;
                    series
                        .label("simulated (crosses, same colour)")
                        .legend(|(x, y)| Cross::new((x + 10, y), 4, BLACK.stroke_width(2)));
                }
            }
        }
        let mut zero_labelled = false;
        let mut unreachable_labelled = false;
        for (i, line) in lines.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            if !line.zeros.is_empty() {
                let series = chart
                    .draw_series(PointSeries::of_element(
                        line.zeros.clone(),
                        6,
                        color.stroke_width(2),
                        &|c, s, st| Circle::new(c, s, st),
                    ))
                    .map_err(e)?;
                if !zero_labelled {
                    zero_labelled = true;
                    series
                        .label("exactly 0 (hollow circle on the floor)")
                        .legend(|(x, y)| Circle::new((x + 10, y), 5, BLACK.stroke_width(2)));
                }
            }
            if let Some(x) = line.unreachable_from {
                chart
                    .draw_series(std::iter::once(Text::new(
                        "unreachable beyond here →".to_string(),
                        (x, y_lo + (y_hi - y_lo) * (0.08 + 0.06 * i as f64)),
                        ("sans-serif", 12).into_font().color(&color),
                    )))
                    .map_err(e)?;
                let series = chart
                    .draw_series(DashedLineSeries::new(
                        vec![(x, y_lo), (x, y_hi)],
                        4,
                        4,
                        color.stroke_width(2),
                    ))
                    .map_err(e)?;
                if !unreachable_labelled {
                    unreachable_labelled = true;
                    series
                        .label("unreachable beyond here (dashed, series colour)")
                        .legend(|(x, y)| {
                            PathElement::new(vec![(x + 10, y - 6), (x + 10, y + 6)], BLACK)
                        });
                }
            }
        }
        chart
            .configure_series_labels()
            .position(legend_at)
            .background_style(WHITE.mix(0.9))
            .border_style(RGBColor(120, 120, 120))
            .label_font(("sans-serif", 13))
            .draw()
            .map_err(e)?;
        root.present().map_err(e)?;
    }
    Ok(svg)
}
