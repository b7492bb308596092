//! Running the cases: a plain runner that prints one line per case, and libtest-mimic trials.

use std::{collections::BTreeMap, io::Write, sync::Arc, sync::Mutex};

use libtest_mimic::{Completion, Failed, Trial};

use crate::{Case, Outcome, Target, cases};

/// The counts of one run, and the failures with their reasons.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Cases whose rule held.
    pub passed: usize,
    /// Cases whose rule did not hold.
    pub failed: usize,
    /// Cases that do not apply to the engine.
    pub skipped: usize,
    /// `(case name, reason)` for each failed case, in run order.
    pub failures: Vec<(String, String)>,
}

impl Report {
    /// Whether no case failed.
    pub fn success(&self) -> bool {
        self.failed == 0
    }

    /// Counts one verdict.
    fn record(&mut self, name: &str, outcome: &Outcome) {
        match outcome {
            Outcome::Passed => self.passed += 1,
            Outcome::Skipped(_) => self.skipped += 1,
            Outcome::Failed(reason) => {
                self.failed += 1;
                self.failures.push((name.to_owned(), reason.clone()));
            }
        }
    }

    /// The summary line: `N passed, N failed, N skipped`.
    pub fn summary(&self) -> String {
        format!(
            "{} passed, {} failed, {} skipped",
            self.passed, self.failed, self.skipped
        )
    }
}

/// Runs every case whose name or group contains `filter` (all when `None`) against `target`, one
/// after the other, printing `ok   <name>`, `FAIL <name>: <reason>` or `skip <name>: <reason>` per
/// case and the summary line last. A panicking case is a failure; it never stops the run.
///
/// Write errors on `out` are ignored: the returned report carries the same information.
pub fn run(target: &Target, filter: Option<&str>, out: &mut dyn Write) -> Report {
    run_cases(&selected(filter), target, out)
}

/// The cases as libtest-mimic trials named `<prefix>::<case>`, for a `harness = false` test;
/// a case that does not apply is reported as ignored, with its reason.
pub fn libtest_trials(target: Arc<Target>, prefix: &str) -> Vec<Trial> {
    trials(target, prefix, None)
}

/// Like [`libtest_trials`], and counts each verdict in `tally` under `prefix`.
pub fn libtest_trials_tallied(target: Arc<Target>, prefix: &str, tally: &Tally) -> Vec<Trial> {
    trials(target, prefix, Some(tally.clone()))
}

fn trials(target: Arc<Target>, prefix: &str, tally: Option<Tally>) -> Vec<Trial> {
    cases()
        .into_iter()
        .map(|case| {
            let target = Arc::clone(&target);
            let tally = tally.clone();
            let label = prefix.to_owned();
            Trial::ignorable_test(format!("{prefix}::{}", case.name), move || {
                let outcome = case.evaluate(&target);
                if let Some(tally) = &tally {
                    tally.record(&label, case.name, &outcome);
                }
                match outcome {
                    Outcome::Passed => Ok(Completion::Completed),
                    Outcome::Skipped(reason) => Ok(Completion::ignored_with(reason)),
                    Outcome::Failed(reason) => Err(Failed::from(reason)),
                }
            })
        })
        .collect()
}

/// Per-target counts collected while libtest-mimic runs the trials (it only prints totals).
#[derive(Debug, Clone, Default)]
pub struct Tally {
    reports: Arc<Mutex<BTreeMap<String, Report>>>,
}

impl Tally {
    /// An empty tally.
    pub fn new() -> Self {
        Self::default()
    }

    fn record(&self, label: &str, name: &str, outcome: &Outcome) {
        let mut reports = self
            .reports
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        reports
            .entry(label.to_owned())
            .or_default()
            .record(name, outcome);
    }

    /// The report of each target label, in label order.
    pub fn reports(&self) -> Vec<(String, Report)> {
        let reports = self
            .reports
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        reports
            .iter()
            .map(|(label, report)| (label.clone(), report.clone()))
            .collect()
    }
}

fn selected(filter: Option<&str>) -> Vec<Case> {
    cases()
        .into_iter()
        .filter(|case| {
            filter.is_none_or(|filter| case.name.contains(filter) || case.group.as_str() == filter)
        })
        .collect()
}

/// Runs `cases` against `target`, printing as [`run`] does.
fn run_cases(cases: &[Case], target: &Target, out: &mut dyn Write) -> Report {
    let mut report = Report::default();
    for case in cases {
        let outcome = case.evaluate(target);
        let _ = match &outcome {
            Outcome::Passed => writeln!(out, "ok   {}", case.name),
            Outcome::Failed(reason) => writeln!(out, "FAIL {}: {reason}", case.name),
            Outcome::Skipped(reason) => writeln!(out, "skip {}: {reason}", case.name),
        };
        report.record(case.name, &outcome);
    }
    let _ = writeln!(out, "{}", report.summary());
    report
}

