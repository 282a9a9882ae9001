"""``h3spark tensorboard EXPERIMENT_DIR``: one TensorBoard over every trial of an experiment."""

from __future__ import annotations

import os


def register(subparsers, common) -> None:
    parser = subparsers.add_parser("tensorboard", parents=[common.plain], help="start TensorBoard over an experiment's trials "
                                   "(scalars and the HParams tab)")
    parser.add_argument("experiment_dir", metavar="EXPERIMENT_DIR", help="file:// or hdfs:// experiment dir (or a path)")
    parser.add_argument("--host", default="127.0.0.1", help="address to serve on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=6006, help="port to serve on (default: 6006)")
    parser.set_defaults(func=_tensorboard)


def _tensorboard(args) -> int:
    from h3spark.storage import resolve_uri
    from h3spark.tune import local_logdir, tensorboard_command

    logdir = local_logdir(resolve_uri(args.experiment_dir))
    print(f"TensorBoard for {logdir} at http://{args.host}:{args.port}/ (Ctrl-C stops it)", flush=True)
    command = tensorboard_command(logdir, args.host, args.port)
    # this process becomes TensorBoard, so a signal that stops it leaves no server behind
    os.execv(command[0], command)
