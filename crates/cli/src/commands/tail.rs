//! `clave tail` and `clave logs`: read sealed developer log records from the gateway and open
//! them with this machine's developer log key.

use clave_client::{Client, LogsRequest, now_unix};
use clave_proto::devlog::{LogKeyPair, LogRecord};
use clave_proto::devloop_api::LogEntryJson;
use serde_json::json;

use super::{Ctx, Target};
use crate::cli::{LogStatus, LogsArgs, TailArgs};
use crate::output::{CliError, from_client};

/// How long one long poll of `clave tail` waits, seconds.
const POLL_SECS: u64 = 25;

/// `1700000000123` → `2023-11-14T22:13:20.123Z` (the calendar of the `time` crate); decimal
/// unix milliseconds for a time RFC 3339 cannot write (after 9999).
pub(super) fn utc(ms: u64) -> String {
    i64::try_from(ms / 1000)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .map_or_else(
            || ms.to_string(),
            |t| {
                format!(
                    "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
                    t.year(),
                    u8::from(t.month()),
                    t.day(),
                    t.hour(),
                    t.minute(),
                    t.second(),
                    ms % 1000
                )
            },
        )
}

/// `30s`, `15m`, `1h`, `2d` → seconds.
pub(super) fn parse_since(s: &str) -> Result<u64, CliError> {
    clave_gateway::parse_duration(s)
        .map(|d| d.as_secs())
        .ok_or_else(|| bad_since(s.trim()))
}

fn bad_since(s: &str) -> CliError {
    CliError::usage(format!(
        "--since {s:?}: write a number and a unit, e.g. 30s, 15m, 1h or 2d."
    ))
}

fn key_pair(ctx: &Ctx) -> Result<LogKeyPair, CliError> {
    crate::logkey::load(&ctx.dir)
        .map_err(CliError::usage)?
        .ok_or_else(|| {
            CliError::usage(format!(
                "no developer log key on this machine ({}): logs are sealed to the key of the machine that deployed the function; `clave deploy` creates and registers one.",
                crate::logkey::path(&ctx.dir).display()
            ))
        })
}

/// Prints records and counts the refused ones.
struct Printer<'a> {
    ctx: &'a Ctx,
    project: String,
    pair: LogKeyPair,
    status: Option<LogStatus>,
    shown: u64,
    refused: u64,
}

impl Printer<'_> {
    fn wanted(&self, r: &LogRecord) -> bool {
        match self.status {
            None => true,
            Some(LogStatus::Ok) => r.outcome == "ok",
            Some(LogStatus::Error) => r.outcome != "ok",
        }
    }

    fn entry(&mut self, e: &LogEntryJson) {
        let record = match self.pair.open(&self.project, &e.function, &e.sealed) {
            Ok(r) => r,
            Err(_) => {
                self.refused += 1;
                self.ctx.out.warn(&format!(
                    "refused log record {} of {}: it does not open with the developer log key in {} (altered in storage, or sealed to another key); not shown",
                    e.id,
                    e.function,
                    crate::logkey::path(&self.ctx.dir).display()
                ));
                return;
            }
        };
        // The record names its function inside the encryption too.
        if record.function != e.function {
            self.refused += 1;
            self.ctx.out.warn(&format!(
                "refused log record {}: filed under {} but sealed for {}",
                e.id, e.function, record.function
            ));
            return;
        }
        if !self.wanted(&record) {
            return;
        }
        self.shown += 1;
        if self.ctx.out.json {
            let mut v = serde_json::to_value(&record).unwrap_or_default();
            if let Some(o) = v.as_object_mut() {
                o.insert("id".into(), json!(e.id));
                o.insert("project".into(), json!(self.project));
                o.insert("time".into(), json!(utc(record.ts_ms)));
            }
            println!("{v}");
            return;
        }
        let out = &self.ctx.out;
        let outcome = if record.outcome == "ok" {
            out.green("ok")
        } else {
            out.bold(&record.outcome)
        };
        let mut head = format!(
            "{} {} {} {} {:.1} ms  in {} B  out {} B",
            out.dim(&utc(record.ts_ms)),
            out.bold(&record.function),
            outcome,
            record.status,
            record.duration_us as f64 / 1000.0,
            record.request_bytes,
            record.response_bytes
        );
        if let Some(m) = &record.message {
            head.push_str(&format!(": {m}"));
        }
        out.line(&head);
        for l in &record.console {
            for (i, text) in l.text.lines().enumerate() {
                let level = if i == 0 { l.level.as_str() } else { "" };
                out.line(&format!("  {level:<5} {text}"));
            }
        }
        if record.console_truncated {
            out.line(&out.dim("  (console output beyond the function's limit was dropped)"));
        }
        if let Some(stack) = &record.stack {
            for line in stack.lines().filter(|l| !l.trim().is_empty()) {
                out.line(&out.dim(&format!("    {}", line.trim())));
            }
        }
    }

    fn finish(&self) -> Result<(), CliError> {
        if self.refused > 0 {
            return Err(CliError::failed(format!(
                "{} log record(s) were refused: they do not open with this machine's developer log key.",
                self.refused
            )));
        }
        Ok(())
    }
}

