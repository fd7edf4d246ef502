"""Logs in every language PostgreSQL ships (``lc_messages``), written by a real server (issue 25).

One cluster plays the same scenarios once per language and logging setup (restarted between
them, each run in its own log files), and logdiag must report from each what the scenario
executed, as it does from the English run: the constraint, the key, the timing and the culprit
statement, at a line that shows it. The message tables come from the server's own catalogs:
the last test regenerates them and compares.
"""

from __future__ import annotations

import gzip
import importlib.util
import io
import json
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from logdiag.diagnosis.messages import parse_violation
from logdiag.diagnosis.sessions import SessionTracker
from logdiag.formats import detect
from logdiag.lang import LANGUAGES, msgids
from logdiag.pipeline import Run, analyze
from logdiag.reader import LogReader
from tests.conftest import IN_CI, REPO
from tests.scenarios import (
    RICH_PREFIX,
    SCENARIOS,
    Expected,
    Scenario,
    fk_name,
    fk_tables,
    simple,
    transaction_rollbacks,
)

#: lc_messages of each language tested: the six of issue 25, and the others the catalogs cover.
LOCALES = {
    "en": "C", "de": "de_DE.UTF-8", "fr": "fr_FR.UTF-8", "es": "es_ES.UTF-8", "ja": "ja_JP.UTF-8",
    "ru": "ru_RU.UTF-8", "zh_CN": "zh_CN.UTF-8", "it": "it_IT.UTF-8", "ko": "ko_KR.UTF-8", "sv": "sv_SE.UTF-8",
    "uk": "uk_UA.UTF-8", "ka": "ka_GE.UTF-8",
}
#: Logging setups: statements logged with a prefix that has %e (SQLSTATE), or only their
#: durations with a prefix without it (the message text alone tells a violation in stderr).
SETUPS = {
    "statements": ({"log_line_prefix": RICH_PREFIX, "log_statement": "all", "log_min_duration_statement": "-1"},
                   ("csvlog", "jsonlog", "stderr")),
    "durations": ({"log_line_prefix": "%m [%p] ", "log_statement": "none", "log_min_duration_statement": "0"},
                  ("csvlog", "stderr")),
}
_SUFFIX = {"stderr": ".log", "csvlog": ".csv", "jsonlog": ".json"}


PITFALL_AFTER = "INSERT INTO pitfall_child VALUES (501, 1);"


def _pitfall(cluster) -> None:
    """SET CONSTRAINTS ALL DEFERRED does not defer a NOT DEFERRABLE key: the INSERT fails at once;
    naming the key is an error of its own (a not_deferrable finding), and the INSERT after it
    fails as its consequence (25P02)."""
    simple(cluster, "BEGIN;", "SET CONSTRAINTS ALL DEFERRED;", "INSERT INTO pitfall_child VALUES (500, 42);",
           "COMMIT;", application="pitfall")
    simple(cluster, "BEGIN;", "SET CONSTRAINTS pitfall_child_parent_id_fkey DEFERRED;", PITFALL_AFTER, "ROLLBACK;",
           application="pitfall")


_LOCAL = [
    Scenario(
        "pitfall", fk_tables("pitfall", "NOT DEFERRABLE"), _pitfall,
        Expected("23503", fk_name("pitfall"), "statement", {"parent_id": "42"}, "INSERT INTO pitfall_child VALUES (500, 42);",
                 table="pitfall_child", related=frozenset({"deferral_ignored"}),
                 raised_by="INSERT INTO pitfall_child VALUES (500, 42);"),
    ),
    Scenario(
        "checked", "CREATE TABLE checked_items (id int PRIMARY KEY, qty int CONSTRAINT checked_qty CHECK (qty > 0));\n",
        lambda cluster: simple(cluster, "INSERT INTO checked_items VALUES (1, -3);", application="checked"),
        Expected("23514", "checked_qty", "statement", {}, "INSERT INTO checked_items VALUES (1, -3);",
                 match="table", table="checked_items", raised_by="INSERT INTO checked_items VALUES (1, -3);"),
    ),
]
#: Issue 25's five: the deferred FK at COMMIT, a deferred unique, a parent-side DELETE, an
#: immediate violation and the not-deferrable pitfall; with server-side parameters (execute,
#: parameters:), a deferred exclusion constraint and a check constraint; and issue 26's rows
#: written with checks off (checks_disabled), a range in another form, MATCH FULL's DETAIL.
PLAYED = [s for s in SCENARIOS if s.name in (
    "never", "dupe", "parentdel", "immediate", "serverside", "excl", "distrig", "canonex", "matchfull",
)] + _LOCAL
NOT_DEFERRABLE = "42809"


