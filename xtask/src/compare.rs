//! `cargo xtask compare`: diagnose a Keras bundle against its PyTorch port.
//!
//! - no arguments: the bundled seed example (`models/seed-mlp/{keras,torch}`), terminal summary;
//! - `KERAS_BUNDLE TORCH_BUNDLE [--out DIR] [--json FILE] [--steps N] [--seeds K]`: the
//!   terminal summary, plus `report.md`, `report.html` and `report.json` in `--out` and the
//!   JSON in `--json` (`-` for stdout); `--steps`/`--seeds` set the training stages (200, 5);
//! - `--all`: every case under `models/cases/*/` against its `expected.json`, one line per
//!   case, then `compare: N passed, N failed`; non-zero exit on a failure.
//!
//! Exit 0 when the analysis ran, whatever it found; bad input is an error (one line).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, format_err};
use diagnose::report::{self, Diagnosis, Severity};
use diagnose::{Options, diagnose_with_progress};

/// Arguments of `cargo xtask compare`.
#[derive(Debug, Default, PartialEq, clap::Args)]
#[command(
    args_override_self = true,
    after_help = "Without bundles: the bundled seed example (models/seed-mlp/{keras,torch}).
Exit 0 when the analysis ran, whatever it found.

Examples:
  cargo xtask compare
  cargo xtask compare path/to/keras_bundle path/to/torch_bundle --out report/
  cargo xtask compare k t --json - --steps 100 --seeds 3
  cargo xtask compare --all"
)]
pub(crate) struct Args {
    /// Every case under models/cases/ against its expected.json
    #[arg(long, conflicts_with_all = ["keras", "torch"])]
    all: bool,
    /// The Keras bundle directory
    #[arg(value_name = "KERAS_BUNDLE", requires = "torch", value_parser = clap::value_parser!(PathBuf))]
    keras: Option<PathBuf>,
    /// The PyTorch bundle directory
    #[arg(value_name = "TORCH_BUNDLE", requires = "keras", value_parser = clap::value_parser!(PathBuf))]
    torch: Option<PathBuf>,
    /// Also write report.md, report.html and report.json to DIR
    #[arg(long, value_name = "DIR", value_parser = clap::value_parser!(PathBuf))]
    out: Option<PathBuf>,
    /// Also write the JSON report to FILE (`-`: stdout, instead of the terminal summary)
    #[arg(long, value_name = "FILE", value_parser = clap::value_parser!(PathBuf))]
    json: Option<PathBuf>,
    /// Training steps of the training stages [default: 200]
    #[arg(long, value_name = "N", value_parser = positive)]
    steps: Option<usize>,
    /// Seeds of the training stages [default: 5]
    #[arg(long, value_name = "K", value_parser = positive)]
    seeds: Option<usize>,
}

/// A positive integer (`--steps`, `--seeds`).
fn positive(v: &str) -> Result<usize, String> {
    match v.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err("expected a positive integer".into()),
    }
}

/// Runs `f`; when it takes more than a second, says so on stderr (and how long it took).
fn with_progress<T: Send>(label: &str, f: impl FnOnce() -> T + Send) -> T {
    let start = Instant::now();
    let (tx, rx) = mpsc::channel::<()>();
    std::thread::scope(|s| {
        let watcher = s.spawn(move || {
            if rx.recv_timeout(Duration::from_secs(1)).is_err() {
                eprintln!("compare: {label} ...");
                let _ = rx.recv();
                eprintln!(
                    "compare: {label} done in {:.1} s",
                    start.elapsed().as_secs_f64()
                );
            }
        });
        let out = f();
        let _ = tx.send(());
        let _ = watcher.join();
        out
    })
}

fn load(path: &Path) -> anyhow::Result<model_import::Bundle> {
    if !path.is_dir() {
        bail!("{}: not a bundle directory", path.display());
    }
    Ok(model_import::load_bundle(path)?)
}

