"""Every source format's request holds a number to be a number: a JSON string or true/false
where its schema says "number" is refused (lax pydantic would read "3" as 3 and false as 0),
at any depth, while `astrobio ingest` turns its flags' text into numbers first."""

from __future__ import annotations

import argparse

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from astrobio import ConfigError
from astrobio.ingest.cli import generated_arguments, generated_values
from astrobio.ingest.formats import format_names, get_format, number_arms
from astrobio.ingest.observations import ObservationRequest

NUMERIC = [(name, field) for name in format_names() for field, info in get_format(name).request.model_fields.items()
           if number_arms(info.annotation)]


def test_the_built_in_formats_have_numeric_fields_to_check():
    assert ("observations", "confidence_threshold") in NUMERIC and ("climate", "shard_samples") in NUMERIC


@pytest.mark.parametrize("fmt,field", NUMERIC)
@given(value=st.one_of(st.booleans(), st.integers(0, 100).map(str), st.floats(0, 1).map(repr)))
def test_a_top_level_number_given_as_text_or_boolean_is_refused(fmt, field, value):
    with pytest.raises(ValidationError) as e:
        get_format(fmt).request.model_validate({field: value})
    assert any(field in err["msg"] and "a number is expected" in err["msg"] for err in e.value.errors())


@given(low=st.one_of(st.booleans(), st.just("1")), high=st.one_of(st.none(), st.floats(0, 10)))
def test_a_nested_number_given_as_text_or_boolean_is_refused(low, high):
    request = get_format("climate").request
    with pytest.raises(ValidationError, match=r"valid_ranges\.T\[0\]: a number is expected"):
        request.model_validate({"runs": {"a": "x.nc"}, "variables": ["T"], "valid_ranges": {"T": [low, high]}})
    ok = request.model_validate({"runs": {"a": "x.nc"}, "variables": ["T"], "valid_ranges": {"T": [1, high]}})
    assert ok.valid_ranges["T"][0] == 1.0


@given(seed=st.integers(0, 2**32 - 1), threshold=st.floats(0, 1))
def test_numbers_and_the_cli_flags_text_are_accepted(seed, threshold):
    direct = ObservationRequest.model_validate({"seed": seed, "confidence_threshold": threshold})
    parser = argparse.ArgumentParser()
    generated_arguments(parser, get_format("observations"))
    args = parser.parse_args(["--seed", str(seed), "--confidence-threshold", repr(threshold)])
    via_cli = ObservationRequest.model_validate(generated_values(args, get_format("observations")))
    assert via_cli.seed == direct.seed and via_cli.confidence_threshold == direct.confidence_threshold


def test_a_flag_that_is_not_a_number_names_the_flag():
    parser = argparse.ArgumentParser()
    generated_arguments(parser, get_format("observations"))
    with pytest.raises(ConfigError, match="--seed: expected an integer, got 'abc'"):
        generated_values(parser.parse_args(["--seed", "abc"]), get_format("observations"))


def test_a_string_field_still_takes_text_that_looks_like_a_number():
    assert ObservationRequest.model_validate({"start": "2020-01-01"}).start == "2020-01-01"
    assert ObservationRequest.model_validate({"anomaly_types": ["1", "2"]}).anomaly_types == ["1", "2"]
