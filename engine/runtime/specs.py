"""Find, load and cache the specs the runtime runs: the lifecycle, the channel, compiled.

Looks in the given folder, then the working folder, then the copies bundled in the wheel,
then the source checkout (``settings.spec_search_path``). Loads are cached per resolved
file and modification time, so an edited spec is picked up and an unchanged one is not
re-read.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from engine.core import VOCABULARY, CompiledMachine, OrderSnapshot, apply_event, compile_machine
from engine.core.outcome import Applied
from engine.errors import ConfigError
from engine.runtime.settings import spec_search_path
from engine.spec import (
    ChannelSpec,
    MachineSpec,
    StoreSide,
    Validation,
    check_migration_invariants,
    load_channel,
    load_machine,
    parse_machine,
    spec_files,
    to_dot,
    to_mermaid,
    validate_files,
)
from engine.spec.source import load_file

MACHINE_FILE = "order_lifecycle.yaml"
CHANNEL_FILE = "prestashop.yaml"


@dataclass(frozen=True)
class Bundle:
    """The lifecycle machine, the PrestaShop channel and the compiled machine."""

    machine: MachineSpec
    channel: ChannelSpec
    compiled: CompiledMachine
    spec_version: str | None = None
    """Content hash of the lifecycle + channel files (``spec_version``); None: not from files."""
    machine_path: Path | None = None
    channel_path: Path | None = None

    @property
    def spec_label(self) -> str:
        """The lifecycle's own ``version:`` label."""
        return str(self.machine.version)


def spec_version(machine_text: bytes, channel_text: bytes) -> str:
    """The spec version: the first 16 hex digits of SHA-256 over both files' bytes."""
    digest = hashlib.sha256()
    for part in (b"lifecycle\0", machine_text, b"\0channel\0", channel_text):
        digest.update(part)
    return digest.hexdigest()[:16]


def find_spec(kind: str, filename: str, preferred: Path | None = None) -> Path:
    """The first ``kind``/``filename`` on the search path.

    Raises:
        ConfigError: no folder on the search path holds it.
    """
    if preferred is not None and preferred.is_file():
        return preferred
    folders = spec_search_path(kind, preferred)
    for folder in folders:
        candidate = folder / filename
        if candidate.is_file():
            return candidate
    looked = ", ".join(str(f) for f in folders) or f"./{kind}"
    raise ConfigError(f"no {kind}/{filename} found (looked in: {looked})")


def _stamp(path: Path) -> tuple[str, int]:
    resolved = path.resolve()
    return str(resolved), resolved.stat().st_mtime_ns


@lru_cache(maxsize=32)
def _load(machine_key: tuple[str, int], channel_key: tuple[str, int]) -> Bundle:
    machine_path, channel_path = Path(machine_key[0]), Path(channel_key[0])
    machine_text, channel_text = machine_path.read_bytes(), channel_path.read_bytes()
    cache = _cache_file(machine_path, machine_text, channel_path, channel_text)
    loaded = _read_cache(cache) if cache is not None else None
    if loaded is None:
        # the full load: YAML with locations, the JSON Schemas, the meaning checks
        from engine.runtime.channels.prestashop import resources as prestashop_resources

        machine = load_machine(str(machine_path), vocabulary=VOCABULARY)
        channel = load_channel(
            str(channel_path), machine, vocabulary=VOCABULARY, store=prestashop_resources.bundled()
        )
        if cache is not None:
            _write_cache(cache, (machine, channel))
    else:
        machine, channel = loaded
    return Bundle(
        machine=machine,
        channel=channel,
        compiled=compile_machine(machine),
        spec_version=spec_version(machine_text, channel_text),
        machine_path=machine_path,
        channel_path=channel_path,
    )


# ---- the validated-spec cache
#
# Loading and schema-validating the two files takes about 0.2 s, on every command; integrators
# script commands by the thousand. A load that passed every check is kept as a pickle named
# by the SHA-256 of: both files' paths and bytes, the Python version, and the size and
# modification time of every source and schema file of the ``engine`` package (the code that
# validates and builds). An edited spec, or an edited or upgraded omsflow, names another file,
# so the full load runs again and refuses what it refuses; a spec that failed is never kept.
# The pickle lives in the user's own cache folder (as trusted as the .pyc files Python runs
# from it); an unreadable or foreign entry is ignored and rewritten.

_CACHE_FORMAT = b"omsflow-spec-cache-1"
_CACHE_KEEP = 32
_ENGINE_DIR = Path(__file__).resolve().parent.parent