/// Loads both bundles and diagnoses them; `labels` replace the bundle paths in the report.
fn run_pair(
    keras: &Path,
    torch: &Path,
    labels: (&str, &str),
    opts: &Options,
) -> anyhow::Result<Diagnosis> {
    let (k, t) = with_progress("loading the bundles", || (load(keras), load(torch)));
    let (k, t) = (k?, t?);
    let start = Instant::now();
    // Stage names once the analysis has taken over a second.
    let stage = |s: &str| {
        if start.elapsed() > Duration::from_secs(1) {
            eprintln!(
                "compare: {s} ({:.1} s into the analysis)",
                start.elapsed().as_secs_f64()
            );
        }
    };
    let mut d = with_progress("analysis", || diagnose_with_progress(&k, &t, opts, &stage))?;
    d.keras.source = labels.0.to_string();
    d.torch.source = labels.1.to_string();
    Ok(d)
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// `expected.json` of a bundled case.
#[derive(Debug, Default, PartialEq)]
struct Expected {
    top: Option<String>,
    present: Vec<String>,
    absent: Vec<String>,
    /// Strings the Markdown report must contain.
    mentions: Vec<String>,
    /// Strings the Markdown report must not contain.
    never: Vec<String>,
}

/// The keys `expected.json` may hold (anything else is a typo, refused).
const EXPECTED_KEYS: [&str; 5] = ["top", "present", "absent", "mentions", "never"];

fn parse_expected(text: &str) -> anyhow::Result<Expected> {
    let v: serde_json::Value = serde_json::from_str(text)?;
    let Some(obj) = v.as_object() else {
        bail!("expected.json must be an object");
    };
    if let Some(k) = obj.keys().find(|k| !EXPECTED_KEYS.contains(&k.as_str())) {
        bail!("unknown key `{k}` (known: {})", EXPECTED_KEYS.join(", "));
    }
    let list = |k: &str| -> anyhow::Result<Vec<String>> {
        match v.get(k) {
            None | Some(serde_json::Value::Null) => Ok(Vec::new()),
            Some(serde_json::Value::Array(a)) => a
                .iter()
                .map(|x| {
                    x.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| format_err!("`{k}` must list strings"))
                })
                .collect(),
            Some(_) => bail!("`{k}` must be a list"),
        }
    };
    Ok(Expected {
        top: match v.get("top") {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(_) => bail!("`top` must be a string or null"),
        },
        present: list("present")?,
        absent: list("absent")?,
        mentions: list("mentions")?,
        never: list("never")?,
    })
}

/// Problems of a diagnosis against a case's expectations (empty: pass).
///
/// `top` is compared with the first finding (ranked by measured impact, unmeasured findings
/// after the measured ones by severity); every `present` id must be found and no `absent`
/// id; a case with nothing `present` (a faithful port) must have nothing above `info`; the
/// Markdown report must contain every `mentions` string and no `never` string.
fn check_expected(d: &Diagnosis, e: &Expected) -> Vec<String> {
    let found: BTreeSet<&str> = d.findings.iter().map(|f| f.id.as_str()).collect();
    let mut problems = Vec::new();
    if let Some(top) = &e.top {
        let first = d.findings.first().map_or("none", |f| f.id.as_str());
        if first != top {
            problems.push(format!("top is `{first}`, expected `{top}`"));
        }
    }
    let missing: Vec<&str> = e
        .present
        .iter()
        .map(String::as_str)
        .filter(|id| !found.contains(id))
        .collect();
    if !missing.is_empty() {
        problems.push(format!("missing {}", missing.join(", ")));
    }
    let unwanted: Vec<&str> = e
        .absent
        .iter()
        .map(String::as_str)
        .filter(|id| found.contains(id))
        .collect();
    if !unwanted.is_empty() {
        problems.push(format!("unexpected {}", unwanted.join(", ")));
    }
    if e.present.is_empty() && e.top.is_none() {
        let above: Vec<String> = d
            .findings
            .iter()
            .filter(|f| f.severity < Severity::Info)
            .map(|f| format!("{} ({})", f.id, f.severity))
            .collect();
        if !above.is_empty() {
            problems.push(format!("faithful port, but found {}", above.join(", ")));
        }
    }
    if !e.mentions.is_empty() || !e.never.is_empty() {
        let md = report::render_markdown(d);
        for m in &e.mentions {
            if !md.contains(m.as_str()) {
                problems.push(format!("the report does not mention `{m}`"));
            }
        }
        for n in &e.never {
            if let Some(line) = md.lines().find(|l| l.contains(n.as_str())) {
                problems.push(format!(
                    "the report says `{n}`, which it must never say: \"{}\"",
                    line.trim()
                ));
            }
        }
    }
    problems
}