def _locales_missing() -> list[str]:
    listed = subprocess.run(["locale", "-a"], capture_output=True, text=True, check=False).stdout.lower().split()
    names = {name.replace("utf-8", "utf8") for name in listed}
    return [loc for loc in LOCALES.values() if loc != "C" and loc.lower().replace("utf-8", "utf8") not in names]


@pytest.fixture(scope="module")
def logs(pg_cluster, tmp_path_factory) -> dict[tuple[str, str], dict[str, Path]]:
    """(language, setup) → format → a copy of that run's log file: one cluster, restarted per run."""
    missing = _locales_missing()
    if missing:
        reason = f"locales {', '.join(missing)} not generated (Debian's locales package: locale-gen; see .ci/run)"
        if IN_CI:
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    out = tmp_path_factory.mktemp("languages")
    runs: dict[tuple[str, str], dict[str, Path]] = {}
    with pg_cluster() as cluster:
        for language, locale in LOCALES.items():
            for setup, (settings, formats) in SETUPS.items():
                name = f"{language}-{setup}"
                cluster.restart_with({**settings, "lc_messages": locale, "log_filename": f"{name}.log"})
                cluster.psql("DROP SCHEMA public CASCADE;\nCREATE SCHEMA public;\n", application="reset", check=True)
                cluster.psql("".join(s.setup for s in PLAYED), application="migrate", check=True)
                for scenario in PLAYED:
                    scenario.run(cluster)
                cluster.psql("SELEC 1;\nSELECT 1/0;\nSELECT * FROM no_such_table;\nSELECT 'x'::int;\n",
                             application="noise")
                transaction_rollbacks(cluster)
                runs[(language, setup)] = {fmt: cluster.log_dir / (name + _SUFFIX[fmt]) for fmt in formats}
        cluster.stop()
        copies: dict[tuple[str, str], dict[str, Path]] = {}
        for key, files in runs.items():
            copies[key] = {}
            for fmt, path in files.items():
                copies[key][fmt] = out / path.name
                copies[key][fmt].write_bytes(path.read_bytes())
    return copies


def _analysed(path: Path, fast: bool = False) -> tuple[list[dict], list[dict], int]:
    incidents, others, skipped, _ = _analysed_run(path, fast)
    return incidents, others, skipped


def _analysed_run(path: Path, fast: bool = False) -> tuple[list[dict], list[dict], int, list[dict]]:
    """(incidents, other errors, skipped lines, findings) as JSON objects."""
    tracker = SessionTracker()
    reader = LogReader([str(path)], fast=fast, fast_min_bytes=0, on_forgotten=tracker.forget)
    run = Run(reader, tracker)
    incidents = [i.to_dict() for i in run.incidents()]
    findings = [f.to_dict() for f in run.findings]
    return incidents, [e.to_dict() for e in run.other_errors], reader.inputs[0].skipped_total, findings


def _line_shows(path: Path, fmt: str, line: int, statement: str) -> bool:
    """Read the log file itself: does that physical line hold that statement?"""
    text = path.read_text(encoding="utf-8").split("\n")[line - 1]
    if fmt == "jsonlog":
        return json.loads(text)["message"].endswith(statement)
    return statement.replace('"', '""') in text if fmt == "csvlog" else statement in text