def spec_cache_dir() -> Path | None:
    """``OMSFLOW_CACHE_DIR``, else ``$XDG_CACHE_HOME/omsflow``, else ``~/.cache/omsflow``;
    ``OMSFLOW_CACHE_DIR=off`` (or an empty value) turns the cache off."""
    chosen = os.environ.get("OMSFLOW_CACHE_DIR")
    if chosen is not None:
        return None if chosen.strip() in ("", "off", "0") else Path(chosen)
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg) / "omsflow"
    try:
        return Path.home() / ".cache" / "omsflow"
    except RuntimeError:  # no home folder: no cache
        return None


def _code_stamp() -> bytes:
    """Size and mtime of every file of the ``engine`` package but bytecode (about 1 ms)."""
    parts: list[str] = []
    stack = [str(_ENGINE_DIR)]
    while stack:
        folder = stack.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    if entry.name != "__pycache__":
                        stack.append(entry.path)
                elif not entry.name.endswith((".pyc", ".pyo")):
                    st = entry.stat()
                    parts.append(f"{entry.path}\0{st.st_size}\0{st.st_mtime_ns}")
    return "\n".join(sorted(parts)).encode()


def _cache_file(
    machine_path: Path, machine_text: bytes, channel_path: Path, channel_text: bytes
) -> Path | None:
    folder = spec_cache_dir()
    if folder is None:
        return None
    digest = hashlib.sha256(_CACHE_FORMAT)
    for part in (
        sys.version.encode(),
        _code_stamp(),
        str(machine_path).encode(),
        machine_text,
        str(channel_path).encode(),
        channel_text,
    ):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return folder / f"specs-{digest.hexdigest()}.pickle"


def _read_cache(path: Path) -> tuple[MachineSpec, ChannelSpec] | None:
    try:
        with path.open("rb") as fh:
            loaded = pickle.load(fh)  # noqa: S301 - our own file, named by the content hash
    except FileNotFoundError:
        return None
    except Exception:  # noqa: BLE001 - a damaged or foreign entry: load the files instead
        return None
    if (
        isinstance(loaded, tuple)
        and len(loaded) == 2
        and isinstance(loaded[0], MachineSpec)
        and isinstance(loaded[1], ChannelSpec)
    ):
        return loaded[0], loaded[1]
    return None


