"""spark-submit entry point of ``h3spark preprocess``.

    spark-submit --master spark://127.0.0.1:7077 jobs/preprocess.py --config conf/preprocess_example.yaml
"""

import sys

from h3spark.cli import job_main


def main(argv: list[str]) -> int:
    return job_main("preprocess", argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
