"""Results-file I/O, the one home of what every layer that writes or reads a run folder shares: the file name
(:data:`RESULTS_FILE`), the conversion to strict JSON (:func:`json_safe`), the atomic write
(:func:`write_json_atomic`, :func:`write_results`), reading a record back (:func:`read_results`, :func:`json_section`),
the typed records' bases (:class:`JsonRecord`, :class:`JsonSection`) and the Hub repo-id checks (:func:`is_repo_id`,
:func:`check_repo_id`, :func:`names_hub_repo`, :func:`check_hub_model_id`).

A leaf module: it imports only the standard library (``check_hub_model_id`` imports ``huggingface_hub`` when
called), so ``robustness``, ``training``, ``hub``, ``conversion``,
``demo`` and ``study`` all import it without crossing a layer.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar, TypeVar


__all__ = [
    "RESULTS_FILE",
    "JsonRecord",
    "JsonSection",
    "check_hub_model_id",
    "check_repo_id",
    "describe_value",
    "is_repo_id",
    "json_safe",
    "json_section",
    "names_hub_repo",
    "read_json",
    "read_results",
    "write_bytes_atomic",
    "write_json_atomic",
    "write_results",
]

RESULTS_FILE = "results.json"
"""The name of a finished run's record in its output folder (training runs and conversions alike)."""

# huggingface_hub's own rules (``huggingface_hub.utils.validate_repo_id``), restated here to keep this module a leaf:
# each part of ORG/NAME is 1-96 of [\w.-], starts and ends with a word character, has no "--" or "..", and the id
# does not end with ".git".
_REPO_PART = r"\b[\w.-]{1,96}\b"
_REPO_ID = re.compile(rf"{_REPO_PART}/{_REPO_PART}", re.ASCII)


def is_repo_id(value: Any) -> bool:
    """Whether ``value`` is a Hub repo id ``ORG/NAME`` that the Hub accepts (the rules of huggingface_hub's
    ``validate_repo_id``, with the namespace required): ``../vit``, ``org/name-`` and ``org/a..b`` are not."""
    return (
        isinstance(value, str)
        and bool(_REPO_ID.fullmatch(value))
        and "--" not in value
        and ".." not in value
        and not value.endswith(".git")
    )


def names_hub_repo(value: Any) -> bool:
    """Whether ``value`` names a Hub repo rather than a local folder: shaped ``ORG/NAME`` and no such path exists."""
    return is_repo_id(value) and not Path(value).exists()


def check_hub_model_id(value: str, argument: str) -> str:
    """``value`` if the Hub accepts it as a repo id (``huggingface_hub.utils.validate_repo_id``): ``NAME``, created in
    the namespace of the token's user, or ``ORG/NAME``; else ``ValueError`` naming ``argument``."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(value)
    except HFValidationError as error:
        reason = str(error).split(": '")[0]
        raise ValueError(
            f"{argument} must be a Hub repo id, 'NAME' (in your namespace) or 'ORG/NAME', got {value!r}: {reason}."
        ) from error
    return value


def check_repo_id(value: Any, argument: str, what: str = "") -> str:
    """``value`` if it is a valid Hub repo id ``ORG/NAME`` (:func:`is_repo_id`), else ``ValueError`` naming
    ``argument`` (``what`` says what the id names, e.g. ``"a Hub Space id"``)."""
    if not is_repo_id(value):
        kind = f" ({what})" if what else ""
        raise ValueError(
            f"`{argument}` must look like 'ORG/NAME'{kind}, got {value!r}: a Hub repo id takes letters, digits, "
            "'-', '_' or '.', each part starting and ending with a letter or digit, no '--' or '..', at most 96 "
            "characters per part."
        )
    return value


def _scalar(value: Any) -> Any:
    """A numpy scalar or a one-element torch tensor as a Python number; anything else as it is."""
    item = getattr(value, "item", None)
    if not callable(item):
        return value
    numel = getattr(value, "numel", None)
    if callable(numel):  # torch: any one-element tensor
        return item() if numel() == 1 else value
    return item() if getattr(value, "shape", None) == () else value  # numpy scalar or 0-d array


def json_safe(value: Any) -> Any:
    """A copy of ``value`` that ``json.dumps(..., allow_nan=False)`` accepts: NaN and infinities become ``None``
    (JSON ``null``), tuples lists, numpy scalars and one-element torch tensors Python numbers; mappings and lists are
    copied recursively (keys become strings). Other objects are left for ``json.dump(default=str)``.

    Use it on a robustness result before writing it to JSON: a NaN means "no example left to average" and must not
    be written as the non-standard ``NaN`` literal.
    """
    if isinstance(value, Mapping):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    value = _scalar(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically: to a temporary file in the same folder, flushed to disk, then
    ``os.replace``, so a crash mid-write leaves the previous file whole and no temporary file behind. Creates the
    folder. Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=f"{path.suffix}.tmp")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o644)  # mkstemp creates it private; the file is an ordinary readable one
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def write_json_atomic(path: str | os.PathLike, payload: Any, *, indent: int = 2, strict: bool = True) -> Path:
    """Write ``payload`` to ``path`` as JSON indented by ``indent``, atomically (:func:`write_bytes_atomic`).
    Returns the path.

    ``strict`` (the default): strict JSON, through :func:`json_safe` (a NaN is written as ``null``), other objects
    as ``str``. ``strict=False``: ``payload`` as ``json.dump`` writes it (a NaN as the ``NaN`` literal that Python's
    ``json`` reads back; an object JSON cannot hold raises ``TypeError``), as the study's run store keeps its records.
    """
    options: dict[str, Any] = {"allow_nan": False, "default": str} if strict else {"allow_nan": True}
    text = json.dumps(json_safe(payload) if strict else payload, indent=indent, **options)
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_results(output_dir: str | os.PathLike, results: Mapping[str, Any]) -> Path:
    """Write ``OUTPUT_DIR/results.json`` with :func:`write_json_atomic`. Returns the path."""
    return write_json_atomic(Path(output_dir) / RESULTS_FILE, results)


def read_json(path: str | os.PathLike) -> Any:
    """The JSON value in ``path`` (UTF-8)."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


