"""Voice interface: offline speech, a French/English command dialogue, spoken alerts.

- **Speech out** is offline: pyttsx3 driving espeak-ng, or the ``espeak-ng`` program itself. Every
  reply can be spoken or rendered to a WAV file (hosts without a sound card, tests).
- **Commands** are parsed from text (typed, or transcribed by the optional speech-to-text backend):
  ``status``, ``positions``, ``P&L``, ``regime``, ``halt`` (stop trading), ``resume``, ``flatten``,
  ``help``, in English and French; the configured language is tried first, then the other.
- **Dangerous commands** (halt, flatten) are only carried out after an explicit "yes" / "oui"
  within ``confirm_timeout_s``; anything else cancels them.
- **The node** is reached through its run folder (:mod:`mia_strategies.ops.control`): queries read
  ``live.json`` (or, for a finished run, its result files), commands go through the control inbox.
- **Speech in** is optional: :class:`VoskListener` uses the ``vosk`` package and a model when both
  are installed, reading the microphone through ALSA's ``arecord``.
"""

import contextlib
import io
import json
import math
import re
import shutil
import subprocess
import threading
import time
import unicodedata
import wave
from collections.abc import Callable
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any
from typing import Literal
from typing import Protocol

from mia_strategies.errors import MiaError


Language = Literal["en", "fr"]
DANGEROUS = frozenset({"halt", "flatten"})
ESPEAK = "espeak-ng"
_ESPEAK_VOICES = {"en": "en-us", "fr": "fr-fr"}


class VoiceError(MiaError):
    """Speech is not available as configured (engine or model missing)."""


# -- speech out -------------------------------------------------------------------------------------


class Speaker:
    """Offline text-to-speech: pyttsx3 (espeak-ng driver) or the espeak-ng program.

    Parameters
    ----------
    language : {"en", "fr"}
        Picks the voice.
    engine : {"auto", "pyttsx3", "espeak-ng"}, default "auto"
        ``auto`` prefers the espeak-ng program and falls back to pyttsx3.
    rate_wpm : int, default 165
        Speaking rate in words per minute.
    """

    def __init__(self, language: Language = "en", engine: str = "auto", rate_wpm: int = 165) -> None:
        self.language = language
        self.rate_wpm = rate_wpm
        self._lock = threading.Lock()
        self._engine: Any = None
        self._voice_id: Any = None
        self.backend = self._choose(engine)

    def _choose(self, engine: str) -> str:
        """``auto`` prefers the espeak-ng program: one process per sentence shares no state, while
        pyttsx3 keeps one engine (and one espeak callback) per process."""
        if engine in ("auto", "espeak-ng") and shutil.which(ESPEAK) is not None:
            return ESPEAK
        if engine == "espeak-ng":
            raise VoiceError("espeak-ng is not installed (apt-get install espeak-ng); or set voice.engine: pyttsx3")
        try:
            self._engine = self._pyttsx3()
        except Exception as err:  # pyttsx3 missing, or no espeak library behind it
            raise VoiceError(
                f"no offline speech engine: pyttsx3 cannot speak here ({err}); install espeak-ng"
            ) from None
        return "pyttsx3"

    def _pyttsx3(self) -> Any:
        import pyttsx3

        with contextlib.redirect_stdout(io.StringIO()):
            engine = pyttsx3.init()
        wanted = _ESPEAK_VOICES[self.language].split("-")[0]
        self._voice_id = None
        for voice in engine.getProperty("voices"):
            languages = [str(v).lower() for v in (voice.languages or [])]
            if str(voice.id).split("/")[-1] == wanted or wanted in languages:
                self._voice_id = voice.id
                break
        return engine

    def _prepare(self) -> None:
        """pyttsx3 shares one engine per process: set this speaker's voice and rate before each use."""
        if self._voice_id is not None:
            self._engine.setProperty("voice", self._voice_id)
        self._engine.setProperty("rate", self.rate_wpm)

    def render(self, text: str, path: Path | str) -> Path:
        """Write ``text`` spoken to a WAV file."""
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            if self.backend == "pyttsx3":
                self._prepare()
                with contextlib.redirect_stdout(io.StringIO()):  # the espeak driver prints "Audio saved"
                    self._engine.save_to_file(text, str(out))
                    self._engine.runAndWait()
                deadline = time.monotonic() + 5.0  # the driver writes the file from its synthesis callback
                while (not out.exists() or out.stat().st_size <= 44) and time.monotonic() < deadline:
                    time.sleep(0.02)
            else:
                self._espeak(["-w", str(out)], text)
        if not out.exists() or out.stat().st_size <= 44:
            raise VoiceError(f"the speech engine wrote no audio to {out}")
        return out

    def say(self, text: str) -> None:
        """Speak ``text`` on the default audio output (blocks until done)."""
        with self._lock:
            if self.backend == "pyttsx3":
                self._prepare()
                self._engine.say(text)
                self._engine.runAndWait()
            else:
                self._espeak([], text)

    def _espeak(self, extra: list[str], text: str) -> None:
        command = [ESPEAK, "-v", _ESPEAK_VOICES[self.language], "-s", str(self.rate_wpm), *extra, "--", text]
        result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        if result.returncode != 0:
            raise VoiceError(f"espeak-ng failed: {result.stderr.strip() or result.returncode}")


