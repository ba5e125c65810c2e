//! The printed table and the JSON of the results.

use super::*;

pub(crate) fn stats_json(s: &RunStats) -> Value {
    json!({
        "requests": s.requests,
        "errors": s.errors,
        "first_error": s.first_error,
        "seconds": s.secs,
        "requests_per_second": s.throughput(),
        "p50_us": s.percentile(50.0),
        "p99_us": s.percentile(99.0),
        "max_us": s.latencies_us.last().copied().unwrap_or(f64::NAN),
        "cpu_us_per_request": s.cpu_per_request(),
        "max_rss_kib": s.max_rss_kib,
    })
}

pub(crate) fn warn_errors(what: &str, s: &RunStats) {
    if s.errors > 0 {
        eprintln!(
            "  ! {what}: {} failed requests (first: {})",
            s.errors,
            s.first_error.as_deref().unwrap_or("?")
        );
    }
}

/// The first rows of both `--server-alone` tables: (label, load child's JSON key, unit).
const LOAD_ROWS: [(&str, &str, &str); 4] = [
    ("requests/s", "requests_per_second", "/s"),
    ("p50", "p50_us", "µs"),
    ("p99", "p99_us", "µs"),
    ("server CPU per request", "server_cpu_us_per_request", "µs"),
];

pub(crate) fn print_alone(r: &Value) {
    println!();
    println!(
        "{:<36} {:>12} {:>12} {:>12} {:>10} {:>12} {:>10}",
        "server alone (load on another CPU)",
        "confidential",
        "plaintext",
        "workerd",
        "conf/wrkd",
        "clave dev",
        "dev/wrkd"
    );
    println!("{}", "-".repeat(110));
    for (name, metric, unit) in LOAD_ROWS.into_iter().chain([
        (
            "load generator CPU per request",
            "client_cpu_us_per_request",
            "µs",
        ),
        (
            "server context switches per request",
            "server_cs_per_request",
            "",
        ),
        ("IPIs per request (machine)", "ipis_per_request", ""),
        ("server CPU utilisation", "server_cpu_utilisation", ""),
    ]) {
        let get = |who: &str| f(r, &[who, metric]);
        let (c, p, w, d) = (
            get("confidential"),
            get("plaintext"),
            get("workerd"),
            get("clave_dev"),
        );
        println!(
            "{name:<36} {:>12} {:>12} {:>12} {:>10} {:>12} {:>10}",
            fmt(c, unit),
            fmt(p, unit),
            fmt(w, unit),
            ratio(c, w),
            fmt(d, unit),
            ratio(d, w),
        );
    }
    for who in ["confidential", "plaintext", "workerd", "clave_dev"] {
        if let Some(e) = f(r, &[who, "errors"]).filter(|e| *e > 0.0) {
            eprintln!(
                "  ! {who}: {e} failed requests (first: {})",
                r[who]["first_error"].as_str().unwrap_or("?")
            );
        }
        if r[who]["ran_out_of_requests"].as_bool() == Some(true) {
            eprintln!("  ! {who}: the sealed requests ran out; the interval was cut short");
        }
    }
    print_shared(r);
}