/// Case directories under `models/cases/` (sorted, `_lib` skipped).
pub(crate) fn case_dirs(root: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let dir = root.join("models/cases");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir() && p.file_name().is_some_and(|n| n != "_lib"))
        .collect();
    v.sort();
    Ok(v)
}

fn run_case(root: &Path, dir: &Path) -> anyhow::Result<(Vec<String>, String)> {
    let expected_path = dir.join("expected.json");
    let text = std::fs::read_to_string(&expected_path)
        .with_context(|| format!("reading {}", expected_path.display()))?;
    let e = parse_expected(&text).with_context(|| format!("{}", expected_path.display()))?;
    let rel = |p: PathBuf| {
        p.strip_prefix(root)
            .map(|r| r.display().to_string())
            .unwrap_or_else(|_| p.display().to_string())
    };
    let (k, t) = (dir.join("keras"), dir.join("torch"));
    let d = run_pair(
        &k,
        &t,
        (&rel(k.clone()), &rel(t.clone())),
        &Options::default(),
    )?;
    let first = d.findings.first().map_or_else(
        || "no findings".to_string(),
        |f| match &f.impact {
            Some(i) => format!(
                "first {} ({}, {:.0} % of the gap)",
                f.id,
                f.severity,
                i.share * 100.0
            ),
            None => format!("first {} ({})", f.id, f.severity),
        },
    );
    Ok((
        check_expected(&d, &e),
        format!("{first}, {} findings", d.findings.len()),
    ))
}

