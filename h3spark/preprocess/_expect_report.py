"""The expectations report: ``_expectations.json`` for programs, ``_expectations.html`` for people.

A published dataset holds both in its version folder, beside ``_manifest.json`` (the leading
``_`` keeps Spark and pyarrow from reading them as data); a run that failed its expectations
publishes nothing and writes them to ``validate.report_uri`` instead. The JSON's ``profiles``
(sketches and category counts) let a later run use the dataset as a drift reference.
"""

from __future__ import annotations

import html
import json

from h3spark.errors import StorageError
from h3spark.preprocess._drift import quantile
from h3spark.storage import filesystem_for, join_uri

FORMAT = "h3spark.expectations/1"
REPORT_JSON = "_expectations.json"
REPORT_HTML = "_expectations.html"
_STYLE = ("body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}"
          "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}th{background:#f3f3f3}"
          ".fail{color:#b00020;font-weight:bold}.pass{color:#1b7f3b}")


def write_report(folder: str, report: dict) -> str:
    """Write the JSON and the HTML page into ``folder`` (created if needed); return the HTML's URI."""
    fs = filesystem_for(folder)
    fs.makedirs(folder)
    fs.write_bytes(join_uri(folder, REPORT_JSON), json.dumps(report, indent=2, allow_nan=False).encode())
    fs.write_bytes(join_uri(folder, REPORT_HTML), render_html(report).encode())
    return join_uri(folder, REPORT_HTML)


def read_profile(folder: str, column: str) -> dict | None:
    """The profile of ``column`` in the report of a published version folder; None when it has none."""
    fs = filesystem_for(folder)
    path = join_uri(folder, REPORT_JSON)
    if not fs.exists(path):
        return None
    try:
        report = json.loads(fs.read_bytes(path))
    except ValueError as error:
        raise StorageError(f"{path} is not a readable expectations report ({error}). Write the dataset again, or "
                           "point the drift reference at Parquet files holding the column.") from None
    return report.get("profiles", {}).get(column)


def render_html(report: dict) -> str:
    failed, checked = report["failed"], report["checked"]
    verdict = (f'<p class="fail">FAILED: {failed} of {checked} expectations violated</p>' if failed else
               f'<p class="pass">PASSED: all {checked} expectations hold</p>')
    published = "published" if report["published"] else "not published (nothing was written to the dataset)"
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Expectations: {_e(report['dataset'])}</title>",
             f"<style>{_STYLE}</style></head><body><h1>Expectations</h1>", verdict,
             _table(["run", ""], [["dataset", report["dataset"]], ["dataset state", published],
                               ["on_failure", report["on_failure"]], ["input rows", report["rows"]],
                               ["checked at", report["created_at"]]]),
             "<h2>Results</h2>", _table(["", "expectation", "column", "bound", "observed", "what was found"],
                                        [_result_row(result) for result in report["results"]])]
    for result in report["results"]:
        if result.get("detail", {}).get("bins"):
            parts += [f"<h3>{_e(result['expectation'])}: bins</h3>", _table(
                ["bin", "reference share", "data share"],
                [[b["bin"], f"{b['reference']:.4f}", f"{b['data']:.4f}"] for b in result["detail"]["bins"]])]
    parts += ["<h2>Schema</h2>", _table(["column", "type"], [[n, t] for n, t in report["schema"].items()])]
    if report["profiles"]:
        parts += ["<h2>Profiles</h2>", _table(["column", "kind", "values", "summary"],
                                              [_profile_row(n, p) for n, p in report["profiles"].items()])]
    return "\n".join(parts + ["</body></html>"])


def _result_row(result: dict) -> list:
    mark = '<span class="pass">pass</span>' if result["passed"] else '<span class="fail">FAIL</span>'
    return [_Raw(mark), result["expectation"], result["column"] or "", _show(result["bound"]),
            _show(result["observed"]), result["message"]]


def _profile_row(name: str, profile: dict) -> list:
    values = profile["values"]
    total = sum(count for _, count in values)
    if profile["kind"] == "sketch":
        points = ", ".join(f"p{int(q * 100)}={_show(quantile(values, q))}" for q in (0.01, 0.5, 0.99))
        return [name, "numbers", total, f"{points} (approximate, 0.8 % buckets)"]
    top = sorted(values, key=lambda pair: -pair[1])[:10]
    return [name, "categories", total, ", ".join(f"{value!r} x {count}" for value, count in top)]


class _Raw(str):
    """Markup that is not escaped."""


def _table(header: list, rows: list[list]) -> str:
    head = "".join(f"<th>{_e(cell)}</th>" for cell in header)
    body = "".join("<tr>" + "".join(f"<td>{cell if isinstance(cell, _Raw) else _e(cell)}</td>" for cell in row) + "</tr>"
                   for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _show(value) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{key} {_show(item)}" for key, item in value.items())
    if isinstance(value, float):
        return f"{value:.6g}"
    return "" if value is None else str(value)


def _e(value) -> str:
    return html.escape(str(value))