/// The "both CPUs shared" rounds of `--server-alone`: `clave dev` (sealed requests) against
/// workerd (plaintext), external load generator, every process free to use both CPUs.
fn print_shared(r: &Value) {
    let rounds =
        |who: &str| -> Vec<Value> { r["shared"][who].as_array().cloned().unwrap_or_default() };
    let (dev, peer) = (rounds("clave_dev"), rounds("workerd"));
    if dev.is_empty() {
        return;
    }
    println!();
    println!(
        "{:<36} {:>12} {:>12} {:>10}",
        "both CPUs shared (external load)", "clave dev", "workerd", "dev/wrkd"
    );
    println!("{}", "-".repeat(74));
    for (i, d) in dev.iter().enumerate() {
        let w = peer.get(i).cloned().unwrap_or(Value::Null);
        for (name, metric, unit) in LOAD_ROWS.into_iter().chain([
            ("server CPU utilisation", "server_cpu_utilisation", ""),
            (
                "load generator CPU utilisation",
                "client_cpu_utilisation",
                "",
            ),
            (
                "server context switches per request",
                "server_cs_per_request",
                "",
            ),
            (
                "load gen. context switches per req.",
                "client_cs_per_request",
                "",
            ),
            ("IPIs per request (machine)", "ipis_per_request", ""),
        ]) {
            let (a, b) = (f(d, &[metric]), f(&w, &[metric]));
            println!(
                "{:<36} {:>12} {:>12} {:>10}",
                format!("round {}: {name}", i + 1),
                fmt(a, unit),
                fmt(b, unit),
                ratio(a, b)
            );
        }
        for (who, v) in [("clave dev", d), ("workerd", &w)] {
            if let Some(e) = f(v, &["errors"]).filter(|e| *e > 0.0) {
                eprintln!(
                    "  ! shared round {}, {who}: {e} failed requests (first: {})",
                    i + 1,
                    v["first_error"].as_str().unwrap_or("?")
                );
            }
            if v["ran_out_of_requests"].as_bool() == Some(true) {
                eprintln!(
                    "  ! shared round {}, {who}: the sealed requests ran out; the interval was cut short",
                    i + 1
                );
            }
        }
    }
}

pub(crate) fn f(v: &Value, path: &[&str]) -> Option<f64> {
    let mut v = v;
    for p in path {
        v = v.get(p)?;
    }
    v.as_f64()
}

pub(crate) fn fmt(x: Option<f64>, unit: &str) -> String {
    match x {
        Some(x) if x.is_finite() => {
            if unit == "×" {
                format!("{x:.2}×")
            } else if x >= 100.0 {
                format!("{x:.0} {unit}")
            } else if x < 1.0 {
                format!("{x:.2} {unit}")
            } else {
                format!("{x:.1} {unit}")
            }
        }
        _ => "–".into(),
    }
}

pub(crate) fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 && a.is_finite() && b.is_finite() => format!("{:.2}×", a / b),
        _ => "–".into(),
    }
}

pub(crate) fn verdict(ok: Option<bool>) -> &'static str {
    match ok {
        Some(true) => "met",
        Some(false) => "MISSED",
        None => "–",
    }
}

