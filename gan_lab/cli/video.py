"""`gan-lab video RUN_DIR --source 0|FILE`: classify the faces of a camera or video file, frame by frame."""

from __future__ import annotations

import argparse

from gan_lab.cli.common import positive_int
from gan_lab.cli.detector_eval import add_faces


def register(subparsers) -> None:
    from detector.data.faces import VIDEO_FACE_FINDER

    parser = subparsers.add_parser(
        "video",
        help="Classify the faces in a video file or camera stream",
        description=(
            "Find faces in each frame (MTCNN, or OpenCV's Haar cascade), classify them with a detector run, "
            "smooth each face's P(fake) over its last frames, and write an annotated MP4 and a CSV "
            "of per-frame results (by default into RUN_DIR/videos/). A camera runs until Ctrl-C."
        ),
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="detector run directory")
    parser.add_argument("--source", required=True, help="camera index (0, 1, ...) or a video file")
    parser.add_argument("--out", help="annotated video, *.mp4 (default: RUN_DIR/videos/<source>-annotated.mp4)")
    parser.add_argument("--csv", help="per-frame results (default: RUN_DIR/videos/<source>.csv)")
    add_faces(parser, default=VIDEO_FACE_FINDER, allow_none=False)
    parser.add_argument("--every", type=positive_int, default=1, help="classify every K-th frame (default: 1)")
    parser.add_argument(
        "--smooth",
        type=positive_int,
        default=5,
        help="average P(fake) over a face's last N classified frames (default: 5)",
    )
    parser.add_argument(
        "--min-face", type=positive_int, default=40, help="smallest face side to look for, in pixels (default: 40)"
    )
    parser.add_argument(
        "--max-frames", type=positive_int, help="stop after this many frames (default: the whole source)"
    )
    parser.add_argument(
        "--show", action="store_true", help="also show the annotated frames in a window (needs a display)"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from gan_lab.apps.video import classify_video

    summary = classify_video(
        args.run_dir,
        args.source,
        out=args.out,
        csv_path=args.csv,
        every=args.every,
        smooth=args.smooth,
        margin=args.face_margin,
        faces=args.faces,
        min_face=args.min_face,
        max_frames=args.max_frames,
        show=args.show,
    )
    print(
        f"{summary['source']}: {summary['frames']} frames, faces in {summary['frames_with_faces']} "
        f"of {summary['frames_classified']} classified, {summary['tracks']} track(s); "
        f"{summary['fake_detections']} Fake / {summary['real_detections']} Real detections "
        f"(faces by {summary['face_finder']}) "
        f"at threshold {summary['threshold']:.3f}"
    )
    if summary["warning"]:
        print(summary["warning"])
    print(f"Annotated video: {summary['video']}")
    print(f"Per-frame CSV:   {summary['csv']}")
    return 0