#[cfg(test)]
mod tests {
    use sessionkit::{Capabilities, Engine, KeyFormat, Settings, Timestamp, testing::MemoryStore};
    use sessionkit_sdk::{
        ConditionalSave, EngineInfo, SessionRecord, SessionStore, SessionWrite, StoreResult,
        abi_stable::std_types::RStr, store::FfiAdapter,
    };

    use super::*;
    use crate::{Failure, Group};

    /// A rule a broken store gets wrong, to show the suite notices.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Bug {
        /// None: the reference store.
        None,
        /// `save` of a missing key inserts it (resurrects logged-out sessions).
        SaveUpserts,
        /// `load` ignores `expire_date`.
        LoadIgnoresExpiry,
        /// `load` of an unknown key stores an empty record (CVE-2015-5143).
        LoadCreates,
        /// `create` overwrites a taken key.
        CreateOverwrites,
        /// `clear_expired` removes but reports 0.
        ClearCountsNothing,
        /// None, but the store keeps the session dict unsigned (as Django's cache backends keep
        /// it) and declares `DECODED_DATA`: the reference for such engines.
        KeepsUnsignedDicts,
    }

    /// A store that keeps every rule of the contract in memory, except its `bug`.
    /// The public in-memory store with one `bug` planted on top.
    struct Memory {
        records: MemoryStore,
        bug: Bug,
    }

    /// `write` as a store of unsigned dicts keeps it: the session JSON in place of the signed
    /// data.
    fn unsigned(mut write: SessionWrite) -> SessionWrite {
        write.record.session_data = write.session_json.clone();
        write
    }

    impl SessionStore for Memory {
        fn exists(&self, key: &str) -> StoreResult<bool> {
            self.records.exists(key)
        }
        fn load(&self, key: &str) -> StoreResult<Option<SessionRecord>> {
            match self.bug {
                Bug::LoadCreates if self.records.record(key).is_none() => {
                    let now = Timestamp::now();
                    self.records.put(SessionRecord::new(
                        key,
                        "",
                        Timestamp::from_secs(now.as_secs() + 3600),
                    ));
                    self.records.load(key)
                }
                Bug::LoadIgnoresExpiry => Ok(self.records.record(key)),
                _ => self.records.load(key),
            }
        }
        fn create(&self, write: SessionWrite) -> StoreResult<String> {
            if self.bug == Bug::KeepsUnsignedDicts {
                return self.records.create(unsigned(write));
            }
            if self.bug == Bug::CreateOverwrites {
                let key = write.record.session_key.to_string();
                self.records.put(write.record);
                return Ok(key);
            }
            self.records.create(write)
        }
        fn save(&self, write: SessionWrite) -> StoreResult<String> {
            if self.bug == Bug::KeepsUnsignedDicts {
                return self.records.save(unsigned(write));
            }
            if self.bug == Bug::SaveUpserts {
                let key = write.record.session_key.to_string();
                self.records.put(write.record);
                return Ok(key);
            }
            self.records.save(write)
        }
        fn delete(&self, key: &str) -> StoreResult<()> {
            self.records.delete(key)
        }
        fn clear_expired(&self) -> StoreResult<u64> {
            let removed = self.records.clear_expired()?;
            Ok(if self.bug == Bug::ClearCountsNothing {
                0
            } else {
                removed
            })
        }
        fn save_if_unchanged(
            &self,
            write: SessionWrite,
            expected_data: &str,
        ) -> StoreResult<ConditionalSave> {
            let write = if self.bug == Bug::KeepsUnsignedDicts {
                unsigned(write)
            } else {
                write
            };
            self.records.save_if_unchanged(write, expected_data)
        }
        fn capabilities(&self) -> Capabilities {
            if self.bug == Bug::KeepsUnsignedDicts {
                Capabilities::DECODED_DATA | Capabilities::CONDITIONAL_SAVE
            } else {
                Capabilities::NONE
            }
        }
    }

    fn memory_target() -> Target {
        buggy_target(Bug::None)
    }

    fn buggy_target(bug: Bug) -> Target {
        Target::configurable(
            || Settings::new("a secret for the runner's own tests"),
            move |settings| {
                let info = EngineInfo {
                    name: RStr::from_str("memory"),
                    version: RStr::from_str("0"),
                    salt: RStr::from_str("django.contrib.sessions.SessionStore"),
                    capabilities: Capabilities::SERVER_SIDE_INVALIDATION
                        | Capabilities::CLEAR_EXPIRED,
                    key_format: KeyFormat::DjangoSessionKey,
                };
                let memory = Memory {
                    records: MemoryStore::new(),
                    bug,
                };
                let store = FfiAdapter::new("memory", memory).into_box();
                Engine::from_store(info, store, settings)
            },
        )
        .labelled("memory")
    }

    fn passing(_: &Target) -> Result<(), Failure> {
        Ok(())
    }

    fn failing(_: &Target) -> Result<(), Failure> {
        Err(Failure::new("the rule does not hold"))
    }

    fn panicking(_: &Target) -> Result<(), Failure> {
        panic!("a bug in the case")
    }

    #[test]
    fn every_case_passes_or_skips_against_a_reference_store() {
        let mut out = Vec::new();
        let report = run(&memory_target(), None, &mut out);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(report.failed, 0, "{text}");
        assert_eq!(report.passed + report.skipped, cases().len());
        assert!(
            report.skipped > 0,
            "the account-index cases apply to no capability here"
        );
    }

    #[test]
    fn every_case_passes_or_skips_against_a_store_of_unsigned_dicts() {
        let mut out = Vec::new();
        let report = run(&buggy_target(Bug::KeepsUnsignedDicts), None, &mut out);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(report.failed, 0, "{text}");
        assert!(report.passed > cases().len() / 2, "{text}");
    }

    #[test]
    fn a_store_breaking_a_rule_fails_the_cases_of_that_rule() {
        for (bug, case) in [
            (
                Bug::SaveUpserts,
                "save_of_vanished_key_fails_with_not_found_and_stores_nothing",
            ),
            (
                Bug::SaveUpserts,
                "save_does_not_resurrect_a_session_deleted_elsewhere",
            ),
            (Bug::LoadIgnoresExpiry, "load_of_expired_record_gives_none"),
            (Bug::LoadIgnoresExpiry, "past_expiry_date_hides_the_session"),
            (Bug::LoadCreates, "load_of_unknown_key_creates_nothing"),
            (
                Bug::LoadCreates,
                "load_of_unknown_key_creates_nothing_cve_2015_5143",
            ),
            (
                Bug::CreateOverwrites,
                "create_of_taken_key_fails_with_already_exists",
            ),
            (
                Bug::ClearCountsNothing,
                "clear_expired_counts_what_it_removed",
            ),
        ] {
            let mut out = Vec::new();
            let selected: Vec<Case> = cases().into_iter().filter(|c| c.name == case).collect();
            assert_eq!(selected.len(), 1, "no case named {case}");
            let report = run_cases(&selected, &buggy_target(bug), &mut out);
            let text = String::from_utf8(out).unwrap();
            assert_eq!(report.failed, 1, "{case} did not catch {bug:?}: {text}");
        }
    }

    #[test]
    fn run_prints_one_line_per_case_and_the_summary_last() {
        let cases = [
            Case::new("holds", Group::Mapping, passing),
            Case::new("breaks", Group::Mapping, failing),
            Case::new("needs_an_index", Group::AccountIndex, passing)
                .requires(Capabilities::ACCOUNT_INDEX, "no index here"),
        ];
        let mut out = Vec::new();
        let report = run_cases(&cases, &memory_target(), &mut out);
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "ok   holds");
        assert_eq!(lines[1], "FAIL breaks: the rule does not hold");
        assert!(
            lines[2].starts_with("skip needs_an_index: no index here"),
            "{}",
            lines[2]
        );
        assert!(lines[2].contains("ACCOUNT_INDEX"), "{}", lines[2]);
        assert_eq!(lines[3], "1 passed, 1 failed, 1 skipped");
        assert_eq!(lines.len(), 4);
        assert_eq!(
            report.failures,
            vec![("breaks".to_owned(), "the rule does not hold".to_owned())]
        );
    }

    #[test]
    fn a_panicking_case_is_a_failure_and_the_run_goes_on() {
        let cases = [
            Case::new("panics", Group::Mapping, panicking),
            Case::new("holds", Group::Mapping, passing),
        ];
        let mut out = Vec::new();
        let report = run_cases(&cases, &memory_target(), &mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("FAIL panics: panicked: a bug in the case"),
            "{text}"
        );
        assert!(text.contains("ok   holds"), "{text}");
        assert_eq!((report.passed, report.failed), (1, 1));
    }

    #[test]
    fn every_case_has_a_unique_name_and_every_gate_a_written_reason() {
        let all = cases();
        let mut names: Vec<&str> = all.iter().map(|case| case.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all.len(), "two cases share a name");
        for case in &all {
            if case.requires != Capabilities::NONE {
                assert!(
                    case.skip_unless.is_some(),
                    "{} requires without a reason",
                    case.name
                );
            }
            if case.excludes != Capabilities::NONE {
                assert!(
                    case.skip_if_excluded.is_some(),
                    "{} excludes without a reason",
                    case.name
                );
            }
            if case.key_format.is_some() {
                assert!(
                    case.skip_unless_key_format.is_some(),
                    "{} has no format reason",
                    case.name
                );
            }
        }
    }

    #[test]
    fn an_engine_that_does_not_open_fails_every_case_with_the_reason() {
        let target = Target::new(Box::new(|| {
            Engine::load(
                "/nonexistent/libsessionkit_engine_nothing.so",
                &Settings::new("s"),
            )
        }));
        let mut out = Vec::new();
        let report = run(&target, Some("exists_of_unknown_key_is_false"), &mut out);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(report.failed, 1, "{text}");
        assert!(text.contains("the engine did not open"), "{text}");
    }
}
