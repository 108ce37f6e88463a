"""Voice: offline speech rendered to WAV (checked non-silent with sox), and the FR/EN text dialogue."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import REPO
from conftest import run_mia
from mia_ops_helpers import enrich_run

from mia_strategies.backtest import plan_backtest
from mia_strategies.backtest import run_backtest
from mia_strategies.config import BacktestConfig
from mia_strategies.ops.voice import AlertTail
from mia_strategies.ops.voice import RunFolderBackend
from mia_strategies.ops.voice import Speaker
from mia_strategies.ops.voice import VoiceDialogue
from mia_strategies.ops.voice import alert_sentence
from mia_strategies.ops.voice import parse_command
from mia_strategies.ops.voice import wav_rms


def sox_stats(path: Path) -> dict[str, float]:
    """sox's own measurement of a WAV file (the ``stat`` effect writes to stderr)."""
    result = subprocess.run(["sox", str(path), "-n", "stat"], capture_output=True, text=True, timeout=30, check=True)
    stats = {}
    for line in result.stderr.splitlines():
        name, _, value = line.partition(":")
        try:
            stats[name.strip()] = float(value.split()[0])
        except (ValueError, IndexError):
            continue
    return stats


SENTENCES = [
    ("en", "Urgent alert: ES daily loss limit hit. Trading halted."),
    ("fr", "Alerte urgente : trading arrêté sur ES."),
]
needs_speech = pytest.mark.skipif(
    shutil.which("sox") is None or shutil.which("espeak-ng") is None, reason="needs sox and espeak-ng"
)


@needs_speech
@pytest.mark.parametrize(("language", "text"), SENTENCES)
def test_speech_renders_to_a_non_silent_wav(tmp_path, language, text):
    speaker = Speaker(language, engine="espeak-ng", rate_wpm=170)
    assert speaker.backend == "espeak-ng"
    path = speaker.render(text, tmp_path / f"espeak-{language}.wav")
    stats = sox_stats(path)
    assert stats["Length (seconds)"] > 1.0
    assert stats["RMS     amplitude"] > 0.02 and stats["Maximum amplitude"] > 0.2
    duration, rms = wav_rms(path)
    assert duration == pytest.approx(stats["Length (seconds)"], rel=0.01)
    assert rms == pytest.approx(stats["RMS     amplitude"], rel=0.05)


@needs_speech
@pytest.mark.parametrize(("engine", "language", "text"), [("pyttsx3", *SENTENCES[0]), ("auto", *SENTENCES[1])])
def test_cli_say_renders_speech_with_each_engine(tmp_path, engine, language, text):
    out = tmp_path / "said.wav"
    result = run_mia("voice", "--say", text, "--wav", str(out), "--language", language, "--engine", engine, timeout=120)
    assert result.returncode == 0, result.stderr
    backend = "espeak-ng" if engine == "auto" else engine
    assert re.search(rf"\d+\.\d+ s of speech \(RMS 0\.\d+\) by {backend}", result.stdout)
    stats = sox_stats(out)
    assert stats["Length (seconds)"] > 1.0 and stats["RMS     amplitude"] > 0.02


@pytest.mark.parametrize(
    ("text", "language", "intent"),
    [
        ("status", "en", "status"),
        ("How are we doing? Give me a status update", "en", "status"),
        ("show my positions", "en", "positions"),
        ("what's the P&L today", "en", "pnl"),
        ("P and L", "en", "pnl"),
        ("which regime are we in", "en", "regime"),
        ("halt trading now", "en", "halt"),
        ("stop trading", "en", "halt"),
        ("resume trading", "en", "resume"),
        ("flatten everything", "en", "flatten"),
        ("close all positions", "en", "flatten"),
        ("yes", "en", "yes"),
        ("no, cancel that", "en", "no"),
        ("Quel est le statut ?", "fr", "status"),
        ("où en est-on", "fr", "status"),
        ("mes positions", "fr", "positions"),
        ("donne-moi les résultats", "fr", "pnl"),
        ("le P et L du jour", "fr", "pnl"),
        ("Quel régime ?", "fr", "regime"),
        ("Arrête le trading", "fr", "halt"),
        ("arrêter immédiatement le trading", "fr", "halt"),
        ("reprends le trading", "fr", "resume"),
        ("solde tout", "fr", "flatten"),
        ("mets tout à plat", "fr", "flatten"),
        ("ferme les positions", "fr", "flatten"),
        ("Oui, je confirme", "fr", "yes"),
        ("non", "fr", "no"),
        ("aide", "fr", "help"),
        ("status", "fr", "status"),  # an English word still works in French
        ("statut", "en", "status"),
    ],
)
def test_commands_are_parsed_in_english_and_french(text, language, intent):
    command = parse_command(text, language)
    assert command is not None and command.intent == intent


