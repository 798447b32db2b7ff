"""`gan-lab serve [RUN_DIR]`: the lab in a browser (every run's pages) and the upload page that classifies a face."""

from __future__ import annotations

import argparse

from gan_lab.cli.common import add_runs_dir, positive_int
from gan_lab.cli.detector_eval import add_faces, faces_option


def _port(text: str) -> int:
    value = int(text)
    if not 0 < value < 65536:
        raise argparse.ArgumentTypeError(f"expected a port number between 1 and 65535, got {text}")
    return value


def _megabytes(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of megabytes, got {text}")
    return value


def register(subparsers) -> None:
    from detector.data.faces import PHOTO_FACE_FINDER
    from gan_lab.apps.web import MAX_CONCURRENT, MAX_DECODE_MB, SLOT_WAIT_SECONDS

    parser = subparsers.add_parser(
        "serve",
        help="Serve the lab's runs in a browser, and a page that classifies uploaded faces",
        description=(
            "Serve the lab in a browser: /lab lists every run under --runs-dir (detector, GAN, stress, quickstart) "
            "with its status and headline figure, each with a page of its pictures and report, and compares two. "
            "And a page where you upload a photo and get Real or Fake, P(fake) and a Grad-CAM "
            "overlay for the face found in it (or the whole photo when none is); a second page lists every detector run under --runs-dir with its test metrics "
            "and lets you pick the one that classifies. Also answers POST /api/predict (field 'file') with JSON."
        ),
    )
    parser.add_argument(
        "run_dir",
        metavar="RUN_DIR",
        nargs="?",
        default=None,
        help="detector run directory to classify with (default: the newest under --runs-dir)",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)"
    )
    parser.add_argument("--port", type=_port, default=5000, help="port (default: 5000)")
    add_runs_dir(parser)
    parser.add_argument("--max-mb", type=_megabytes, default=10, help="largest upload accepted, in MB (default: 10)")
    parser.add_argument(
        "--max-decode-mb",
        type=_megabytes,
        default=MAX_DECODE_MB,
        help="most memory an upload's decoded pixels may take, in MB, read from its header before decoding "
        f"(width x height x bytes per pixel, at least 3 for RGB; default: {MAX_DECODE_MB}, about "
        f"{MAX_DECODE_MB * 1024 * 1024 / 3e6:.0f} megapixels)",
    )
    parser.add_argument(
        "--max-concurrent",
        type=positive_int,
        default=MAX_CONCURRENT,
        help=f"uploads decoded and classified at once; others wait up to {SLOT_WAIT_SECONDS} s, then get "
        f"503 'busy' (default: {MAX_CONCURRENT})",
    )
    add_faces(parser, default=PHOTO_FACE_FINDER)
    parser.add_argument("--debug", action="store_true", help="Flask's development server instead of waitress")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from gan_lab.apps.web import serve

    serve(
        args.run_dir,
        host=args.host,
        port=args.port,
        runs_dir=args.runs_dir,
        max_upload_mb=args.max_mb,
        faces=faces_option(args),
        face_margin=args.face_margin,
        max_decode_mb=args.max_decode_mb,
        max_concurrent=args.max_concurrent,
        debug=args.debug,
    )
    return 0