fn run_all(root: &Path) -> anyhow::Result<ExitCode> {
    let (mut passed, mut failed) = (0, 0);
    for dir in case_dirs(root)? {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        match run_case(root, &dir) {
            Ok((problems, info)) if problems.is_empty() => {
                passed += 1;
                println!("PASS {name}: {info}");
            }
            Ok((problems, _)) => {
                failed += 1;
                println!("FAIL {name}: {}", problems.join("; "));
            }
            Err(e) => {
                failed += 1;
                println!("FAIL {name}: {}", format!("{e:#}").replace('\n', " "));
            }
        }
    }
    println!("compare: {passed} passed, {failed} failed");
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `cargo xtask compare ...`.
pub(crate) fn run(a: &Args) -> anyhow::Result<ExitCode> {
    let root = crate::project_root();
    if a.all {
        return run_all(&root);
    }
    let opts = Options {
        steps: a.steps,
        seeds: a.seeds,
    };
    let d = if let (Some(k), Some(t)) = (&a.keras, &a.torch) {
        run_pair(
            k,
            t,
            (&k.display().to_string(), &t.display().to_string()),
            &opts,
        )?
    } else {
        let seed = root.join("models/seed-mlp");
        run_pair(
            &seed.join("keras"),
            &seed.join("torch"),
            ("models/seed-mlp/keras", "models/seed-mlp/torch"),
            &opts,
        )?
    };
    let to_stdout = a.json.as_deref() == Some(Path::new("-"));
    if !to_stdout {
        print!("{}", report::render_terminal(&d));
    }
    if let Some(dir) = &a.out {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        write(&dir.join("report.md"), &report::render_markdown(&d))?;
        write(&dir.join("report.html"), &report::render_html(&d))?;
        write(&dir.join("report.json"), &report::render_json(&d))?;
        eprintln!(
            "compare: wrote report.md, report.html, report.json to {}",
            dir.display()
        );
    }
    match &a.json {
        Some(p) if to_stdout => print!("{}", report::render_json(&d)),
        Some(p) => write(p, &report::render_json(&d))?,
        None => {}
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `cargo xtask compare ARGS` as clap parses it.
    fn parse_args(s: &str) -> Result<Args, clap::Error> {
        #[derive(Debug, clap::Parser)]
        struct Cli {
            #[command(flatten)]
            args: Args,
        }
        let argv = std::iter::once("compare").chain(s.split_whitespace());
        <Cli as clap::Parser>::try_parse_from(argv).map(|c| c.args)
    }

    #[test]
    fn arguments() {
        assert_eq!(parse_args("").unwrap(), Args::default());
        let a = parse_args("k t --out o --json j.json --steps 200 --seeds 5").unwrap();
        assert_eq!(a.keras.as_deref(), Some(Path::new("k")));
        assert_eq!(a.torch.as_deref(), Some(Path::new("t")));
        assert_eq!((a.steps, a.seeds), (Some(200), Some(5)));
        assert_eq!(a.out.as_deref(), Some(Path::new("o")));
        assert_eq!(
            parse_args("k t --json -").unwrap().json.as_deref(),
            Some(Path::new("-"))
        );
        assert!(parse_args("--all").unwrap().all);
        // Usage errors are clap's, with exit code 2.
        for bad in [
            "k",
            "--all k t",
            "k t --steps 0",
            "k t --steps x",
            "k t --bogus",
            "k t --out",
            "k t u",
        ] {
            let e = parse_args(bad).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad}: {e}");
        }
    }

    #[test]
    fn expectations() {
        let e = parse_expected(r#"{"top": "a", "present": ["a", "b"], "absent": ["c"]}"#).unwrap();
        assert_eq!(e.top.as_deref(), Some("a"));
        let faithful = parse_expected(r#"{"top": null, "present": [], "absent": ["c"]}"#).unwrap();
        assert_eq!(faithful.top, None);
        assert!(parse_expected(r#"{"top": 3}"#).is_err());
        let text = parse_expected(
            r#"{"top": null, "mentions": ["blocks.0"], "never": ["blocks.blocks"]}"#,
        )
        .unwrap();
        assert_eq!(text.mentions, ["blocks.0"]);
        assert_eq!(text.never, ["blocks.blocks"]);
        assert!(parse_expected(r#"{"never": "x"}"#).is_err());
        let typo = parse_expected(r#"{"mention": ["x"]}"#).unwrap_err();
        assert!(typo.to_string().contains("unknown key `mention`"), "{typo}");
    }

    #[test]
    fn seed_example_runs() {
        let root = crate::project_root();
        let seed = root.join("models/seed-mlp");
        let d = run_pair(
            &seed.join("keras"),
            &seed.join("torch"),
            ("models/seed-mlp/keras", "models/seed-mlp/torch"),
            &Options::default(),
        )
        .unwrap();
        let e = Expected {
            top: Some("double-softmax".into()),
            present: vec![
                "double-softmax".into(),
                "dense-init".into(),
                "adam-epsilon-hat".into(),
                "std-ddof".into(),
            ],
            absent: vec![],
            mentions: vec!["double-softmax".into()],
            never: vec!["no such text in any report".into()],
        };
        assert_eq!(check_expected(&d, &e), Vec::<String>::new());
        let mut wrong = e;
        wrong.absent.push("dense-init".into());
        wrong.top = Some("std-ddof".into());
        assert_eq!(check_expected(&d, &wrong).len(), 2);
        // Text checks on the Markdown report.
        wrong.mentions.push("no such text in any report".into());
        wrong.never.push("double-softmax".into());
        let problems = check_expected(&d, &wrong);
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(problems[2].contains("does not mention `no such text"));
        assert!(problems[3].contains("must never say") && problems[3].contains("double-softmax"));
    }

    #[test]
    fn bad_input_is_one_line() {
        let a = parse_args("/nonexistent/k /nonexistent/t").unwrap();
        let e = run(&a).unwrap_err();
        let msg = format!("{e:#}");
        assert!(msg.contains("not a bundle directory"), "{msg}");
        assert!(!msg.contains('\n'));
    }
}
