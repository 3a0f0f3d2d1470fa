//! `gen-migrations`: the command line, and what it prints.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use nanotype_schema::migration::render::{self, d1_column_limit, Side};
use nanotype_schema::migration::{diff::diff, expand, slug, Change, Plan, Rebuild};
use nanotype_schema::Table;

use crate::config::{self, Config};
use crate::layout::{self, Layout, DO_FOLDER};
use crate::replay;
use crate::sources;

/// Writes the next migration for D1 (`<dir>/NNNN_<name>.sql`) and for the Durable Object
/// (`<dir>/do/NNNN_<name>.sql`) from the `#[nanotype::table]` structs. Both are rendered from one
/// diff between the structs and what the existing migrations build, so they always match.
#[derive(Debug, Parser)]
#[command(name = "gen-migrations", version, about, long_about = None)]
#[command(
    after_help = "Exit status: 0 when done (or, with --check, when the migrations are \
current); 1 when --check found a difference, a change was refused, or something failed."
)]
pub struct Args {
    /// Write nothing; exit 1 with a summary when the structs and the migrations disagree (for CI).
    #[arg(long, conflicts_with_all = ["name", "dry_run", "allow_data_loss"])]
    pub check: bool,
    /// Name of the new migration [default: from its changes, e.g. add_tasks_due].
    #[arg(long)]
    pub name: Option<String>,
    /// Print the SQL of both files instead of writing them.
    #[arg(long)]
    pub dry_run: bool,
    /// Write the next migration empty, in both layouts, for SQL written by hand (a data fix, a
    /// trigger, an index the model cannot express); the structs are not read.
    #[arg(long, value_name = "NAME", conflicts_with_all = ["check", "name", "dry_run", "allow_data_loss"])]
    pub empty: Option<String>,
    /// Allow dropping tables and columns (their data is lost).
    #[arg(long)]
    pub allow_data_loss: bool,
    /// Write a breaking change (columns renamed or dropped) as an expand step: D1 keeps both
    /// versions' columns, kept equal by triggers, so the Worker before the deploy and the one
    /// after both work; `--contract` later removes the old ones.
    #[arg(long, conflicts_with_all = ["check", "contract"])]
    pub expand: bool,
    /// Write the contract step of the pending expand: D1 drops the old columns. Apply it once no
    /// Worker of the version before the expand runs.
    #[arg(long, conflicts_with_all = ["check", "allow_data_loss"])]
    pub contract: bool,
    /// The migrations folder: D1 files in it, Durable Object files in `<DIR>/do`
    /// [default: `migrations` of the manifest's [workspace.metadata.nanotype]].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// A file holding `#[nanotype::table]` structs; repeat for several. Replaces the manifest's
    /// `sources`.
    #[arg(long = "source", value_name = "FILE")]
    pub sources: Vec<PathBuf>,
    /// The Cargo.toml with [workspace.metadata.nanotype]
    /// [default: the nearest one from the current directory up].
    #[arg(long, value_name = "CARGO_TOML")]
    pub manifest: Option<PathBuf>,
}

/// Parse the arguments, run, print.
pub fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {}", message.trim_end());
            ExitCode::FAILURE
        }
    }
}

/// Where to read and write, after the manifest and the flags.
struct Paths {
    sources: Vec<PathBuf>,
    layout: Layout,
    types: Option<PathBuf>,
}

