"""The benchmark scripts' shared command line (benchmarks/_parts.py): seeds, parts, folders."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from _parts import (  # noqa: E402
    add_common_arguments,
    parse_parts,
    parse_seeds,
    run_folder,
    run_parts,
)

PARTS = ("spread", "commons", "ceiling")


@pytest.mark.parametrize(
    ("text", "seeds"),
    [
        ("0,1,2", [0, 1, 2]),
        ("4,0,9", [4, 0, 9]),
        (" 1, 2 ", [1, 2]),
        ("5", [5]),
        ("3-8", [3, 4, 5, 6, 7, 8]),
        ("4-4", [4]),
        (" 2 - 3 ", [2, 3]),
    ],
)
def test_seed_forms(text: str, seeds: list[int]) -> None:
    assert parse_seeds(text) == seeds
    assert parse_seeds(text, count=True) == (list(range(5)) if text == "5" else seeds)


def test_a_lone_number_is_a_count_only_when_asked() -> None:
    assert parse_seeds("3") == [3]
    assert parse_seeds("3", count=True) == [0, 1, 2]
    assert parse_seeds("0") == [0]
    assert parse_seeds("1,3", count=True) == [1, 3]


@pytest.mark.parametrize(
    ("text", "count", "named"),
    [
        ("", False, "names no seed"),
        ("a", False, "'a' is not a seed; give a list 0,1,2 or FIRST-LAST"),
        ("0,x", False, "'x' in '0,x' is not a seed"),
        ("1,,2", False, "'' in '1,,2' is not a seed"),
        ("1.5", True, "'1.5' is not a seed; give a list 0,1,2, FIRST-LAST or a count N"),
        ("-1", False, "'-1' is not a list 0,1,2 or FIRST-LAST"),
        ("1-2-3", True, "'1-2-3' is not a list 0,1,2, FIRST-LAST or a count N"),
        ("3-x", False, "'3-x' is not"),
        ("8-3", False, "'8-3' names no seed"),
        ("0", True, "'0' names no seed"),
        ("1,2,1", False, "names seed 1 twice"),
        ("\u0663", False, "is not a seed"),  # an Arabic-Indic 3: int() takes it, seeds do not
    ],
)
def test_bad_seeds_are_one_line_naming_them(text: str, count: bool, named: str) -> None:
    with pytest.raises(ValueError) as error:
        parse_seeds(text, count=count)
    message = str(error.value)
    assert named in message
    assert "\n" not in message
    assert "FIRST-LAST" in message or "twice" in message


def test_parts_keep_the_order_given() -> None:
    assert parse_parts("ceiling, spread", PARTS) == ["ceiling", "spread"]
    assert parse_parts("commons,", PARTS) == ["commons"]


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("spread,bogus", "unknown part 'bogus'; valid: spread, commons, ceiling"),
        ("", "'' names no part; valid: spread, commons, ceiling"),
        (" , ", "names no part"),
        ("spread,spread", "part 'spread' named twice"),
    ],
)
def test_bad_parts(text: str, named: str) -> None:
    with pytest.raises(ValueError, match=named):
        parse_parts(text, PARTS)


def parser(**options: object) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bench_x.py")
    add_common_arguments(parser, **options)  # type: ignore[arg-type]
    return parser


def test_defaults_arrive_parsed() -> None:
    args = parser(
        parts=PARTS, seeds="0,1,2", workers=2, device="cpu", keep=True, quick="smoke run"
    ).parse_args([])
    assert args.parts == list(PARTS)
    assert args.seeds == [0, 1, 2]
    assert (args.workers, args.device, args.keep, args.quick) == (2, "cpu", None, False)


def test_given_values_arrive_parsed() -> None:
    args = parser(parts=PARTS, default_parts="commons", seeds="3-8", seed_count=True).parse_args(
        ["--seeds", "4", "--parts", "ceiling,commons"]
    )
    assert args.seeds == [0, 1, 2, 3]
    assert args.parts == ["ceiling", "commons"]
    assert parser(parts=PARTS, default_parts="commons").parse_args([]).parts == ["commons"]


def test_only_the_options_asked_for() -> None:
    assert vars(parser(seeds="0").parse_args([])) == {"seeds": [0]}
    assert vars(parser(keep=True).parse_args(["--keep", "runs"])) == {"keep": "runs"}
    with pytest.raises(SystemExit):
        parser(seeds="0").parse_args(["--parts", "spread"])


def test_seeds_chosen_per_part_default_to_none() -> None:
    made = parser(seeds_per_part="0,1,2; imitation: 0-4")
    assert made.parse_args([]).seeds is None
    assert made.parse_args(["--seeds", "1-2"]).seeds == [1, 2]
    assert "(default: 0,1,2; imitation: 0-4)" in " ".join(made.format_help().split())


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--seeds", "0,a"], "argument --seeds: 'a' in '0,a' is not a seed"),
        (["--seeds", "5-2"], "argument --seeds: '5-2' names no seed"),
        (["--parts", "spread,nope"], "argument --parts: unknown part 'nope'; valid: spread"),
        (["--workers", "0"], "argument --workers: must be a whole number >= 1, got '0'"),
        (["--workers", "two"], "argument --workers: must be a whole number >= 1, got 'two'"),
    ],
)
def test_bad_input_is_an_argparse_error(
    argv: list[str], named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    made = parser(parts=PARTS, seeds="0,1,2", workers=1)
    with pytest.raises(SystemExit) as exit_:
        made.parse_args(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert lines[0].startswith("usage: bench_x.py")
    assert lines[-1].startswith("bench_x.py: error: ")
    assert named in lines[-1]
    assert "Traceback" not in err


def test_help_says_what_is_valid() -> None:
    text = " ".join(
        parser(parts=PARTS, seeds="3-8", seed_count=True, keep=True).format_help().split()
    )
    assert "parts to run, of spread, commons, ceiling (default: spread,commons,ceiling)" in text
    assert "a list 0,1,2 or FIRST-LAST, or a count N (0 .. N-1) (default: 3-8)" in text
    assert "--keep DIR" in text


def test_a_kept_folder_stays(tmp_path: Path) -> None:
    kept = tmp_path / "runs"
    with run_folder(str(kept)) as out:
        assert out == kept
        out.mkdir()
        (out / "summary.json").write_text("{}")
    assert (kept / "summary.json").exists()


def test_a_temporary_folder_goes(tmp_path: Path) -> None:
    with run_folder(None, prefix="bench-x-") as out:
        assert out.is_dir() and out.name.startswith("bench-x-")
        (out / "summary.json").write_text("{}")
    assert not out.exists()


def test_parts_run_in_turn_between_progress_lines(capsys: pytest.CaptureFixture[str]) -> None:
    calls: list[str] = []

    def run_part(part: str) -> int:
        calls.append(part)
        print(f"running {part}")
        return len(part)

    results = run_parts("bench_x", ["ceiling", "spread"], run_part)
    assert calls == ["ceiling", "spread"]
    assert results == {"ceiling": 7, "spread": 6}
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "[bench_x] ceiling"
    assert lines[1] == "running ceiling"
    assert lines[2].startswith("[bench_x] ceiling done in ") and lines[2].endswith(" s")
    assert lines[3:5] == ["[bench_x] spread", "running spread"]
    assert len(lines) == 6