fn check_function(name: Option<&str>) -> Result<(), CliError> {
    match name {
        Some(f) if f.parse::<clave_proto::FunctionName>().is_err() => Err(CliError::usage(
            format!("{f:?} is not a valid function name."),
        )),
        _ => Ok(()),
    }
}

/// What `tail` and `logs` (`what`) start with: the deploy token, a client, and a printer holding
/// this machine's developer key pair, after a warning when the project registered another key.
async fn open_logs<'a>(
    ctx: &'a Ctx,
    t: &'a Target,
    status: Option<LogStatus>,
    what: &str,
) -> Result<(&'a str, Client, Printer<'a>), CliError> {
    let token = ctx.need_token(t, what)?;
    let pair = key_pair(ctx)?;
    let client = ctx.client(t)?;
    if let Ok(Some(k)) = client.log_key(&t.project, token).await
        && k != pair.public()
    {
        ctx.out.warn(&format!(
            "project {} registered another developer log key: records sealed to it cannot be opened on this machine",
            t.project
        ));
    }
    let printer = Printer {
        ctx,
        project: t.project.clone(),
        pair,
        status,
        shown: 0,
        refused: 0,
    };
    Ok((token, client, printer))
}

pub(super) async fn tail(ctx: &Ctx, args: TailArgs) -> Result<(), CliError> {
    check_function(args.name.as_deref())?;
    let t = ctx.target()?;
    let (token, client, mut p) = open_logs(ctx, &t, args.status, "tail").await?;
    if !ctx.out.json {
        ctx.out.note(&format!(
            "following the sealed logs of {}{} (Ctrl-C to stop)",
            t.project,
            args.name
                .as_deref()
                .map_or_else(String::new, |n| format!("/{n}"))
        ));
    }
    let mut q = LogsRequest {
        function: args.name.clone(),
        after: 0,
        since: i64::try_from(now_unix()).unwrap_or(0),
        limit: 100,
        wait_secs: POLL_SECS,
    };
    loop {
        let page = client
            .logs(&t.project, &q, token)
            .await
            .map_err(|e| from_client(&e, &ctx.err_ctx(&t, args.name.as_deref())))?;
        for e in &page.entries {
            p.entry(e);
            if args.count.is_some_and(|n| p.shown + p.refused >= n) {
                return p.finish();
            }
        }
        q.after = page.next;
    }
}

pub(super) async fn logs(ctx: &Ctx, args: LogsArgs) -> Result<(), CliError> {
    check_function(Some(&args.name))?;
    let since = parse_since(&args.since)?;
    let t = ctx.target()?;
    let (token, client, mut p) = open_logs(ctx, &t, args.status, "logs").await?;
    let mut q = LogsRequest {
        function: Some(args.name.clone()),
        after: 0,
        since: i64::try_from(now_unix().saturating_sub(since)).unwrap_or(0),
        limit: 500,
        wait_secs: 0,
    };
    loop {
        let page = client
            .logs(&t.project, &q, token)
            .await
            .map_err(|e| from_client(&e, &ctx.err_ctx(&t, Some(&args.name))))?;
        for e in &page.entries {
            if p.shown >= args.limit {
                return p.finish();
            }
            p.entry(e);
        }
        if page.entries.is_empty() {
            break;
        }
        q.after = page.next;
    }
    if p.shown == 0 && p.refused == 0 && !ctx.out.json {
        ctx.out.note(&format!(
            "no log records of {} in the last {} (calls are logged when the function was deployed with a log key: `clave deploy` adds one unless --no-logs)",
            args.name, args.since
        ));
    }
    p.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_and_since() {
        assert_eq!(utc(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(utc(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(utc(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(utc(253_402_300_799_999), "9999-12-31T23:59:59.999Z");
        assert_eq!(utc(253_402_300_800_000), "253402300800000");
        assert_eq!(parse_since("30s").expect("s"), 30);
        assert_eq!(parse_since("15m").expect("m"), 900);
        assert_eq!(parse_since("1h").expect("h"), 3600);
        assert_eq!(parse_since("2d").expect("d"), 172_800);
        for bad in ["", "h", "1", "1w", "-1h", "1.5h", "99999999999999999999d"] {
            let e = parse_since(bad).expect_err(bad);
            assert_eq!(e.code, crate::output::exit::USAGE, "{bad}");
            assert!(
                e.message.starts_with(&format!("--since {bad:?}: ")),
                "{bad}: {}",
                e.message
            );
        }
    }
}
