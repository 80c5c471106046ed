//! `registry synth --patients N --seed S [--profile ni2019]`: a deterministic synthetic cohort as
//! NDJSON events on stdout.

use std::io::Write;
use std::process::ExitCode;

use registry_domain::synth::{generate, Profile, SynthConfig};

#[derive(clap::Args)]
pub(crate) struct SynthArgs {
    /// Number of patients.
    #[arg(long, default_value_t = 93)]
    patients: usize,
    /// Seed: the same seed gives the same bytes.
    #[arg(long, default_value_t = 2019)]
    seed: u64,
    /// Shape of the cohort.
    #[arg(long, default_value = "ni2019", value_parser = parse_profile)]
    profile: Profile,
}

fn parse_profile(s: &str) -> Result<Profile, String> {
    Profile::parse(s).ok_or_else(|| format!("unknown profile {s:?} (known: ni2019)"))
}

pub(crate) fn run(args: SynthArgs) -> anyhow::Result<ExitCode> {
    let cfg = SynthConfig { patients: args.patients, seed: args.seed, profile: args.profile };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for event in generate(&cfg) {
        out.write_all(&event.canonical_json())?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
