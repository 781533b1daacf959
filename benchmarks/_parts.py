"""The command line the benchmark scripts share: parts, seeds, run folders, workers, device, quick.

A script declares the options it has with :func:`add_common_arguments`; bad values stop it
before any run, with argparse's one-line error (exit code 2). ``args.parts`` and ``args.seeds``
arrive parsed (lists). :func:`run_folder` gives the folder its runs go to and :func:`run_parts`
runs the chosen parts in turn, with a progress line before and after each.
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

_NUMBER = re.compile(r"[0-9]+")


def parse_seeds(text: str, *, count: bool = False) -> list[int]:
    """The seeds ``text`` names: a list ``0,1,2``, or ``FIRST-LAST`` (both included), or, with
    ``count``, a count ``N`` (seeds 0 .. N-1; without ``count`` a lone ``N`` is the seed N).

    Raises ValueError with one line naming ``text`` and the forms that are valid.
    """
    forms = "a list 0,1,2, FIRST-LAST or a count N" if count else "a list 0,1,2 or FIRST-LAST"
    items = [item.strip() for item in text.split(",")]
    first, dash, last = items[0].partition("-")
    if not text.strip():
        seeds = []
    elif len(items) == 1 and dash:
        first, last = first.strip(), last.strip()
        if not (_NUMBER.fullmatch(first) and _NUMBER.fullmatch(last)):
            raise ValueError(f"{text!r} is not {forms}")
        seeds = list(range(int(first), int(last) + 1))
    elif len(items) == 1 and count and _NUMBER.fullmatch(items[0]):
        seeds = list(range(int(items[0])))
    else:
        bad = [item for item in items if not _NUMBER.fullmatch(item)]
        if bad:
            where = f" in {text!r}" if len(items) > 1 else ""
            raise ValueError(f"{bad[0]!r}{where} is not a seed; give {forms}")
        seeds = [int(item) for item in items]
    if not seeds:
        raise ValueError(f"{text!r} names no seed; give {forms}")
    seen: set[int] = set()
    for seed in seeds:
        if seed in seen:
            raise ValueError(f"{text!r} names seed {seed} twice; give each seed once")
        seen.add(seed)
    return seeds


def parse_parts(text: str, parts: Sequence[str]) -> list[str]:
    """The parts ``text`` names, comma-separated, in its order; each must be one of ``parts``.

    Raises ValueError with one line naming the bad part and the valid ones.
    """
    chosen = [item.strip() for item in text.split(",") if item.strip()]
    valid = ", ".join(parts)
    for part in chosen:
        if part not in parts:
            raise ValueError(f"unknown part {part!r}; valid: {valid}")
        if chosen.count(part) > 1:
            raise ValueError(f"part {part!r} named twice in {text!r}")
    if not chosen:
        raise ValueError(f"{text!r} names no part; valid: {valid}")
    return chosen


def _argparse_type(parse: Callable[[str], T]) -> Callable[[str], T]:
    """``parse`` as an argparse ``type``: its ValueError becomes argparse's one-line error."""

    def convert(text: str) -> T:
        try:
            return parse(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return convert


def _workers(text: str) -> int:
    if not _NUMBER.fullmatch(text.strip()) or int(text) < 1:
        raise ValueError(f"must be a whole number >= 1, got {text!r}")
    return int(text)


def add_common_arguments(
    parser: argparse.ArgumentParser,
    *,
    parts: Sequence[str] | None = None,
    default_parts: str | None = None,
    seeds: str | None = None,
    seed_count: bool = False,
    seeds_per_part: str | None = None,
    workers: int | None = None,
    workers_help: str = "runs at once",
    device: str | None = None,
    keep: bool = False,
    quick: str | None = None,
) -> None:
    """Add the options a script shares with the others; an option left at None is not added.

    :param parts: the script's parts: ``--parts`` (comma-separated, checked against them;
        ``args.parts`` is a list).
    :param default_parts: what ``--parts`` runs when not given (default: every part, in order).
    :param seeds: the default of ``--seeds`` (``args.seeds`` is a list, see :func:`parse_seeds`).
    :param seed_count: a lone ``N`` is a count of seeds (0 .. N-1) instead of the seed N.
    :param seeds_per_part: instead of ``seeds``: ``--seeds`` defaults to None (each part picks
        its own), and this text says which seeds the parts pick.
    :param workers: the default of ``--workers`` (a whole number >= 1).
    :param workers_help: what ``--workers`` counts.
    :param device: the default of ``--device`` (a torch device: cpu, cuda or auto).
    :param keep: add ``--keep DIR`` (see :func:`run_folder`).
    :param quick: the help of ``--quick``, the script's smoke run.
    """
    if parts is not None:
        default = default_parts if default_parts is not None else ",".join(parts)
        parser.add_argument(
            "--parts",
            default=default,
            type=_argparse_type(lambda text: parse_parts(text, parts)),
            help=f"comma-separated parts to run, of {', '.join(parts)} (default: {default})",
        )
    if seeds is not None or seeds_per_part is not None:
        forms = "a list 0,1,2 or FIRST-LAST" + (", or a count N (0 .. N-1)" if seed_count else "")
        parser.add_argument(
            "--seeds",
            default=seeds,
            type=_argparse_type(lambda text: parse_seeds(text, count=seed_count)),
            help=f"seeds of every run: {forms} (default: {seeds or seeds_per_part})",
        )
    if workers is not None:
        parser.add_argument(
            "--workers",
            type=_argparse_type(_workers),
            default=workers,
            help=f"{workers_help} (default: {workers})",
        )
    if device is not None:
        parser.add_argument(
            "--device",
            default=device,
            help=f"torch device of the runs: cpu, cuda or auto (default: {device})",
        )
    if keep:
        parser.add_argument(
            "--keep",
            default=None,
            metavar="DIR",
            help="keep the run folders here; a later run with the same --keep reads the "
            "finished runs back (default: a temporary folder, removed at the end)",
        )
    if quick is not None:
        parser.add_argument("--quick", action="store_true", help=quick)


@contextmanager
def run_folder(keep: str | None, prefix: str | None = None) -> Iterator[Path]:
    """The folder the runs go to: ``keep`` when given (left in place), else a temporary folder
    (named ``prefix...``) removed when the block ends."""
    if keep:
        yield Path(keep)
        return
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        yield Path(tmp)


def run_parts(script: str, parts: Iterable[str], run_part: Callable[[str], T]) -> dict[str, T]:
    """``run_part(part)`` for each part in turn, between the lines ``[script] part`` and
    ``[script] part done in N s``; what each returned, by part."""
    results: dict[str, T] = {}
    for part in parts:
        print(f"[{script}] {part}", flush=True)
        begin = time.perf_counter()
        results[part] = run_part(part)
        print(f"[{script}] {part} done in {time.perf_counter() - begin:.0f} s", flush=True)
    return results
