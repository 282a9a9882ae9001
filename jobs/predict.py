"""spark-submit entry point of ``h3spark predict``: a trained model and its pipeline applied on Spark.

    spark-submit --master spark://127.0.0.1:7077 jobs/predict.py --config conf/train_mxnet_example.yaml \
        --pipeline datasets/digits_preprocessed --output datasets/digits_scored

The config's predict: section, else its training run's checkpoints and its source; the flags of
``h3spark predict`` (--model, --pipeline, --input, --output, ...) set or replace its keys, and
without --config they make the whole config.
"""

import sys

from h3spark.cli import job_main


def main(argv: list[str]) -> int:
    return job_main("predict", argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