def test_unrelated_text_is_not_a_command():
    assert parse_command("the weather is nice", "en") is None
    assert parse_command("il fait beau", "fr") is None
    assert parse_command("", "en") is None


@pytest.fixture(scope="module")
def finished_run(roll_week_catalog, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("voice") / "run"
    config = BacktestConfig(instruments=["ES"], start="2025-12-08T14:00:00Z", end="2025-12-08T21:00:00Z")
    run_backtest(plan_backtest(config, REPO / "config", catalog=roll_week_catalog, out=out))
    enrich_run(out)
    return out


def test_dialogue_answers_from_a_finished_run_in_both_languages(finished_run):
    summary = json.loads((finished_run / "summary.json").read_text())
    regimes = pd.read_csv(finished_run / "regime_states.csv")
    last_es = regimes[regimes["instrument_id"] == "ESZ25.GLBX"].iloc[-1]
    en = VoiceDialogue(RunFolderBackend(finished_run), "en")
    net = summary["net_pnl"]
    sign = "plus" if net > 0 else "minus"
    amount = f"{abs(net):,.0f}" if abs(net) >= 100 else f"{abs(net):,.2f}"
    equity = _money_en(summary["final_equity"])
    expected = f"This backtest run is finished. Equity {equity}. Net P and L {sign} {amount} dollars."
    assert en.handle("status").text == expected
    assert en.handle("P&L?").text == f"Net P and L of the run is {sign} {amount} dollars."
    assert en.handle("positions").text == "No open position."
    regime = en.handle("regime").text
    assert regime.startswith(f"ES regime {last_es['regime']}, confidence {last_es['confidence'] * 100:.0f} percent")
    fr = VoiceDialogue(RunFolderBackend(finished_run), "fr")
    words = {"trend": "tendance", "range": "range", "defensive": "défensif"}
    assert fr.handle("quel régime").text.startswith(f"Régime ES : {words[last_es['regime']]}, confiance")
    assert fr.handle("résultats").text.startswith("Le P et L net de la session est ")


def _money_en(value: float) -> str:
    amount = f"{abs(value):,.0f}" if abs(value) >= 100 else f"{abs(value):,.2f}"
    return f"{'plus' if value > 0 else 'minus'} {amount} dollars"


class _RecordingBackend(RunFolderBackend):
    """The run-folder backend whose commands are recorded instead of sent (the node side is tested in the paper run)."""

    def __init__(self, run_dir: Path) -> None:
        super().__init__(run_dir)
        self.sent: list[str] = []

    def command(self, name: str) -> tuple[bool, str]:
        self.sent.append(name)
        return True, f"{name} done"


def test_dangerous_commands_need_confirmation(finished_run):
    now = [0.0]
    backend = _RecordingBackend(finished_run)
    d = VoiceDialogue(backend, "en", confirm_timeout_s=30, clock=lambda: now[0])
    reply = d.handle("halt trading")
    assert reply.awaiting_confirmation and reply.text == "Halt all trading? Say yes to confirm or no to cancel."
    assert backend.sent == []
    assert d.handle("yes").text == "Trading halted." and backend.sent == ["halt"]
    # no cancels
    assert d.handle("flatten everything").awaiting_confirmation
    assert d.handle("no").text == "Cancelled. Nothing was done."
    assert backend.sent == ["halt"]
    # too late: the confirmation expired
    d.handle("flatten")
    now[0] += 31
    assert d.handle("yes").text == "The confirmation timed out. Nothing was done."
    assert backend.sent == ["halt"]
    # another command cancels the pending one and is answered
    d.handle("halt")
    reply = d.handle("positions")
    assert reply.text.startswith("Cancelled. Nothing was done. No open position") and backend.sent == ["halt"]
    # resume is not dangerous: done at once
    assert d.handle("resume trading").text == "Trading resumed." and backend.sent == ["halt", "resume"]
    assert d.handle("yes").text == "There is nothing to confirm."
    # the same in French, confirmed in French
    fr = VoiceDialogue(backend, "fr", clock=lambda: now[0])
    assert fr.handle("solde tout").text.startswith("Fermer toutes les positions")
    assert fr.handle("oui").text == "Ordre de solde envoyé : les positions sont en cours de fermeture."
    assert backend.sent[-1] == "flatten"
    assert fr.handle("blabla").text.startswith("Désolé")


def test_commands_to_a_finished_run_are_refused(finished_run):
    d = VoiceDialogue(RunFolderBackend(finished_run), "fr")
    d.handle("arrête le trading")
    assert d.handle("oui").text == "Aucun nœud ne tourne pour ce dossier, je ne peux pas arrêter le trading."


def test_alert_tail_reads_new_lines_only_once(tmp_path):
    path = tmp_path / "alerts.jsonl"
    path.write_text(json.dumps({"priority": "urgent", "title": "old"}) + "\n")
    tail = AlertTail(path, "warning")
    assert tail.poll() == []
    with path.open("a") as handle:
        handle.write(json.dumps({"priority": "info", "title": "quiet"}) + "\n")
        handle.write(json.dumps({"priority": "error", "title": "DTC disconnected"}) + "\n")
        handle.write('{"priority": "urgent", "title": "half')
    assert [r["title"] for r in tail.poll()] == ["DTC disconnected"]
    with path.open("a") as handle:
        handle.write(' written"}\n')
    assert [r["title"] for r in tail.poll()] == ["half written"]
    assert alert_sentence({"priority": "urgent", "title": "ESZ25 regime trend -> defensive"}, "fr") == (
        "Alerte urgente: ESZ25 regime trend vers defensive."
    )


def test_cli_dialogue_reads_typed_lines_and_writes_spoken_replies(finished_run, tmp_path):
    wavs = tmp_path / "replies"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mia_strategies.cli",
            "voice",
            str(finished_run),
            "--language",
            "fr",
            "--reply-wav-dir",
            str(wavs),
        ],
        cwd=REPO,
        input="statut\narrête le trading\noui\nquitter\n",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "mia> Cette session backtest est terminée." in result.stdout
    assert "mia> Arrêter tout le trading ? Dites oui pour confirmer ou non pour annuler." in result.stdout
    assert "je ne peux pas arrêter le trading" in result.stdout
    files = sorted(wavs.glob("*.wav"))
    assert len(files) == 4  # greeting + three replies
    assert all(sox_stats(f)["RMS     amplitude"] > 0.02 for f in files)


def test_speech_input_without_vosk_is_one_line(finished_run):
    result = run_mia("voice", str(finished_run), "--listen", timeout=120)
    assert result.returncode == 2
    assert "speech input needs the vosk package" in result.stderr and result.stderr.count("\n") == 1


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")
def test_auto_engine_is_the_espeak_program_and_keeps_languages_apart(tmp_path):
    english, french = Speaker("en"), Speaker("fr")
    assert english.backend == french.backend == "espeak-ng"
    text = "Le trading est arrêté."
    first = french.render(text, tmp_path / "fr1.wav").read_bytes()
    english.render(text, tmp_path / "en.wav")
    again = french.render(text, tmp_path / "fr2.wav").read_bytes()
    assert first == again  # one process per sentence: the same voice, the same samples
    assert (tmp_path / "en.wav").read_bytes() != first