fn paths(args: &Args) -> Result<Paths, String> {
    let needs_config = args.sources.is_empty() || args.out.is_none();
    let config: Option<Config> = if needs_config || args.manifest.is_some() {
        let manifest = if let Some(m) = &args.manifest {
            m.clone()
        } else {
            let cwd = std::env::current_dir().map_err(|e| e.to_string())?;
            config::find_manifest(&cwd).ok_or_else(|| {
                "no Cargo.toml with [workspace.metadata.nanotype] here or above; add the \
                 section, or pass --manifest, or --source and --out"
                    .to_owned()
            })?
        };
        Some(config::load(&manifest)?)
    } else {
        None
    };
    let sources = if args.sources.is_empty() {
        config
            .as_ref()
            .map(|c| c.sources.clone())
            .unwrap_or_default()
    } else {
        args.sources.clone()
    };
    if sources.is_empty() {
        return Err(
            "no struct sources: list them in `sources` of [workspace.metadata.nanotype] or pass --source"
                .into(),
        );
    }
    let dir = match (&args.out, &config) {
        (Some(out), _) => out.clone(),
        (None, Some(c)) => c.migrations.clone(),
        (None, None) => PathBuf::from(config::DEFAULT_MIGRATIONS),
    };
    Ok(Paths {
        sources,
        layout: Layout::new(&dir),
        types: config.and_then(|c| c.types),
    })
}

