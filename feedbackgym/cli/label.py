"""``feedbackgym label``: serve the human teacher's queries to people in a browser."""

from __future__ import annotations

import argparse

from feedbackgym.errors import ConfigError

NAME = "label"
SAVED_ON_INTERRUPT = "finished cells are"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        NAME,
        help="serve the human teacher's queries to people in a browser",
        description="Serve the preference queries of a human teacher (--teacher human "
        '--teacher-kwargs \'{"dir": DIR, "env": ...}\') from the label folder DIR: each '
        "annotator opens a personal link, watches two clips and picks the better one; every "
        "answer is on disk before the next query shows. Runs until Ctrl-C; restart at will.",
    )
    parser.add_argument("--out", required=True, help="label folder (shared with the teacher)")
    parser.add_argument(
        "--annotator",
        action="append",
        default=None,
        help="annotator name; repeat for several (default: one named 'annotator'). A new name "
        "gets a new token, printed once in its link",
    )
    parser.add_argument(
        "--reissue", action="store_true", help="new tokens for the named annotators"
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on")
    parser.add_argument(
        "--lease",
        type=float,
        default=60.0,
        help="seconds a query shown to one annotator is kept from the others",
    )


def run(args: argparse.Namespace) -> None:
    from feedbackgym.feedback.human import LabelQueue
    from feedbackgym.feedback.human.server import check_host, make_app, serve

    check_host(args.host)  # before the folder or its tokens are written
    if not 0 < args.port < 65536:
        raise ConfigError(f"--port must be in 1..65535, got {args.port}")
    if not args.lease > 0:
        raise ConfigError(f"--lease must be > 0 seconds, got {args.lease}")
    queue = LabelQueue(args.out)
    names = args.annotator or ([] if queue.annotators() else ["annotator"])
    new = queue.add_annotators(names, reissue=args.reissue)
    make_app(args.out)  # the 'human' extra is installed: fail before printing links
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"label folder {args.out}: {len(queue.open_queries())} queries waiting")
    for name in queue.annotators():
        if name in new:
            print(f"{name:<16} http://{host}:{args.port}/?token={new[name]}")
        else:
            print(f"{name:<16} (token issued before; --annotator {name} --reissue for a new one)")
    print("Ctrl-C stops the server; answers are on disk, re-run to go on.")
    serve(args.out, host=args.host, port=args.port, lease_seconds=args.lease)
