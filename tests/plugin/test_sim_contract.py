"""The names the plugin relies on when it meets a simulated cluster are the sim's documented wire contract."""

from __future__ import annotations

from pytest_aksai.kube import _connect
from pytest_aksai.sim import contract


def test_the_plugin_reads_the_time_scale_where_the_sim_advertises_it() -> None:
    assert _connect.SIM_CONFIGMAP == (contract.SIM_NAMESPACE, contract.SIM_CONFIGMAP)
    assert contract.KEY_TIME_SCALE == _connect.SIM_TIME_SCALE_KEY
