"""Sluice's health checks in Argo CD's own layout (deploy/argocd/resource_customizations/sluice.dev/<Kind>/),
run by Argo CD's own test code: TestLuaHealthScript of util/lua, built from the pinned Argo CD module by
scripts/argocd/lua-tests.sh (marked ``argocd_lua``). The unmarked tests check the cases themselves without Go:
the same cases under our Lua 5.1 interpreter, the folder generated and current, every terminal reason covered."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from lupa import lua51

from sluice_operator.models import CUSTOM_RESOURCES, GROUP

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
HEALTH_SCRIPT = REPOSITORY_ROOT / "deploy" / "argocd" / "health.lua"
CUSTOMIZATIONS = REPOSITORY_ROOT / "deploy" / "argocd" / "resource_customizations" / GROUP
LUA_TESTS_SCRIPT = REPOSITORY_ROOT / "scripts" / "argocd" / "lua-tests.sh"
GENERATOR = REPOSITORY_ROOT / "scripts" / "generate_argocd_health_tests.py"
KINDS = [resource.definition.kind for resource in CUSTOM_RESOURCES]
BUILD_TIMEOUT_SECONDS = 1800
"""A cold build of Argo CD's util/lua test binary compiles most of Argo CD's dependencies."""


@dataclass(frozen=True)
class Case:
    """One entry of a health_test.yaml: the test name Argo CD gives it, its object and the health expected."""

    kind: str
    input_path: str
    status: str
    message: str

    @property
    def test_name(self) -> str:
        return f"TestLuaHealthScript/{GROUP}/{self.kind}/{self.input_path}"

    def resource(self, folder: Path = CUSTOMIZATIONS) -> dict[str, Any]:
        loaded: dict[str, Any] = yaml.safe_load((folder / self.kind / self.input_path).read_text(encoding="utf-8"))
        return loaded


def load_cases(folder: Path = CUSTOMIZATIONS) -> list[Case]:
    cases = []
    for kind in KINDS:
        tests = yaml.safe_load((folder / kind / "health_test.yaml").read_text(encoding="utf-8"))["tests"]
        for test in tests:
            health = test["healthStatus"]
            cases.append(Case(kind, test["inputPath"], health["status"], health.get("message", "")))
    return cases


CASES = load_cases()


def assess_with_lua51(resource: dict[str, Any], script: str) -> tuple[str, str]:
    """Run a health script as Argo CD does: the resource in the global ``obj``, a table returned."""
    runtime = lua51.LuaRuntime(unpack_returned_tuples=True)
    runtime.globals().obj = runtime.table_from(resource, recursive=True)
    health = runtime.execute(script)
    return str(health["status"]), str(health["message"])


def conditions_of(resource: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {condition["type"]: condition for condition in (resource.get("status") or {}).get("conditions") or []}


# Without Go: the cases themselves.


def test_every_kind_has_the_single_health_script() -> None:
    assert sorted(path.name for path in CUSTOMIZATIONS.iterdir()) == sorted(KINDS)
    for kind in KINDS:
        assert (CUSTOMIZATIONS / kind / "health.lua").read_bytes() == HEALTH_SCRIPT.read_bytes()


def test_generated_folder_is_current() -> None:
    result = subprocess.run([sys.executable, str(GENERATOR), "--check"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("case", CASES, ids=[f"{case.kind}/{case.input_path}" for case in CASES])
def test_case_holds_under_lua51_too(case: Case) -> None:
    """Our interpreter agrees with each case Argo CD runs (its gopher-lua is Lua 5.1 as well)."""
    assert assess_with_lua51(case.resource(), HEALTH_SCRIPT.read_text(encoding="utf-8")) == (case.status, case.message)


@pytest.mark.parametrize("case", CASES, ids=[f"{case.kind}/{case.input_path}" for case in CASES])
def test_case_object_is_a_valid_object_of_its_kind(case: Case) -> None:
    """Each testdata object is one the operator's models accept (spec from examples/, status as written)."""
    resource = case.resource()
    assert resource["apiVersion"] == f"{GROUP}/v1alpha1"
    assert resource["kind"] == case.kind
    model = next(model for model in CUSTOM_RESOURCES if model.definition.kind == case.kind)
    model.model_validate(resource)
    assert case.message, "Argo CD compares the message too: every case names the one it expects"


def test_every_terminal_reason_is_degraded_on_its_own() -> None:
    """For each reason the script treats as terminal, a case with Ready=False and that reason, no Stalled,
    Failed or Succeeded=False to make it Degraded otherwise, expects Degraded."""
    script = HEALTH_SCRIPT.read_text(encoding="utf-8")
    table = re.search(r"local terminal_reasons = \{(.*?)\}", script, re.DOTALL)
    assert table is not None
    reasons = set(re.findall(r"(\w+) = true", table.group(1)))
    assert "InvalidSpec" in reasons
    covered = set()
    for case in CASES:
        conditions = conditions_of(case.resource())
        ready = conditions.get("Ready", {})
        others_true = [
            name for name in ("Stalled", "Failed", "Paused") if conditions.get(name, {}).get("status") == "True"
        ]
        alone = ready.get("status") == "False" and not others_true and "Succeeded" not in conditions
        if alone and ready["reason"] in reasons:
            assert case.status == "Degraded", case
            covered.add(ready["reason"])
    assert covered == reasons


