//! `cargo xtask mutants [NAME…]`: break the component or the host on purpose and check that the
//! test named for the promise fails.
//!
//! Each file `tests/mutations/NN-name.patch` is one hand-chosen mutation: a header naming the
//! promise it breaks and the conformance test that must catch it, then a `git diff`. The task
//! needs a clean working tree (patches are applied in place, so incremental builds stay cheap,
//! and reverted after each run, also when a step fails). It first runs every named test on the
//! unmutated tree (they must pass), then, per patch: apply, rebuild what it touches (the
//! components for `guest/`, the host's binaries for `host-harness/`, which the `cli` tests run),
//! run its test, revert, and rebuild from the reverted source before the next mutation (so none
//! is tested against another's component or binary). It prints one line per mutation and fails
//! when a mutation is not caught.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::{ALLOW_EMULATOR, build, build_host, cargo, components_dir, node_host_packages, root, run};

/// Where the mutation patches live.
const MUTATIONS_DIR: &str = "tests/mutations";

/// One mutation file.
struct Mutation {
    path: PathBuf,
    name: String,
    promise: String,
    test: String,
    touches_guest: bool,
    touches_host: bool,
}

impl Mutation {
    fn read(path: &Path) -> Result<Mutation> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        let field = |key: &str| {
            text.lines()
                .take_while(|l| !l.starts_with("diff --git"))
                .find_map(|l| l.strip_prefix(key).map(|v| v.trim().to_string()))
                .with_context(|| format!("{} has no `{key}` line", path.display()))
        };
        Ok(Mutation {
            name: path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default(),
            promise: field("Promise:")?,
            test: field("Caught-by:")?,
            touches_guest: text.lines().any(|l| l.starts_with("diff --git a/guest/")),
            touches_host: text.lines().any(|l| l.starts_with("diff --git a/host-harness/")),
            path: path.to_path_buf(),
        })
    }
}

/// Reverts an applied patch when dropped, so a failing step never leaves the tree mutated.
struct Applied<'a>(&'a Path);

impl Drop for Applied<'_> {
    fn drop(&mut self) {
        let reverted = git(&["apply", "-R"]).arg(self.0).status().map(|s| s.success()).unwrap_or(false);
        if !reverted {
            eprintln!("xtask mutants: could not revert {}; run `git checkout -- .`", self.0.display());
        }
    }
}

fn git(args: &[&str]) -> Command {
    let mut c = Command::new("git");
    c.current_dir(root()).args(args);
    c
}

/// `cargo test` of one conformance test, by exact name.
fn conformance_test(names: &[&str]) -> Command {
    let mut c = cargo();
    c.args(["test", "-q", "-p", "conformance", "--test", "all", "--", "--exact"]).args(names);
    c.env("TEST_COMPONENTS_DIR", components_dir());
    c.env(ALLOW_EMULATOR.0, ALLOW_EMULATOR.1);
    c
}

fn mutations(filters: &[String]) -> Result<Vec<Mutation>> {
    let dir = root().join(MUTATIONS_DIR);
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "patch"))
        .collect();
    paths.sort();
    let all = paths.iter().map(|p| Mutation::read(p)).collect::<Result<Vec<_>>>()?;
    Ok(all.into_iter().filter(|m| filters.is_empty() || filters.iter().any(|f| m.name.contains(f.as_str()))).collect())
}

pub fn mutants(filters: &[String]) -> Result<()> {
    let dirty = git(&["status", "--porcelain", "--untracked-files=no"]).output().context("cannot run git")?;
    if !dirty.stdout.is_empty() {
        bail!("the working tree has uncommitted changes; commit or stash them first (mutations are applied in place)");
    }
    let list = mutations(filters)?;
    if list.is_empty() {
        bail!("no mutation in {MUTATIONS_DIR} matches {filters:?}");
    }
    build()?;
    // The `cli` tests run the built `destination-host`.
    build_host()?;
    node_host_packages()?;
    let tests: Vec<&str> = list.iter().map(|m| m.test.as_str()).collect();
    println!("control: the {} named tests on the unmutated tree", tests.len());
    run(conformance_test(&tests)).context("a named test fails without any mutation; fix it first")?;

    let mut missed = Vec::new();
    let mut rows = Vec::new();
    // What the last mutation rebuilt from mutated source: rebuilt from the reverted source before
    // the next mutation runs, so no mutation is tested against another's component or binary.
    let (mut guest_stale, mut host_stale) = (false, false);
    for m in &list {
        if guest_stale && !m.touches_guest {
            build()?;
        }
        if host_stale && !m.touches_host {
            build_host()?;
        }
        (guest_stale, host_stale) = (m.touches_guest, m.touches_host);
        println!("mutation {}: {}", m.name, m.promise);
        let mut apply = git(&["apply"]);
        apply.arg(&m.path);
        run(apply).with_context(|| format!("{} does not apply", m.name))?;
        let caught = {
            let _revert = Applied(&m.path);
            if m.touches_guest {
                build()?;
            }
            if m.touches_host {
                build_host()?;
            }
            let mut compile = cargo();
            compile.args(["test", "-q", "--no-run", "-p", "conformance", "--test", "all"]);
            run(compile).with_context(|| format!("{} does not build", m.name))?;
            let status = conformance_test(&[&m.test]).status().context("cannot run cargo test")?;
            !status.success()
        };
        println!("  {} by {}", if caught { "caught" } else { "MISSED" }, m.test);
        if !caught {
            missed.push(m.name.clone());
        }
        rows.push(format!("| `{}` | {} | `{}` | {} |", m.name, m.promise, m.test, if caught { "caught" } else { "**missed**" }));
    }
    // Leave the components and binaries built from the unmutated source.
    if guest_stale {
        build()?;
    }
    if host_stale {
        build_host()?;
    }
    println!("\n| mutation | promise broken | test | result |\n|---|---|---|---|");
    for r in rows {
        println!("{r}");
    }
    if !missed.is_empty() {
        bail!("{} mutation(s) not caught: {}", missed.len(), missed.join(", "));
    }
    Ok(())
}