def _write_cache(path: Path, specs: tuple[MachineSpec, ChannelSpec]) -> None:
    """Keep a validated load (atomically: write aside, then rename); never fails a command."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".specs-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                pickle.dump(specs, fh, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        entries = sorted(
            path.parent.glob("specs-*.pickle"), key=lambda p: p.stat().st_mtime_ns, reverse=True
        )
        for old in entries[_CACHE_KEEP:]:
            with contextlib.suppress(OSError):
                old.unlink()
    except (OSError, pickle.PicklingError, TypeError, AttributeError):
        return  # a read-only home, a full disk: the next command loads the files again


def load_bundle(specs_dir: Path | None = None, channels_dir: Path | None = None) -> Bundle:
    """The lifecycle + PrestaShop channel, validated and compiled (cached per paths).

    Raises:
        SpecErrors: a spec is invalid (every located problem).
        ConfigError: a spec file cannot be found.
    """
    machine_path = find_spec("specs", MACHINE_FILE, specs_dir)
    channel_path = find_spec("channels", CHANNEL_FILE, channels_dir)
    return _load(_stamp(machine_path), _stamp(channel_path))


def load_machine_file(path: Path | None = None) -> MachineSpec:
    """One machine spec (default: the lifecycle on the search path), vocabulary-checked."""
    target = path if path is not None else find_spec("specs", MACHINE_FILE)
    return load_machine(target, vocabulary=VOCABULARY)


def default_validation_paths() -> list[Path]:
    """``specs/`` and ``channels/`` of the working folder, else the bundled copies."""
    out: list[Path] = []
    cwd = Path.cwd()
    for kind in ("specs", "channels"):
        folders = spec_search_path(kind)
        if folders:
            # Relative to the working folder when inside it: messages stay short and clickable.
            folder = folders[0]
            out.append(folder.relative_to(cwd) if folder.is_relative_to(cwd) else folder)
    return out


def bundled_machine() -> MachineSpec | None:
    """The lifecycle as shipped (the wheel's or the checkout's copy), if it loads."""
    folders = spec_search_path("specs")
    cwd = (Path.cwd() / "specs").resolve()
    for folder in folders:
        candidate = folder / MACHINE_FILE
        if folder.resolve() != cwd and candidate.is_file():
            try:
                return load_machine(candidate, vocabulary=VOCABULARY)
            except Exception:  # noqa: BLE001 - no reference spec, no comparison
                return None
    return None


def machine_from_text(text: str, file: str) -> MachineSpec | None:
    """A lifecycle from its text (a recorded spec version), if it still loads."""
    try:
        return parse_machine(text, file=file, vocabulary=VOCABULARY)
    except Exception:  # noqa: BLE001 - an old copy that no longer loads explains nothing
        return None


def validate(
    paths: list[Path] | None = None,
    *,
    store: StoreSide | None = None,
    previous: MachineSpec | None = None,
) -> Validation:
    """Validate spec files and folders together; channels are cross-checked against the
    machine they name (from the files given, else the lifecycle on the search path), their
    mappings against the OMS model and the store side: ``store`` (a connected store's live
    fields, ``live_store_side``), else the bundled PrestaShop 8.x/1.7 knowledge."""
    targets = paths or default_validation_paths()
    missing = [p for p in targets if not p.exists()]
    if missing:
        raise ConfigError(f"no such file or folder: {missing[0]}")
    files = spec_files(targets)
    if not files:
        raise ConfigError("no *.yaml spec files in " + ", ".join(str(p) for p in targets))
    fallback: list[MachineSpec] = []
    try:
        fallback.append(load_machine_file())
    except Exception:  # noqa: BLE001 - only a fallback; problems in it are reported when named
        fallback = []
    from engine.runtime.channels.prestashop import resources as prestashop_resources

    side = store or prestashop_resources.bundled()
    result = validate_files(
        files, vocabulary=VOCABULARY, fallback_machines=fallback, stores=[side]
    )
    reference = previous or bundled_machine()
    for machine in result.machines:
        if machine.migrations and reference is not None:
            # where a migration moves orders is judged against the spec they were under
            doc = load_file(machine.file)
            result.problems.extend(check_migration_invariants(machine, doc, reference))
    return result


def render_graph(machine: MachineSpec, fmt: str, output: Path | None) -> str | None:
    """The diagram as text (``mermaid``/``dot``), or written as ``png``/``svg`` via Graphviz.

    Returns the text for mermaid/dot; None when an image was written to ``output``.

    Raises:
        ConfigError: an image was asked for but Graphviz ``dot`` is not installed.
    """
    if fmt == "mermaid":
        return to_mermaid(machine)
    if fmt == "dot":
        return to_dot(machine)
    if output is None:
        raise ConfigError(f"--format {fmt} writes an image: give --output FILE.{fmt}")
    dot = shutil.which("dot")
    if dot is None:
        raise ConfigError(
            f"Graphviz 'dot' is not installed, so no {fmt} can be drawn "
            "(fix: install graphviz, or use --format mermaid|dot)"
        )
    proc = subprocess.run(  # noqa: S603 - fixed argv, text on stdin
        [dot, f"-T{fmt}", "-o", str(output)],
        input=to_dot(machine).encode(),
        capture_output=True,
        check=False,
    )
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip().splitlines()
        raise ConfigError(f"Graphviz failed: {err[0] if err else proc.returncode}")
    return None


def simulate(
    compiled: CompiledMachine,
    events: list[str],
    *,
    assume: dict[str, bool] | None = None,
    start: str | None = None,
    at: datetime | None = None,
) -> dict[str, Any]:
    """Run ``events`` on a throwaway order; guards hold unless assumed otherwise.

    Returns the ``spec simulate --json`` document: ``final_state``, ``steps`` and
    ``refused`` (None, or the first refusal, after which the simulation stops).
    """
    spec = compiled.spec
    state = start or spec.initial
    steps: list[dict[str, Any]] = []
    moves = spec.state_moves()
    if state not in compiled.states and state in moves:
        # an order still in a state this spec migrates away: `spec migrate` moves it first
        kind = next(m.kind for m in spec.migrations if (state, moves[state]) in m.moves)
        steps.append(
            {"trigger": "spec_migration", "from": state, "to": moves[state], "effects": []}
        )
        steps[-1]["migration"] = kind
        state = moves[state]
    if state not in compiled.states:
        raise ConfigError(
            f"--from: unknown state '{state}' (states: {', '.join(spec.state_names)})"
        )
    forced = dict.fromkeys(VOCABULARY.guards, True)
    forced.update(assume or {})
    unknown = sorted(set(assume or {}) - set(VOCABULARY.guards))
    if unknown:
        raise ConfigError(
            f"--assume: unknown guard '{unknown[0]}' "
            f"(guards: {', '.join(sorted(VOCABULARY.guards))})"
        )
    when = at or datetime.now(UTC)
    refused: dict[str, Any] | None = None
    for trigger in events:
        outcome = apply_event(
            compiled, OrderSnapshot(state=state, assume=forced), trigger, at=when
        )
        if isinstance(outcome, Applied):
            steps.append(
                {
                    "trigger": trigger,
                    "from": outcome.previous,
                    "to": outcome.state,
                    "effects": [e.kind for e in outcome.effects],
                }
            )
            state = outcome.state
            continue
        blocker = outcome.blockers[0]
        refused = {
            "trigger": trigger,
            "state": outcome.state,
            "code": blocker.code,
            "message": "; ".join(b.message for b in outcome.blockers),
        }
        break
    return {"final_state": state, "steps": steps, "refused": refused}
