"""The error catalogue is complete and well formed; DeployError and redaction behave."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from engine import error_catalogue
from engine.error_catalogue import (
    BEYOND_SOP,
    CHANGE_PREVIEW_CODES,
    ERROR_CODES,
    QUALITY_GATE_CODES,
    SEVERITIES,
)
from engine.errors import REDACTED, DeployError, redact

SOP = Path(__file__).resolve().parents[3] / "shared" / "SOP-DEPLOY-001.md"
ROOT = Path(__file__).resolve().parents[2]


# --- the catalogue ---------------------------------------------------------------------------

def test_catalogue_has_the_31_sop_codes_in_step_order():
    assert len(set(ERROR_CODES) - BEYOND_SOP) == 31
    assert BEYOND_SOP <= set(ERROR_CODES)
    steps = [entry.step for entry in ERROR_CODES.values()]
    assert steps == sorted(steps)
    assert set(steps) == set(range(0, 9))
    # Step 0: the quality gates, checked before step 1, and the refusals of a dry run or a
    # promotion, before a deployment exists; codes beyond the SOP.
    assert {code for code, entry in ERROR_CODES.items() if entry.step == 0} == (
        QUALITY_GATE_CODES | CHANGE_PREVIEW_CODES)
    assert QUALITY_GATE_CODES | CHANGE_PREVIEW_CODES <= BEYOND_SOP


@pytest.mark.skipif(not SOP.exists(), reason="the shared SOP is not beside this clone")
def test_catalogue_matches_the_error_codes_of_each_sop_step():
    text = SOP.read_text()
    sections = re.split(r"^### Step (\d+):", text, flags=re.MULTILINE)
    found = {}
    for number, body in zip(sections[1::2], sections[2::2], strict=True):
        block = body.split("**Error Codes**:", 1)[1].split("**Mitigation**", 1)[0]
        for code in re.findall(r"`([A-Z0-9_]+)`", block):
            found[code] = int(number)
    assert found == {code: entry.step for code, entry in ERROR_CODES.items()
                     if code not in BEYOND_SOP}
    assert not set(found) & BEYOND_SOP


@pytest.mark.skipif(not SOP.exists(), reason="the shared SOP is not beside this clone")
def test_catalogue_keeps_the_sop_reference_table():
    table = re.findall(r"^\| ([A-Z0-9_]+) \| (\w+) \|", SOP.read_text(), flags=re.MULTILINE)
    assert len(table) == 10
    for code, severity in table:
        assert ERROR_CODES[code].severity == severity.lower()


@pytest.mark.parametrize("code", sorted(ERROR_CODES))
def test_entry_is_well_formed(code):
    entry = ERROR_CODES[code]
    assert entry.code == code
    assert re.fullmatch(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*", code)
    assert entry.severity in SEVERITIES
    assert 0 <= entry.step <= 8
    assert entry.resolution_minutes is None or (
        isinstance(entry.resolution_minutes, int) and entry.resolution_minutes > 0)
    for sentence in (entry.description, entry.mitigation):
        assert isinstance(sentence, str) and sentence == sentence.strip()
        assert sentence[0].isupper() and sentence.endswith("."), sentence


def test_get_returns_the_entry_and_refuses_unknown_codes():
    assert error_catalogue.get("APP_NOT_FOUND") is ERROR_CODES["APP_NOT_FOUND"]
    with pytest.raises(KeyError):
        error_catalogue.get("NOT_A_CODE")


def test_catalogue_loads_without_requests():
    """The Odoo model reads the catalogue; it must not pull in the HTTP stack."""
    probe = ("import sys; import engine.error_catalogue, engine.errors; "
             "print('requests' in sys.modules, 'yaml' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True,
                            text=True, check=True, timeout=60)
    assert result.stdout.split() == ["False", "False"]


# --- DeployError ------------------------------------------------------------------------------

def test_deploy_error_carries_code_message_details_and_entry():
    error = DeployError("RATE_LIMIT_EXCEEDED", "Too many requests.", details={"reset": 30},
                        retryable=True)
    assert str(error) == "RATE_LIMIT_EXCEEDED: Too many requests."
    assert repr(error) == "DeployError('RATE_LIMIT_EXCEEDED', 'Too many requests.')"
    assert error.entry is ERROR_CODES["RATE_LIMIT_EXCEEDED"]
    assert error.to_dict() == {
        "code": "RATE_LIMIT_EXCEEDED", "message": "Too many requests.",
        "details": {"reset": 30}, "retryable": True, "severity": "medium",
        "mitigation": ERROR_CODES["RATE_LIMIT_EXCEEDED"].mitigation,
    }


def test_deploy_error_defaults_and_copies_details():
    details = {"path": "name"}
    error = DeployError("PLACEHOLDER_VALUES", "Placeholder at name.", details=details)
    details["path"] = "changed"
    assert error.details == {"path": "name"}
    assert error.retryable is False
    assert DeployError("BUILD_FAILED", "Build failed.").details == {}


def test_deploy_error_refuses_unknown_codes():
    with pytest.raises(ValueError, match="unknown error code 'OOPS'"):
        DeployError("OOPS", "Something.")


# --- redact -----------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("token dop_v1_abcdef0123456789 used", f"token dop_v1_{REDACTED} used"),
    ("doo_v1_ABC and dor_v1_xyz", f"doo_v1_{REDACTED} and dor_v1_{REDACTED}"),
    ("Authorization: Bearer abc.def-ghi", f"Authorization: Bearer {REDACTED}"),
    ('{"auth": "bearer s3cr3t"}', f'{{"auth": "bearer {REDACTED}"}}'),
    ("GET /x?token=abc&y=1", f"GET /x?token={REDACTED}&y=1"),
    ("GET /x?a=1&access_token=abc", f"GET /x?a=1&access_token={REDACTED}"),
    ("GitHub ghp_16C7e42F292c6912E7710c838347Ae178B4a", f"GitHub ghp_{REDACTED}"),
    ("ghs_abc123DEF and gho_x1", f"ghs_{REDACTED} and gho_{REDACTED}"),
    ("pat github_pat_11ABCDEFG0_abcdefXYZ123 end", f"pat github_pat_{REDACTED} end"),
    ("Authorization: token s3cr3t-value", f"Authorization: token {REDACTED}"),
    ("POST https://hooks.slack.com/services/T000/B000/XXXXXXXX failed",
     f"POST https://hooks.slack.com/services/{REDACTED} failed"),
    ("nothing secret here", "nothing secret here"),
    ("a token of trust", "a token of trust"),
])
def test_redact_masks_token_shapes(text, expected):
    assert redact(text) == expected


def test_redact_masks_given_secrets_but_not_short_ones():
    assert redact("user hunter22 logged in", secrets=["hunter22"]) == f"user {REDACTED} logged in"
    assert redact("abc", secrets=["abc", "", None]) == "abc"


def test_redact_accepts_none_and_non_text():
    assert redact(None) is None
    assert redact(42) == "42"
    error = DeployError("UNAUTHORIZED", redact("token dop_v1_secretvalue refused"))
    assert "secretvalue" not in str(error) and "secretvalue" not in repr(error)
