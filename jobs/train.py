"""spark-submit entry point of ``h3spark train``.

    spark-submit --master spark://127.0.0.1:7077 jobs/train.py --config conf/train_mxnet_example.yaml [--resume]
"""

import sys

from h3spark.cli import job_main


def main(argv: list[str]) -> int:
    return job_main("train", argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
