"""`triage eval` as a user runs it: CSV pairs, a source in the database, JSON, HTML, thresholds."""

from __future__ import annotations

import base64
import json
import re
import statistics
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.local_corpus import items, rows, write_csv
from triage.db import migrate, store
from triage.db.engine import make_engine, session_factory, transaction
from triage.db.schema import LabelThreshold

from .cli import run_triage


def csv_pair(tmp_path: Path, noise: float = 0.0) -> tuple[Path, Path]:
    train = rows(30, "acme/app", seed=1, noise=noise) + rows(30, "other/lib", seed=2, noise=noise)
    test = rows(10, "acme/app", seed=3) + rows(10, "other/lib", seed=4)
    return write_csv(tmp_path / "train.csv", train), write_csv(tmp_path / "test.csv", test)


def test_separable_csv_scores_one_and_json_has_the_contract_keys(tmp_path: Path) -> None:
    train, test = csv_pair(tmp_path)
    done = run_triage("eval", "--train", str(train), "--test", str(test), "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["mean_f1"] == 1.0
    assert out["per_repo"] == {"acme/app": 1.0, "other/lib": 1.0}
    (local,) = out["providers"]
    assert local["provider"] == "local" and local["items"] == 60 and local["unanswered"] == 0
    assert local["cost"] == {
        "calls": 2,
        "input_tokens": 0,
        "cached_tokens": 0,
        "output_tokens": 0,
        "usd": 0.0,
        "usd_per_1000_items": 0.0,
        "thinking_tokens": 0,
    }
    assert local["per_repo"]["acme/app"]["confusion"]["matrix"] == [
        [10, 0, 0],
        [0, 10, 0],
        [0, 0, 10],
    ]
    assert out["train_size"] == 180 and out["test_size"] == 60
    assert not (tmp_path / "triage.db").exists()  # a CSV comparison needs no database


def test_mean_is_the_mean_of_repositories_on_noisy_training_data(tmp_path: Path) -> None:
    train, test = csv_pair(tmp_path, noise=0.35)
    done = run_triage("eval", "--train", str(train), "--test", str(test), "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["mean_f1"] == round(statistics.mean(out["per_repo"].values()), 4)
    assert set(out["providers"][0]["thresholds"]) == {"bug", "feature", "question"}


def test_table_output_names_every_repository_and_the_mean(tmp_path: Path) -> None:
    train, test = csv_pair(tmp_path)
    done = run_triage(
        "eval", "--train", str(train), "--test", str(test), cwd=tmp_path, env={"COLUMNS": "160"}
    )
    assert done.returncode == 0, done.stderr
    assert "acme/app" in done.stdout and "other/lib" in done.stdout
    assert re.search(r"mean\s.*1\.000", done.stdout)


def project(tmp_path: Path) -> Path:
    db = tmp_path / "triage.db"
    (tmp_path / "triage.toml").write_text(
        f'[database]\nurl = "sqlite:///{db}"\n[llm]\nprovider = "local"\n', encoding="utf-8"
    )
    engine = make_engine(f"sqlite:///{db}")
    migrate.upgrade(engine)
    with transaction(session_factory(engine)) as s:
        store.upsert_items(s, items(25))  # 75 labelled issues of acme/app over time
    engine.dispose()
    return tmp_path


def test_source_split_by_time_saves_thresholds_and_writes_html(tmp_path: Path) -> None:
    cwd = project(tmp_path)
    html = tmp_path / "report.html"
    done = run_triage(
        "eval",
        "--source",
        "github:acme/app",
        "--split",
        "time",
        "--json",
        "--save-thresholds",
        "--html",
        str(html),
        cwd=cwd,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert (out["train_size"], out["test_size"]) == (60, 15)
    assert list(out["per_repo"]) == ["github:acme/app"]
    engine = make_engine(f"sqlite:///{tmp_path / 'triage.db'}")
    with session_factory(engine)() as s:
        saved = {(t.label, t.provider): t for t in s.scalars(select(LabelThreshold))}
    engine.dispose()
    # thresholds are stored under the repository labels the categories map to
    assert set(saved) == {("bug", "local"), ("enhancement", "local"), ("question", "local")}
    for t in saved.values():
        assert t.precision >= 0.9 or t.threshold > 1.0
    page = html.read_text(encoding="utf-8")
    images = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", page)
    assert len(images) == 2  # the reliability diagram and one confusion matrix
    assert all(base64.b64decode(img).startswith(b"\x89PNG") for img in images)


def test_the_default_split_is_stratified_said_in_the_output_with_a_small_label_warning(
    tmp_path: Path,
) -> None:
    cwd = project(tmp_path)
    done = run_triage("eval", "--source", "github:acme/app", cwd=cwd, env={"COLUMNS": "300"})
    assert done.returncode == 0, done.stderr
    assert "stratified split by label" in " ".join(done.stdout.split())  # the table title
    # 75 items, three labels: 5 test items each, each named in one warning line.
    [warned] = [x for x in done.stderr.splitlines() if x.startswith("warning:")]
    assert "fewer than 10 test items for" in warned
    for label in ("bug 5 test items", "feature 5 test items", "question 5 test items"):
        assert label in warned


def test_source_and_csv_together_is_a_usage_error(tmp_path: Path) -> None:
    train, test = csv_pair(tmp_path)
    done = run_triage(
        "eval", "--source", "github:a/b", "--train", str(train), "--test", str(test), cwd=tmp_path
    )
    assert done.returncode == 2
    assert done.stderr.strip().startswith("error:") and len(done.stderr.strip().splitlines()) == 1


def test_missing_test_file_is_one_clear_error(tmp_path: Path) -> None:
    train, _ = csv_pair(tmp_path)
    done = run_triage("eval", "--train", str(train), "--test", "nope.csv", cwd=tmp_path)
    assert done.returncode == 2
    assert "nope.csv does not exist" in done.stderr


@pytest.mark.parametrize(
    ("train_text", "extra", "message"),
    [
        ("", [], "train.csv is empty (expected columns repo,created_at,label,title,body)"),
        (
            "repo,created_at,label,title,body\na/b,2024-01-01,bug,t,b\na/b,2024-01-02,bugz,t,b\n",
            [],
            "train.csv:3: label 'bugz' is not in [taxonomy] categories",
        ),
        (None, ["-p", "local", "-p", "chatgpt"], "unknown provider 'chatgpt'"),
        (None, ["--html", "missing/report.html"], "--html: the folder missing does not exist"),
    ],
    ids=["empty-csv", "label-outside-taxonomy", "unknown-provider", "html-folder-missing"],
)
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, train_text: str | None, extra: list[str], message: str
) -> None:
    train, test = csv_pair(tmp_path)
    if train_text is not None:
        train.write_text(train_text, encoding="utf-8")
    done = run_triage("eval", "--train", str(train), "--test", str(test), *extra, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0]
    assert done.stdout == ""


def test_local_and_openai_side_by_side_with_cost_recorded(tmp_path: Path) -> None:
    from tests.fakes.openai import FakeOpenAI

    cwd = project(tmp_path)
    train, test = csv_pair(tmp_path)
    with FakeOpenAI() as fake:
        env = {"TRIAGE_LLM__OPENAI__BASE_URL": fake.base_url + "/v1"}
        args = ["eval", "--train", str(train), "--test", str(test), "-p", "local", "-p", "openai"]
        done = run_triage(*args, "--json", cwd=cwd, env=env)
        chats = fake.requests_to("/chat/completions")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    local, openai = out["providers"]
    assert (local["provider"], openai["provider"]) == ("local", "openai")
    assert out["mean_f1"] == local["mean_f1"] == 1.0  # the first provider's figures on top
    assert set(openai["per_repo"]) == {"acme/app", "other/lib"}
    assert openai["items"] == 60 and openai["unanswered"] == 0
    assert openai["cost"]["calls"] == len(chats) >= 2  # at least one call per repository
    assert openai["cost"]["input_tokens"] > 0 and openai["cost"]["output_tokens"] > 0
    # few-shot examples come from the training file, the items from the test file
    prompt = chats[0].body.decode()
    assert "please add support for" in prompt or "it would be nice" in prompt
    engine = make_engine(f"sqlite:///{tmp_path / 'triage.db'}")
    with session_factory(engine)() as s:
        from triage.db.schema import LLMCall

        logged = s.scalars(select(LLMCall)).all()
    engine.dispose()
    assert {(c.provider, c.purpose) for c in logged} == {("openai", "eval")}
    assert len(logged) == len(chats)


def test_a_provider_that_stops_is_reported_with_its_reason_and_exit_1(tmp_path: Path) -> None:
    from tests.fakes.openai import FakeOpenAI

    cwd = project(tmp_path)
    train, test = csv_pair(tmp_path)
    with FakeOpenAI() as fake:
        fake.rate_limit(retry_after="3600")  # out of quota for an hour
        env = {"TRIAGE_LLM__OPENAI__BASE_URL": fake.base_url + "/v1"}
        args = ["eval", "--train", str(train), "--test", str(test), "-p", "local", "-p", "openai"]
        done = run_triage(*args, "--json", cwd=cwd, env=env)
        chats = fake.requests_to("/chat/completions")
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: openai stopped with 60 of 60")
    assert "rate limiting" in lines[0]
    local, openai = json.loads(done.stdout)["providers"]  # the report is still printed
    assert local["stopped"] is None and local["mean_f1"] == 1.0
    assert openai["unanswered"] == 60 and "rate limiting" in openai["stopped"]
    assert len(chats) == 1  # the second repository is not asked once the quota is gone


def test_a_missing_key_fails_before_anything_is_trained(tmp_path: Path) -> None:
    cwd = project(tmp_path)
    train, test = csv_pair(tmp_path)
    args = ["eval", "--train", str(train), "--test", str(test), "-p", "local", "-p", "gemini"]
    done = run_triage(*args, cwd=cwd)  # no GEMINI_API_KEY in the environment
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: GEMINI_API_KEY is not set (GOOGLE_API_KEY also works); export it,"
        " or run with `--provider local` to classify without Gemini"
    ]
    assert done.stdout == ""


def test_prompt_or_train_reports_each_shots_setting_beside_the_local_model(
    tmp_path: Path,
) -> None:
    from tests.fakes.gemini import DEFAULT_KEY, FakeGemini

    cwd = project(tmp_path)
    train, test = csv_pair(tmp_path)
    base = ["eval", "--train", str(train), "--test", str(test), "-p", "local", "-p", "gemini"]
    args = [*base, "--shots", "0,3,50,all"]
    with FakeGemini() as fake:
        env = {
            "GEMINI_API_KEY": DEFAULT_KEY,
            "TRIAGE_LLM__GEMINI__BASE_URL": fake.base_url,
            "TRIAGE_LLM__GEMINI__RETRY_INITIAL_DELAY": "0",
        }
        shown = run_triage(*args, cwd=cwd, env={**env, "COLUMNS": "240"})
        reported = run_triage(*args, "--json", cwd=cwd, env=env)
        prompts = [
            json.dumps(r.json()) for r in fake.requests_to(r"(:generateContent|cachedContents)$")
        ]
    assert shown.returncode == 0, shown.stderr
    assert reported.returncode == 0, reported.stderr
    out = json.loads(reported.stdout)
    got = [(p["provider"], p["shots"]) for p in out["providers"]]
    assert got == [("local", None), *(("gemini", s) for s in ("0", "3", "50", "all"))]
    for p in out["providers"]:
        assert 0.0 <= p["mean_f1"] <= 1.0 and p["items"] == 60
        assert set(p["per_repo"]) == {"acme/app", "other/lib"}
    local, *gemini = out["providers"]
    assert local["cost"]["usd_per_1000_items"] == 0.0
    per_1000 = [g["cost"]["usd_per_1000_items"] for g in gemini]
    assert all(c > 0 for c in per_1000)
    # More examples in the prompt cost more per item: the figure a user weighs against F1.
    assert per_1000[0] < per_1000[1] < per_1000[2] <= per_1000[3]
    assert any("please add support for" in p or "it would be nice" in p for p in prompts)
    # The tables: one cost row and one macro-F1 column per setting, beside the local model.
    cells = [
        [c.strip() for c in line.strip("│ ").split("│")]
        for line in shown.stdout.splitlines()
        if line.count("│") >= 3
    ]
    cost_rows = {c[0]: c for c in cells if len(c) == 10 and c[1].startswith(("gemini-", "tfidf"))}
    assert list(cost_rows) == ["local", *(f"gemini shots={s}" for s in ("0", "3", "50", "all"))]
    for g, name in zip(gemini, list(cost_rows)[1:], strict=True):
        assert cost_rows[name][6] == f"{g['cost']['usd_per_1000_items']:.4f}"
    mean = next(c for c in cells if c[0] == "mean")
    assert mean[2:] == [f"{p['mean_f1']:.3f}" for p in out["providers"]]
    # Each setting's thresholds are named by it, not four rows of "gemini".
    named = {c[0] for c in cells if len(c) == 6 and c[1] in ("bug", "feature", "question")}
    assert named == {"local", *(f"gemini shots={s}" for s in ("0", "3", "50", "all"))}