CASES = [
    (language, setup, fmt, s.name)
    for language in LOCALES for setup, (_, formats) in SETUPS.items() for fmt in formats for s in PLAYED
]
BY_NAME = {s.name: s for s in PLAYED}


@pytest.fixture(scope="module")
def analysed_runs(logs):
    """(language, setup, format) → (incidents, other errors, skipped lines, findings), read once."""
    cache: dict[tuple[str, str, str], tuple[list[dict], list[dict], int, list[dict]]] = {}

    def get(language: str, setup: str, fmt: str) -> tuple[list[dict], list[dict], int, list[dict]]:
        if (language, setup, fmt) not in cache:
            cache[(language, setup, fmt)] = _analysed_run(logs[(language, setup)][fmt])
        return cache[(language, setup, fmt)]

    return get


@pytest.fixture(scope="module")
def analysed(analysed_runs):
    """(language, setup, format) → (incidents, other errors, skipped lines), read once."""

    def get(language: str, setup: str, fmt: str) -> tuple[list[dict], list[dict], int]:
        incidents, others, skipped, _ = analysed_runs(language, setup, fmt)
        return incidents, others, skipped

    return get


def _summary(incident: dict) -> tuple:
    """What must be the same in every language: the incident, its key, timing and culprit."""
    top = incident["culprits"][0] if incident["culprits"] else {}
    return (incident["sqlstate"], incident["constraint"], incident["table"], incident["key"], incident["timing"],
            top.get("statement"), top.get("parameters"), sorted(r["role"] for r in incident["related"]))


@pytest.mark.postgres
@pytest.mark.parametrize(("language", "setup", "fmt", "name"), CASES)
def test_scenario_in_every_language(logs, analysed, language, setup, fmt, name):
    """The incident the scenario caused, as the scenario says and as the English run gives it."""
    scenario = BY_NAME[name]
    expected = scenario.expected
    assert expected is not None
    incidents, _, skipped = analysed(language, setup, fmt)
    assert skipped == 0, "every line of the server's log is read"
    found = [i for i in incidents if i["constraint"] == expected.constraint]
    assert len(found) == 1, f"{name}: {[(i['constraint'], i['message']) for i in incidents]}"
    incident = found[0]
    assert incident["sqlstate"] == expected.sqlstate
    assert incident["timing"] == expected.timing
    assert incident["key"] == expected.key
    if expected.table:
        assert incident["table"] == expected.table
    top = incident["culprits"][0]
    assert top["statement"] == expected.culprit
    assert top["match"] == expected.match
    if expected.parameters is not None:
        assert top["parameters"] == expected.parameters
    path = logs[(language, setup)][fmt]
    if top["source"] != incident["raised_by"]["source"]:
        assert _line_shows(path, fmt, top["source"]["line"], top["statement"])
    assert set(expected.related) <= {r["role"] for r in incident["related"]}
    english = [i for i in analysed("en", setup, fmt)[0] if i["constraint"] == expected.constraint]
    assert [_summary(i) for i in english] == [_summary(incident)]


@pytest.mark.postgres
@pytest.mark.parametrize("language", list(LOCALES))
def test_the_language_is_told_from_the_log(logs, language):
    """Each file's language, from its first lines, whatever the format."""
    for setup in SETUPS:
        for fmt, path in logs[(language, setup)].items():
            lines = path.read_text(encoding="utf-8").splitlines()[:200]
            found = detect(lines, str(path))
            assert found is not None and found.language is LANGUAGES[language], (setup, fmt)
            reader = LogReader([str(path)])
            assert sum(1 for _ in reader) > 0
            assert reader.inputs[0].lc_messages == language  # in the report's inputs, and said on stderr


@pytest.mark.postgres
@pytest.mark.parametrize("language", [code for code in LOCALES if code != "en"])
def test_the_messages_are_the_servers_own(logs, analysed, language):
    """The log holds the translated ERROR (so the runs really are in that language)."""
    path = logs[(language, "statements")]["csvlog"]
    word = LANGUAGES[language].severity_word("ERROR")
    assert f",{word},23503," in path.read_text(encoding="utf-8")


