"""spark-submit entry point of ``h3spark run``.

    spark-submit --master spark://127.0.0.1:7077 jobs/run.py --config conf/digits_sklearn.yaml
"""

import sys

from h3spark.cli import job_main


def main(argv: list[str]) -> int:
    return job_main("run", argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
