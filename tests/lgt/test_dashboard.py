"""optuna-dashboard as the live view: lgt's notes and plots in the storage, and `lgt dashboard` in a real browser.

One real LGT run on iris (4 trials; only the LLM is scripted, and every text
it writes carries a <script> tag) fills a storage while every note it saves
is counted; then a real `lgt dashboard` process serves that storage and
headless Chromium opens the study's note and a trial's page.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from io import BytesIO, StringIO
from pathlib import Path
from typing import Any

import optuna
import pytest
from browser import Browser, open_browser, parse
from hostile_llm import HostileLLM
from optuna.artifacts import get_all_artifact_meta
from optuna_dashboard import get_note, save_note
from PIL import Image
from scripted_llm import SECRET

from lgt.baselines import BaselineRequest, run_baseline
from lgt.cli import main
from lgt.optuna_private import live_trial
from lgt.reporting import notes, rebuild
from lgt.reporting.artifacts import artifact_dir, attach_run_figures
from lgt.reporting.store import read_run
from lgt.tune import TuneRequest, run_tune

TRIALS = 4
REASON = "the curve still climbs <script>alert(1)</script> at the last epoch"


@dataclass
class LGTRun:
    storage: str
    name: str
    folder: Path
    saved: list[tuple[int | None, str]] = field(default_factory=list)  # (trial number or None: study, body)

    def study(self) -> optuna.Study:
        return optuna.load_study(study_name=self.name, storage=self.storage)


@pytest.fixture(scope="module")
def lgt_run(tmp_path_factory: pytest.TempPathFactory) -> LGTRun:
    results = tmp_path_factory.mktemp("dashboard") / "results"
    results.mkdir()
    storage = f"sqlite:///{results / 'studies.db'}"
    saved: list[tuple[int | None, str]] = []

    def counting_save(owner: optuna.Study | optuna.Trial, body: str) -> None:
        saved.append((owner.number if isinstance(owner, optuna.Trial) else None, body))
        save_note(owner, body)

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LGT_OFFLINE", "1")
        mp.setenv("LGT_RESULTS_DIR", str(results))
        mp.setenv("OPENAI_API_KEY", SECRET)
        mp.setattr("lgt.reporting.notes.save_note", counting_save)
        llm = HostileLLM(lambda request: REASON, value=0.05)
        summary = run_tune(TuneRequest(target="iris", trials=TRIALS, seed=1, storage=storage,
                                       llm_base_url="http://llm.test/v1", optimize_every=2),
                           client_factory=llm.factory())
    return LGTRun(storage, str(summary["study_name"]), Path(summary["run_dir"]), saved)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def dashboard(lgt_run: LGTRun) -> Iterator[str]:
    """`lgt dashboard` as a real process on the run's storage; yields its base URL once it printed its address."""
    port = _free_port()
    env = os.environ | {"LGT_OFFLINE": "1", "LGT_RESULTS_DIR": str(lgt_run.folder.parent)}
    proc = subprocess.Popen([sys.executable, "-m", "lgt", "dashboard", "--storage", lgt_run.storage,
                             "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # blocks until the address line, or "" if the process died
        if not line:
            proc.wait()
            pytest.fail(f"lgt dashboard exited with {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}")
        assert line.strip() == f"dashboard: http://127.0.0.1:{port}/dashboard (Ctrl-C to stop)"
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait()


@pytest.fixture
def browser(tmp_path: Path) -> Browser:
    return open_browser(tmp_path)


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url) as response:
        body: bytes = response.read()
        return body


def _api(base: str, path: str) -> Any:
    return json.loads(_get(base + path))


def _rounds(body: str) -> int:
    return sum(line.startswith("## Round ") for line in body.splitlines())


def test_notes_follow_the_run_and_a_note_is_written_only_when_its_text_changes(lgt_run: LGTRun) -> None:
    study = lgt_run.study()
    run = read_run(study)
    guided = {int(v["after_round"]) for k, v in study.user_attrs.items() if k.startswith("guidance_v")}
    assert guided, "the Optimizer rewrote no guidance, so no trial note had a reason to change"

    # The study note grew round by round while the run went on, and ends as the whole change log.
    study_notes = [body for number, body in lgt_run.saved if number is None]
    assert [_rounds(b) for b in study_notes] == sorted(_rounds(b) for b in study_notes)
    assert _rounds(study_notes[0]) == 1 and _rounds(study_notes[-1]) == TRIALS
    assert get_note(study) == study_notes[-1] == notes.study_note(run)
    assert "## Outcome" in study_notes[-1] and f"# Change log: {lgt_run.name}" in study_notes[-1]

    # A trial's note is written when its round lands, and again only when the guidance after it was written.
    for trial in run.trials:
        bodies = [body for number, body in lgt_run.saved if number == trial.number]
        round_number = int(trial.user_attrs["round"])
        assert len(bodies) == 1 + (round_number in guided), (trial.number, len(bodies))
        assert get_note(live_trial(study, trial)) == bodies[-1] == notes.trial_notes(run)[trial.number]

    # Publishing again with nothing new writes nothing, in this process or a fresh one (which reads them back).
    assert notes.write_notes(study, run) == 0


def test_trial_notes_say_the_proposal_reasons_evidence_and_verdict(lgt_run: LGTRun) -> None:
    run = read_run(lgt_run.study())
    trial = next(t for t in run.trials if t.user_attrs.get("reasons"))
    note = notes.trial_notes(run)[trial.number]
    knob, reason = next(iter(trial.user_attrs["reasons"].items()))
    assert note.startswith(f"## Round {trial.user_attrs['round']}: trial #{trial.number}")
    assert f"| {knob} |" in note and reason in note
    assert trial.user_attrs["evidence"]["support"][knob] in note
    assert "**Verdict:**" in note and "**Textual gradient:**" in note
    assert trial.user_attrs["verdict"]["analysis"] in note


def test_the_dashboard_shows_the_change_log_the_reasons_and_the_plots(lgt_run: LGTRun, dashboard: str,
                                                                     browser: Browser, tmp_path: Path) -> None:
    summaries = _api(dashboard, "/api/studies")["study_summaries"]
    (study_id,) = [s["study_id"] for s in summaries if s["study_name"] == lgt_run.name]
    detail = _api(dashboard, f"/api/studies/{study_id}")
    run = read_run(lgt_run.study())
    assert detail["note"]["body"] == notes.study_note(run)
    trial_notes = notes.trial_notes(run)
    assert {t["number"]: t["note"]["body"] for t in detail["trials"]} == trial_notes

    # The plots are the study's artifacts, served from the store lgt wrote them to.
    artifacts = {a["filename"]: a["artifact_id"] for a in detail["artifacts"]}
    assert set(artifacts) == {"convergence.png", "curves.png"}
    for name, artifact_id in artifacts.items():
        assert _get(f"{dashboard}/artifacts/{study_id}/{artifact_id}") == (lgt_run.folder / name).read_bytes()

    # In a real browser: the study's note page shows the change log, a trial's page its round.
    note_page = parse(browser.dump_dom(f"{dashboard}/dashboard/studies/{study_id}/note"))
    assert f"Change log: {lgt_run.name}" in note_page.text
    assert all(f"Round {r}: trial #" in note_page.text for r in range(1, TRIALS + 1))
    trial = next(t for t in run.trials if t.user_attrs.get("reasons"))
    url = f"{dashboard}/dashboard/studies/{study_id}/trials?numbers={trial.number}"
    trial_page = parse(browser.dump_dom(url))
    assert f"Round {trial.user_attrs['round']}: trial #{trial.number}" in trial_page.text
    assert REASON in trial_page.text  # the LLM's words, tag and all, shown as text
    assert all("alert(1)" not in attrs.get("src", "") for attrs in trial_page.all("script"))
    assert not [tag for tag, attrs in trial_page.elements if tag == "script" and not attrs.get("src")]

    shot = browser.screenshot(url, tmp_path / "dashboard-trial.png")
    with Image.open(shot) as image:
        assert image.size == (1280, 1600)
        assert len(image.convert("RGB").getcolors(maxcolors=1 << 20) or []) > 50  # a rendered page, not blank


def test_a_rebuild_replaces_the_plots_in_place_instead_of_adding_copies(lgt_run: LGTRun,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LGT_RESULTS_DIR", str(lgt_run.folder.parent))
    store = artifact_dir(lgt_run.storage)
    assert store == lgt_run.folder.parent / "artifacts"
    before = {m.filename: m.artifact_id for m in get_all_artifact_meta(lgt_run.study())}
    (store / before["convergence.png"]).write_bytes(b"stale")  # as if the figure had been drawn differently
    rebuild(lgt_run.folder, lgt_run.storage)
    rebuild(lgt_run.folder, lgt_run.storage)
    after = get_all_artifact_meta(lgt_run.study())
    assert sorted(m.filename for m in after) == ["convergence.png", "curves.png"]
    assert {m.filename: m.artifact_id for m in after} == before
    assert (store / before["convergence.png"]).read_bytes() == (lgt_run.folder / "convergence.png").read_bytes()
    assert sorted(p.name for p in store.iterdir()) == sorted(before.values())


def test_a_baseline_run_gets_a_short_study_note_when_it_ends(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    summary = run_baseline(BaselineRequest(target="iris", method="tpe", trials=3, seed=0, storage=storage))
    study = optuna.load_study(study_name=summary["study_name"], storage=storage)
    note = get_note(study)
    best = study.best_trial
    assert note.startswith(f"# {summary['study_name']}\n")
    assert "TPE on **iris**, seed 0, budget 3 trials: 3 run, 0 failed. Status: complete." in note
    assert f"| best validation accuracy | {best.value:.3f} (trial {best.number}) |" in note
    assert f"| its test accuracy | {best.user_attrs['test_metric']:.3f} |" in note
    assert all(get_note(live_trial(study, t)) == "" for t in study.trials)  # a baseline's trials need none
    assert sorted(m.filename for m in get_all_artifact_meta(study)) == ["convergence.png", "curves.png"]

    # A schedule plot in the folder goes on the study too (Optuna attaches nothing to a finished trial), once.
    folder = Path(summary["run_dir"])
    (folder / "schedule-trial1.png").write_bytes((folder / "curves.png").read_bytes())
    for _ in range(2):
        attach_run_figures(study, storage, folder, [folder / "convergence.png"])
    names = sorted(m.filename for m in get_all_artifact_meta(study))
    assert names == ["convergence.png", "curves.png", "schedule-trial1.png"]


def test_lgt_dashboard_refuses_a_storage_that_does_not_exist(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nowhere.db"
    assert main(["dashboard", "--storage", f"sqlite:///{missing}", "--port", str(_free_port())]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and "does not exist" in err[0] and str(missing) in err[0], err
    assert captured.out == "" and not missing.exists()


def test_lgt_dashboard_refuses_a_port_in_use(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    optuna.create_study(storage=storage, study_name="any")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["dashboard", "--storage", storage, "--port", str(port)]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and f"port {port} on 127.0.0.1 is in use" in err[0], err
    assert captured.out == ""


def test_artifacts_go_beside_a_sqlite_file_and_elsewhere_to_lgt_artifact_dir(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert artifact_dir(f"sqlite:///{tmp_path / 'x' / 'runs.db'}?timeout=5") == tmp_path / "x" / "artifacts"
    monkeypatch.delenv("LGT_ARTIFACT_DIR", raising=False)
    assert artifact_dir("postgresql://lgt@db/lgt") == tmp_path / "results" / "artifacts"
    monkeypatch.setenv("LGT_ARTIFACT_DIR", str(tmp_path / "plots"))
    assert artifact_dir("postgresql://lgt@db/lgt") == tmp_path / "plots"


def test_a_rebuild_after_a_plot_was_deleted_in_the_dashboard_still_writes_every_file(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """optuna-dashboard leaves a null where it deleted an artifact, which Optuna's lister cannot read."""
    from wsgiref.util import setup_testing_defaults

    from optuna_dashboard import wsgi

    from lgt.reporting.artifacts import artifact_store

    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    summary = run_baseline(BaselineRequest(target="iris", method="random", trials=2, seed=0, storage=storage))
    study = optuna.load_study(study_name=summary["study_name"], storage=storage)
    doomed = get_all_artifact_meta(study)[0]
    environ: dict[str, Any] = {"REQUEST_METHOD": "DELETE", "PATH_INFO": f"/api/artifacts/1/{doomed.artifact_id}",
                               "wsgi.input": BytesIO()}
    setup_testing_defaults(environ)
    statuses: list[str] = []
    errors = environ["wsgi.errors"] = StringIO()
    wsgi(storage, artifact_store=artifact_store(storage))(environ, lambda status, *_: statuses.append(status))
    assert statuses == ["204 No Content"], errors.getvalue()

    folder = Path(summary["run_dir"])
    (folder / "report.html").unlink()
    rebuild(folder, storage)
    assert (folder / "report.html").is_file()
    assert "cannot list the artifacts" in caplog.text


def test_a_study_lgtsampler_sampled_shows_its_change_log_and_rounds_in_lgt_dashboard(tmp_path: Path) -> None:
    from scripted_llm import ScriptedLLM

    from lgt.sampler import LGTSampler

    storage = f"sqlite:///{tmp_path / 'user.db'}"
    study = optuna.create_study(direction="maximize", storage=storage, study_name="my-objective",
                                sampler=LGTSampler(seed=0, description="my own model", llm_base_url="http://llm.test/v1",
                                                   client_factory=ScriptedLLM().factory()))
    study.optimize(lambda t: -(t.suggest_float("x", -3, 3) - 1) ** 2, n_trials=TRIALS)
    run = LGTRun(storage, "my-objective", tmp_path / "results" / "x")
    with _serving(run) as base:
        found = {s["study_name"]: s["study_id"] for s in _api(base, "/api/studies")["study_summaries"]}
        detail = _api(base, f"/api/studies/{found['my-objective']}")
    assert "# Change log: my-objective" in detail["note"]["body"] and _rounds(detail["note"]["body"]) == TRIALS
    bodies = [t["note"]["body"] for t in detail["trials"]]
    assert all(body.startswith(f"## Round {i + 1}: trial #{i}") for i, body in enumerate(bodies))
    assert "**Verdict:**" in bodies[-1]


@contextlib.contextmanager
def _serving(run: LGTRun) -> Iterator[str]:
    """`lgt dashboard` on `run`'s storage, as the module's fixture starts it, for one test."""
    yield from dashboard.__wrapped__(run)  # type: ignore[attr-defined]
