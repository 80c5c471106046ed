//! `registry stats …`: read a CSV, hand its cells to `registry_stats::request`, print the JSON.
//! Glue only; the statistics, the NA handling and the JSON shape live in the stats crate.
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, ValueEnum};
use registry_stats::cox::Ties;
use registry_stats::km::{ConfType, MedianCi};
use registry_stats::request::{run as run_request, Frame, Request};

#[derive(clap::Subcommand)]
pub(crate) enum StatsCommand {
    /// Kaplan–Meier curves with Greenwood CIs and the median (as survival::survfit).
    Km {
        #[command(flatten)]
        surv: SurvColumns,
        /// Column splitting the rows into curves.
        #[arg(long)]
        group: Option<String>,
        #[arg(long, value_enum, default_value_t = ConfTypeArg::Log)]
        conf_type: ConfTypeArg,
        #[arg(long, value_enum, default_value_t = MedianCiArg::Band)]
        median_ci: MedianCiArg,
    },
    /// k-sample log-rank test (as survival::survdiff).
    Logrank {
        #[command(flatten)]
        surv: SurvColumns,
        #[arg(long)]
        group: String,
    },
    /// Cox proportional hazards model (as survival::coxph).
    Cox {
        #[command(flatten)]
        surv: SurvColumns,
        /// Comma-separated numeric covariate columns.
        #[arg(long, value_delimiter = ',', required = true)]
        covariates: Vec<String>,
        #[arg(long, value_enum, default_value_t = TiesArg::Efron)]
        ties: TiesArg,
    },
    /// Cumulative incidence with Gray's test (as cmprsk::cuminc); event 0 censored, k cause k.
    Cuminc {
        #[command(flatten)]
        surv: SurvColumns,
        #[arg(long)]
        group: Option<String>,
    },
    /// Fine–Gray subdistribution hazards model (as cmprsk::crr).
    Finegray {
        #[command(flatten)]
        surv: SurvColumns,
        /// The event code of the cause of interest.
        #[arg(long)]
        cause: u32,
        #[arg(long, value_delimiter = ',', required = true)]
        covariates: Vec<String>,
    },
    /// Pearson's chi-square test of a two-way table (as chisq.test).
    Chisq {
        #[command(flatten)]
        table: TableColumns,
        /// Yates' continuity correction (2×2 only).
        #[arg(long)]
        correct: bool,
    },
    /// Fisher's exact test, two-sided (as fisher.test); 2×2 and 2×k.
    Fisher {
        #[command(flatten)]
        table: TableColumns,
    },
    /// Wilcoxon rank-sum test (as wilcox.test); W of the first group in sorted order.
    Wilcoxon {
        #[arg(long)]
        csv: PathBuf,
        #[arg(long)]
        value: String,
        #[arg(long)]
        group: String,
    },
}

#[derive(Args)]
pub(crate) struct SurvColumns {
    /// Input CSV with a header row.
    #[arg(long)]
    csv: PathBuf,
    /// Column with the follow-up time.
    #[arg(long)]
    time: String,
    /// Column with the event code.
    #[arg(long)]
    event: String,
}

#[derive(Args)]
pub(crate) struct TableColumns {
    #[arg(long)]
    csv: PathBuf,
    #[arg(long)]
    row: String,
    #[arg(long)]
    col: String,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum ConfTypeArg {
    Log,
    LogLog,
    Plain,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum MedianCiArg {
    Band,
    Symmetric,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum TiesArg {
    Efron,
    Breslow,
}

pub(crate) fn run(cmd: StatsCommand) -> anyhow::Result<ExitCode> {
    let (csv, request) = match cmd {
        StatsCommand::Km { surv, group, conf_type, median_ci } => (
            surv.csv,
            Request::Km {
                time: surv.time,
                event: surv.event,
                group,
                conf_type: match conf_type {
                    ConfTypeArg::Log => ConfType::Log,
                    ConfTypeArg::LogLog => ConfType::LogLog,
                    ConfTypeArg::Plain => ConfType::Plain,
                },
                median_ci: match median_ci {
                    MedianCiArg::Band => MedianCi::Band,
                    MedianCiArg::Symmetric => MedianCi::Symmetric,
                },
            },
        ),
        StatsCommand::Logrank { surv, group } => {
            (surv.csv, Request::LogRank { time: surv.time, event: surv.event, group })
        }
        StatsCommand::Cox { surv, covariates, ties } => (
            surv.csv,
            Request::Cox {
                time: surv.time,
                event: surv.event,
                covariates,
                ties: match ties {
                    TiesArg::Efron => Ties::Efron,
                    TiesArg::Breslow => Ties::Breslow,
                },
            },
        ),
        StatsCommand::Cuminc { surv, group } => {
            (surv.csv, Request::CumInc { time: surv.time, event: surv.event, group })
        }
        StatsCommand::Finegray { surv, cause, covariates } => (
            surv.csv,
            Request::FineGray { time: surv.time, event: surv.event, cause, covariates },
        ),
        StatsCommand::Chisq { table, correct } => {
            (table.csv, Request::ChiSquare { row: table.row, col: table.col, correct })
        }
        StatsCommand::Fisher { table } => (table.csv, Request::Fisher { row: table.row, col: table.col }),
        StatsCommand::Wilcoxon { csv, value, group } => (csv, Request::Wilcoxon { value, group }),
    };
    let frame = read_csv(&csv)?;
    let output = run_request(&frame, &request).with_context(|| format!("{}", csv.display()))?;
    println!("{}", serde_json::to_string(&output).context("rendering JSON")?);
    Ok(ExitCode::SUCCESS)
}

fn read_csv(path: &Path) -> anyhow::Result<Frame> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_path(path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let names = reader
        .headers()
        .with_context(|| format!("{}: no header row", path.display()))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    let mut rows = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.with_context(|| format!("{}: line {}", path.display(), i + 2))?;
        rows.push(record.iter().map(str::to_string).collect());
    }
    Ok(Frame { names, rows })
}