def wav_rms(path: Path | str) -> tuple[float, float]:
    """(duration in seconds, RMS amplitude in [0, 1]) of a 16-bit PCM WAV file."""
    with wave.open(str(path), "rb") as handle:
        frames = handle.readframes(handle.getnframes())
        rate = handle.getframerate()
        width = handle.getsampwidth()
        channels = handle.getnchannels()
    if width != 2 or not frames:
        return 0.0, 0.0
    import numpy as np

    samples = np.frombuffer(frames, dtype="<i2").astype(np.float64) / 32768.0
    duration = samples.size / channels / rate
    return duration, float(math.sqrt(float(np.mean(samples**2))))


# -- parsing ----------------------------------------------------------------------------------------


def normalise(text: str) -> str:
    """Lower case, accents removed, ``&`` kept, other punctuation as spaces, single spaces."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    plain = re.sub(r"[^a-z0-9&]+", " ", plain.replace("’", " ").replace("'", " "))
    return re.sub(r"\s+", " ", plain).strip()


_PATTERNS: dict[str, list[tuple[str, re.Pattern[str]]]] = {
    "en": [
        ("yes", re.compile(r"^(yes|yeah|yep|confirm|confirmed|affirmative|do it|go ahead)\b")),
        ("no", re.compile(r"^(no|nope|cancel|abort|never mind|dont)\b")),
        ("resume", re.compile(r"\b(resume|unhalt|restart trading|start trading again|trading back on)\b")),
        ("halt", re.compile(r"\b(halt|stop trading|kill switch|pause trading|stop all trading)\b")),
        ("flatten", re.compile(r"\b(flatten|go flat|liquidate|close (all|everything|every position|all positions))\b")),
        ("pnl", re.compile(r"\b(p ?& ?l|p and l|p n l|pnl|profit|profits|loss|losses|pl)\b")),
        ("positions", re.compile(r"\b(positions?|exposure|holdings?)\b")),
        ("regime", re.compile(r"\b(regimes?|market state)\b")),
        ("status", re.compile(r"\b(status|state|how are we|report|update)\b")),
        ("help", re.compile(r"\b(help|commands|what can you do)\b")),
    ],
    "fr": [
        ("yes", re.compile(r"^(oui|ouais|confirme|confirmer|je confirme|d accord|vas y|allez y|ok)\b")),
        ("no", re.compile(r"^(non|annule|annuler|laisse tomber|pas maintenant)\b")),
        ("resume", re.compile(r"\b(reprends?|reprendre|reprise|relance|relancer|redemarre|redemarrer)\b")),
        (
            "halt",
            re.compile(
                r"\b((arrete|arreter|arretez|stoppe|stopper|suspends?|suspendre|coupe|couper)\b.*\btrading"
                r"|halte|coupe circuit|arret du trading)\b",
            ),
        ),
        (
            "flatten",
            re.compile(
                r"\b(solde|solder|soldez|liquide|liquider|a plat|aplatis|ferme tout|fermer tout"
                r"|ferme les positions|fermer les positions|cloture tout|cloturer tout)\b",
            ),
        ),
        ("pnl", re.compile(r"\b(p ?& ?l|p et l|pnl|profits?|pertes?|resultats?|gains?)\b")),
        ("positions", re.compile(r"\b(positions?|expositions?)\b")),
        ("regime", re.compile(r"\b(regimes?|etat du marche)\b")),
        ("status", re.compile(r"\b(statut|etat|situation|ou en est on|point)\b")),
        ("help", re.compile(r"\b(aide|commandes|que sais tu faire)\b")),
    ],
}


@dataclass(frozen=True)
class Command:
    """A parsed utterance: its intent and the language it was recognised in."""

    intent: str
    language: Language
    text: str


def parse_command(text: str, language: Language = "en") -> Command | None:
    """Recognise one command in ``text``: the configured language first, then the other."""
    plain = normalise(text)
    if not plain:
        return None
    other: Language = "fr" if language == "en" else "en"
    for lang in (language, other):
        for intent, pattern in _PATTERNS[lang]:
            if pattern.search(plain):
                return Command(intent, lang, text)
    return None


# -- the node as the dialogue sees it -----------------------------------------------------------------


@dataclass
class NodeView:
    """What the dialogue can say about a node or a finished run."""

    mode: str = "backtest"
    running: bool = False
    trading_state: str = ""
    equity: float | None = None
    currency: str = "USD"
    day_pnl: float | None = None
    day_trades: int | None = None
    net_pnl: float | None = None
    positions: list[dict[str, Any]] = field(default_factory=list)
    working_orders: int | None = None
    regimes: dict[str, tuple[str, float]] = field(default_factory=dict)


class OperatorBackend(Protocol):
    """Where the dialogue reads state and sends commands."""

    def view(self) -> NodeView: ...

    def command(self, name: str) -> tuple[bool, str]: ...


class RunFolderBackend:
    """A node (or a finished run) through its run folder: ``live.json`` and the control inbox."""

    def __init__(self, run_dir: Path | str, *, command_timeout_s: float = 15.0, stale_s: float = 30.0) -> None:
        self.run_dir = Path(run_dir)
        self.command_timeout_s = command_timeout_s
        self.stale_s = stale_s

    def _live(self) -> dict[str, Any]:
        from mia_strategies.ops.control import read_snapshot

        snapshot = read_snapshot(self.run_dir)
        if not snapshot or snapshot.get("status") == "stopped":
            return {}
        return snapshot

    def view(self) -> NodeView:
        """The live snapshot when a node is running, else the run's result files."""
        live = self._live()
        if live:
            regimes = {
                str(iid): (str(v.get("regime", "")), float(v.get("confidence", math.nan)))
                for iid, v in (live.get("regimes") or {}).items()
                if isinstance(v, dict)
            }
            return NodeView(
                mode=str(live.get("mode", "paper")),
                running=True,
                trading_state=str(live.get("trading_state", "")),
                equity=_num(live.get("equity")),
                currency=str(live.get("currency") or "USD"),
                day_pnl=_num(live.get("day_realized_pnl")),
                day_trades=int(live.get("day_trades", 0) or 0),
                positions=list(live.get("positions") or []),
                working_orders=int(live.get("working_orders", 0) or 0),
                regimes=regimes,
            )
        return self._from_files()

    def _from_files(self) -> NodeView:
        from mia_strategies.dashboard.data import load_run

        data = load_run(self.run_dir)
        regimes: dict[str, tuple[str, float]] = {}
        if not data.regimes.empty:
            for iid, part in data.regimes.groupby("instrument_id"):
                last = part.iloc[-1]
                regimes[str(iid)] = (str(last.get("regime", "")), float(last.get("confidence", math.nan)))
        net = data.summary.get("net_pnl")
        if net is None and not data.equity.empty:
            net = float(data.equity.iloc[-1]) - data.starting_balance
        keys = ("instrument_id", "side", "quantity", "avg_px_open", "unrealized_pnl")
        positions: list[dict[str, Any]] = [
            {str(k): row[k] for k in keys if k in row} for row in data.open_positions.to_dict("records")
        ]
        return NodeView(
            mode=data.mode,
            running=False,
            equity=float(data.equity.iloc[-1]) if not data.equity.empty else None,
            net_pnl=_num(net),
            positions=positions,
            regimes=regimes,
        )

    def command(self, name: str) -> tuple[bool, str]:
        """Send a command to the running node and wait for its answer."""
        from mia_strategies.ops.control import submit_command
        from mia_strategies.ops.control import wait_result

        if not self._live():
            return False, "not running"
        request_id = submit_command(self.run_dir, name, source="voice")
        answer = wait_result(self.run_dir, request_id, self.command_timeout_s)
        if answer is None:
            return False, "no answer"
        return bool(answer.get("ok")), str(answer.get("detail", ""))