/// Everything `gen-migrations` does; `Err` is a message for stderr.
pub fn run(args: &Args) -> Result<ExitCode, String> {
    let paths = paths(args)?;
    if let Some(name) = &args.empty {
        return empty(&paths.layout, name);
    }
    let target = sources::read_tables(&paths.sources).map_err(|problems| {
        format!(
            "the structs have {} problem(s):\n{}",
            problems.len(),
            bullets(&problems)
        )
    })?;
    let limits: Vec<String> = target.iter().filter_map(d1_column_limit).collect();
    if !limits.is_empty() {
        return Err(format!(
            "D1 would refuse these tables:\n{}",
            bullets(&limits)
        ));
    }
    let current = replay::current(&paths.layout)?;

    let mut plan = diff(&current.tables, &target);
    let nothing_at_all = target.is_empty() && current.tables.is_empty();
    if !current.replica_meta && !nothing_at_all {
        plan.create_replica_meta();
    }

    carry_children(&mut plan, &current.foreign_keys, &target);

    let mut out = std::io::stdout().lock();
    let shown_dir = shown(&paths.layout.replica);
    let summary = format!(
        "{} table(s) in {}; {} migration(s) in {shown_dir}",
        target.len(),
        paths
            .sources
            .iter()
            .map(|p| shown(p))
            .collect::<Vec<_>>()
            .join(", "),
        current.replica_files.len(),
    );

    let types = paths
        .types
        .as_ref()
        .map(|p| (p, nanotype_schema::typescript::declarations(&target)));
    let types_stale = types
        .as_ref()
        .filter(|(p, text)| std::fs::read_to_string(p).ok().as_deref() != Some(text.as_str()));
    if args.check {
        let code = check(&mut out, &summary, &current, &plan);
        if let Some((p, _)) = types_stale {
            let _ = writeln!(
                out,
                "{} is stale: run `cargo run --bin gen-migrations` to write it, and commit it.",
                shown(p)
            );
            return Ok(ExitCode::FAILURE);
        }
        return Ok(code);
    }
    if !current.disagreements.is_empty() {
        return Err(format!(
            "the D1 and Durable Object migrations in {shown_dir} disagree, so there is no one \
             current schema to start from; fix them by hand (e.g. restore the edited file):\n{}",
            bullets(&current.disagreements)
        ));
    }
    let _ = writeln!(out, "{summary}");
    if args.contract {
        return contract(&paths, &current, &target, args, &mut out);
    }
    if let Some(p) = &current.pending {
        if !plan.is_empty() {
            return Err(format!(
                "expand step {} waits for its contract: once no Worker of the version before it \
                 runs, write it with `gen-migrations --contract`, then change the schema further. \
                 The next migration would:\n{}",
                p.file,
                describe(&plan)
            ));
        }
    }
    if !args.dry_run {
        if let Some((p, text)) = types_stale {
            if let Some(parent) = p.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| format!("cannot create {}: {e}", shown(parent)))?;
            }
            std::fs::write(p, text).map_err(|e| format!("cannot write {}: {e}", shown(p)))?;
            let _ = writeln!(
                out,
                "Wrote {} (TypeScript declarations of the rows)",
                shown(p)
            );
        }
    }
    if plan.is_empty() {
        let _ = writeln!(out, "Nothing to do: the migrations match the structs.");
        if let Some(p) = &current.pending {
            let _ = writeln!(out, "{}", pending_note(p));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let _ = writeln!(out, "Changes:\n{}", describe(&plan));
    if !args.expand {
        let _ = writeln!(out, "Deploy: {}.", plan.compatibility());
    }
    if let Some(refusal) = plan.refusal(args.allow_data_loss) {
        let _ = out.flush();
        return Err(format!("nothing written: {refusal}"));
    }
    if args.expand {
        return expand(&paths, &current, &target, &plan, args, &mut out);
    }

    let name = match &args.name {
        Some(n) => slug(n, 60),
        None => plan.default_name(),
    };
    let number = layout::next_number(&current.replica_files, &current.primary_files);
    let file = layout::file_name(number, &name);
    let rendered = render::render(&plan, &file).map_err(|problems| {
        format!(
            "nothing written: D1 would refuse it:\n{}",
            bullets(&problems)
        )
    })?;
    write_pair(&paths, &file, &rendered, args.dry_run, &mut out)
}

/// Write one migration's two files (or print them for `--dry-run`).
fn write_pair(
    paths: &Paths,
    file: &str,
    rendered: &render::Rendered,
    dry_run: bool,
    out: &mut impl Write,
) -> Result<ExitCode, String> {
    let args_dry_run = dry_run;
    let replica_path = paths.layout.replica.join(format!("{file}.sql"));
    let primary_path = paths.layout.primary.join(format!("{file}.sql"));
    if args_dry_run {
        let _ = writeln!(
            out,
            "\n-- ===== {} (D1) =====\n{}\n-- ===== {} (Durable Object) =====\n{}",
            shown(&replica_path),
            rendered.replica,
            shown(&primary_path),
            rendered.primary
        );
        let _ = writeln!(out, "Dry run: nothing written.");
        return Ok(ExitCode::SUCCESS);
    }
    std::fs::create_dir_all(&paths.layout.primary)
        .map_err(|e| format!("cannot create {}: {e}", shown(&paths.layout.primary)))?;
    for (path, text) in [
        (&replica_path, &rendered.replica),
        (&primary_path, &rendered.primary),
    ] {
        if path.exists() {
            return Err(format!("{} exists already; nothing written", shown(path)));
        }
        std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", shown(path)))?;
    }
    let _ = writeln!(
        out,
        "Wrote {} (D1)\n  and {} (Durable Object)\n\
         Apply D1 with `wrangler d1 migrations apply <DATABASE>`; each Durable Object applies \
         {DO_FOLDER}/ on its next start once the Worker is rebuilt.",
        shown(&replica_path),
        shown(&primary_path)
    );
    Ok(ExitCode::SUCCESS)
}

/// What to do about a pending expand step.
fn pending_note(p: &replay::PendingExpand) -> String {
    format!(
        "Expand step {} waits for its contract ({}): once no Worker of the version before it \
         runs, `gen-migrations --contract` writes it.",
        p.file,
        expand::describe_all(&p.tables)
    )
}

/// `--expand`: the plan's renames and drops as an expand step. The room's file makes the change
/// (a Durable Object migrates when the new Worker starts it); the D1 file holds both versions.
fn expand(
    paths: &Paths,
    current: &replay::Current,
    target: &[Table],
    plan: &Plan,
    args: &Args,
    out: &mut impl Write,
) -> Result<ExitCode, String> {
    let expansions = expand::expansions(plan);
    let mut problems = expand::unsupported(plan, &current.tables);
    if expansions.is_empty() {
        problems
            .push("nothing in it breaks the Worker running now: write it without --expand".into());
    }
    if !problems.is_empty() {
        return Err(format!(
            "nothing written: this migration has no expand and contract steps:\n{}",
            bullets(&problems)
        ));
    }
    let mut d1 = expand::expand_plan(plan, &expansions, &current.tables, target);
    let expanded: Vec<Table> = d1
        .changes
        .iter()
        .filter_map(|c| match c {
            Change::RebuildTable(r) => Some(r.table.clone()),
            _ => None,
        })
        .collect();
    // The D1 tables that reference an expanded one are rebuilt with it, as they are now.
    let mut d1_tables: Vec<Table> = target.to_vec();
    for t in &expanded {
        if let Some(slot) = d1_tables.iter_mut().find(|x| x.name == t.name) {
            *slot = t.clone();
        }
    }
    carry_children(&mut d1, &current.foreign_keys, &d1_tables);
    if !d1.blocked.is_empty() {
        return Err(format!("nothing written:\n{}", bullets(&d1.blocked)));
    }
    let problems = render::d1_limits(&d1);
    if !problems.is_empty() {
        return Err(format!(
            "nothing written: D1 would refuse it:\n{}",
            bullets(&problems)
        ));
    }
    let name = match &args.name {
        Some(n) => slug(n, 60),
        None => slug(&format!("expand_{}", plan.default_name()), 60),
    };
    let number = layout::next_number(&current.replica_files, &current.primary_files);
    let file = layout::file_name(number, &name);
    let deploy = "expand step: apply D1 first, then deploy; the old and the new Worker both work \
                  in between; once no old Worker runs, write the contract with `gen-migrations --contract`";
    let mut replica = render::file_with_deploy(&d1, &file, Side::Replica, deploy);
    replica.push_str(
        "\n-- Each renamed column and its old name are kept equal, whichever Worker version writes.\n\
         -- The contract drops them with the old table.\n",
    );
    for e in &expansions {
        if let Some(t) = target.iter().find(|t| t.name == e.table.as_str()) {
            for trigger in e.triggers(t) {
                replica.push_str(&trigger);
                replica.push('\n');
            }
        }
    }
    replica.push_str("\n-- What gen-migrations reads back until the contract:\n");
    for e in &expansions {
        replica.push_str(&e.marker());
        replica.push('\n');
    }
    let rendered = render::Rendered {
        primary: render::file_with_deploy(plan, &file, Side::Primary, deploy),
        replica,
    };
    let _ = writeln!(
        out,
        "Deploy: {deploy}.\nExpand: {}.",
        expand::describe_all(&expansions)
    );
    write_pair(paths, &file, &rendered, args.dry_run, out)
}

/// `--contract`: the pending expand step's contract. D1 drops the old columns; the rooms have
/// nothing to do (they changed with the expand).
fn contract(
    paths: &Paths,
    current: &replay::Current,
    target: &[Table],
    args: &Args,
    out: &mut impl Write,
) -> Result<ExitCode, String> {
    let Some(p) = &current.pending else {
        return Err("no expand step waits for its contract".into());
    };
    let plan = diff(&current.tables, target);
    if !plan.is_empty() {
        return Err(format!(
            "the structs changed since expand step {}: restore them, write the contract, then \
             change them:\n{}",
            p.file,
            describe(&plan)
        ));
    }
    let mut d1 = expand::contract_plan(&p.tables, &current.tables);
    carry_children(&mut d1, &current.foreign_keys, &current.tables);
    if !d1.blocked.is_empty() {
        return Err(format!("nothing written:\n{}", bullets(&d1.blocked)));
    }
    let name = if let Some(n) = &args.name {
        slug(n, 60)
    } else {
        let base = p
            .file
            .split_once('_')
            .map_or(p.file.as_str(), |(_, rest)| rest);
        slug(
            &format!("contract_{}", base.strip_prefix("expand_").unwrap_or(base)),
            60,
        )
    };
    let number = layout::next_number(&current.replica_files, &current.primary_files);
    let file = layout::file_name(number, &name);
    let deploy = "contract step: apply to D1 once no Worker of the version before the expand runs";
    let mut replica = render::file_with_deploy(&d1, &file, Side::Replica, deploy);
    replica.push_str(&format!("\n{} {}\n", expand::CONTRACT_MARKER, p.file));
    let primary = render::file_with_deploy(&Plan::default(), &file, Side::Primary, deploy)
        + &format!(
            "\n-- Nothing to do in the room: it changed with {}.\n",
            p.file
        );
    let _ = writeln!(
        out,
        "Contract: {}.\nDeploy: {deploy}.",
        expand::describe_all(&p.tables)
    );
    write_pair(
        paths,
        &file,
        &render::Rendered { primary, replica },
        args.dry_run,
        out,
    )
}

/// `--empty NAME`: the next number in both layouts, with nothing in them but what they are for.
fn empty(layout: &Layout, name: &str) -> Result<ExitCode, String> {
    let current = replay::current(layout)?;
    let number = layout::next_number(&current.replica_files, &current.primary_files);
    let file = layout::file_name(number, &slug(name, 60));
    std::fs::create_dir_all(&layout.primary)
        .map_err(|e| format!("cannot create {}: {e}", shown(&layout.primary)))?;
    for (dir, what) in [
        (
            &layout.replica,
            "the D1 replica: every table carries room_id, leading its keys and indexes",
        ),
        (&layout.primary, "the room's SQLite (Durable Object)"),
    ] {
        let path = dir.join(format!("{file}.sql"));
        if path.exists() {
            return Err(format!("{} exists already; nothing written", shown(&path)));
        }
        let text = format!(
            "-- Migration {file} for {what}, written by hand.\n\
             -- gen-migrations replays it to learn the schema: keep the D1 and the Durable Object\n\
             -- files in agreement about tables and columns (`--check` says when they are not).\n\
             -- Durable Object files must not change once applied (each room records a checksum).\n"
        );
        std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", shown(&path)))?;
        println!("Wrote {}", shown(&path));
    }
    Ok(ExitCode::SUCCESS)
}

fn check(out: &mut impl Write, summary: &str, current: &replay::Current, plan: &Plan) -> ExitCode {
    let _ = writeln!(out, "{summary}");
    let mut ok = true;
    if !current.disagreements.is_empty() {
        ok = false;
        let _ = writeln!(
            out,
            "The D1 and Durable Object migrations disagree:\n{}",
            bullets(&current.disagreements)
        );
    }
    if !plan.is_empty() {
        ok = false;
        let _ = writeln!(
            out,
            "The migrations are behind the structs; the next migration would:\n{}",
            describe(plan)
        );
        if let Some(refusal) = plan.refusal(false) {
            let _ = write!(out, "and would be refused as it stands: {refusal}");
        }
        let _ = writeln!(
            out,
            "Run `cargo run --bin gen-migrations` to write it, and commit both files."
        );
    }
    if ok {
        let _ = writeln!(out, "The migrations match the structs.");
        if let Some(p) = &current.pending {
            let _ = writeln!(out, "{}", pending_note(p));
        }
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// A rebuilt table takes the tables that reference it along (and theirs, transitively): they are
/// rebuilt in the same migration, so that no old table is dropped while another references it
/// (dropping it would run `ON DELETE` on their rows, and D1 ignores `PRAGMA foreign_keys=OFF`).
/// Refused, with what to do instead: a referencing table that is not one of the structs (a
/// hand-written foreign key), one with other changes in this migration, and a dropped table that
/// is still referenced.
fn carry_children(plan: &mut Plan, foreign_keys: &[(String, String)], target: &[Table]) {
    let mut blocked = Vec::new();
    let children_of = |parent: &str| -> Vec<String> {
        foreign_keys
            .iter()
            .filter(|(c, p)| p == parent && c != p)
            .map(|(c, _)| c.clone())
            .collect()
    };
    for change in &plan.changes {
        if let Change::DropTable(t) = change {
            for child in children_of(t) {
                blocked.push(format!(
                    "table `{t}` is referenced by a foreign key of `{child}`: dropping it could \
                     delete rows of `{child}` through ON DELETE; remove the reference first"
                ));
            }
        }
    }
    let mut i = 0;
    while i < plan.changes.len() {
        let Change::RebuildTable(r) = &plan.changes[i] else {
            i += 1;
            continue;
        };
        // Every table below this one, parents first.
        let mut order: Vec<String> = Vec::new();
        let mut queue = children_of(&r.from);
        while let Some(child) = queue.first().cloned() {
            queue.remove(0);
            if child == r.from.as_ref() || order.contains(&child) {
                continue;
            }
            queue.extend(children_of(&child));
            order.push(child);
        }
        let parent = r.table.name.to_string();
        let mut with = Vec::new();
        for child in order {
            let Some(t) = target.iter().find(|t| t.name == child) else {
                blocked.push(format!(
                    "table `{parent}` is referenced by a foreign key of `{child}`, which is not one \
                     of the structs (a hand-written migration made it): rebuilding `{parent}` would \
                     drop what `{child}` references; write this migration by hand"
                ));
                continue;
            };
            // Its own rebuild joins the group; other changes of it would not survive one.
            let own = plan.changes.iter().position(|c| match c {
                Change::RebuildTable(o) => o.from == child.as_str(),
                _ => false,
            });
            let other = plan.changes.iter().any(|c| match c {
                Change::AddColumn { table, .. }
                | Change::DropColumn { table, .. }
                | Change::RenameColumn { table, .. } => table == child.as_str(),
                Change::RenameTable { from, .. } => from == child.as_str(),
                _ => false,
            });
            if other {
                blocked.push(format!(
                    "table `{child}` changes while `{parent}`, which it references, is rebuilt: \
                     make the change of `{child}` in a migration of its own first"
                ));
                continue;
            }
            let mut carried = match own {
                Some(j) => {
                    let Change::RebuildTable(mut o) = plan.changes.remove(j) else {
                        unreachable!()
                    };
                    if j < i {
                        i -= 1;
                    }
                    o.reasons.insert(0, format!("it references `{parent}`"));
                    o
                }
                None => Rebuild::carry(t, format!("it references `{parent}`")),
            };
            // The group recreates the child's indexes itself; the summary still names them.
            let mut j = 0;
            while j < plan.changes.len() {
                let of_child = matches!(&plan.changes[j], Change::CreateIndex { table, .. } | Change::DropIndex { table, .. } if table == child.as_str());
                if of_child {
                    let change = plan.changes.remove(j);
                    carried.reasons.push(change.to_string());
                    if j < i {
                        i -= 1;
                    }
                } else {
                    j += 1;
                }
            }
            with.push(carried);
        }
        if let Change::RebuildTable(r) = &mut plan.changes[i] {
            r.with = with;
        }
        i += 1;
    }
    plan.blocked.extend(blocked);
}

fn describe(plan: &Plan) -> String {
    let lines: Vec<String> = plan
        .changes
        .iter()
        .map(|c| {
            let mark = match c {
                Change::DropTable(_) | Change::DropColumn { .. } => '-',
                Change::DropIndex { .. } => '-',
                Change::CreateTable(_)
                | Change::CreateIndex { .. }
                | Change::AddColumn { .. }
                | Change::CreateReplicaMeta => '+',
                _ => '~',
            };
            format!("  {mark} {c}")
        })
        .collect();
    lines.join("\n")
}

fn bullets(items: &[String]) -> String {
    items
        .iter()
        .map(|i| format!("  - {i}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `path` relative to the current directory when it is inside it.
pub(crate) fn shown(path: &Path) -> String {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(&cwd).ok().map(Path::to_owned))
        .unwrap_or_else(|| path.to_owned())
        .display()
        .to_string()
}
