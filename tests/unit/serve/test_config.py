"""ServeConfig: checked fields, and the round trip through the environment that uvicorn's workers read."""

from __future__ import annotations

import json

import pytest

from birdcall.errors import ParameterError
from birdcall.serve import API_KEY_ENV, ServeConfig
from birdcall.serve.config import CONFIG_ENV


def test_the_environment_carries_the_config_and_the_key_apart():
    config = ServeConfig(model="m.onnx", port=9000, workers=2, api_key="k", cors_origins=("https://a.org",), tmp_dir="/tmp/x")
    env = config.to_env()
    assert env[API_KEY_ENV] == "k" and "k" not in json.loads(env[CONFIG_ENV]).values()
    assert ServeConfig.from_env(env) == config
    assert ServeConfig.from_env({CONFIG_ENV: env[CONFIG_ENV]}).api_key is None
    assert config.max_upload_bytes == 200_000_000


@pytest.mark.parametrize(("changes", "message"), [
    ({"port": 70000}, "serve: port must be an integer in 0..65535, got 70000"),
    ({"workers": 0}, "serve: workers must be a positive integer, got 0"),
    ({"max_upload_mb": 0}, "serve: max_upload_mb must be a finite number > 0.0"),
    ({"timeout": float("inf")}, "serve: timeout must be a finite number > 0.0"),
    ({"jobs": 0}, "serve: jobs must be a positive integer, got 0"),
    ({"queue": -1}, "serve: queue must be an integer >= 0"),
    ({"backend": "tflite"}, "serve: backend must be one of"),
    ({"api_key": "  "}, "serve: the API key must be a non-empty string"),
    ({"model": ""}, "serve: model must be a path"),
])  # fmt: skip
def test_bad_settings_are_one_line_parameter_errors(changes, message):
    with pytest.raises(ParameterError, match=message.replace("(", r"\(").replace(".", r"\.")):
        ServeConfig(**{"model": "m.onnx", **changes})


def test_a_missing_or_foreign_environment_is_refused():
    with pytest.raises(ParameterError, match=f"{CONFIG_ENV} must hold the server settings"):
        ServeConfig.from_env({})
    with pytest.raises(ParameterError, match="unknown settings"):
        ServeConfig.from_env({CONFIG_ENV: json.dumps({"model": "m", "shell": "rm -rf /"})})