def _root(instrument_id: str) -> str:
    """Speak the market (``ES``), not the contract code (``ESZ25``)."""
    from mia_strategies.dashboard.data import root_of

    return root_of(instrument_id)


def _num(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


# -- replies ----------------------------------------------------------------------------------------


_TEXT: dict[str, dict[str, str]] = {
    "en": {
        "help": "Say status, positions, P and L, regime, halt trading, resume, or flatten.",
        "unknown": "Sorry, I did not understand. Say help for the list of commands.",
        "confirm_halt": "Halt all trading? Say yes to confirm or no to cancel.",
        "confirm_flatten": "Close every position and cancel working orders? Say yes to confirm or no to cancel.",
        "cancelled": "Cancelled. Nothing was done.",
        "expired": "The confirmation timed out. Nothing was done.",
        "nothing_pending": "There is nothing to confirm.",
        "done_halt": "Trading halted.",
        "done_resume": "Trading resumed.",
        "done_flatten": "Flatten sent: positions are being closed.",
        "failed": "The node did not {what}: {why}.",
        "not_running": "No node is running for this folder, so I cannot {what}.",
        "status_running": "{mode} node running. Trading is {state}. {equity}{positions}",
        "status_stopped": "This {mode} run is finished. {equity}Net P and L {net}.",
        "equity": "Equity {value}. ",
        "no_positions": "No open position.",
        "n_positions": "{n} open positions, {orders} working orders.",
        "one_position": "1 open position, {orders} working orders.",
        "position": "{side} {qty} {symbol} at {px}{pnl}.",
        "position_pnl": ", open P and L {value}",
        "pnl_running": "Today's realised P and L is {day} over {trades} trades. Equity {equity}.",
        "pnl_stopped": "Net P and L of the run is {net}.",
        "pnl_unknown": "I have no P and L for this run yet.",
        "regime": "{symbol} regime {regime}, confidence {confidence} percent.",
        "no_regime": "No regime state is available.",
        "long": "Long",
        "short": "Short",
        "plus": "plus",
        "minus": "minus",
        "dollars": "dollars",
        "halt_verb": "halt trading",
        "resume_verb": "resume trading",
        "flatten_verb": "flatten",
        "ACTIVE": "active",
        "HALTED": "halted",
        "REDUCING": "reducing only",
    },
    "fr": {
        "help": "Dites statut, positions, P et L, régime, arrêter le trading, reprendre, ou solder.",
        "unknown": "Désolé, je n'ai pas compris. Dites aide pour la liste des commandes.",
        "confirm_halt": "Arrêter tout le trading ? Dites oui pour confirmer ou non pour annuler.",
        "confirm_flatten": (
            "Fermer toutes les positions et annuler les ordres ? Dites oui pour confirmer ou non pour annuler."
        ),
        "cancelled": "Annulé. Rien n'a été fait.",
        "expired": "La confirmation a expiré. Rien n'a été fait.",
        "nothing_pending": "Il n'y a rien à confirmer.",
        "done_halt": "Trading arrêté.",
        "done_resume": "Trading repris.",
        "done_flatten": "Ordre de solde envoyé : les positions sont en cours de fermeture.",
        "failed": "Le nœud n'a pas pu {what} : {why}.",
        "not_running": "Aucun nœud ne tourne pour ce dossier, je ne peux pas {what}.",
        "status_running": "Nœud {mode} en marche. Le trading est {state}. {equity}{positions}",
        "status_stopped": "Cette session {mode} est terminée. {equity}P et L net {net}.",
        "equity": "Capital {value}. ",
        "no_positions": "Aucune position ouverte.",
        "n_positions": "{n} positions ouvertes, {orders} ordres en cours.",
        "one_position": "1 position ouverte, {orders} ordres en cours.",
        "position": "{side} {qty} {symbol} à {px}{pnl}.",
        "position_pnl": ", P et L latent {value}",
        "pnl_running": "Le P et L réalisé du jour est {day} sur {trades} transactions. Capital {equity}.",
        "pnl_stopped": "Le P et L net de la session est {net}.",
        "pnl_unknown": "Je n'ai pas encore de P et L pour cette session.",
        "regime": "Régime {symbol} : {regime}, confiance {confidence} pour cent.",
        "no_regime": "Aucun état de régime n'est disponible.",
        "long": "Acheteur",
        "short": "Vendeur",
        "plus": "plus",
        "minus": "moins",
        "dollars": "dollars",
        "halt_verb": "arrêter le trading",
        "resume_verb": "reprendre le trading",
        "flatten_verb": "solder les positions",
        "ACTIVE": "actif",
        "HALTED": "arrêté",
        "REDUCING": "en réduction seulement",
    },
}
_REGIME_WORDS = {"fr": {"trend": "tendance", "range": "range", "defensive": "défensif"}}


@dataclass(frozen=True)
class Reply:
    """What the dialogue says back, and what it did."""

    text: str
    intent: str
    executed: str | None = None
    awaiting_confirmation: bool = False


class VoiceDialogue:
    """Turn utterances into answers and (confirmed) commands.

    Parameters
    ----------
    backend : OperatorBackend
        Where state is read and commands are sent.
    language : {"en", "fr"}
        Language of the answers (utterances in the other language are understood too).
    confirm_timeout_s : float, default 30
        A dangerous command not confirmed within this time is dropped.
    clock : Callable[[], float], optional
        Seconds, for the confirmation timeout (monotonic wall time by default).
    """

    def __init__(
        self,
        backend: OperatorBackend,
        language: Language = "en",
        confirm_timeout_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.backend = backend
        self.language = language
        self.confirm_timeout_s = confirm_timeout_s
        self._clock = clock
        self._pending: tuple[str, float] | None = None

    def _t(self, key: str, **values: Any) -> str:
        return _TEXT[self.language][key].format(**values)

    def handle(self, text: str) -> Reply:
        """Answer one utterance."""
        command = parse_command(text, self.language)
        intent = command.intent if command is not None else "unknown"
        if self._pending is not None:
            name, asked = self._pending
            if self._clock() - asked > self.confirm_timeout_s:
                self._pending = None
                if intent in ("yes", "no"):
                    return Reply(self._t("expired"), intent)
            elif intent == "yes":
                self._pending = None
                return self._execute(name)
            else:
                self._pending = None
                if intent in ("no", "unknown"):
                    return Reply(self._t("cancelled"), "no")
                cancelled = self._t("cancelled")
                reply = self.handle(text)
                return Reply(f"{cancelled} {reply.text}", reply.intent, reply.executed, reply.awaiting_confirmation)
        if intent in ("yes", "no"):
            return Reply(self._t("nothing_pending"), intent)
        if intent in DANGEROUS:
            self._pending = (intent, self._clock())
            return Reply(self._t(f"confirm_{intent}"), intent, awaiting_confirmation=True)
        if intent == "resume":
            return self._execute("resume")
        if intent == "unknown":
            return Reply(self._t("unknown"), intent)
        return Reply(getattr(self, f"_say_{intent}")(), intent)

    def _execute(self, name: str) -> Reply:
        ok, detail = self.backend.command(name)
        verb = self._t(f"{name}_verb")
        if ok:
            return Reply(self._t(f"done_{name}"), name, executed=name)
        if detail == "not running":
            return Reply(self._t("not_running", what=verb), name)
        return Reply(self._t("failed", what=verb, why=detail), name)

    # -- answers -------------------------------------------------------------------------------------

    def _money(self, value: float | None, currency: str = "USD") -> str:
        if value is None:
            return "?"
        sign = self._t("plus") if value > 0 else self._t("minus") if value < 0 else ""
        unit = self._t("dollars") if currency == "USD" else currency
        amount = f"{abs(value):,.0f}" if abs(value) >= 100 else f"{abs(value):,.2f}"
        if self.language == "fr":
            amount = amount.replace(",", " ").replace(".", ",")
        return f"{sign} {amount} {unit}".strip()

    def _price(self, value: float) -> str:
        text = f"{value:,.2f}"
        return text.replace(",", " ").replace(".", ",") if self.language == "fr" else text

    def _say_help(self) -> str:
        return self._t("help")

    def _say_status(self) -> str:
        view = self.backend.view()
        equity = self._t("equity", value=self._money(view.equity, view.currency)) if view.equity is not None else ""
        if not view.running:
            return self._t(
                "status_stopped", mode=view.mode, equity=equity, net=self._money(view.net_pnl, view.currency)
            )
        state = _TEXT[self.language].get(view.trading_state, view.trading_state.lower() or "?")
        return self._t("status_running", mode=view.mode, state=state, equity=equity, positions=self._count(view))

    def _count(self, view: NodeView) -> str:
        orders = view.working_orders or 0
        if not view.positions:
            return self._t("no_positions")
        if len(view.positions) == 1:
            return self._t("one_position", orders=orders)
        return self._t("n_positions", n=len(view.positions), orders=orders)

    def _say_positions(self) -> str:
        view = self.backend.view()
        if not view.positions:
            return self._t("no_positions")
        parts = []
        for p in view.positions:
            pnl = _num(p.get("unrealized_pnl"))
            parts.append(
                self._t(
                    "position",
                    side=self._t("long" if str(p.get("side", "")).upper() == "LONG" else "short"),
                    qty=f"{float(p.get('quantity', 0)):g}",
                    symbol=_root(str(p.get("instrument_id", ""))),
                    px=self._price(float(p.get("avg_px_open", 0.0))),
                    pnl=self._t("position_pnl", value=self._money(pnl, view.currency)) if pnl is not None else "",
                ),
            )
        return " ".join(parts)

    def _say_pnl(self) -> str:
        view = self.backend.view()
        if view.running:
            return self._t(
                "pnl_running",
                day=self._money(view.day_pnl or 0.0, view.currency),
                trades=view.day_trades or 0,
                equity=self._money(view.equity, view.currency),
            )
        if view.net_pnl is None:
            return self._t("pnl_unknown")
        return self._t("pnl_stopped", net=self._money(view.net_pnl, view.currency))

    def _say_regime(self) -> str:
        view = self.backend.view()
        if not view.regimes:
            return self._t("no_regime")
        words = _REGIME_WORDS.get(self.language, {})
        return " ".join(
            self._t(
                "regime",
                symbol=_root(iid),
                regime=words.get(regime, regime),
                confidence=f"{confidence * 100:.0f}" if math.isfinite(confidence) else "?",
            )
            for iid, (regime, confidence) in sorted(view.regimes.items())
        )


# -- spoken alerts ----------------------------------------------------------------------------------

_PRIORITY_ORDER = {"info": 10, "warning": 20, "error": 30, "urgent": 40}
_ALERT_WORDS = {
    "en": {"info": "Information", "warning": "Warning", "error": "Error", "urgent": "Urgent alert"},
    "fr": {"info": "Information", "warning": "Attention", "error": "Erreur", "urgent": "Alerte urgente"},
}


def alert_sentence(record: dict[str, Any], language: Language) -> str:
    """An ``alerts.jsonl`` record as one sentence to speak."""
    priority = str(record.get("priority", "info"))
    words = _ALERT_WORDS[language]
    title = str(record.get("title", "")).replace("->", "to" if language == "en" else "vers")
    return f"{words.get(priority, priority)}: {title}."


class AlertTail:
    """New lines of ``alerts.jsonl`` at or above a priority, read incrementally."""

    def __init__(self, path: Path, min_priority: str = "warning", from_end: bool = True) -> None:
        self.path = path
        self.min_level = _PRIORITY_ORDER.get(min_priority, 20)
        self._offset = path.stat().st_size if from_end and path.exists() else 0
        self._partial = ""

    def poll(self) -> list[dict[str, Any]]:
        """Alerts appended since the last call (a half-written line waits for the next call)."""
        if not self.path.exists():
            return []
        with self.path.open("r", encoding="utf-8", errors="replace") as handle:
            handle.seek(self._offset)
            chunk = handle.read()
            self._offset = handle.tell()
        text = self._partial + chunk
        lines = text.split("\n")
        self._partial = lines.pop()
        out = []
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and _PRIORITY_ORDER.get(str(record.get("priority")), 0) >= self.min_level:
                out.append(record)
        return out


# -- speech in (optional) ---------------------------------------------------------------------------


class VoskListener:
    """Speech-to-text with vosk (offline) from the microphone through ALSA's ``arecord``.

    Only available when the ``vosk`` package and a model folder are installed; otherwise the
    constructor raises a one-line :class:`VoiceError` saying what is missing.
    """

    SAMPLE_RATE = 16_000

    def __init__(self, model_path: Path | None) -> None:
        try:
            import vosk
        except ImportError:
            raise VoiceError("speech input needs the vosk package (pip install vosk) and a vosk model") from None
        if model_path is None or not Path(model_path).is_dir():
            raise VoiceError(f"speech input needs a vosk model folder: set voice.stt_model (was {model_path})")
        if shutil.which("arecord") is None:
            raise VoiceError("speech input reads the microphone with arecord: apt-get install alsa-utils")
        self._vosk = vosk
        self._model = vosk.Model(str(model_path))

    def transcribe_wav(self, path: Path) -> str:
        """The text of a 16-bit mono WAV file."""
        recogniser = self._vosk.KaldiRecognizer(self._model, self.SAMPLE_RATE)
        with wave.open(str(path), "rb") as handle:
            while chunk := handle.readframes(4000):
                recogniser.AcceptWaveform(chunk)
        return str(json.loads(recogniser.FinalResult()).get("text", ""))

    def utterances(self) -> Iterator[str]:
        """Each phrase heard on the microphone, as text (stops when arecord ends)."""
        recogniser = self._vosk.KaldiRecognizer(self._model, self.SAMPLE_RATE)
        command = ["arecord", "-q", "-f", "S16_LE", "-c", "1", "-r", str(self.SAMPLE_RATE), "-t", "raw"]
        with subprocess.Popen(command, stdout=subprocess.PIPE) as recorder:
            assert recorder.stdout is not None
            while chunk := recorder.stdout.read(8000):
                if recogniser.AcceptWaveform(chunk):
                    text = str(json.loads(recogniser.Result()).get("text", ""))
                    if text:
                        yield text


__all__ = [
    "DANGEROUS",
    "AlertTail",
    "Command",
    "NodeView",
    "OperatorBackend",
    "Reply",
    "RunFolderBackend",
    "Speaker",
    "VoiceDialogue",
    "VoiceError",
    "VoskListener",
    "alert_sentence",
    "normalise",
    "parse_command",
    "wav_rms",
]