@pytest.mark.postgres
@pytest.mark.parametrize("language", list(LOCALES))
@pytest.mark.parametrize("setup", list(SETUPS))
def test_findings_in_every_language(logs, analysed_runs, language, setup):
    """The error naming a NOT DEFERRABLE key is a not_deferrable finding, whatever the language,
    with the 25P02 error after it as ``aborted_after``; without %e its SQLSTATE is inferred from
    the translated message (issue 26)."""
    for fmt in logs[(language, setup)]:
        _, others, _, findings = analysed_runs(language, setup, fmt)
        found = [f for f in findings if f["kind"] == "not_deferrable"]
        assert [f["constraint"] for f in found] == ["pitfall_child_parent_id_fkey"], fmt
        finding = found[0]
        assert finding["sqlstate"] == NOT_DEFERRABLE and finding["table"] == "pitfall_child"
        assert finding["sqlstate_inferred"] == (fmt == "stderr" and setup == "durations")
        assert [(r["role"], r["statement"]) for r in finding["related"]] == [("aborted_after", PITFALL_AFTER)], fmt
        assert NOT_DEFERRABLE not in [e["sqlstate"] for e in others], fmt


@pytest.mark.postgres
@pytest.mark.parametrize("language", list(LOCALES))
def test_inferred_sqlstates_in_every_language(analysed_runs, language):
    """Without %e, other errors with PostgreSQL's fixed messages, translated, get the SQLSTATE the
    same server wrote for the same records in its csvlog: a syntax error, an undefined table,
    division by zero, bad input, serialization failures; and a deadlock, an incident with its cycle
    read from the translated DETAIL (issue 28)."""
    csv_incidents, csv_errors, _, _ = analysed_runs(language, "durations", "csvlog")
    stderr_incidents, stderr_errors, _, _ = analysed_runs(language, "durations", "stderr")
    for incidents in (csv_incidents, stderr_incidents):
        (deadlock,) = [i for i in incidents if i["condition"] == "deadlock_detected"]
        assert deadlock["sqlstate"] == "40P01" and len(deadlock["deadlock"]["cycle"]) == 2
    # The same records in the same order (stderr keeps the translated cursor position in the message).
    assert len(stderr_errors) == len(csv_errors)
    assert all(o["message"].startswith(c["message"]) for o, c in zip(stderr_errors, csv_errors, strict=True))
    inferred = set()
    for ours, servers in zip(stderr_errors, csv_errors, strict=True):
        if ours["sqlstate_inferred"]:
            assert ours["sqlstate"] == servers["sqlstate"], ours["message"]
            inferred.add(ours["sqlstate"])
        else:
            assert ours["sqlstate"] is None
    assert {"42601", "42P01", "22012", "22P02", "40001"} <= inferred


@pytest.mark.postgres
@pytest.mark.parametrize("language", ["de", "fr", "ja", "ru", "zh_CN"])
@pytest.mark.parametrize("setup", list(SETUPS))
def test_the_fast_path_reads_every_language(logs, analysed, language, setup):
    """The vectorised pre-filter keeps the same lines' incidents as reading record by record."""
    for fmt, path in logs[(language, setup)].items():
        slow, slow_others, _ = analysed(language, setup, fmt)
        fast, fast_others, _ = _analysed(path, fast=True)
        assert fast == slow, fmt
        assert fast_others == slow_others, fmt