_Record = TypeVar("_Record")
_Section = TypeVar("_Section", bound="JsonSection")


def describe_value(value: Any) -> str:
    """``value``'s type and a short ``repr``, for an error message on a malformed record."""
    text = repr(value)
    return f"{type(value).__name__} ({text if len(text) <= 40 else text[:37] + '...'})"


def json_section(data: Mapping[str, Any], name: str) -> dict[str, Any] | None:
    """The section ``name`` of a record's JSON object ``data``: a dict, or ``None`` when absent (or ``null``).

    Raises:
        ValueError: the section is not a JSON object; the message names it and what it holds.
    """
    value = data.get(name)
    if value is not None and not isinstance(value, dict):
        raise ValueError(
            f"{RESULTS_FILE}: section {name!r} must be a JSON object (or absent), got {describe_value(value)}."
        )
    return value


def read_results(output_dir: str | os.PathLike, parse: Callable[[Any], _Record], *, expected: str) -> _Record:
    """``parse`` (a record's ``from_json``) applied to the JSON value of ``OUTPUT_DIR/results.json``.

    Raises:
        FileNotFoundError: there is no ``results.json`` in ``output_dir``; the message says it ``expected`` (what
            folder).
        ValueError: the file is not valid JSON, or ``parse`` refuses it; the message names the file.
    """
    path = Path(output_dir) / RESULTS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"No {RESULTS_FILE} in output_dir={str(output_dir)!r}: expected {expected}.")
    try:
        data = read_json(path)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from error
    try:
        return parse(data)
    except ValueError as error:
        raise ValueError(f"{path}: {str(error).removeprefix(RESULTS_FILE + ': ')}") from error


class JsonSection:
    """The base of a record's flat section (a dataclass with an ``extra`` field): its fields are its JSON keys, in
    order, then the keys of its :attr:`_FLATTENED` parts, then ``extra`` (keys this version does not know, kept and
    written back).

    ``_FLATTENED`` maps a field to the section type it holds, whose keys sit in this section's JSON object; the part is
    built when one of its keys is present, and written only when set. A part read from some of its keys writes back
    those (its other fields once set); the section's own missing keys are still written (as ``null``). The keys a
    part lacked (``_absent``) are not a dataclass field: ``==``, ``repr`` and ``dataclasses.replace`` ignore them.
    ``_OPTIONAL`` fields are written only when set (not ``None``).
    """

    extra: dict[str, Any]
    # the own keys a part read from its owner's JSON lacked (see from_json); a part built in code has none
    _absent: frozenset[str] = frozenset()
    _FLATTENED: ClassVar[dict[str, type[JsonSection]]] = {}
    _OPTIONAL: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def _keys(cls) -> list[str]:
        """The JSON keys of the section's own fields."""
        skipped = {"extra", *cls._FLATTENED}
        return [spec.name for spec in dataclasses.fields(cls) if spec.name not in skipped]  # type: ignore[arg-type]

    @classmethod
    def json_keys(cls) -> list[str]:
        """Every JSON key the section knows: its own, then those of its flattened parts."""
        return [*cls._keys(), *(key for part in cls._FLATTENED.values() for key in part.json_keys())]

    @classmethod
    def from_json(cls: type[_Section], data: Mapping[str, Any]) -> _Section:
        """The section from its JSON object (a missing key takes the field's default; a flattened part is built
        when one of its keys is present)."""
        keys = cls._keys()
        known = {key: data[key] for key in keys if key in data}
        for name, part in cls._FLATTENED.items():
            part_keys = part.json_keys()
            keys += part_keys
            given = {key: data[key] for key in part_keys if key in data}
            if given:
                known[name] = section = part.from_json(given)
                section._absent = frozenset(key for key in part._keys() if key not in given)
        return cls(**known, extra={key: value for key, value in data.items() if key not in keys})

    def to_json(self) -> dict[str, Any]:
        """The section's JSON object."""
        values = {key: getattr(self, key) for key in self._keys()}
        unset = {*self._OPTIONAL, *self._absent}
        values = {key: value for key, value in values.items() if value is not None or key not in unset}
        for name in self._FLATTENED:
            part = getattr(self, name)
            if part is not None:
                values.update(part.to_json())
        return {**values, **self.extra}


class JsonRecord:
    """The base of a whole ``results.json`` record, a dataclass with ``from_json`` / ``to_json``: it reads the file
    from a folder and writes it there. ``_EXPECTED`` says what folder holds one (for the message of a missing
    file)."""

    _EXPECTED: ClassVar[str] = "a folder holding a results.json"

    @classmethod
    def from_json(cls: type[_Record], data: Any) -> _Record:
        raise NotImplementedError

    def to_json(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def read(cls: type[_Record], output_dir: str | os.PathLike) -> _Record:
        """The record in ``OUTPUT_DIR/results.json``.

        Raises:
            FileNotFoundError: there is no ``results.json`` in ``output_dir``.
            ValueError: the file is not valid JSON or not such a record; the message names the file.
        """
        return read_results(output_dir, cls.from_json, expected=cls._EXPECTED)  # type: ignore[attr-defined]

    def write(self, output_dir: str | os.PathLike) -> Path:
        """Write ``OUTPUT_DIR/results.json`` atomically, as strict JSON (a NaN is written as ``null``). Returns the
        path."""
        return write_results(output_dir, self.to_json())