def test_cases_cover_each_state_of_every_kind() -> None:
    for kind in KINDS:
        names = {Path(case.input_path).stem: case.status for case in CASES if case.kind == kind}
        assert names["progressing_no_status"] == "Progressing"
        assert names["progressing_generation_behind"] == "Progressing"
        assert names["healthy"] == "Healthy"
        assert names["degraded_invalid_spec"] == "Degraded"
        assert any(
            name.startswith("progressing_") and name not in {"progressing_no_status", "progressing_generation_behind"}
            for name in names
        ), kind
    statuses = {case.status for case in CASES}
    assert statuses == {"Progressing", "Healthy", "Degraded", "Suspended"}
    replay = {Path(case.input_path).stem: case for case in CASES if case.kind == "Replay"}
    assert conditions_of(replay["healthy"].resource())["Succeeded"]["status"] == "True"
    assert conditions_of(replay["degraded_succeeded_false"].resource())["Succeeded"]["status"] == "False"


# With Argo CD's own test code (a Go build).


@dataclass(frozen=True)
class LuaTestRun:
    returncode: int
    output: str

    def results(self) -> dict[str, str]:
        """PASS or FAIL by subtest name, from the `go test -v` output."""
        return {
            name: verdict
            for verdict, name in re.findall(r"^\s*--- (PASS|FAIL): (TestLuaHealthScript\S*)", self.output, re.MULTILINE)
        }


def run_lua_tests(*arguments: str) -> LuaTestRun:
    completed = subprocess.run(
        ["bash", str(LUA_TESTS_SCRIPT), *arguments],
        capture_output=True,
        text=True,
        check=False,
        timeout=BUILD_TIMEOUT_SECONDS,
    )
    return LuaTestRun(completed.returncode, completed.stdout + completed.stderr)


def broken_copy(tmp_path: Path) -> Path:
    copy = tmp_path / GROUP
    shutil.copytree(CUSTOMIZATIONS, copy)
    return copy


@pytest.fixture(scope="module")
def checked_in_run() -> LuaTestRun:
    return run_lua_tests()


@pytest.mark.argocd_lua
@pytest.mark.slow
@pytest.mark.timeout(BUILD_TIMEOUT_SECONDS)
@pytest.mark.xdist_group("argocd_lua")  # one worker: the module's run of the script serves all three
def test_argo_cd_runs_every_sluice_case_and_each_passes(checked_in_run: LuaTestRun) -> None:
    assert checked_in_run.returncode == 0, checked_in_run.output[-4000:]
    results = checked_in_run.results()
    sluice_results = {
        name: verdict for name, verdict in results.items() if name.startswith(f"TestLuaHealthScript/{GROUP}/")
    }
    assert sluice_results == {case.test_name: "PASS" for case in CASES}
    assert results["TestLuaHealthScript"] == "PASS"
    assert f"{len(CASES)} of {len(CASES)} {GROUP} cases passed, 0 failed" in checked_in_run.output


@pytest.mark.argocd_lua
@pytest.mark.slow
@pytest.mark.timeout(BUILD_TIMEOUT_SECONDS)
@pytest.mark.xdist_group("argocd_lua")  # one worker: the module's run of the script serves all three
def test_a_wrong_expected_health_fails_in_argo_cd(checked_in_run: LuaTestRun, tmp_path: Path) -> None:
    """The same binary on a copy whose healthy EventStream case expects Degraded: that case, and only it, fails."""
    assert checked_in_run.returncode == 0, "the checked-in cases must pass first"
    copy = broken_copy(tmp_path)
    test_file = copy / "EventStream" / "health_test.yaml"
    tests = yaml.safe_load(test_file.read_text(encoding="utf-8"))
    healthy = next(test for test in tests["tests"] if test["inputPath"] == "testdata/healthy.yaml")
    healthy["healthStatus"]["status"] = "Degraded"
    test_file.write_text(yaml.safe_dump(tests, sort_keys=False), encoding="utf-8")

    run = run_lua_tests("--customizations", str(copy))

    assert run.returncode == 1
    failed = {name for name, verdict in run.results().items() if verdict == "FAIL"}
    assert failed == {"TestLuaHealthScript", f"TestLuaHealthScript/{GROUP}/EventStream/testdata/healthy.yaml"}
    assert "Not equal" in run.output


@pytest.mark.argocd_lua
@pytest.mark.slow
@pytest.mark.timeout(BUILD_TIMEOUT_SECONDS)
@pytest.mark.xdist_group("argocd_lua")  # one worker: the module's run of the script serves all three
def test_argo_cd_runs_the_health_script_of_the_folder_given(checked_in_run: LuaTestRun, tmp_path: Path) -> None:
    """Argo CD embeds health.lua in its test binary: a copy with a changed script gets a binary of its own
    (never a stale one), and there the cases expecting Degraded fail while the rest pass."""
    assert checked_in_run.returncode == 0, "the checked-in cases must pass first"
    copy = broken_copy(tmp_path)
    for kind in KINDS:
        script = copy / kind / "health.lua"
        script.write_text(script.read_text(encoding="utf-8").replace('"Degraded"', '"Healthy"'), encoding="utf-8")

    run = run_lua_tests("--customizations", str(copy))

    assert run.returncode == 1
    failed = {name for name, verdict in run.results().items() if verdict == "FAIL"}
    expected = {case.test_name for case in CASES if case.status == "Degraded"}
    assert expected
    assert failed == {"TestLuaHealthScript", *expected}
