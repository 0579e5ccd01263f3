"""The stated cost estimate."""

import json

import pytest

from runtime.ensemble.cost import ASSUMED_SPOT_PRICE_PER_VCPU_HOUR, estimate_cost


def test_cost_is_vcpu_seconds_times_the_hourly_price() -> None:
    cost = estimate_cost(fit_seconds=1800.0, vcpus_per_job=2.0, price_per_vcpu_hour=0.05)
    assert cost.vcpu_seconds == 3600.0
    assert cost.usd == pytest.approx(0.05)
    assert cost.price_per_vcpu_hour == 0.05


def test_the_default_price_is_the_stated_assumption() -> None:
    cost = estimate_cost(fit_seconds=3600.0, vcpus_per_job=1.0)
    assert cost.price_per_vcpu_hour == ASSUMED_SPOT_PRICE_PER_VCPU_HOUR
    assert cost.usd == pytest.approx(ASSUMED_SPOT_PRICE_PER_VCPU_HOUR)
    assert "not billed" in cost.assumption


def test_no_fit_time_costs_nothing() -> None:
    assert estimate_cost(fit_seconds=0.0, vcpus_per_job=4.0).usd == 0.0


def test_the_summary_form_is_plain_json() -> None:
    cost = estimate_cost(fit_seconds=90.0, vcpus_per_job=2.0, price_per_vcpu_hour=0.02)
    assert json.loads(json.dumps(cost.to_dict())) == {
        "vcpu_seconds": 180.0,
        "price_per_vcpu_hour": 0.02,
        "usd": pytest.approx(0.001),
        "assumption": cost.assumption,
    }


def test_the_terminal_line_states_the_estimate_and_its_basis() -> None:
    line = estimate_cost(fit_seconds=5400.0, vcpus_per_job=2.0, price_per_vcpu_hour=0.02).describe()
    assert line.startswith("estimated cost: $0.0600 (10,800 vCPU-s at $0.02/vCPU-hour; ")
    assert "spot price assumed" in line
    assert "\n" not in line