@pytest.mark.postgres
@pytest.mark.parametrize("language", ["de", "fr", "ja", "ru", "zh_CN"])
@pytest.mark.parametrize("setup", list(SETUPS))
def test_streams_read_every_language(logs, analysed, language, setup, tmp_path, monkeypatch):
    """A pipe (the look-back pre-filter) and a .gz (the window) keep a translated stderr log's
    failing sessions as reading the file record by record does."""
    path = logs[(language, setup)]["stderr"]
    slow, slow_others, _ = analysed(language, setup, "stderr")
    packed = tmp_path / (path.name + ".gz")
    packed.write_bytes(gzip.compress(path.read_bytes()))
    from_gz, others_gz, _ = _analysed(packed, fast=True)
    assert _renamed(from_gz, packed, path) == slow and _renamed(others_gz, packed, path) == slow_others
    monkeypatch.setattr(sys, "stdin", types.SimpleNamespace(buffer=io.BytesIO(path.read_bytes())))
    tracker = SessionTracker()
    reader = LogReader(["-"], fast=True, fast_min_bytes=0, quiet=1.0, on_forgotten=tracker.forget)
    piped = [i.to_dict() for i in Run(reader, tracker).incidents()]
    assert reader.inputs[0].fast_path
    assert _renamed(piped, "-", path) == slow


def _renamed(incidents: list[dict], name: object, original: Path) -> list[dict]:
    """The incidents with the input's name replaced by the original file's."""
    return json.loads(json.dumps(incidents).replace(json.dumps(str(name)), json.dumps(str(original))))


@pytest.mark.postgres
def test_lc_messages_forces_the_language(logs):
    """--lc-messages: a German log read as German; read as English, its FEHLER lines are not errors."""
    path = logs[("de", "statements")]["stderr"]
    german = [i.constraint for i in analyze([str(path)], lc_messages="de").incidents()]
    assert sorted(german) == sorted(s.expected.constraint for s in PLAYED if s.expected)
    assert list(analyze([str(path)], lc_messages="C").incidents()) == []


_READ_BACK = (
    msgids.FK_CHILD, msgids.FK_PARENT, msgids.UNIQUE, msgids.EXCLUSION, msgids.CHECK, msgids.NOT_NULL,
    msgids.FK_CHILD_KEY, msgids.FK_PARENT_KEY, msgids.FK_CHILD_NO_KEY, msgids.EXCLUSION_KEY, msgids.STATEMENT,
)


@given(st.lists(st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_", min_size=1, max_size=12), min_size=3,
                max_size=3))
def test_every_translation_reads_back_its_arguments(values):
    """Each catalog's format of each message the diagnosis reads, printed with names as a server
    would (positional arguments in the translator's order), gives the names back in the msgid's order."""
    for language in LANGUAGES.values():
        for msgid in _READ_BACK:
            form = language.format(msgid)
            count = len(form.positions)
            printed = form.literals[0] + "".join(
                values[position] + literal for position, literal in zip(form.positions, form.literals[1:], strict=True)
            )
            assert form.match(printed) == tuple(values[:count]), (language.code, msgid)


def test_a_hostile_ten_megabyte_message_is_read_in_one_pass():
    """A message that repeats the text between a format's arguments a million times is read as
    the leftmost split (string searches, no backtracking regex built from a catalog)."""
    middle = '" violates foreign key constraint "'
    message = 'insert or update on table "t' + middle * (10_000_000 // len(middle)) + 'c"'
    found = parse_violation(message, None, "23503")
    assert found is not None and found.table == "t" and found.constraint.endswith('constraint "c')


def test_the_message_tables_are_current():
    """logdiag/lang/catalogs.py is what scripts/make_message_catalogs.py makes of the server's
    catalogs on this machine (CI installs Debian's postgresql-15, which ships them)."""
    script = REPO / "scripts" / "make_message_catalogs.py"
    spec = importlib.util.spec_from_file_location("make_message_catalogs", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    locale_dir = Path(os.environ.get("LOGDIAG_LOCALE_DIR", "/usr/share/locale"))
    if not list(locale_dir.glob(f"*/LC_MESSAGES/postgres-{module.MAJOR}.mo")):
        reason = f"no postgres-{module.MAJOR}.mo under {locale_dir}: install Debian's postgresql-{module.MAJOR}"
        if IN_CI:
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    assert module.render(locale_dir) == (REPO / "logdiag" / "lang" / "catalogs.py").read_text(encoding="utf-8")
