"""Under pytest-xdist the controller and its workers share one run id and one simulated cluster, each module
stays on one worker, the workers' namespaces never clash, and nothing of the run is left.
(`benchmarks/xdist_verdicts.py` compares the verdicts of the whole suite with and without xdist.)"""

from __future__ import annotations

import re

import pytest

pytest.importorskip("xdist")

MODULE = """
import pytest

@pytest.mark.parametrize("i", range(3))
def test_where(aksai_cluster, aksai_settings, aksai_module_namespace, aksai_namespace, i):
    print("WHERE", aksai_cluster.server_url, aksai_settings.run_id, aksai_module_namespace, aksai_namespace)
"""

LEFT = """
def test_nothing_of_earlier_runs_is_left(aksai_cluster):
    pass
"""


def test_workers_share_one_run_id_and_one_simulated_cluster(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_one=MODULE, test_two=MODULE, test_three=MODULE)
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:randomly", "-p", "no:cacheprovider", "-rP")
    result.assert_outcomes(passed=9)
    header = re.search(r"run=(r[0-9a-f]{7})", result.stdout.str())
    assert header, result.stdout.str()
    rows = [line.split("WHERE ", 1)[1].split() for line in result.outlines if line.startswith("WHERE ")]
    assert len(rows) == 9, result.stdout.str()
    assert {row[0] for row in rows} == {rows[0][0]}, "each worker started its own simulated cluster"
    assert {row[1] for row in rows} == {header.group(1)}, "the workers' run id is not the controller's"
    modules = {row[2] for row in rows}
    assert len(modules) == 3, "a module's namespace was created by more than one worker"
    assert all(re.fullmatch(rf"aksai-{header.group(1)}-gw[01]-test-(one|two|three)", m) for m in modules), (
        modules
    )
    functions = [row[3] for row in rows]
    assert all(re.fullmatch(rf"aksai-{header.group(1)}-gw[01]-test-where-[012]", f) for f in functions), (
        functions
    )