pub(crate) fn print_table(r: &Value) {
    println!();
    println!(
        "{:<34} {:>12} {:>12} {:>12} {:>10} {:>10}",
        "metric", "confidential", "plaintext", "workerd", "conf/plain", "conf/wrkd"
    );
    println!("{}", "-".repeat(94));
    for (name, section, metric, unit) in [
        ("1 conn p50", "unloaded", "p50_us", "µs"),
        ("1 conn p99", "unloaded", "p99_us", "µs"),
        (
            "1 conn CPU per request",
            "unloaded",
            "cpu_us_per_request",
            "µs",
        ),
        (
            "32 conn throughput, all CPUs",
            "loaded_all_cpus",
            "requests_per_second",
            "/s",
        ),
        ("32 conn p50, all CPUs", "loaded_all_cpus", "p50_us", "µs"),
        ("32 conn p99, all CPUs", "loaded_all_cpus", "p99_us", "µs"),
        (
            "32 conn CPU per request, all CPUs",
            "loaded_all_cpus",
            "cpu_us_per_request",
            "µs",
        ),
        (
            "32 conn throughput, CPU 0",
            "loaded_pinned_cpu0",
            "requests_per_second",
            "/s",
        ),
        ("32 conn p99, CPU 0", "loaded_pinned_cpu0", "p99_us", "µs"),
        (
            "32 conn CPU per request, CPU 0",
            "loaded_pinned_cpu0",
            "cpu_us_per_request",
            "µs",
        ),
    ] {
        let get = |who: &str| f(r, &[section, who, metric]);
        let (c, p, w) = (get("confidential"), get("plaintext"), get("workerd"));
        println!(
            "{name:<34} {:>12} {:>12} {:>12} {:>10} {:>10}",
            fmt(c, unit),
            fmt(p, unit),
            fmt(w, unit),
            ratio(c, p),
            ratio(c, w),
        );
    }
    println!("{}", "-".repeat(94));
    let kib = |k: &[&str]| fmt(f(r, k), "KiB");
    println!(
        "{:<34} {:>12}",
        "RSS idle (whole platform)",
        kib(&["memory", "rss_idle_kib"])
    );
    println!(
        "{:<34} {:>12}",
        "RSS under load (+ load generator)",
        kib(&["memory", "rss_under_load_kib"])
    );
    println!(
        "{:<34} {:>12}",
        "RSS per idle deployed function",
        kib(&["memory", "idle_functions", "kib_per_function"])
    );
    println!(
        "{:<34} {:>12}",
        "cold start: first call p50",
        fmt(f(r, &["cold_start", "first_call_p50_us"]), "µs")
    );
    println!(
        "{:<34} {:>12}",
        "cold start: second call p50",
        fmt(f(r, &["cold_start", "second_call_p50_us"]), "µs")
    );
    println!(
        "{:<34} {:>12}",
        "process start → first conf. resp.",
        fmt(
            f(
                r,
                &["process_start", "to_first_confidential_response_p50_ms"]
            ),
            "ms"
        )
    );
    println!(
        "{:<34} {:>12}",
        "in-process platform start",
        fmt(f(r, &["in_process_platform_start_ms"]), "ms")
    );

    // Goals.
    println!();
    println!("{:<52} {:>14} {:>8}", "goal", "measured", "");
    println!("{}", "-".repeat(76));
    let goal = |name: &str, measured: Option<f64>, unit: &str, ok: Option<bool>| {
        println!("{name:<52} {:>14} {:>8}", fmt(measured, unit), verdict(ok));
    };
    let c_p50 = f(r, &["unloaded", "confidential", "p50_us"]);
    goal(
        "confidential 1 conn p50 ≤ 150 µs",
        c_p50,
        "µs",
        c_p50.map(|v| v <= 150.0),
    );
    let c_p99 = f(r, &["unloaded", "confidential", "p99_us"]);
    goal(
        "confidential 1 conn p99 ≤ 400 µs",
        c_p99,
        "µs",
        c_p99.map(|v| v <= 400.0),
    );
    let rat = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    };
    let both = rat(
        f(
            r,
            &["loaded_all_cpus", "confidential", "requests_per_second"],
        ),
        f(r, &["loaded_all_cpus", "workerd", "requests_per_second"]),
    );
    goal(
        "confidential/workerd throughput, all CPUs ≥ 1.5×",
        both,
        "×",
        both.map(|v| v >= 1.5),
    );
    let one = rat(
        f(
            r,
            &["loaded_pinned_cpu0", "confidential", "requests_per_second"],
        ),
        f(r, &["loaded_pinned_cpu0", "workerd", "requests_per_second"]),
    );
    goal(
        "confidential/workerd throughput, CPU 0 ≥ 1.0×",
        one,
        "×",
        one.map(|v| v >= 1.0),
    );
    let cpu = rat(
        f(
            r,
            &["loaded_all_cpus", "confidential", "cpu_us_per_request"],
        ),
        f(r, &["loaded_all_cpus", "plaintext", "cpu_us_per_request"]),
    );
    goal(
        "CPU per request confidential/plaintext ≤ 1.5×",
        cpu,
        "×",
        cpu.map(|v| v <= 1.5),
    );
    let cold = f(r, &["cold_start", "first_call_p50_us"]);
    goal(
        "cold start of a new function p50 ≤ 1 ms",
        cold,
        "µs",
        cold.map(|v| v <= 1000.0),
    );
    let ps = f(
        r,
        &["process_start", "to_first_confidential_response_p50_ms"],
    );
    goal(
        "process start → first confidential response ≤ 10 ms",
        ps,
        "ms",
        ps.map(|v| v <= 10.0),
    );
    let per = f(r, &["memory", "idle_functions", "kib_per_function"]);
    goal(
        "per idle deployed function ≤ 256 KiB",
        per,
        "KiB",
        per.map(|v| v <= 256.0),
    );
    let p99 = f(r, &["loaded_all_cpus", "confidential", "p99_us"]);
    goal(
        "confidential p99 under load ≤ 10 ms",
        p99,
        "µs",
        p99.map(|v| v <= 10_000.0),
    );
}
