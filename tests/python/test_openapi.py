"""The live HTTP API against its OpenAPI document (crates/projector/openapi.json).

schemathesis fuzzes every operation of the document that `loanctl up` serves at
/openapi.json (random ids, query values, escapes) and fails on any server error or any
answer that breaks the document's schemas; then every loan's statement and payoff and
every borrower of the live ledger are validated against their schemas (fuzzed ids
name no real loan), and unknown ids and bad query values must be a 4xx JSON error.

Runs on the ledger of the session (after the foreign-client story, it has loans in
every state); alone, it feeds tests/scenarios/spec-example.jsonl first.
"""

import json
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import jsonschema_rs

REPO = Path(__file__).resolve().parents[2]
DOCUMENT = REPO / "crates" / "projector" / "openapi.json"
# Bounds the run well under a minute on the 2-core machine (3-4 s measured; the subprocess is stopped at 90 s).
SCHEMATHESIS_EXAMPLES = 15
SCHEMATHESIS_TIMEOUT_S = 90


def answer(api, path):
    """(status, JSON body) of GET path, errors included."""
    try:
        with urllib.request.urlopen(api + path, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def validator(document, name):
    return jsonschema_rs.validator_for({"$ref": f"#/components/schemas/{name}", "components": document["components"]})


def assert_fits(document, name, body, where):
    errors = [str(e) for e in validator(document, name).iter_errors(body)]
    assert not errors, f"{where}: the answer does not fit {name}:\n" + "\n".join(errors[:5])


def test_the_served_document_is_the_checked_in_one(ledger):
    assert ledger.get("/openapi.json") == json.loads(DOCUMENT.read_text())


def test_schemathesis_finds_no_server_error_and_no_answer_off_schema(ledger, tmp_path):
    st = shutil.which("st", path=str(Path(sys.executable).parent))
    assert st, "schemathesis is not installed in the test's environment (tests/python/requirements.txt)"
    argv = [
        st, "run", f"{ledger.api}/openapi.json", "--url", ledger.api,
        "--checks", "not_a_server_error,response_schema_conformance",
        "--phases", "examples,coverage,fuzzing",
        "--max-examples", str(SCHEMATHESIS_EXAMPLES), "--workers", "1", "--seed", "1",
        "--request-timeout", "10", "--report", "junit", "--report-dir", str(tmp_path),
    ]
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=SCHEMATHESIS_TIMEOUT_S, cwd=tmp_path)
    except subprocess.TimeoutExpired as expired:
        raise AssertionError(f"schemathesis ran over {SCHEMATHESIS_TIMEOUT_S} s:\n{expired.stdout}") from None
    assert result.returncode == 0, f"schemathesis found issues:\n{result.stdout[-8000:]}\n{result.stderr[-2000:]}\n--- loanctl up\n{ledger.log.read_text(errors='replace')[-4000:]}"
    assert "No issues found" in result.stdout, result.stdout[-4000:]


def test_every_loan_and_borrower_fits_and_unknowns_are_4xx_json(ledger):
    document = json.loads(DOCUMENT.read_text())
    export = ledger.export()
    if not export["loans"]:
        ledger.loanctl("feed", str(REPO / "tests" / "scenarios" / "spec-example.jsonl"))
        export = ledger.export()
    assert export["loans"], "no loans to check"
    assert_fits(document, "Export", export, "/v1/export")
    for loan in export["loans"]:
        loan_id = urllib.request.quote(loan["loan_id"], safe="")
        for suffix, schema in (("", "Loan"), ("/history", "LoanHistory"), ("/payoff", "Payoff")):
            path = f"/v1/loans/{loan_id}{suffix}"
            status, body = answer(ledger.api, path)
            assert status == 200, f"{path}: {status} {body}"
            assert_fits(document, schema, body, path)
    for borrower in export["borrowers"]:
        path = f"/v1/borrowers/{urllib.request.quote(borrower['borrower_id'], safe='')}"
        status, body = answer(ledger.api, path)
        assert status == 200, f"{path}: {status} {body}"
        assert_fits(document, "BorrowerDetail", body, path)
    for path, expected in (
        ("/v1/loans/NO-SUCH-LOAN", 404),
        ("/v1/loans/NO-SUCH-LOAN/history", 404),
        ("/v1/loans/NO-SUCH-LOAN/payoff", 404),
        ("/v1/borrowers/NO-SUCH-BORROWER", 404),
        ("/v1/loans/A%zz/history", 400),
        ("/v1/overdue?bucket=M9", 400),
        ("/v1/overdue?bucket=%zz", 400),
        ("/v1/no-such-endpoint", 404),
    ):
        status, body = answer(ledger.api, path)
        assert status == expected, f"{path}: {status} {body}"
        assert_fits(document, "Error", body, path)
